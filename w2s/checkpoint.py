"""A training run's directory: resumable state through torch.distributed.checkpoint, the metrics
written as it goes, its settings, and the exported Hugging Face checkpoint at the end of a run.

Reading order: where checkpoints live; RNG state as JSON; `TrainState` and its save and load (model
and optimizer through DCP: each rank writes its own shards, and a checkpoint loads into any number
of processes; the rest as JSON, never pickle; a damaged checkpoint is one line naming its folder);
metrics.jsonl (`read_metrics`, `MetricsLog`: cut back to a checkpoint's step on resume); args.json;
the final export.
Everything is written into a .tmp directory and renamed when complete, so a run killed mid-save
leaves the previous one intact.
"""
import base64
import json
import os
import re
import shutil
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict, get_state_dict,
                                                     set_state_dict)

from w2s.data.jsonl import read_json_object
from w2s.cli import format_duration
from w2s.errors import UserError
from w2s.model import Llama
from w2s.tokenizer import Tokenizer


def checkpoint_dir(out: str, step: int) -> str:
    return os.path.join(out, "checkpoints", f"step_{step:06d}")


def latest_checkpoint(out: str) -> str | None:
    root = os.path.join(out, "checkpoints")
    if not os.path.isdir(root):
        return None
    done = sorted(d for d in os.listdir(root) if re.fullmatch(r"step_\d{6}", d)
                  and os.path.exists(os.path.join(root, d, "trainer_state.json")))
    return os.path.join(root, done[-1]) if done else None


def rng_state() -> dict:
    state = {"torch": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode()}
    if torch.cuda.is_available():
        state["cuda"] = base64.b64encode(torch.cuda.get_rng_state().numpy().tobytes()).decode()
    return state


def set_rng_state(state: dict) -> None:
    decode = lambda s: torch.frombuffer(bytearray(base64.b64decode(s)), dtype=torch.uint8)  # noqa: E731
    torch.set_rng_state(decode(state["torch"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(decode(state["cuda"]))


@dataclass
class TrainState:
    """What training changes, and a checkpoint saves: the model, the optimizer, its schedule, and the
    data position (optimizer steps taken: the epoch and the batch within it follow from it)."""
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    step: int = 0


def save_checkpoint(out: str, state: TrainState, data_position: dict, config: dict, keep: int, rank: int) -> None:
    """Model and optimizer shards, RNG per rank, and trainer_state.json (step, data position, scheduler,
    the run's settings) as checkpoints/step_NNNNNN; only the newest `keep` are kept."""
    step = state.step
    final = checkpoint_dir(out, step)
    tmp = final + ".tmp"
    if rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
    dist.barrier()
    model_state, optimizer_state = get_state_dict(state.model, state.optimizer)
    dcp.save({"model": model_state, "optimizer": optimizer_state}, checkpoint_id=tmp)
    with open(os.path.join(tmp, f"rng_rank{rank}.json"), "w") as f:
        json.dump(rng_state(), f)
    dist.barrier()
    if rank == 0:
        trainer_state = {"step": step, "data": data_position, "scheduler": state.scheduler.state_dict(),
                         "config": config}
        with open(os.path.join(tmp, "trainer_state.json"), "w") as f:
            json.dump(trainer_state, f, indent=2)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        root = os.path.join(out, "checkpoints")
        old = sorted(d for d in os.listdir(root) if re.fullmatch(r"step_\d{6}", d))[:-keep]
        for name in old:
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
    dist.barrier()


def load_checkpoint(path: str, state: TrainState, rank: int) -> None:
    """Restore the state (model, optimizer, scheduler, step) and this rank's RNG in place.

    A checkpoint folder whose files are damaged (a disk filled up, a file cut short or edited)
    fails whichever way DCP, JSON or torch happen to notice it; that becomes one UserError naming
    the folder and what to do, since the remedy is the same whatever broke."""
    try:
        _load_checkpoint(path, state, rank)
    except (Exception, dcp.CheckpointException) as e:  # DCP's is a BaseException, not an Exception
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        detail = lines[-1][:300] if lines else ""  # DCP's message is a rank's traceback: its last line says what
        raise UserError(f"{path}: a damaged checkpoint ({type(e).__name__}: {detail}); delete this folder to resume "
                        "from the checkpoint before it (or from the start), or use another --out") from None


def _load_checkpoint(path: str, state: TrainState, rank: int) -> None:
    model_state, optimizer_state = get_state_dict(state.model, state.optimizer)
    shards = {"model": model_state, "optimizer": optimizer_state}
    dcp.load(shards, checkpoint_id=path)
    set_state_dict(state.model, state.optimizer, model_state_dict=shards["model"], optim_state_dict=shards["optimizer"])
    trainer_state = read_json_object(os.path.join(path, "trainer_state.json"))
    state.scheduler.load_state_dict(trainer_state["scheduler"])
    rng_file = os.path.join(path, f"rng_rank{rank}.json")
    if os.path.exists(rng_file):  # absent when resuming with more processes than saved
        with open(rng_file) as f:
            set_rng_state(json.load(f))
    state.step = trainer_state["step"]


def read_metrics(path: str) -> list[dict]:
    """The rows of a metrics.jsonl file, one per optimizer step ([] when there is none yet)."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def truncate_metrics(path: str, last_step: int) -> list[dict]:
    """Keep the rows up to the checkpoint's step, so that each step appears once after a resume; returns them."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        lines = [line for line in f if line.strip()]
    kept = [(line, row) for line, row in zip(lines, map(json.loads, lines)) if row["step"] <= last_step]
    with open(path + ".tmp", "w") as f:
        f.writelines(line for line, _ in kept)
    os.replace(path + ".tmp", path)
    return [row for _, row in kept]


# What every metrics.jsonl row has (the loop's); the rest of a row is the objective's own metrics.
LOOP_KEYS = ("step", "epoch", "loss", "lr", "grad_norm", "tokens_per_s", "mfu", "peak_memory_gb", "elapsed_s", "time")


class MetricsLog:
    """DIR/metrics.jsonl, one row per optimizer step written as it goes (by rank 0), and each step's
    line on the console. A resumed run first cuts the file back to its checkpoint's step, and its
    elapsed time goes on from the last row kept; a fresh one (or one killed before its first
    checkpoint) starts the file over."""

    def __init__(self, out: str, start_step: int, total_steps: int, rank: int, run_start: float):
        self.path = os.path.join(out, "metrics.jsonl")
        self.total_steps, self.rank, self.run_start, self.elapsed_before = total_steps, rank, run_start, 0.0
        if rank == 0 and start_step > 0:
            rows = truncate_metrics(self.path, start_step)
            self.elapsed_before = rows[-1].get("elapsed_s", 0.0) if rows else 0.0
        elif rank == 0 and os.path.exists(self.path):
            os.remove(self.path)
        self.loop_start, self.start_step = time.perf_counter(), start_step

    def elapsed(self) -> float:
        """Seconds this run has taken, over all its invocations."""
        return self.elapsed_before + time.perf_counter() - self.run_start

    def write(self, row: dict, approximate_mfu: bool) -> None:
        row["elapsed_s"], row["time"] = round(self.elapsed(), 3), time.time()
        if self.rank != 0:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        step = row["step"]
        eta = (time.perf_counter() - self.loop_start) / (step - self.start_step) * (self.total_steps - step)
        # An objective's own metrics (dpo's rewards/margins, grpo's reward and kl): RL's loss says little alone.
        extra = "".join(f" | {k} {v:.4g}" for k, v in row.items() if k not in LOOP_KEYS and isinstance(v, float))
        speed = f"{row['tokens_per_s'] / 1000:.1f}k" if row["tokens_per_s"] >= 1000 else f"{row['tokens_per_s']:.0f}"
        print(f"step {step}/{self.total_steps} | loss {row['loss']:.4f}{extra} | lr {row['lr']:.2e} | "
              f"grad norm {row['grad_norm']:.2f} | {speed} tok/s | "
              f"mfu {row['mfu']:.1%}{' (approx.)' if approximate_mfu else ''} | ETA {format_duration(eta)}", flush=True)


def write_run_settings(out: str, settings: dict) -> None:
    """DIR/args.json: the resolved settings, which a rerun must match to resume (w2s/train_config.py)."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "args.json"), "w") as f:
        json.dump(settings, f, indent=2)


def export_final(model, tokenizer: Tokenizer, out: str, dtype: torch.dtype, rank: int) -> str:
    """Gather full weights and write DIR/final in the Hugging Face layout, with the tokenizer's files as they
    were read (a model fine-tuned from a pretrained checkpoint keeps its source's special tokens, chat
    template and generation_config.json)."""
    full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    final = os.path.join(out, "final")
    if rank == 0:
        with torch.device("meta"):
            export = Llama(model.args)
        export.load_state_dict({k: v.to(dtype) for k, v in full.items()}, assign=True)
        if model.args.tie_embeddings:
            export.lm_head.weight = export.embed_tokens.weight
        tmp = final + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        export.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    dist.barrier()
    return final
