"""The contract between train.py's loop and what a model learns (sft, dpo, prm, grpo): one small interface.

An objective says how its rows become examples (`read`), may make one pass over them with the starting
weights before training (`prepare`: DPO's reference log-probs), may turn each step's examples into new
ones with the current weights (`rollout`: GRPO's sampled completions), and turns a micro-batch into a
summed loss (`loss`; padding the micro-batch is its own business). The loop batches examples by their
`length` and weighs them by their `count`, and knows nothing else about them. Each objective lives in its
own module (w2s/sft.py, w2s/dpo.py, w2s/prm.py, w2s/grpo.py) and builds its `Objective` there; train.py
maps --objective names to them. This module imports none of them.

Why a summed loss and a count: the loop divides by the count of the whole global batch (tokens, pairs,
verdicts), so every token weighs the same however examples fall into micro-batches and ranks. It knows
that count before the first forward, from the examples' `count` (after a rollout, from the rolled-out
examples' counts summed over ranks); the loss reports its own count in its metrics (COUNT), and the loop
checks the two agree.
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
    the loss (and the rollout) as a keyword argument, so the loop never names it. A number, or a string
    (GRPO's --reward), then one of `choices` where they are given."""
    name: str
    default: float | int | str
    help: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class RolloutContext:
    """What a rollout needs besides the current model and its examples, fixed for a run (built by
    w2s/training.py's rollout_context)."""
    tokenizer: object  # w2s.tokenizer.Tokenizer
    device: torch.device
    seed: int  # the run's --seed: a rollout seeds its samples from (seed, step, example, sample index)
    dtype: torch.dtype  # the compute dtype
    # A frozen, unsharded copy of the starting weights on this rank (a KL term's reference), built by
    # the call; the objective calls it once and keeps what it returns.
    starting_model: Callable[[], torch.nn.Module]


# read(path, tokenizer, max_seq_len, write_cache) -> (examples, report). The report counts examples
# (rows in), kept, truncated, dropped, tokens and loss_tokens (the positions the loss is computed on).
Read = Callable[..., tuple[list, dict]]
# loss(model, examples, pad_id, device, **options) -> (summed loss, metric sums over the examples).
# The metrics hold COUNT and any others (DPO's rewards): the loop sums them over the global batch and
# writes their means (over COUNT) to metrics.jsonl, beside the loss. A metric over another unit than
# COUNT's is a pair tensor [sum, its count] (GRPO's reward, a mean over completions where COUNT counts
# tokens): its mean is its sum over its own count.
Loss = Callable[..., tuple[torch.Tensor, dict[str, torch.Tensor | int]]]
# prepare(model, examples, pad_id, device, *, data_path, start, batch_size) -> a line for the log: a pass
# with the starting weights (fingerprinted by `start`), before training and before a resumed run loads
# its checkpoint; it may cache what it computes beside `data_path`.
Prepare = Callable[..., str]
# rollout(model, examples, step, *, context, **options) -> examples: called by every rank at every optimizer
# step (`step`, from 1), before any forward of the loss, with the current weights (an FSDP2 model under
# torchrun: its collectives must run on every rank alike) and this rank's examples of the step (the union
# of its micro-batches, in order; one of the global batch's examples on a rank that has none). Returns one
# new example per example, in the same order: the loop then splits and weighs those, and sums their
# counts over ranks, so a count (completion tokens) may be known only after the rollout.
Rollout = Callable[..., list]


@dataclass(frozen=True)
class Objective:
    name: str
    read: Read
    loss: Loss
    prepare: Prepare | None = None
    rollout: Rollout | None = None
    options: tuple[Option, ...] = field(default=())
    help: str = ""  # one phrase for train.py --help
