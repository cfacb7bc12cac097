"""Supervised fine-tuning of a Llama-3 model with FSDP2: the paper's recipe, one training loop.

    python train.py --data hard_full                                  # tiny model from scratch, built-in world
    torchrun --nproc_per_node 8 train.py --model meta-llama/Meta-Llama-3-8B --data hard_full
    python train.py --data hard_full --init runs/stage1/final         # stage 2 starts from stage 1
    python train.py --data hard_full --out runs/x                     # again: resumes, or says it is done
    python train.py --objective dpo --data pairs.jsonl --init runs/stage1/final --beta 0.1   # DPO (w2s/dpo.py)

Reading order: arguments and their defaults (resolved and checked in w2s/train_config.py: every
mistake found there is one line on stderr); the model (FSDP2) and the optimizer; the training state;
`train_step`, one global batch's forward and backward; `update`, one optimizer step; `train`, the
loop; what a run leaves (summary, loss curve).

What the model learns is an objective (OBJECTIVES; the contract is w2s/objectives.py): how rows are
read, an optional pass with the starting weights, and a loss that sums over a micro-batch and says
its count (tokens, pairs, verdicts). The loop divides by the count of the whole global batch, so
every token weighs the same however examples fall into micro-batches and ranks; it never names an
objective.

Everything a run writes is under --out DIR: `args.json` (the resolved settings), `metrics.jsonl`
(one row per optimizer step, written as it goes), `checkpoints/step_NNNNNN/` (torch.distributed.checkpoint
shards + `trainer_state.json`), and at the end `final/` (a Hugging Face checkpoint with tokenizer files),
`summary.json` and, where matplotlib is installed, `loss.png`. Rerunning the same command resumes an
interrupted run from its last checkpoint and says a finished one is done.
"""
import argparse
import json
import math
import os
import resource
import sys
import time
from dataclasses import asdict, dataclass
from functools import partial
from typing import Callable

import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard

from w2s.batches import global_batches, num_micro_steps, split_global_batch
from w2s.checkpoint import export_final, latest_checkpoint, load_checkpoint, save_checkpoint, truncate_metrics
from w2s.cli import format_duration
from w2s.data.datadir import build_builtin
from w2s.data.provenance import file_fingerprint, remove_outputs
from w2s.dpo import DPO
from w2s.errors import UserError, run_main
from w2s.gguf_checkpoint import gguf_checkpoint_folder, is_gguf_file
from w2s.hf_io import fetch_from_hub, model_fingerprint, read_hf_config
from w2s.model import PRESETS, Llama, ModelArgs
from w2s.objectives import COUNT, Objective
from w2s.prm import PRM
from w2s.runtime import DTYPES, check_tokenizer_fits, init_distributed
from w2s.sft import SFT
from w2s.tokenizer import Tokenizer
from w2s.train_config import RUN_OUTPUTS, Config, check_same_run, finished_run, resolve_config

# ---------------------------------------------------------------------------------------------
# Arguments. Two sets of defaults: the paper's recipe when fine-tuning a pretrained model, and a
# recipe that makes a small preset learn the built-in world in minutes on 2 CPU cores.

# He, Yin, Peng (2025): Llama-3-8B, bf16, lr 2e-5, cosine with 10% warmup, 2 epochs, per-device
# batch 2 x accumulation 8, max length 2048 (HF Trainer defaults for the rest: no weight decay).
FINETUNE_DEFAULTS = dict(dtype="bf16", lr=2e-5, warmup_ratio=0.1, epochs=2, batch_size=2, grad_accum=8,
                         max_seq_len=2048, weight_decay=0.0, save_every=500)
# From scratch, a 0.5M-parameter model wants a large learning rate and many small steps: lr 2e-3, 5%
# warmup, batch 64, batches drawn at random. The trials that chose them are in experiments/RESULTS.md
# ("Trials behind the defaults"): results live there, where reruns update them, not in the code.
# fp32: on a CPU, bf16 is no faster here (its attention backward is slow, see bench/RESULTS.md).
# max_seq_len None: the preset's own.
SCRATCH_DEFAULTS = dict(dtype="fp32", lr=2e-3, warmup_ratio=0.05, epochs=2, batch_size=64, grad_accum=1,
                        max_seq_len=None, weight_decay=0.0, save_every=200)
TRAIN_DTYPES = ("bf16", "fp32")

# --objective NAME -> what the model learns (each implements w2s/objectives.py's contract in its module).
OBJECTIVES: dict[str, Objective] = {objective.name: objective for objective in (SFT, DPO, PRM)}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    presets = ", ".join(PRESETS)
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"""
defaults (a flag overrides either set):
  fine-tuning (--model is a HF path or hub id): {FINETUNE_DEFAULTS}
  from scratch (--model is a preset: {presets}): {SCRATCH_DEFAULTS}
  both: AdamW (0.9, 0.999; weight decay on weight matrices only), cosine to 0 after linear warmup,
  gradient clipping 1.0, seed 42. Global batch = batch-size x grad-accum x processes.
reruns: the same command again resumes an interrupted run from its last checkpoint, and says a
  finished one is done; other settings than DIR/args.json, or a --data file or starting weights
  that changed since (their fingerprints are in args.json), are refused (--save-every and
  --keep-checkpoints may change); --overwrite starts the run over.
metrics.jsonl: step, epoch, loss (dpo adds TRL's rewards/chosen, rewards/rejected, rewards/accuracies,
  rewards/margins, logps/chosen, logps/rejected: means over the step's pairs), lr, grad_norm, tokens_per_s, mfu (model FLOPs / measured matmul peak;
  approximate on a CPU, whose peak moves with load: re-measured when exceeded, capped at 1), peak memory,
  elapsed_s.""")
    recipe = "default: see the two recipes below"
    parser.add_argument("--model", default="tiny",
                        help="a preset to train from scratch, or a Hugging Face checkpoint dir / hub id / Llama .gguf file (default tiny)")
    parser.add_argument("--data", required=True,
                        help="training JSONL path, or a set name resolved in --data-dir (hard_full -> data/hard_full.jsonl)")
    parser.add_argument("--data-dir", default="data", help="where set names are resolved (default data)")
    parser.add_argument("--objective", choices=OBJECTIVES, default="sft",
                        help="what the model learns from --data (default sft; " +
                             "; ".join(f"{o.name}: {o.help}" for o in OBJECTIVES.values()) + ")")
    for objective in OBJECTIVES.values():  # each objective's own settings (dpo's --beta, --rpo-alpha)
        for option in objective.options:
            parser.add_argument(f"--{option.name.replace('_', '-')}", type=type(option.default),
                                help=f"{objective.name}: {option.help} (default {option.default:g})")
    parser.add_argument("--tokenizer", help="tokenizer file or dir (default: the model's; for a preset, tokenizer.json beside the data)")
    parser.add_argument("--init", metavar="DIR", help="start from another run's exported DIR/final (weights, config, tokenizer), or a .gguf file")
    parser.add_argument("--out", help="run directory (default runs/<data>-<model>-seed<seed>)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out (a rerun with the same settings does so anyway)")
    parser.add_argument("--overwrite", action="store_true",
                        help="discard the run in --out (its args.json, metrics, checkpoints, final/, summary) and start fresh")
    parser.add_argument("--max-steps", type=int, help="stop after this many optimizer steps (the schedule spans them; "
                        "default: --epochs over the data)")
    parser.add_argument("--epochs", type=int, help=f"passes over the data ({recipe})")
    parser.add_argument("--lr", type=float, help=f"peak learning rate ({recipe})")
    parser.add_argument("--warmup-ratio", type=float, help=f"share of the steps with a linear warmup ({recipe})")
    parser.add_argument("--batch-size", type=int, help=f"examples per process per micro-step ({recipe})")
    parser.add_argument("--grad-accum", type=int, help=f"micro-steps per optimizer step ({recipe})")
    parser.add_argument("--max-seq-len", type=int, help="longer examples are truncated (and counted) "
                        "(default: 2048 fine-tuning, the preset's own from scratch)")
    parser.add_argument("--weight-decay", type=float, help=f"AdamW's decoupled weight decay, weight matrices only ({recipe})")
    parser.add_argument("--clip", type=float, default=1.0, help="gradient norm clipping (default 1.0; 0 = off)")
    parser.add_argument("--seed", type=int, default=42, help="initialization and batch order (default 42)")
    parser.add_argument("--dtype", choices=TRAIN_DTYPES, help="compute dtype; weights and optimizer stay fp32 "
                        "(default: bf16 fine-tuning, fp32 from scratch)")
    parser.add_argument("--save-every", type=int, help=f"checkpoint every N steps, and always at the last ({recipe})")
    parser.add_argument("--keep-checkpoints", type=int, default=2, help="checkpoints kept on disk (default 2)")
    parser.add_argument("--group-by-length", action="store_true",
                        help="batch examples of similar length together: less padding for long-tailed data on GPUs, "
                             "but each batch is then one kind of example, which slowed learning in the built-in world "
                             "(experiments/RESULTS.md)")
    parser.add_argument("--activation-checkpointing", action="store_true", help="recompute each block in backward")
    parser.add_argument("--compile", action="store_true", help="torch.compile each transformer block")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                        help="default auto: cuda when torch sees a GPU, else cpu")
    return parser.parse_args(argv)


def build_missing_data(config: Config, build_args: dict, rank: int) -> None:
    """A built-in set that is not there yet is built into its directory's world, as data_prep.py
    would build it (by rank 0; the others wait). `build_args`: w2s.data.datadir.build_builtin's."""
    if rank == 0:
        data_dir = os.path.dirname(config.data)
        print(f"{config.data} not found: building it in the built-in world of {data_dir} (as data_prep.py does)",
              flush=True)
        build_builtin(data_dir, {}, **build_args, log=lambda line: print(line, flush=True))
    dist.barrier()


# ---------------------------------------------------------------------------------------------
# The model and the optimizer


def use_fsdp(world_size: int, dtype: str) -> bool:
    """FSDP2 does two jobs here: shard weights, gradients and optimizer state across processes, and
    run bf16 compute over fp32 master weights (its MixedPrecisionPolicy). With one process in fp32
    it has neither job, so the model stays a plain module and skips FSDP's per-step hooks (measurable
    on a tiny CPU model). The math is the same either way; tests check 2 processes against 1."""
    return world_size > 1 or dtype != "fp32"


def build_model(config: Config, tokenizer: Tokenizer, device: torch.device, world_size: int, rank: int,
                load_weights: bool = True) -> Llama:
    """Build on the meta device, wrap (activation checkpointing, compile, FSDP2), allocate, then load.

    Rank 0 alone holds a full copy of the starting weights (a pretrained checkpoint, --init, or a
    fresh seeded initialization, so any number of processes starts from the same weights) and
    broadcasts them into everyone's shards. `load_weights=False` (resume) leaves them to the checkpoint.
    """
    source = config.init or (None if config.from_scratch else config.model)
    if source is not None:  # a hub id: fetch (once per machine) what the config needs; weights come later
        directory = (source if os.path.isdir(source) else gguf_checkpoint_folder(source) if is_gguf_file(source)
                     else fetch_from_hub(source, ["config.json"]))
        args = ModelArgs.from_hf_config(*read_hf_config(directory))
    else:
        args = ModelArgs.preset(config.model, vocab_size=tokenizer.vocab_size, bos_token_id=tokenizer.bos_id,
                                eos_token_id=tokenizer.eos_id)
    check_tokenizer_fits(tokenizer, args, source or config.model)
    if config.max_seq_len > args.max_seq_len:
        raise UserError(f"--max-seq-len {config.max_seq_len} exceeds the model's maximum length {args.max_seq_len}")

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
        mesh = init_device_mesh(device.type, (world_size,), mesh_dim_names=("dp",))
        # Gradients are reduced in fp32 whatever the compute dtype: a bf16 sum over many ranks loses bits.
        policy = MixedPrecisionPolicy(param_dtype=DTYPES[config.dtype], reduce_dtype=torch.float32)
        for block in model.layers:
            fully_shard(block, mesh=mesh, mp_policy=policy)
        fully_shard(model, mesh=mesh, mp_policy=policy)  # the root: embeddings, final norm, head
        # Each rank's gradient is already its share of the global mean (train_step divides by the
        # global count), so the ranks' gradients are summed, not averaged as FSDP does by default.
        # A plain SUM (not NCCL's PreMulSum by 1, which gloo lacks) does that on every backend.
        for module in model.modules():
            if isinstance(module, FSDPModule):
                module.set_gradient_divide_factor(1.0)
                module.set_force_sum_reduction_for_comms(True)
    model.to_empty(device=device)
    if args.tie_embeddings and model.lm_head.weight is not model.embed_tokens.weight:
        model.lm_head.weight = model.embed_tokens.weight  # to_empty on a plain module unties them
    model.reset_rope()  # a buffer derived from the config, not stored in checkpoints
    if load_weights:
        full = load_full_weights(config, args, source) if rank == 0 else {}
        set_model_state_dict(model, full, options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True))
    return model


def load_full_weights(config: Config, args: ModelArgs, source: str | None) -> dict[str, torch.Tensor]:
    """The starting weights as one full fp32 state dict on the CPU (rank 0 only)."""
    if source is None:
        torch.manual_seed(config.seed)
        return Llama(args).state_dict()  # Llama's own initialization on the CPU, seeded
    return Llama.from_pretrained(source, dtype=torch.float32).state_dict()


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
# The training state, and one global batch


@dataclass
class TrainState:
    """What training changes, and a checkpoint saves: the model, the optimizer, its schedule, and the
    data position (optimizer steps taken: the epoch and the batch within it follow from it)."""
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    step: int = 0


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
    count = sum(examples[i].count for i in batch)  # known before any forward: the weight needs it
    loss_sum, metric_sums = torch.zeros((), device=device), {}
    for k in range(steps):
        if setup.sharded:
            model.set_requires_gradient_sync(k == steps - 1)
        micro_batch = [examples[i] for i in mine[k]] if k < len(mine) else [examples[batch[0]]]
        loss, metrics = setup.loss(model, micro_batch, setup.pad_id, device)
        weight = 1.0 / count if k < len(mine) else 0.0
        (loss * weight).backward()
        if weight:
            loss_sum += loss.detach()
        for name, value in metrics.items():
            value = torch.as_tensor(value, device=device).detach()  # a count may come as a plain int
            metric_sums[name] = metric_sums.get(name, 0) + (value if weight else torch.zeros_like(value))
    return loss_sum, metric_sums


def update(state: TrainState, setup: StepSetup, batch: list[int]) -> dict:
    """One optimizer step on a global batch: this rank's share forward and backward (`train_step`),
    the loss and metrics summed over ranks and divided by the batch's count, gradients clipped, the
    step taken. Returns the step's loss, metric means, learning rate and gradient norm; raises
    FloatingPointError, without updating, when the loss or the gradient norm is not finite."""
    count = sum(setup.examples[i].count for i in batch)
    loss_sum, metric_sums = train_step(state.model, setup, batch)
    names = sorted(metric_sums)
    sums = torch.stack([loss_sum, *(metric_sums[k].float() for k in names)])
    if setup.world_size > 1:
        dist.all_reduce(sums)
    grad_norm = torch.nn.utils.clip_grad_norm_(state.model.parameters(), setup.clip if setup.clip > 0 else float("inf"))
    grad_norm = grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor") else grad_norm
    values = torch.cat([sums / count, grad_norm.float().reshape(1)]).tolist()  # the step's one host sync
    loss, means, grad_norm = values[0], dict(zip(names, values[1:-1])), values[-1]
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
    return {"loss": loss, **means, "lr": lr, "grad_norm": grad_norm}


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


# ---------------------------------------------------------------------------------------------


def train_command(argv: list[str] | None = None) -> str:
    """Train; returns the path of the exported DIR/final."""
    args = parse_args(argv)
    config, build_args = resolve_config(args, SCRATCH_DEFAULTS, FINETUNE_DEFAULTS)
    if args.overwrite:
        # Rank 0 alone removes; the others wait in init_distributed until it joins, so none reads the old run.
        if int(os.environ.get("RANK", 0)) == 0:
            removed = remove_outputs([os.path.join(config.out, name) for name in RUN_OUTPUTS])
            if removed:
                print(f"--overwrite: removed {', '.join(removed)}", file=sys.stderr)
    done = None if args.overwrite else finished_run(config.out)
    if done is not None:
        if int(os.environ.get("RANK", 0)) == 0:
            print(f"{config.out}: already done ({done.get('steps')} steps, final loss {done.get('final_loss')}); "
                  f"the model is in {os.path.join(config.out, 'final')}. Nothing to do.")
        return os.path.join(config.out, "final")
    rank, world_size, device = init_distributed(config.device)
    try:
        return train(config, build_args, rank, world_size, device)
    finally:
        dist.destroy_process_group()


def main(argv: list[str] | None = None) -> str:
    """train.py's command line: a bad input ends it with one line on stderr (exit status 2)."""
    return run_main(train_command, argv, "train.py")


def train(config: Config, build_args: dict | None, rank: int, world_size: int, device: torch.device) -> str:
    log = print if rank == 0 else (lambda *a, **k: None)
    run_start = time.perf_counter()
    if build_args is not None and not os.path.exists(config.data):
        build_missing_data(config, build_args, rank)
    if config.data_fingerprint is None:  # built just now: what it came from is known only now
        config.data_fingerprint = file_fingerprint(config.data)
        check_same_run(config)

    objective = OBJECTIVES[config.objective]
    tokenizer = Tokenizer.from_pretrained(config.tokenizer)
    examples, report = objective.read(config.data, tokenizer, config.max_seq_len, write_cache=rank == 0)
    log(f"data {config.data}: {report['kept']} examples ({report['truncated']} truncated to {config.max_seq_len} "
        f"tokens, {report['dropped']} dropped), {report['tokens']} tokens, {report['loss_tokens']} trained on")
    lengths = [e.length for e in examples]
    # Attention FLOPs grow with the square of each sequence's length; a pair is two sequences.
    squares = [sum(n * n for n in e.sequence_lengths) for e in examples]

    global_batch_size = config.batch_size * config.grad_accum * world_size
    steps_per_epoch = math.ceil(len(examples) / global_batch_size)
    total_steps = config.max_steps or steps_per_epoch * config.epochs
    warmup_steps = max(1, round(config.warmup_ratio * total_steps))

    checkpoint = latest_checkpoint(config.out)
    state = start_state(config, objective, examples, tokenizer, checkpoint, total_steps, warmup_steps,
                        world_size, rank, device, log)
    sharded = isinstance(state.model, FSDPModule)
    options = {option.name: getattr(config, option.name) for option in objective.options}  # dpo's beta
    setup = StepSetup(partial(objective.loss, **options), examples, lengths, config.batch_size, tokenizer.pad_id,
                      device, config.clip, world_size, rank, sharded)
    # Model FLOPs of a sequence are (a + b * length) per token (weights, then attention): two numbers.
    flops_a, flops_b = state.model.flops_per_token(0), state.model.flops_per_token(1) - state.model.flops_per_token(0)

    os.makedirs(config.out, exist_ok=True)
    metrics_path = os.path.join(config.out, "metrics.jsonl")
    start_step, elapsed_before = state.step, 0.0
    if rank == 0:
        if checkpoint is not None:
            truncate_metrics(metrics_path, start_step)
            with open(metrics_path) as f:
                rows = [json.loads(line) for line in f if line.strip()]
            elapsed_before = rows[-1].get("elapsed_s", 0.0) if rows else 0.0
        elif os.path.exists(metrics_path):
            os.remove(metrics_path)  # killed before its first checkpoint: the rows will be rewritten
        with open(os.path.join(config.out, "args.json"), "w") as f:
            json.dump(asdict(config), f, indent=2)
    mfu = MFU(device, DTYPES[config.dtype], world_size)
    log(f"model {config.model}{' from ' + config.init if config.init else ''}: {state.model.num_params() / 1e6:.2f}M params, "
        f"{'FSDP2 over ' + str(world_size) + ' processes' if sharded else 'one process'}, {config.dtype} on {device.type}; "
        f"{total_steps} steps of {global_batch_size} examples ({config.batch_size} x {config.grad_accum} accumulation x "
        f"{world_size} processes), lr {config.lr:g}, warmup {warmup_steps}; writing {config.out}")

    batches_by_epoch: dict[int, list[list[int]]] = {}
    metrics_file = open(metrics_path, "a") if rank == 0 else None
    loop_start, loop_start_step = time.perf_counter(), start_step
    loss, tokens_seen = float("nan"), 0
    try:
        for step in range(start_step + 1, total_steps + 1):
            epoch, index = divmod(step - 1, steps_per_epoch)
            if epoch not in batches_by_epoch:
                batches_by_epoch = {epoch: global_batches(lengths, global_batch_size, config.seed, epoch,
                                                          config.group_by_length)}
            batch = batches_by_epoch[epoch][index]
            step_start = time.perf_counter()
            try:
                row = update(state, setup, batch)
            except FloatingPointError as e:
                raise FloatingPointError(
                    f"step {step}: {e}: training diverged, stopping without updating. The last good checkpoint is "
                    f"{latest_checkpoint(config.out) or '(none yet)'}: rerunning the same command (or with --resume) "
                    "retries from it; a lower --lr is another run's settings, so give it another --out.") from None
            seconds = time.perf_counter() - step_start
            tokens = sum(lengths[i] for i in batch)
            tokens_seen += tokens
            flops = flops_a * tokens + flops_b * sum(squares[i] for i in batch)
            loss, lr, grad_norm = row["loss"], row["lr"], row["grad_norm"]
            row = {"step": step, "epoch": epoch, **row, "tokens_per_s": tokens / seconds, "mfu": mfu(flops, seconds),
                   "peak_memory_gb": peak_memory_gb(device),
                   "elapsed_s": round(elapsed_before + time.perf_counter() - run_start, 3), "time": time.time()}
            if rank == 0:
                metrics_file.write(json.dumps(row) + "\n")
                metrics_file.flush()
                eta = (time.perf_counter() - loop_start) / (step - loop_start_step) * (total_steps - step)
                log(f"step {step}/{total_steps} | loss {loss:.4f} | lr {lr:.2e} | grad norm {grad_norm:.2f} | "
                    f"{row['tokens_per_s'] / 1000:.1f}k tok/s | mfu {row['mfu']:.1%}{' (approx.)' if mfu.approximate else ''} "
                    f"| ETA {format_duration(eta)}", flush=True)
            if step % config.save_every == 0 or step == total_steps:
                save_checkpoint(config.out, step, state.model, state.optimizer, state.scheduler,
                                {"epoch": epoch, "batch_in_epoch": index + 1}, asdict(config), config.keep_checkpoints, rank)
    except FloatingPointError as e:
        if rank == 0:
            print(f"train.py: error: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        if metrics_file is not None:
            metrics_file.close()
    final = export_final(state.model, tokenizer, config.out, DTYPES[config.dtype], rank)
    if rank == 0:
        write_summary(config, total_steps, start_step, tokens_seen, loss, elapsed_before + time.perf_counter() - run_start)
    return final


def start_state(config: Config, objective: Objective, examples: list, tokenizer: Tokenizer, checkpoint: str | None,
                total_steps: int, warmup_steps: int, world_size: int, rank: int, device: torch.device,
                log: Callable) -> TrainState:
    """The model with its starting weights, the objective's pass over them (if it has one), the
    optimizer and the schedule; then, for a resumed run, all of it as the checkpoint left it."""
    # A pass with the starting weights needs them, even when a checkpoint replaces them afterwards.
    model = build_model(config, tokenizer, device, world_size, rank,
                        load_weights=checkpoint is None or objective.prepare is not None)
    if objective.prepare is not None:
        source = config.init or (f"preset {config.model} seed {config.seed}" if config.from_scratch else config.model)
        log(objective.prepare(model, examples, tokenizer.pad_id, device, data_path=config.data,
                              batch_size=config.batch_size,
                              start=f"{model_fingerprint(source)}/{config.dtype}/{config.max_seq_len}"))
        if isinstance(model, FSDPModule):  # FSDP2 keeps the root's parameters gathered after a forward with
            model.reshard()  # no backward: shard them again, or the optimizer would take the gathered copies
    optimizer = build_optimizer(model, config.lr, config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, partial(lr_factor, warmup_steps=warmup_steps, total_steps=total_steps))
    state = TrainState(model, optimizer, scheduler)
    if checkpoint is not None:
        state.step = load_checkpoint(checkpoint, model, optimizer, scheduler, rank)["step"]
        log(f"resuming {config.out} from {checkpoint} at step {state.step}")
    return state


# ---------------------------------------------------------------------------------------------
# What a run leaves: summary.json (written last: its presence marks the run finished), loss.png


def last_logged_loss(metrics_path: str) -> float | None:
    """The loss of the last step metrics.jsonl records (a rerun that only rebuilds final/ trains no step)."""
    if not os.path.exists(metrics_path):
        return None
    with open(metrics_path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return rows[-1].get("loss") if rows else None


def write_summary(config: Config, total_steps: int, start_step: int, tokens: int, final_loss: float,
                  wall_s: float) -> None:
    """summary.json: always valid JSON with finite numbers. Its final loss is the last step's, from
    metrics.jsonl when this invocation trained no step (final/ rebuilt after a kill during export)."""
    if start_step >= total_steps or not math.isfinite(final_loss):
        final_loss = last_logged_loss(os.path.join(config.out, "metrics.jsonl"))
    if final_loss is not None and not math.isfinite(final_loss):
        final_loss = None
    summary = {"steps": total_steps, "steps_this_invocation": total_steps - start_step,
               "tokens_this_invocation": tokens, "final_loss": final_loss, "wall_s": round(wall_s, 1),
               "torch": torch.__version__, "python": sys.version.split()[0], "final": os.path.join(config.out, "final")}
    plot = plot_loss(os.path.join(config.out, "metrics.jsonl"), os.path.join(config.out, "loss.png"))
    tmp = os.path.join(config.out, "summary.json.tmp")
    with open(tmp, "w") as f:
        json.dump(summary, f, indent=2, allow_nan=False)
    os.replace(tmp, os.path.join(config.out, "summary.json"))  # written whole or not at all
    loss_text = "n/a" if final_loss is None else f"{final_loss:.4f}"
    print(f"done: {total_steps} steps ({total_steps - start_step} in this run, {tokens} tokens) in "
          f"{format_duration(wall_s)}; final loss {loss_text}; torch {torch.__version__}; "
          f"model and tokenizer in {summary['final']}{'; loss curve ' + plot if plot else ''}")


def plot_loss(metrics_path: str, png_path: str) -> str | None:
    """The loss curve as a PNG, where matplotlib is installed (an optional dependency); its path, or None."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    with open(metrics_path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], linewidth=1)
    ax.set(xlabel="optimizer step", ylabel="training loss", yscale="log", title=os.path.basename(os.path.dirname(png_path)))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return png_path


if __name__ == "__main__":
    main()
