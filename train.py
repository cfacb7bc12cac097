"""Supervised fine-tuning of a Llama-3 model with FSDP2: the paper's recipe, one training loop.

    python train.py --data hard_full                                  # tiny model from scratch, built-in world
    torchrun --nproc_per_node 8 train.py --model meta-llama/Meta-Llama-3-8B --data hard_full
    python train.py --data hard_full --init runs/stage1/final         # stage 2 starts from stage 1
    python train.py --data hard_full --out runs/x                     # again: resumes, or says it is done
    python train.py --objective dpo --data pairs.jsonl --init runs/stage1/final --beta 0.1   # DPO (w2s/dpo.py)
    python train.py --objective grpo --data tasks.jsonl --init runs/stage1/final --reward answer   # RL (w2s/grpo.py)

Reading order: arguments and their two recipes of defaults (resolved and checked in
w2s/train_config.py: every mistake found there is one line on stderr); `train`, the loop, top to
bottom as it runs; what a run leaves (summary, loss curve). The machinery under the loop is
w2s/training.py (the model on its devices, the optimizer and its schedule, one update) and
w2s/checkpoint.py (the run directory: checkpoints, metrics.jsonl, the exported model).

What the model learns is an objective (OBJECTIVES; the contract is w2s/objectives.py): how rows are
read, an optional pass with the starting weights, an optional rollout each step with the current
weights (GRPO's sampled completions), and a loss that sums over a micro-batch and says its count
(tokens, pairs, verdicts). The loop divides by the count of the whole global batch, so
every token weighs the same however examples fall into micro-batches and ranks; it never names an
objective.

Everything a run writes is under --out DIR: `args.json` (the resolved settings), `metrics.jsonl`
(one row per optimizer step, written as it goes), `checkpoints/step_NNNNNN/` (torch.distributed.checkpoint
shards + `trainer_state.json`), and at the end `final/` (a Hugging Face checkpoint with tokenizer files),
`summary.json` and, where matplotlib is installed, `loss.png`. Rerunning the same command resumes an
interrupted run from its last checkpoint and says a finished one is done.
"""
import argparse
import gc
import json
import math
import os
import sys
import time
from dataclasses import asdict
from functools import partial
from typing import NoReturn

import torch
import torch.distributed as dist
from torch.distributed.fsdp import FSDPModule

from w2s.batches import global_batches
from w2s.checkpoint import (MetricsLog, export_final, latest_checkpoint, read_metrics, save_checkpoint,
                            write_run_settings)
from w2s.cli import format_duration
from w2s.data.provenance import remove_outputs
from w2s.dpo import DPO
from w2s.errors import run_main
from w2s.grpo import GRPO
from w2s.model import PRESETS
from w2s.objectives import Objective
from w2s.prm import PRM
from w2s.runtime import DTYPES, init_distributed, rank_and_world
from w2s.sft import SFT
from w2s.tokenizer import Tokenizer
from w2s.train_config import (RUN_OUTPUTS, TRAIN_DTYPES, Config, build_missing_data, defaults_line, finished_run,
                              resolve_config)
from w2s.training import StepMeter, StepSetup, lr_factor, rollout_context, start_state, update

# ---------------------------------------------------------------------------------------------
# Arguments. Two recipes of defaults: the paper's when fine-tuning a checkpoint, and one that makes a
# small preset learn the built-in world in minutes on 2 CPU cores. The compute dtype follows the
# device in both (w2s/train_config.py's default_dtype): bf16 where a GPU has it, else fp32.

# He, Yin, Peng (2025): Llama-3-8B, bf16, lr 2e-5, cosine with 10% warmup, 2 epochs, per-device
# batch 2 x accumulation 8, max length 2048 (HF Trainer defaults for the rest: no weight decay).
FINETUNE_DEFAULTS = dict(lr=2e-5, warmup_ratio=0.1, epochs=2, batch_size=2, grad_accum=8, max_seq_len=2048,
                         weight_decay=0.0, save_every=500)
# From scratch, a 0.5M-parameter model wants a large learning rate and many small steps, chosen by
# trials recorded in experiments/RESULTS.md. max_seq_len None: the preset's own.
SCRATCH_DEFAULTS = dict(lr=2e-3, warmup_ratio=0.05, epochs=2, batch_size=64, grad_accum=1, max_seq_len=None,
                        weight_decay=0.0, save_every=200)

# --objective NAME -> what the model learns (each implements w2s/objectives.py's contract in its module).
OBJECTIVES: dict[str, Objective] = {objective.name: objective for objective in (SFT, DPO, PRM, GRPO)}

EPILOG = f"""
defaults (a flag overrides any of them; a run's first line says which it took and why):
  fine-tuning (--model is a HF checkpoint folder, hub id or .gguf file): {FINETUNE_DEFAULTS}
  from scratch (--model is a preset: {", ".join(PRESETS)}): {SCRATCH_DEFAULTS}
  fine-tuning a checkpoint whose maximum length is under 2048 takes its own as max_seq_len.
  both: dtype bf16 on a GPU that has it, else fp32 (on a CPU: --dtype bf16 where it has bf16 instructions);
  AdamW (0.9, 0.999; weight decay on weight matrices only), cosine to 0 after linear warmup, gradient
  clipping 1.0, seed 42.
  Global batch = batch-size x grad-accum x processes.
reruns: the same command again resumes an interrupted run from its last checkpoint, and says a
  finished one is done; other settings than DIR/args.json, or a --data file or starting weights
  that changed since (their fingerprints are in args.json), are refused (--save-every and
  --keep-checkpoints may change); --overwrite starts the run over.
metrics.jsonl: step, epoch, loss (dpo adds TRL's rewards/chosen, rewards/rejected, rewards/accuracies,
  rewards/margins, logps/chosen, logps/rejected: means over the step's pairs; grpo adds reward, accuracy,
  completion_length and cut_off, means over the step's completions, and kl and clip_fraction, means over
  their tokens), lr, grad_norm, tokens_per_s (grpo: prompts and completions through the loss's forwards),
  mfu (model FLOPs / measured matmul peak; approximate on a CPU, whose peak moves with load: re-measured
  when exceeded, capped at 1), peak memory, elapsed_s."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny", help="a preset to train from scratch, or a Hugging Face "
                        "checkpoint dir / hub id / Llama .gguf file (default tiny)")
    parser.add_argument("--data", required=True, help="training JSONL path, or a set name resolved in --data-dir "
                        "(hard_full -> data/hard_full.jsonl)")
    parser.add_argument("--data-dir", default="data", help="where set names are resolved (default data)")
    parser.add_argument("--objective", choices=OBJECTIVES, default="sft",
                        help="what the model learns from --data (default sft; " +
                             "; ".join(f"{o.name}: {o.help}" for o in OBJECTIVES.values()) + ")")
    for objective in OBJECTIVES.values():  # each objective's own settings (dpo's --beta, grpo's --group-size)
        for option in objective.options:
            parser.add_argument(f"--{option.name.replace('_', '-')}", type=type(option.default),
                                choices=option.choices or None,
                                help=f"{objective.name}: {option.help} (default {default_text(option.default)})")
    parser.add_argument("--tokenizer", help="tokenizer file or dir (default: the model's; for a preset, "
                        "tokenizer.json beside the data)")
    parser.add_argument("--init", metavar="DIR", help="start from another run's exported DIR/final (weights, "
                        "config, tokenizer), or a .gguf file")
    parser.add_argument("--out", help="run directory (default runs/<data>-<model>-seed<seed>)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out (a rerun with the same settings does so anyway)")
    parser.add_argument("--overwrite", action="store_true", help="discard the run in --out (its args.json, "
                        "metrics, checkpoints, final/, summary) and start fresh")
    add_recipe_arguments(parser)
    parser.add_argument("--activation-checkpointing", action="store_true", help="recompute each block in backward")
    parser.add_argument("--compile", action="store_true", help="torch.compile each transformer block")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                        help="default auto: cuda when torch sees a GPU, else cpu")
    return parser.parse_args(argv)


def default_text(default: float | int | str) -> str:
    return (default or "none") if isinstance(default, str) else f"{default:g}"


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags whose defaults come from a recipe (None here: w2s/train_config.py fills them in)."""
    recipe = "default: see the two recipes below"
    parser.add_argument("--max-steps", type=int, help="stop after this many optimizer steps (the schedule spans "
                        "them; default: --epochs over the data)")
    parser.add_argument("--epochs", type=int, help=f"passes over the data ({recipe})")
    parser.add_argument("--lr", type=float, help=f"peak learning rate ({recipe})")
    parser.add_argument("--warmup-ratio", type=float, help=f"share of the steps with a linear warmup ({recipe})")
    parser.add_argument("--batch-size", type=int, help=f"examples per process per micro-step ({recipe})")
    parser.add_argument("--grad-accum", type=int, help=f"micro-steps per optimizer step ({recipe})")
    parser.add_argument("--max-seq-len", type=int, help="longer examples are truncated (and counted) "
                        "(default: 2048 fine-tuning, or a shorter checkpoint's own; the preset's own from scratch)")
    parser.add_argument("--weight-decay", type=float,
                        help=f"AdamW's decoupled weight decay, weight matrices only ({recipe})")
    parser.add_argument("--clip", type=float, default=1.0, help="gradient norm clipping (default 1.0; 0 = off)")
    parser.add_argument("--seed", type=int, default=42, help="initialization and batch order (default 42)")
    parser.add_argument("--dtype", choices=TRAIN_DTYPES, help="compute dtype; weights and optimizer stay fp32 "
                        "(default: bf16 on a GPU that has it, else fp32)")
    parser.add_argument("--save-every", type=int, help=f"checkpoint every N steps, and always at the last ({recipe})")
    parser.add_argument("--keep-checkpoints", type=int, default=2, help="checkpoints kept on disk (default 2)")
    parser.add_argument("--group-by-length", action="store_true",
                        help="batch examples of similar length together: less padding for long-tailed data on GPUs, "
                             "but each batch is then one kind of example, which slowed learning in the built-in world "
                             "(experiments/RESULTS.md)")


# ---------------------------------------------------------------------------------------------
# The run


def train_command(argv: list[str] | None = None) -> str:
    """Train; returns the path of the exported DIR/final."""
    args = parse_args(argv)
    config, build_args = resolve_config(args, SCRATCH_DEFAULTS, FINETUNE_DEFAULTS)
    rank0 = rank_and_world()[0] == 0
    if args.overwrite and rank0:
        # Rank 0 alone removes; the others wait in init_distributed until it joins, so none reads the old run.
        removed = remove_outputs([os.path.join(config.out, name) for name in RUN_OUTPUTS])
        if removed:
            print(f"--overwrite: removed {', '.join(removed)}", file=sys.stderr)
    done = None if args.overwrite else finished_run(config.out)
    if done is not None:
        if rank0:
            print(f"{config.out}: already done ({done.get('steps')} steps, final loss {done.get('final_loss')}); "
                  f"the model is in {os.path.join(config.out, 'final')}. Nothing to do.")
        return os.path.join(config.out, "final")
    if rank0:
        print(defaults_line(args, config, SCRATCH_DEFAULTS, FINETUNE_DEFAULTS), flush=True)
    rank, world_size, device = init_distributed(config.device)
    try:
        final = train(config, build_args, rank, world_size, device)
        # Rank 0 writes the summary after the others are done, and a rank that tears down gloo and exits
        # while a peer still holds the group can die in the teardown (SIGABRT): every rank leaves together.
        dist.barrier()
        return final
    finally:
        # The sharded model (hooks make reference cycles) still holds the group: free it now, not at
        # interpreter exit, where gloo's threads can be torn down out of order (SIGABRT, "terminate called").
        gc.collect()
        dist.destroy_process_group()


def main(argv: list[str] | None = None) -> str:
    """train.py's command line: a bad input ends it with one line on stderr (exit status 2)."""
    return run_main(train_command, argv, "train.py")


def stop_diverged(step: int, error: FloatingPointError, out: str, rank: int) -> NoReturn:
    """A step whose loss or gradient norm is not finite took no update: stop (exit status 1), saying
    which checkpoint is the last good one."""
    if rank == 0:
        print(f"train.py: error: step {step}: {error}: training diverged, stopping without updating. The last "
              f"good checkpoint is {latest_checkpoint(out) or '(none yet)'}: rerunning the same command (or with "
              "--resume) retries from it; a lower --lr is another run's settings, so give it another --out.",
              file=sys.stderr)
    raise SystemExit(1)


def describe_run(config: Config, model: torch.nn.Module, world_size: int, device: torch.device, total_steps: int,
                 warmup_steps: int) -> str:
    sharded = f"FSDP2 over {world_size} processes" if isinstance(model, FSDPModule) else "one process"
    return (f"model {config.model}{' from ' + config.init if config.init else ''}: {model.num_params() / 1e6:.2f}M "
            f"params, {sharded}, {config.dtype} on {device.type}; {total_steps} steps of "
            f"{config.batch_size * config.grad_accum * world_size} examples ({config.batch_size} x "
            f"{config.grad_accum} accumulation x {world_size} processes), lr {config.lr:g}, warmup {warmup_steps}; "
            f"writing {config.out}")


def train(config: Config, build_args: dict | None, rank: int, world_size: int, device: torch.device) -> str:
    """The run in the order it happens: the data; the model and optimizer (or the last checkpoint's);
    each step's batch, update, metrics row and now and then a checkpoint; the exported model, the summary."""
    log = print if rank == 0 else (lambda *a, **k: None)
    run_start = time.perf_counter()
    build_missing_data(config, build_args, rank)
    objective = OBJECTIVES[config.objective]
    tokenizer = Tokenizer.from_pretrained(config.tokenizer)
    examples, report = objective.read(config.data, tokenizer, config.max_seq_len, write_cache=rank == 0)
    log(f"data {config.data}: {report['kept']} examples ({report['truncated']} truncated to {config.max_seq_len} "
        f"tokens, {report['dropped']} dropped), {report['tokens']} tokens, {report['loss_tokens']} trained on")
    lengths = [e.length for e in examples]
    global_batch_size = config.batch_size * config.grad_accum * world_size
    steps_per_epoch = math.ceil(len(examples) / global_batch_size)
    total_steps = config.max_steps or steps_per_epoch * config.epochs
    warmup_steps = max(1, round(config.warmup_ratio * total_steps))

    schedule = partial(lr_factor, warmup_steps=warmup_steps, total_steps=total_steps)
    state = start_state(config, objective, examples, tokenizer, schedule, rank, world_size, device)
    options = {option.name: getattr(config, option.name) for option in objective.options}  # dpo's beta, rpo_alpha
    rollout = None  # grpo's sampling: once per step, with the current weights
    if objective.rollout is not None:
        rollout = partial(objective.rollout, context=rollout_context(config, tokenizer, device), **options)
    setup = StepSetup(loss=partial(objective.loss, **options), examples=examples, lengths=lengths,
                      micro_batch_size=config.batch_size, pad_id=tokenizer.pad_id, device=device, clip=config.clip,
                      world_size=world_size, rank=rank, sharded=isinstance(state.model, FSDPModule), rollout=rollout)
    if rank == 0:
        write_run_settings(config.out, asdict(config))
    meter = StepMeter(state.model, device, config.dtype, world_size)
    start_step = state.step
    metrics = MetricsLog(config.out, start_step, total_steps, rank, run_start)  # cut back to the checkpoint's step
    log(describe_run(config, state.model, world_size, device, total_steps, warmup_steps))

    batches: dict[int, list[list[int]]] = {}  # the current epoch's global batches
    for step in range(start_step + 1, total_steps + 1):
        epoch, index = divmod(step - 1, steps_per_epoch)
        if epoch not in batches:
            batches = {epoch: global_batches(lengths, global_batch_size, config.seed, epoch, config.group_by_length)}
        batch, step_start = batches[epoch][index], time.perf_counter()
        try:
            row = update(state, setup, batch)
        except FloatingPointError as e:  # nothing was updated: the last checkpoint is the last good state
            stop_diverged(step, e, config.out, rank)
        work = meter(row.pop("totals"), time.perf_counter() - step_start)  # tokens/s, MFU, memory
        metrics.write({"step": step, "epoch": epoch, **row, **work}, approximate_mfu=meter.mfu.approximate)
        if step % config.save_every == 0 or step == total_steps:
            save_checkpoint(config.out, state, {"epoch": epoch, "batch_in_epoch": index + 1}, asdict(config),
                            config.keep_checkpoints, rank)
    final = export_final(state.model, tokenizer, config.out, DTYPES[config.dtype], rank)
    if rank == 0:
        write_summary(config, total_steps, start_step, meter.tokens, metrics.elapsed())
    return final


# ---------------------------------------------------------------------------------------------
# What a run leaves: summary.json (written last: its presence marks the run finished), loss.png


def write_summary(config: Config, total_steps: int, start_step: int, tokens: int, wall_s: float) -> None:
    """summary.json: always valid JSON with finite numbers. Its final loss is the last step's, as
    metrics.jsonl records it (also when this invocation trained no step: final/ rebuilt after a kill
    during export)."""
    rows = read_metrics(os.path.join(config.out, "metrics.jsonl"))
    final_loss = rows[-1].get("loss") if rows else None
    if final_loss is not None and not math.isfinite(final_loss):
        final_loss = None
    summary = {"steps": total_steps, "steps_this_invocation": total_steps - start_step,
               "tokens_this_invocation": tokens, "final_loss": final_loss, "wall_s": round(wall_s, 1),
               "torch": torch.__version__, "python": sys.version.split()[0], "final": os.path.join(config.out, "final")}
    plot = plot_loss(rows, os.path.join(config.out, "loss.png"))
    tmp = os.path.join(config.out, "summary.json.tmp")
    with open(tmp, "w") as f:
        json.dump(summary, f, indent=2, allow_nan=False)
    os.replace(tmp, os.path.join(config.out, "summary.json"))  # written whole or not at all
    loss_text = "n/a" if final_loss is None else f"{final_loss:.4f}"
    print(f"done: {total_steps} steps ({total_steps - start_step} in this run, {tokens} tokens) in "
          f"{format_duration(wall_s)}; final loss {loss_text}; torch {torch.__version__}; "
          f"model and tokenizer in {summary['final']}{'; loss curve ' + plot if plot else ''}")


def plot_loss(rows: list[dict], png_path: str) -> str | None:
    """The loss curve of metrics.jsonl's rows as a PNG, where matplotlib is installed (an optional
    dependency); its path, or None."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], linewidth=1)
    ax.set(xlabel="optimizer step", ylabel="training loss", yscale="log",
           title=os.path.basename(os.path.dirname(png_path)))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return png_path


if __name__ == "__main__":
    main()
