"""A training run killed mid-way, for the resume tests of every objective."""
from contextlib import contextmanager

import train


@contextmanager
def train_killed_at_step(step: int):
    """Inside the block, train.train_step raises KeyboardInterrupt at its `step`-th call (counted from
    the block's start), as a kill would; the real one is back after the block."""
    real, calls = train.train_step, []

    def killed(*args, **kwargs):
        calls.append(1)
        if len(calls) == step:
            raise KeyboardInterrupt("simulated kill")
        return real(*args, **kwargs)

    train.train_step = killed
    try:
        yield
    finally:
        train.train_step = real
