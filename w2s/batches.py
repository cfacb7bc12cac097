"""Global batches: which examples each optimizer step trains on, and each rank's share of them.

Reading order: the global batches of an epoch (random, or grouped by length); one global batch
split into this rank's micro-batches. Both depend only on example lengths and seeds, never on the
number of processes, so 1 and N processes train on the same batches (the tests check it).
"""
import math
import random

# Global batches are drawn uniformly at random by default. Length grouping (sorting windows of
# batches by length) saves padding, but it makes each batch one kind of example, so the gradient
# swings from one kind of task to the next, and in the built-in world the tiny model learned far
# less (experiments/RESULTS.md, "Trials behind the defaults"). It stays an explicit choice (train.py
# --group-by-length) for long-tailed real data on GPUs, where padding is the cost.
# Either way each row stays one conversation (no packing), so plain causal attention is right as
# is, and "one example = one row" keeps the loss bookkeeping and the rank split easy to read.

GROUP_BATCHES = 32  # with grouping: global batches per length-sorted window (bigger = less padding, less randomness)


def global_batches(lengths: list[int], global_batch_size: int, seed: int, epoch: int,
                   group_by_length: bool = False) -> list[list[int]]:
    """Example indices of each optimizer step's global batch, for one epoch.

    Shuffle all examples with a generator seeded by (seed, epoch) and cut the order into global
    batches. With `group_by_length`, cut it instead into windows of GROUP_BATCHES global batches,
    sort each window by length, cut it into batches and shuffle the batch order. Depends only on
    (lengths, global_batch_size, seed, epoch, group_by_length), never on the number of processes,
    so 1 and N processes train on the same global batches. The last partial batch is kept (it
    comes last), so every example is seen once per epoch.
    """
    if global_batch_size < 1:
        raise ValueError(f"global_batch_size must be >= 1, got {global_batch_size}")
    rng = random.Random(f"global_batches/{seed}/{epoch}")
    order = list(range(len(lengths)))
    rng.shuffle(order)
    num_full = len(order) // global_batch_size
    full, rest = order[: num_full * global_batch_size], order[num_full * global_batch_size:]
    if not group_by_length:
        batches = [full[j:j + global_batch_size] for j in range(0, len(full), global_batch_size)]
        return batches + ([rest] if rest else [])
    batches = []
    window = GROUP_BATCHES * global_batch_size
    for start in range(0, len(full), window):
        chunk = sorted(full[start:start + window], key=lambda i: (lengths[i], i))
        batches += [chunk[j:j + global_batch_size] for j in range(0, len(chunk), global_batch_size)]
    rng.shuffle(batches)  # otherwise every window would run from short to long
    if rest:
        batches.append(sorted(rest, key=lambda i: (lengths[i], i)))
    return batches


def split_global_batch(batch: list[int], lengths: list[int], world_size: int, rank: int,
                       micro_batch_size: int) -> list[list[int]]:
    """This rank's micro-batches of one global batch.

    The batch is sorted by length (longest first) and dealt in micro-steps of world_size *
    micro_batch_size examples; within a micro-step the examples go round-robin to the ranks, so
    at each micro-step every rank gets examples of about the same length (little padding, and
    ranks wait little for each other). Deterministic, disjoint, and together the ranks cover
    the batch exactly. A rank may get fewer micro-batches (or none) when the batch does not
    divide evenly; every rank still runs `num_micro_steps` micro-steps (FSDP's collectives must
    match), a zero-weight one where it has nothing.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside world_size {world_size}")
    if micro_batch_size < 1:
        raise ValueError(f"micro_batch_size must be >= 1, got {micro_batch_size}")
    ordered = sorted(batch, key=lambda i: (-lengths[i], i))
    per_step = world_size * micro_batch_size
    micro_batches = []
    for start in range(0, len(ordered), per_step):
        mine = ordered[start:start + per_step][rank::world_size]
        if mine:
            micro_batches.append(mine)
    return micro_batches


def num_micro_steps(batch_size: int, world_size: int, micro_batch_size: int) -> int:
    """Micro-steps of a global batch of `batch_size` examples: the most micro-batches any rank gets
    from split_global_batch (one per world_size * micro_batch_size examples, the last partial)."""
    return math.ceil(batch_size / (world_size * micro_batch_size))
