"""Supervised fine-tuning of a Llama-3 model with FSDP2: the paper's recipe, in one file.

    python train.py --data hard_full                                  # tiny model from scratch, built-in world
    torchrun --nproc_per_node 8 train.py --model meta-llama/Meta-Llama-3-8B --data hard_full
    python train.py --data hard_full --init runs/stage1/final         # stage 2 starts from stage 1
    python train.py --data hard_full --out runs/x --resume            # continue a killed run exactly

Reading order: arguments and their defaults; the process group and the model (FSDP2); the data;
the loss; checkpoints; the training loop in `main`.

Everything a run writes is under --out DIR: `args.json` (the resolved settings), `metrics.jsonl`
(one row per optimizer step, written as it goes), `checkpoints/step_NNNNNN/` (torch.distributed.checkpoint
shards + `trainer_state.json`), and at the end `final/`, a Hugging Face checkpoint with tokenizer files.
"""
import argparse
import base64
import hashlib
import json
import math
import os
import re
import resource
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from functools import partial

import numpy as np
import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
import torch.nn.functional as F
from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict, get_state_dict,
                                                     set_model_state_dict, set_state_dict)
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard

from w2s.data import (IGNORE_INDEX, TokenizedExample, collate, global_batches, load_sft_examples,
                      split_global_batch, tokenize_sft)
import w2s.data
import w2s.tokenizer
from w2s.model import PRESETS, Llama, ModelArgs
from w2s.tokenizer import Tokenizer, is_hub_id

# ---------------------------------------------------------------------------------------------
# Arguments. Two sets of defaults: the paper's recipe when fine-tuning a pretrained model, and a
# recipe that makes a small preset learn the built-in world in minutes on 2 CPU cores.

# He, Yin, Peng (2025): Llama-3-8B, bf16, lr 2e-5, cosine with 10% warmup, 2 epochs, per-device
# batch 2 x accumulation 8, max length 2048 (HF Trainer defaults for the rest: no weight decay).
FINETUNE_DEFAULTS = dict(dtype="bf16", lr=2e-5, warmup_ratio=0.1, epochs=2, batch_size=2, grad_accum=8,
                         max_seq_len=2048, weight_decay=0.0, save_every=500)
# From scratch, a 0.5M-parameter model wants a large learning rate and many small steps: lr 3e-3,
# 5% warmup, batch 64, as in the trial in issue 7's notes. Measured with these defaults on hard_full
# (30k examples, 2 epochs = 938 steps, 23 min on a loaded 2-core machine): assistant-token loss 0.30,
# answers in the right format but only 5% correct on the test set, so a study wants more steps
# (--epochs / --max-steps). fp32: on a CPU, bf16 is no faster here (its attention backward is slow,
# see bench/RESULTS.md). max_seq_len None: the preset's own.
SCRATCH_DEFAULTS = dict(dtype="fp32", lr=3e-3, warmup_ratio=0.05, epochs=2, batch_size=64, grad_accum=1,
                        max_seq_len=None, weight_decay=0.0, save_every=200)
DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}


class UsageError(Exception):
    """A bad argument or missing input, found before any process-group work."""


@dataclass
class Config:
    """The resolved settings of a run (written to DIR/args.json; --resume checks they are unchanged)."""
    model: str
    from_scratch: bool
    data: str  # path of the SFT JSONL file
    tokenizer: str  # file or directory the tokenizer is loaded from
    init: str | None
    out: str
    dtype: str
    lr: float
    warmup_ratio: float
    epochs: int
    max_steps: int | None
    batch_size: int  # per process, per micro-step
    grad_accum: int
    max_seq_len: int
    weight_decay: float
    clip: float
    seed: int
    save_every: int
    keep_checkpoints: int
    group_by_length: bool
    activation_checkpointing: bool
    compile: bool
    device: str


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    presets = ", ".join(PRESETS)
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"""
defaults (a flag overrides either set):
  fine-tuning (--model is a HF path or hub id): {FINETUNE_DEFAULTS}
  from scratch (--model is a preset: {presets}): {SCRATCH_DEFAULTS}
  both: AdamW (0.9, 0.999), cosine to 0 after linear warmup, gradient clipping 1.0, seed 42.
  Global batch = batch-size x grad-accum x processes.""")
    parser.add_argument("--model", default="tiny",
                        help="a preset to train from scratch, or a Hugging Face checkpoint dir / hub id (default tiny)")
    parser.add_argument("--data", required=True,
                        help="SFT JSONL path, or a set name resolved in --data-dir (hard_full -> data/hard_full.jsonl)")
    parser.add_argument("--data-dir", default="data", help="where set names are resolved (default data)")
    parser.add_argument("--tokenizer", help="tokenizer file or dir (default: the model's; for a preset, tokenizer.json beside the data)")
    parser.add_argument("--init", metavar="DIR", help="start from another run's exported DIR/final (weights, config, tokenizer)")
    parser.add_argument("--out", help="run directory (default runs/<data>-<model>-seed<seed>)")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    parser.add_argument("--max-steps", type=int, help="stop after this many optimizer steps (the schedule spans them)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--warmup-ratio", type=float)
    parser.add_argument("--batch-size", type=int, help="examples per process per micro-step")
    parser.add_argument("--grad-accum", type=int, help="micro-steps per optimizer step")
    parser.add_argument("--max-seq-len", type=int, help="longer examples are truncated (and counted)")
    parser.add_argument("--weight-decay", type=float)
    parser.add_argument("--clip", type=float, default=1.0, help="gradient norm clipping (default 1.0; 0 = off)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--dtype", choices=DTYPES, help="compute dtype; weights and optimizer stay fp32")
    parser.add_argument("--save-every", type=int, help="checkpoint every N steps (and always at the last)")
    parser.add_argument("--keep-checkpoints", type=int, default=2, help="checkpoints kept on disk (default 2)")
    parser.add_argument("--group-by-length", action="store_true",
                        help="batch examples of similar length together: less padding for long-tailed data on GPUs, "
                             "but each batch is then one kind of example, which slowed learning 3x in the built-in world")
    parser.add_argument("--activation-checkpointing", action="store_true", help="recompute each block in backward")
    parser.add_argument("--compile", action="store_true", help="torch.compile each transformer block")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    return parser.parse_args(argv)


def resolve_data_path(data: str, data_dir: str) -> tuple[str, list[str] | None]:
    """(path, data_prep arguments that build it if it is a missing built-in set, else None)."""
    if data.endswith(".jsonl") or os.sep in data or os.path.exists(data):
        return data, None
    path = os.path.join(data_dir, data + ".jsonl")
    if os.path.exists(path):
        return path, None
    import data_prep

    return path, data_prep.builtin_set_args(data)


def resolve_config(args: argparse.Namespace) -> tuple[Config, list[str] | None]:
    """Check every argument and input file; fill in the defaults. Raises UsageError saying what to run."""
    from_scratch = args.model in PRESETS
    if not from_scratch and not (os.path.isdir(args.model) or is_hub_id(args.model)):
        raise UsageError(f"--model {args.model!r} is neither a preset ({', '.join(PRESETS)}), "
                         "a checkpoint directory, nor a hub id like meta-llama/Meta-Llama-3-8B")
    defaults = SCRATCH_DEFAULTS if from_scratch else FINETUNE_DEFAULTS
    pick = {k: getattr(args, k) if getattr(args, k, None) is not None else v for k, v in defaults.items()}
    if pick["max_seq_len"] is None:
        pick["max_seq_len"] = PRESETS[args.model].get("max_seq_len", 8192)
    for name in ("epochs", "batch_size", "grad_accum", "max_seq_len", "save_every", "keep_checkpoints"):
        value = pick[name] if name in pick else getattr(args, name)
        if value < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if args.max_steps is not None and args.max_steps < 1:
        raise UsageError(f"--max-steps must be at least 1, got {args.max_steps}")
    if not pick["lr"] > 0 or not 0 <= pick["warmup_ratio"] < 1 or args.clip < 0 or pick["weight_decay"] < 0:
        raise UsageError("need --lr > 0, 0 <= --warmup-ratio < 1, --clip >= 0, --weight-decay >= 0")
    if pick["max_seq_len"] < 2:
        raise UsageError(f"--max-seq-len must be at least 2, got {pick['max_seq_len']}")
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda, but torch sees no GPU (torch.cuda.is_available() is False)")

    data_path, build_args = resolve_data_path(args.data, args.data_dir)
    if not os.path.exists(data_path) and build_args is None:
        raise UsageError(f"--data {args.data}: {data_path} not found. Build the data first "
                         f"(python data_prep.py --out {args.data_dir}; --help lists the set names) or pass a JSONL path")

    if args.init is not None:
        for name in ("config.json", "tokenizer.json"):
            if not os.path.exists(os.path.join(args.init, name)):
                raise UsageError(f"--init {args.init}: no {name}; pass another run's exported DIR/final")
        if from_scratch:
            with open(os.path.join(args.init, "config.json")) as f:
                init_args = ModelArgs.from_hf_config(json.load(f), source=os.path.join(args.init, "config.json"))
            preset = ModelArgs.preset(args.model)
            shape = ("dim", "n_layers", "n_heads", "n_kv_heads", "ffn_dim")
            if any(getattr(init_args, k) != getattr(preset, k) for k in shape):
                raise UsageError(f"--init {args.init} is not a {args.model!r} model "
                                 f"({', '.join(f'{k}={getattr(init_args, k)}' for k in shape)}); pass its --model")
    if args.tokenizer and not os.path.exists(args.tokenizer) and not is_hub_id(args.tokenizer):
        raise UsageError(f"--tokenizer {args.tokenizer}: no such file or directory")
    tokenizer = args.tokenizer or args.init or (os.path.join(os.path.dirname(data_path) or ".", "tokenizer.json")
                                                if from_scratch else args.model)
    if from_scratch and not os.path.exists(tokenizer) and build_args is None:
        raise UsageError(f"no tokenizer at {tokenizer}: a preset trains with the tokenizer beside its data "
                         "(python data_prep.py writes data/tokenizer.json) or one given with --tokenizer")
    if from_scratch and args.init is None and pick["max_seq_len"] > PRESETS[args.model].get("max_seq_len", 8192):
        raise UsageError(f"--max-seq-len {pick['max_seq_len']} exceeds the {args.model} preset's "
                         f"{PRESETS[args.model]['max_seq_len']}")

    model_name = os.path.basename(os.path.normpath(args.model))
    data_name = os.path.basename(data_path).removesuffix(".jsonl")
    out = args.out or os.path.join("runs", f"{data_name}-{model_name}-seed{args.seed}")
    if not args.resume and os.path.exists(os.path.join(out, "metrics.jsonl")):
        raise UsageError(f"{out} already holds a run: add --resume to continue it, or pick another --out")
    config = Config(model=args.model, from_scratch=from_scratch, data=data_path, tokenizer=tokenizer, init=args.init,
                    out=out, dtype=pick["dtype"], lr=pick["lr"], warmup_ratio=pick["warmup_ratio"],
                    epochs=pick["epochs"], max_steps=args.max_steps, batch_size=pick["batch_size"],
                    grad_accum=pick["grad_accum"], max_seq_len=pick["max_seq_len"],
                    weight_decay=pick["weight_decay"], clip=args.clip, seed=args.seed, save_every=pick["save_every"],
                    keep_checkpoints=args.keep_checkpoints, group_by_length=args.group_by_length,
                    activation_checkpointing=args.activation_checkpointing,
                    compile=args.compile, device=device)
    if args.resume and os.path.exists(os.path.join(out, "args.json")):
        with open(os.path.join(out, "args.json")) as f:
            saved = json.load(f)
        changed = [k for k, v in asdict(config).items() if k not in ("save_every", "keep_checkpoints") and saved.get(k) != v]
        if changed:
            raise UsageError(f"--resume with other settings than {out}/args.json: {', '.join(changed)} differ; "
                             "resume with the same arguments")
    return config, build_args


# ---------------------------------------------------------------------------------------------
# Processes, devices and the model


def init_distributed(device_type: str) -> tuple[int, int, torch.device]:
    """Join the process group torchrun describes in the environment, or make a group of one."""
    backend = "nccl" if device_type == "cuda" else "gloo"
    if "RANK" in os.environ:  # torchrun
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        device = torch.device("cuda", local_rank) if device_type == "cuda" else torch.device("cpu")
        if device_type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend, device_id=device if device_type == "cuda" else None)
    else:  # plain `python train.py`: an in-memory store, no ports to pick
        device = torch.device("cuda", 0) if device_type == "cuda" else torch.device("cpu")
        dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)
    return dist.get_rank(), dist.get_world_size(), device


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
    if source is not None:
        if os.path.isdir(source):
            config_path = os.path.join(source, "config.json")
        else:  # a hub id: fetch (once per machine) what the config needs; weights come in load_full_weights
            from huggingface_hub import hf_hub_download

            config_path = hf_hub_download(source, "config.json")
        with open(config_path) as f:
            args = ModelArgs.from_hf_config(json.load(f), source=config_path)
    else:
        args = ModelArgs.preset(config.model, vocab_size=tokenizer.vocab_size, bos_token_id=tokenizer.bos_id,
                                eos_token_id=tokenizer.eos_id)
    if tokenizer.vocab_size > args.vocab_size:
        raise ValueError(f"tokenizer {config.tokenizer} has {tokenizer.vocab_size} tokens, the model only {args.vocab_size}")
    if config.max_seq_len > args.max_seq_len:
        raise ValueError(f"--max-seq-len {config.max_seq_len} exceeds the model's maximum length {args.max_seq_len}")

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


def export_final(model, tokenizer: Tokenizer, config: Config, rank: int) -> str:
    """Gather full weights and write DIR/final in the Hugging Face layout, with the tokenizer files."""
    full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    final = os.path.join(config.out, "final")
    if rank == 0:
        with torch.device("meta"):
            export = Llama(model.args)
        export.load_state_dict({k: v.to(DTYPES[config.dtype]) for k, v in full.items()}, assign=True)
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


# ---------------------------------------------------------------------------------------------
# Data: tokenized once per (file, tokenizer, max length), then cached beside the file. Tokenizing
# 30k examples takes longer than a short from-scratch run's first hundred steps, and a study trains
# on the same file many times (seeds, stages). The cache holds plain int arrays (.npz, no pickle).


def load_tokenized(data_path: str, tokenizer: Tokenizer, max_seq_len: int,
                   write_cache: bool = True) -> tuple[list[TokenizedExample], dict]:
    stat = os.stat(data_path)
    key = hashlib.sha256(json.dumps([stat.st_size, stat.st_mtime_ns, max_seq_len]).encode())
    key.update(tokenizer.raw.to_str().encode())
    for module in (w2s.data, w2s.tokenizer):  # the code that tokenizes: a change there is a new cache
        with open(module.__file__, "rb") as f:
            key.update(f.read())
    cache = os.path.join(os.path.dirname(data_path) or ".", ".cache",
                         f"{os.path.basename(data_path)}.{key.hexdigest()[:16]}.npz")
    if os.path.exists(cache):
        with np.load(cache, allow_pickle=False) as arrays:
            ids, labels, offsets = arrays["input_ids"].tolist(), arrays["labels"].tolist(), arrays["offsets"].tolist()
            report = json.loads(arrays["report"].tobytes())
        examples = [TokenizedExample(ids[a:b], labels[a:b]) for a, b in zip(offsets, offsets[1:])]
        return examples, report
    examples, report = tokenize_sft(load_sft_examples(data_path), tokenizer, max_seq_len, overflow="truncate")
    if write_cache:
        try:
            os.makedirs(os.path.dirname(cache), exist_ok=True)
            tmp = cache + f".{os.getpid()}.tmp.npz"
            np.savez(tmp, input_ids=np.array([t for e in examples for t in e.input_ids], dtype=np.int32),
                     labels=np.array([t for e in examples for t in e.labels], dtype=np.int32),
                     offsets=np.cumsum([0] + [len(e.input_ids) for e in examples], dtype=np.int64),
                     report=np.frombuffer(json.dumps(report).encode(), dtype=np.uint8))
            os.replace(tmp, cache)
        except OSError as e:  # a read-only data directory: just no cache
            print(f"not caching tokenized data at {cache}: {e}", file=sys.stderr)
    return examples, report


# ---------------------------------------------------------------------------------------------
# The learning-rate schedule: linear warmup, then cosine to zero (HF's get_cosine_schedule_with_warmup,
# except that the first step already trains at lr / warmup rather than at 0).


def lr_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


# ---------------------------------------------------------------------------------------------
# The loss: a mean over all assistant tokens of the global batch


def train_step(model, examples, micro_batches: list[list[int]], num_micro_steps: int, num_targets: int,
               pad_id: int, device: torch.device, sharded: bool) -> tuple[float, int, float]:
    """Forward and backward over this rank's micro-batches of one global batch; returns this rank's
    (sum of token losses, tokens seen, model FLOPs).

    Each micro-batch adds (sum of its token losses) / (target tokens in the whole global batch) to
    the gradient, so after the last micro-step of every rank the summed gradient is that of the mean
    over all the global batch's assistant tokens: long and short examples weigh per token, however
    they fall into micro-batches and ranks. Every rank can count the global targets itself (all
    ranks know the whole global batch), so no collective is needed for it. Every rank runs the
    same number of micro-steps (FSDP's collectives must match), a zero-weight one where it has no
    examples left; only the last micro-step reduces gradients across ranks. FSDP averages the ranks'
    gradients, and ours must be summed (each is already divided by the global count), hence the
    factor world_size.
    """
    scale = (dist.get_world_size() if sharded else 1) / num_targets
    loss_sum, tokens, flops = 0.0, 0, 0.0
    for k in range(num_micro_steps):
        if sharded:
            model.set_requires_gradient_sync(k == num_micro_steps - 1)
        if k < len(micro_batches):
            input_ids, labels = collate([examples[i] for i in micro_batches[k]], pad_id)
            weight = scale
        else:
            input_ids = labels = torch.full((1, 2), pad_id)
            weight = 0.0
        input_ids, labels = input_ids.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        logits = model(input_ids)
        # Position t predicts token t+1: shift the labels left (not the logits, which would copy them),
        # the last position predicting nothing. The loss is computed in fp32 whatever the compute dtype.
        targets = F.pad(labels[:, 1:], (0, 1), value=IGNORE_INDEX)
        token_losses = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(),
                                       ignore_index=IGNORE_INDEX, reduction="sum")
        (token_losses * weight).backward()
        if weight:
            loss_sum += token_losses.item()
            real = sum(len(examples[i].input_ids) for i in micro_batches[k])
            tokens += real
            flops += real * model.flops_per_token(input_ids.shape[1])
    return loss_sum, tokens, flops


# ---------------------------------------------------------------------------------------------
# Checkpoints: model and optimizer through torch.distributed.checkpoint (each rank writes its own
# shards; a checkpoint loads into any number of processes), the rest as JSON. Written into a .tmp
# directory and renamed when complete, so a run killed mid-save leaves the previous one intact.


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


def save_checkpoint(config: Config, step: int, model, optimizer, scheduler, data_position: dict, rank: int) -> None:
    final = checkpoint_dir(config.out, step)
    tmp = final + ".tmp"
    if rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
    dist.barrier()
    model_state, optimizer_state = get_state_dict(model, optimizer)
    dcp.save({"model": model_state, "optimizer": optimizer_state}, checkpoint_id=tmp)
    with open(os.path.join(tmp, f"rng_rank{rank}.json"), "w") as f:
        json.dump(rng_state(), f)
    dist.barrier()
    if rank == 0:
        state = {"step": step, "data": data_position, "scheduler": scheduler.state_dict(), "config": asdict(config)}
        with open(os.path.join(tmp, "trainer_state.json"), "w") as f:
            json.dump(state, f, indent=2)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        root = os.path.join(config.out, "checkpoints")
        old = sorted(d for d in os.listdir(root) if re.fullmatch(r"step_\d{6}", d))[:-config.keep_checkpoints]
        for name in old:
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
    dist.barrier()


def load_checkpoint(path: str, model, optimizer, scheduler, rank: int) -> dict:
    """Restore model, optimizer, scheduler and RNG in place; returns trainer_state.json."""
    model_state, optimizer_state = get_state_dict(model, optimizer)
    state = {"model": model_state, "optimizer": optimizer_state}
    dcp.load(state, checkpoint_id=path)
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"])
    with open(os.path.join(path, "trainer_state.json")) as f:
        trainer_state = json.load(f)
    scheduler.load_state_dict(trainer_state["scheduler"])
    rng_file = os.path.join(path, f"rng_rank{rank}.json")
    if os.path.exists(rng_file):  # absent when resuming with more processes than saved
        with open(rng_file) as f:
            set_rng_state(json.load(f))
    return trainer_state


def truncate_metrics(path: str, last_step: int) -> None:
    """Keep the rows up to the checkpoint's step, so that each step appears once after a resume."""
    if not os.path.exists(path):
        return
    with open(path) as f:
        rows = [line for line in f if line.strip() and json.loads(line)["step"] <= last_step]
    with open(path + ".tmp", "w") as f:
        f.writelines(rows)
    os.replace(path + ".tmp", path)


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


def peak_memory_gb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 1024**3
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux reports KiB


def format_duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> str:
    """Train; returns the path of the exported DIR/final."""
    args = parse_args(argv)
    env_rank = int(os.environ.get("RANK", 0))
    try:
        config, build_args = resolve_config(args)
    except UsageError as e:
        if env_rank == 0:
            print(f"train.py: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None

    rank, world_size, device = init_distributed(config.device)
    try:
        return train(config, build_args, args.resume, rank, world_size, device)
    finally:
        dist.destroy_process_group()


def train(config: Config, build_args: list[str] | None, resume: bool, rank: int, world_size: int,
          device: torch.device) -> str:
    log = print if rank == 0 else (lambda *a, **k: None)
    if build_args is not None and not os.path.exists(config.data):
        if rank == 0:
            import data_prep

            log(f"{config.data} not found: building it (python data_prep.py --out {os.path.dirname(config.data)} "
                f"{' '.join(build_args)})")
            data_prep.main(["--out", os.path.dirname(config.data)] + build_args)
        dist.barrier()

    tokenizer = Tokenizer.from_pretrained(config.tokenizer)
    examples, report = load_tokenized(config.data, tokenizer, config.max_seq_len, write_cache=rank == 0)
    log(f"data {config.data}: {report['kept']} examples ({report['truncated']} truncated to {config.max_seq_len} "
        f"tokens, {report['dropped']} dropped), {report['tokens']} tokens, {report['assistant_tokens']} trained on")
    lengths = [len(e.input_ids) for e in examples]

    global_batch_size = config.batch_size * config.grad_accum * world_size
    steps_per_epoch = math.ceil(len(examples) / global_batch_size)
    total_steps = config.max_steps or steps_per_epoch * config.epochs
    warmup_steps = max(1, round(config.warmup_ratio * total_steps))

    checkpoint = latest_checkpoint(config.out) if resume else None
    model = build_model(config, tokenizer, device, world_size, rank, load_weights=checkpoint is None)
    sharded = isinstance(model, FSDPModule)
    # fused: one kernel for all parameters (CPU and CUDA); foreach is the fallback for DTensor shards.
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=(0.9, 0.999), eps=1e-8,
                                  weight_decay=config.weight_decay, fused=not sharded)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, partial(lr_factor, warmup_steps=warmup_steps, total_steps=total_steps))

    os.makedirs(config.out, exist_ok=True)
    metrics_path = os.path.join(config.out, "metrics.jsonl")
    start_step = 0
    if checkpoint is not None:
        start_step = load_checkpoint(checkpoint, model, optimizer, scheduler, rank)["step"]
        log(f"resumed from {checkpoint} at step {start_step}")
    elif resume:
        log(f"--resume: no checkpoint in {config.out}, starting from step 0")
    if rank == 0:
        if checkpoint is not None:
            truncate_metrics(metrics_path, start_step)
        elif os.path.exists(metrics_path):
            os.remove(metrics_path)  # --resume before any checkpoint: the rows will be rewritten
        with open(os.path.join(config.out, "args.json"), "w") as f:
            json.dump(asdict(config), f, indent=2)
    peak_flops = matmul_peak_flops(device, DTYPES[config.dtype])
    log(f"model {config.model}{' from ' + config.init if config.init else ''}: {model.num_params() / 1e6:.2f}M params, "
        f"{'FSDP2 over ' + str(world_size) + ' processes' if sharded else 'one process'}, {config.dtype} on {device.type}; "
        f"{total_steps} steps of {global_batch_size} examples ({config.batch_size} x {config.grad_accum} accumulation x "
        f"{world_size} processes), lr {config.lr:g}, warmup {warmup_steps}; writing {config.out}")

    batches_by_epoch: dict[int, list[list[int]]] = {}
    metrics_file = open(metrics_path, "a") if rank == 0 else None
    run_start, run_start_step = time.perf_counter(), start_step
    step = start_step
    try:
        for step in range(start_step + 1, total_steps + 1):
            epoch, index = divmod(step - 1, steps_per_epoch)
            if epoch not in batches_by_epoch:
                batches_by_epoch = {epoch: global_batches(lengths, global_batch_size, config.seed, epoch,
                                                                   config.group_by_length)}
            batch = batches_by_epoch[epoch][index]
            step_start = time.perf_counter()
            micro_batches = split_global_batch(batch, lengths, world_size, rank, config.batch_size)
            num_micro_steps = len(split_global_batch(batch, lengths, world_size, 0, config.batch_size))
            num_targets = sum(examples[i].num_targets for i in batch)
            loss_sum, tokens, flops = train_step(model, examples, micro_batches, num_micro_steps, num_targets,
                                                 tokenizer.pad_id, device, sharded)
            totals = torch.tensor([loss_sum, tokens, flops], dtype=torch.float64, device=device)
            dist.all_reduce(totals)
            loss = totals[0].item() / num_targets
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip if config.clip > 0 else float("inf"))
            grad_norm = (grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor") else grad_norm).item()
            if not (math.isfinite(loss) and math.isfinite(grad_norm)):
                last = latest_checkpoint(config.out)
                raise FloatingPointError(
                    f"step {step}: loss {loss}, gradient norm {grad_norm}: training diverged, stopping without updating. "
                    f"The last good checkpoint is {last or '(none yet)'}; try a lower --lr, then --resume.")
            lr = scheduler.get_last_lr()[0]
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            elapsed = time.perf_counter() - step_start
            tokens_per_s = totals[1].item() / elapsed
            row = {"step": step, "epoch": epoch, "loss": loss, "lr": lr, "grad_norm": grad_norm,
                   "tokens_per_s": tokens_per_s, "mfu": totals[2].item() / elapsed / (peak_flops * world_size),
                   "peak_memory_gb": peak_memory_gb(device), "time": time.time()}
            if rank == 0:
                metrics_file.write(json.dumps(row) + "\n")
                metrics_file.flush()
                eta = (time.perf_counter() - run_start) / (step - run_start_step) * (total_steps - step)
                log(f"step {step}/{total_steps} | loss {loss:.4f} | lr {lr:.2e} | grad norm {grad_norm:.2f} | "
                    f"{tokens_per_s / 1000:.1f}k tok/s | mfu {row['mfu']:.1%} | ETA {format_duration(eta)}", flush=True)
            if step % config.save_every == 0 or step == total_steps:
                save_checkpoint(config, step, model, optimizer, scheduler, {"epoch": epoch, "batch_in_epoch": index + 1},
                                rank)
    except FloatingPointError as e:
        if rank == 0:
            print(f"train.py: error: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        if metrics_file is not None:
            metrics_file.close()
    final = export_final(model, tokenizer, config, rank)
    log(f"done: {total_steps} steps in {format_duration(time.perf_counter() - run_start)}; model and tokenizer in {final}")
    return final


if __name__ == "__main__":
    main()
