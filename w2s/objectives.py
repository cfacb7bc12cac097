"""The contract between train.py's loop and what a model learns (sft, dpo, prm): one small interface.

An objective says how its rows become examples (`read`), may make one pass over them with the starting
weights before training (`prepare`: DPO's reference log-probs), and turns a micro-batch into a summed
loss (`loss`; padding the micro-batch is its own business). The loop batches examples by their `length`
and weighs them by their `count`, and knows nothing else about them. Each objective lives in its own
module (w2s/sft.py, w2s/dpo.py, w2s/prm.py) and builds its `Objective` there; train.py maps --objective
names to them. This module imports none of them.

Why a summed loss and a count: the loop divides by the count of the whole global batch (tokens, pairs,
verdicts), so every token weighs the same however examples fall into micro-batches and ranks. It knows
that count before the first forward, from the examples' `count`; the loss reports its own count in its
metrics (COUNT), and the loop checks the two agree.
"""
from dataclasses import dataclass, field
from typing import Callable, Protocol

import torch

COUNT = "count"  # the metric every loss returns: what its summed loss is a sum over


class Example(Protocol):
    """What the loop asks of any objective's tokenized example."""

    @property
    def length(self) -> int:  # tokens processed (for batching and throughput)
        ...

    @property
    def count(self) -> int:  # what its loss sums over: assistant tokens, 1 pair, verdicts
        ...

    @property
    def sequence_lengths(self) -> tuple[int, ...]:  # one per sequence run through the model (attention FLOPs)
        ...


@dataclass(frozen=True)
class Option:
    """A setting of one objective (DPO's beta): train.py offers it as --NAME (rpo_alpha as --rpo-alpha),
    the run records it under NAME (w2s/train_config.py's Config, args.json), and the loop passes it to
    the loss as a keyword argument, so the loop never names it."""
    name: str
    default: float
    help: str


# read(path, tokenizer, max_seq_len, write_cache) -> (examples, report). The report counts examples
# (rows in), kept, truncated, dropped, tokens and loss_tokens (the positions the loss is computed on).
Read = Callable[..., tuple[list, dict]]
# loss(model, examples, pad_id, device, **options) -> (summed loss, metric sums over the examples).
# The metrics hold COUNT and any others (DPO's rewards): the loop sums them over the global batch and
# writes their means (over COUNT) to metrics.jsonl, beside the loss.
Loss = Callable[..., tuple[torch.Tensor, dict[str, torch.Tensor | int]]]
# prepare(model, examples, pad_id, device, *, data_path, start, batch_size) -> a line for the log: a pass
# with the starting weights (fingerprinted by `start`), before training and before a resumed run loads
# its checkpoint; it may cache what it computes beside `data_path`.
Prepare = Callable[..., str]


@dataclass(frozen=True)
class Objective:
    name: str
    read: Read
    loss: Loss
    prepare: Prepare | None = None
    options: tuple[Option, ...] = field(default=())
    help: str = ""  # one phrase for train.py --help
