"""A training run killed mid-way, for the resume tests of every objective."""
from contextlib import contextmanager

from w2s import training


@contextmanager
def train_killed_at_step(step: int):
    """Inside the block, w2s.training.train_step (what train.py's update runs) raises KeyboardInterrupt at
    its `step`-th call (counted from the block's start), as a kill would; the real one is back after the block."""
    real, calls = training.train_step, []

    def killed(*args, **kwargs):
        calls.append(1)
        if len(calls) == step:
            raise KeyboardInterrupt("simulated kill")
        return real(*args, **kwargs)

    training.train_step = killed
    try:
        yield
    finally:
        training.train_step = real
