"""The training machinery under train.py's loop: the model on its devices, the optimizer and its
schedule, one update, and how fast it ran.

Reading order: `build_model` (meta device, FSDP2, the starting weights broadcast from rank 0);
`build_optimizer` and `lr_factor`; `TrainState` and `start_state` (all of it, or a checkpoint's copy);
`StepSetup`, `train_step` (one global batch's forward and backward) and `update` (one optimizer step);
measuring (MFU against a measured matmul peak, peak memory, `StepMeter`).

Why the loss is summed and divided by the global batch's count: every token (pair, verdict) weighs the
same however examples fall into micro-batches and ranks (w2s/objectives.py says how a loss counts).
"""
import math
import resource
import time
from dataclasses import dataclass, replace
from functools import partial
from typing import Callable

import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard

from w2s.batches import num_micro_steps, split_global_batch
from w2s.checkpoint import TrainState, latest_checkpoint, load_checkpoint
from w2s.errors import UserError
from w2s.hf_io import model_fingerprint, read_hf_config
from w2s.model import Llama, ModelArgs
from w2s.model_source import resolve_checkpoint
from w2s.objectives import COUNT, Objective, RolloutContext
from w2s.runtime import DTYPES, check_tokenizer_fits
from w2s.tokenizer import Tokenizer
from w2s.train_config import Config

# ---------------------------------------------------------------------------------------------
# The model on its devices


def use_fsdp(world_size: int, dtype: str) -> bool:
    """FSDP2 does two jobs here: shard weights, gradients and optimizer state across processes, and
    run bf16 compute over fp32 master weights (its MixedPrecisionPolicy). With one process in fp32
    it has neither job, so the model stays a plain module and skips FSDP's per-step hooks (measurable
    on a tiny CPU model). The math is the same either way; tests check 2 processes against 1."""
    return world_size > 1 or dtype != "fp32"


def starting_point(config: Config) -> str | None:
    """Where the starting weights come from: --init, a pretrained --model, or None (a fresh preset)."""
    return config.init or (None if config.from_scratch else config.model)


def model_args(config: Config, tokenizer: Tokenizer) -> ModelArgs:
    """The model's shape: the starting checkpoint's config.json, or the preset's with the tokenizer's vocabulary."""
    source = starting_point(config)
    if source is not None:  # a hub id: fetch (once per machine) what the config needs; weights come later
        args = ModelArgs.from_hf_config(*read_hf_config(resolve_checkpoint(source, files=["config.json"])))
    else:
        args = ModelArgs.preset(config.model, vocab_size=tokenizer.vocab_size, bos_token_id=tokenizer.bos_id,
                                eos_token_id=tokenizer.eos_id)
    check_tokenizer_fits(tokenizer, args, source or config.model)
    if config.max_seq_len > args.max_seq_len:
        raise UserError(f"--max-seq-len {config.max_seq_len} exceeds the model's maximum length {args.max_seq_len}")
    return args


def shard(model: Llama, device: torch.device, world_size: int, dtype: str) -> None:
    """FSDP2 in place: each block, then the root (embeddings, final norm, head)."""
    mesh = init_device_mesh(device.type, (world_size,), mesh_dim_names=("dp",))
    # Gradients are reduced in fp32 whatever the compute dtype: a bf16 sum over many ranks loses bits.
    policy = MixedPrecisionPolicy(param_dtype=DTYPES[dtype], reduce_dtype=torch.float32)
    for block in model.layers:
        fully_shard(block, mesh=mesh, mp_policy=policy)
    fully_shard(model, mesh=mesh, mp_policy=policy)
    # Each rank's gradient is already its share of the global mean (train_step divides by the
    # global count), so the ranks' gradients are summed, not averaged as FSDP does by default.
    # A plain SUM (not NCCL's PreMulSum by 1, which gloo lacks) does that on every backend.
    for module in model.modules():
        if isinstance(module, FSDPModule):
            module.set_gradient_divide_factor(1.0)
            module.set_force_sum_reduction_for_comms(True)


def build_model(config: Config, tokenizer: Tokenizer, device: torch.device, world_size: int, rank: int,
                load_weights: bool = True) -> Llama:
    """Build on the meta device, wrap (activation checkpointing, compile, FSDP2), allocate, then load.

    Rank 0 alone holds a full copy of the starting weights (a pretrained checkpoint, --init, or a
    fresh seeded initialization, so any number of processes starts from the same weights) and
    broadcasts them into everyone's shards. `load_weights=False` (resume) leaves them to the checkpoint.
    """
    args = model_args(config, tokenizer)
    with torch.device("meta"):
        model = Llama(args)
    if config.activation_checkpointing:
        from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper

        for i, block in enumerate(model.layers):  # state-dict names are unchanged (the wrapper's prefix is stripped)
            model.layers[i] = checkpoint_wrapper(block)
    if config.compile:
        for block in model.layers:
            block.compile()  # in place: parameter names stay the same
    if use_fsdp(world_size, config.dtype):
        shard(model, device, world_size, config.dtype)
    model.to_empty(device=device)
    if args.tie_embeddings and model.lm_head.weight is not model.embed_tokens.weight:
        model.lm_head.weight = model.embed_tokens.weight  # to_empty on a plain module unties them
    model.reset_rope()  # a buffer derived from the config, not stored in checkpoints
    if load_weights:
        full = load_full_weights(config, args) if rank == 0 else {}
        set_model_state_dict(model, full, options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True))
    return model


def load_full_weights(config: Config, args: ModelArgs) -> dict[str, torch.Tensor]:
    """The starting weights as one full fp32 state dict on the CPU (rank 0 only)."""
    source = starting_point(config)
    if source is None:
        torch.manual_seed(config.seed)
        return Llama(args).state_dict()  # Llama's own initialization on the CPU, seeded
    return Llama.from_pretrained(source, dtype=torch.float32).state_dict()


def frozen_starting_model(config: Config, tokenizer: Tokenizer, device: torch.device) -> Llama:
    """The starting weights as a plain module on this rank, in the compute dtype, for inference only: a
    reference that every rank reads alone (no FSDP collectives), whatever the step or the rank's data."""
    args = model_args(config, tokenizer)
    with torch.random.fork_rng():  # a fresh preset's seeded initialization must not move the run's generator
        model = Llama(args)
        model.load_state_dict(load_full_weights(config, args))
    model.requires_grad_(False)
    return model.to(device=device, dtype=DTYPES[config.dtype]).eval()


def rollout_context(config: Config, tokenizer: Tokenizer, device: torch.device) -> RolloutContext:
    """What an objective's rollout reads besides the model and its examples (w2s/objectives.py)."""
    return RolloutContext(tokenizer=tokenizer, device=device, seed=config.seed, dtype=DTYPES[config.dtype],
                          starting_model=partial(frozen_starting_model, config, tokenizer, device))


# ---------------------------------------------------------------------------------------------
# The optimizer and its schedule


def build_optimizer(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW, fused (one kernel for all parameters, on CPUs and GPUs, FSDP's sharded DTensors too).
    Weight decay pulls weight matrices (and the embedding) toward zero; norm gains, which scale
    activations around 1, are left alone, as in nanoGPT and the HF Trainer."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8, fused=True)


def lr_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """Linear warmup, then cosine to zero (HF's get_cosine_schedule_with_warmup, except that the first
    step already trains at lr / warmup rather than at 0)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


# ---------------------------------------------------------------------------------------------
# The training state (w2s/checkpoint.py's TrainState: what a checkpoint saves)


def start_state(config: Config, objective: Objective, examples: list, tokenizer: Tokenizer,
                schedule: Callable[[int], float], rank: int, world_size: int, device: torch.device) -> TrainState:
    """The model with its starting weights, the objective's pass over them (if it has one), the
    optimizer and the schedule (`schedule`: step -> factor of the peak lr); then, when the run
    directory holds a checkpoint, all of it as the checkpoint left it."""
    checkpoint = latest_checkpoint(config.out)
    # A pass with the starting weights needs them, even when a checkpoint replaces them afterwards.
    model = build_model(config, tokenizer, device, world_size, rank,
                        load_weights=checkpoint is None or objective.prepare is not None)
    if objective.prepare is not None:
        source = config.init or (f"preset {config.model} seed {config.seed}" if config.from_scratch else config.model)
        line = objective.prepare(model, examples, tokenizer.pad_id, device, data_path=config.data,
                                 batch_size=config.batch_size,
                                 start=f"{model_fingerprint(source)}/{config.dtype}/{config.max_seq_len}")
        if rank == 0:
            print(line)
        if isinstance(model, FSDPModule):  # FSDP2 keeps the root's parameters gathered after a forward with
            model.reshard()  # no backward: shard them again, or the optimizer would take the gathered copies
    optimizer = build_optimizer(model, config.lr, config.weight_decay)
    state = TrainState(model, optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule))
    if checkpoint is not None:
        load_checkpoint(checkpoint, state, rank)
        if rank == 0:
            print(f"resuming {config.out} from {checkpoint} at step {state.step}")
    return state


# ---------------------------------------------------------------------------------------------
# One update


@dataclass(frozen=True)
class StepSetup:
    """What every step of a run reads and never changes: the objective's loss (its options bound),
    the examples, and how a global batch is split over ranks and micro-steps."""
    loss: Callable  # w2s/objectives.py's Loss
    examples: list
    lengths: list[int]  # each example's, for the split of a global batch
    micro_batch_size: int  # examples per process per micro-step (--batch-size)
    pad_id: int
    device: torch.device
    clip: float = 1.0
    world_size: int = 1
    rank: int = 0
    sharded: bool = False  # an FSDP2 model (build_model)
    rollout: Callable | None = None  # w2s/objectives.py's Rollout, its options and context bound
    totals: "BatchTotals | None" = None  # after a rollout: the step's, summed over ranks (else from the examples)


@dataclass(frozen=True)
class BatchTotals:
    """What a global batch sums to: its count (the loss's divisor), and the tokens it runs through the
    model and their attention squares (throughput and MFU)."""
    count: int
    tokens: int
    squares: int


def batch_totals(examples: list, indices: list[int]) -> BatchTotals:
    return BatchTotals(sum(examples[i].count for i in indices), sum(examples[i].length for i in indices),
                       sum(n * n for i in indices for n in examples[i].sequence_lengths))


def rolled_out(model: torch.nn.Module, setup: StepSetup, batch: list[int], step: int) -> StepSetup:
    """The step's setup after the objective's rollout: this rank's examples of the batch replaced by
    what the rollout made of them with the current weights, and the batch's totals summed over ranks
    (a rolled-out example's count, such as its completion tokens, is known only now). A rank with no
    examples in the batch rolls out the batch's first one, for its filler micro-step only."""
    micro_batches = split_global_batch(batch, setup.lengths, setup.world_size, setup.rank, setup.micro_batch_size)
    mine = [i for micro_batch in micro_batches for i in micro_batch] or batch[:1]
    examples = list(setup.examples)
    for i, example in zip(mine, setup.rollout(model, [examples[i] for i in mine], step)):
        examples[i] = example
    totals = batch_totals(examples, mine if micro_batches else [])
    summed = torch.tensor([totals.count, totals.tokens, totals.squares], dtype=torch.float64, device=setup.device)
    if setup.world_size > 1:
        dist.all_reduce(summed)
    return replace(setup, examples=examples, totals=BatchTotals(*(round(v) for v in summed.tolist())))


def train_step(model: torch.nn.Module, setup: StepSetup, batch: list[int]) -> tuple[torch.Tensor, dict]:
    """Forward and backward over this rank's share of one global batch (indices into the examples,
    the same on every rank); returns this rank's summed loss and metric sums (COUNT among them), on
    the device (no host sync). Every rank gets every metric name, zeros from a filler micro-step.

    Each micro-batch adds (its summed loss) / (the count of the whole global batch) to the gradient,
    so the gradients summed over micro-steps and ranks (FSDP sums them: build_model) are those of the
    mean over the global batch. Every rank runs the same number of micro-steps, since FSDP's
    collectives must match; a rank with no examples left runs a filler (any example) at weight zero.
    Only the last micro-step reduces gradients across ranks.
    """
    examples, device = setup.examples, setup.device
    mine = split_global_batch(batch, setup.lengths, setup.world_size, setup.rank, setup.micro_batch_size)
    steps = num_micro_steps(len(batch), setup.world_size, setup.micro_batch_size)
    count = (setup.totals or batch_totals(examples, batch)).count  # known before any forward: the weight needs it
    filler = [examples[(mine[0] if mine else batch)[0]]]  # one this rank has (rolled out, where there is a rollout)
    loss_sum, metric_sums = torch.zeros((), device=device), {}
    for k in range(steps):
        if setup.sharded:
            model.set_requires_gradient_sync(k == steps - 1)
        micro_batch = [examples[i] for i in mine[k]] if k < len(mine) else filler
        loss, metrics = setup.loss(model, micro_batch, setup.pad_id, device)
        weight = 1.0 / count if k < len(mine) else 0.0
        (loss * weight).backward()
        if weight:
            loss_sum += loss.detach()
        for name, value in metrics.items():
            value = torch.as_tensor(value, device=device).detach()  # a count may come as a plain int
            metric_sums[name] = metric_sums.get(name, 0) + (value if weight else torch.zeros_like(value))
    return loss_sum, metric_sums


def metric_means(names: list[str], metric_sums: dict, values: list[float], count: int) -> dict:
    """Each metric's mean over the global batch from its summed `values` (in `names` order): a sum over the
    loss's unit divided by the batch's count, or a [sum, its own count] pair divided by that count (None
    where nothing was counted); w2s/objectives.py's Loss says which a loss may return."""
    means, at = {}, 0
    for name in names:
        if metric_sums[name].numel() == 1:
            means[name] = values[at] / count
        else:
            means[name] = values[at] / values[at + 1] if values[at + 1] else None
        at += metric_sums[name].numel()
    return means


def update(state: TrainState, setup: StepSetup, batch: list[int]) -> dict:
    """One optimizer step on a global batch: the objective's rollout where it has one (`rolled_out`),
    this rank's share forward and backward (`train_step`), the loss and metrics summed over ranks and
    divided by the batch's count, gradients clipped, the step taken. Returns the step's loss, metric
    means, learning rate and gradient norm, and under "totals" the batch's BatchTotals (for StepMeter);
    raises FloatingPointError, without updating, when the loss or the gradient norm is not finite."""
    if setup.rollout is not None:
        setup = rolled_out(state.model, setup, batch, state.step + 1)
    else:  # counted once here; train_step reads it from the setup
        setup = replace(setup, totals=batch_totals(setup.examples, batch))
    totals = setup.totals
    count = totals.count
    loss_sum, metric_sums = train_step(state.model, setup, batch)
    names = sorted(metric_sums)
    sums = torch.cat([loss_sum.reshape(1), *(metric_sums[k].float().reshape(-1) for k in names)])
    if setup.world_size > 1:
        dist.all_reduce(sums)
    max_norm = setup.clip if setup.clip > 0 else float("inf")
    grad_norm = torch.nn.utils.clip_grad_norm_(state.model.parameters(), max_norm)
    grad_norm = grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor") else grad_norm
    values = torch.cat([sums, grad_norm.float().reshape(1)]).tolist()  # the step's one host sync
    loss, means, grad_norm = values[0] / count, metric_means(names, metric_sums, values[1:-1], count), values[-1]
    counted = means.pop(COUNT, 0.0) * count
    if counted != count:  # the loss summed over other positions than its examples' counts weighed
        raise RuntimeError(f"the objective's loss counted {counted:g} where its examples count {count}")
    if not (math.isfinite(loss) and math.isfinite(grad_norm)):
        raise FloatingPointError(f"loss {loss}, gradient norm {grad_norm}")
    lr = state.scheduler.get_last_lr()[0]
    state.optimizer.step()
    state.optimizer.zero_grad(set_to_none=True)
    state.scheduler.step()
    state.step += 1
    return {"loss": loss, **means, "lr": lr, "grad_norm": grad_norm, "totals": totals}


# ---------------------------------------------------------------------------------------------
# Measuring


def matmul_peak_flops(device: torch.device, dtype: torch.dtype) -> float:
    """FLOP/s of a large square matmul on this device and dtype: MFU's denominator, measured, since
    a CPU's peak depends on its cores, vector units and how many threads it gives us."""
    n = 4096 if device.type == "cuda" else 1024
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(6):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


class MFU:
    """Model FLOPs utilization: achieved training FLOP/s over the measured matmul peak.

    On a shared CPU the peak moves with the load of other processes, so a peak measured while the
    machine was busy can make a later step look faster than possible. A step above 100% therefore
    re-measures the peak (keeping the highest seen), and the result is capped at 1. It stays an
    approximation on a CPU, and is labelled so."""

    def __init__(self, device: torch.device, dtype: torch.dtype, world_size: int):
        self.device, self.dtype, self.world_size = device, dtype, world_size
        self.approximate = device.type == "cpu"
        self.peak = matmul_peak_flops(device, dtype)

    def __call__(self, flops: float, seconds: float) -> float:
        mfu = flops / seconds / (self.peak * self.world_size)
        if mfu > 1:
            self.peak = max(self.peak, matmul_peak_flops(self.device, self.dtype))
            mfu = flops / seconds / (self.peak * self.world_size)
        return min(mfu, 1.0)


def peak_memory_gb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 1024**3
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux reports KiB


class StepMeter:
    """A step's tokens/s, MFU and peak memory from its global batch's totals and its seconds; `tokens`
    counts the tokens of every step measured."""

    def __init__(self, model: Llama, device: torch.device, dtype: str, world_size: int):
        # Model FLOPs of a sequence are (a + b * length) per token (weights, then attention): two numbers.
        # Attention FLOPs thus grow with the square of each sequence's length (a pair is two sequences).
        self.flops_a = model.flops_per_token(0)
        self.flops_b = model.flops_per_token(1) - self.flops_a
        self.device, self.mfu, self.tokens = device, MFU(device, DTYPES[dtype], world_size), 0

    def __call__(self, totals: BatchTotals, seconds: float) -> dict:
        self.tokens += totals.tokens
        flops = self.flops_a * totals.tokens + self.flops_b * totals.squares
        return {"tokens_per_s": totals.tokens / seconds, "mfu": self.mfu(flops, seconds),
                "peak_memory_gb": peak_memory_gb(self.device)}
