"""The settings of a training run (train.py): resolved from its arguments and checked before any
process-group work, so that every mistake is one line on stderr, and compared with a run
directory's recorded settings so that a rerun resumes the same run.

Reading order: `Config`, the resolved settings (DIR/args.json); where --data points (a file, or a
set name that data_prep.py can build, and `build_missing_data`, which builds it once the processes
have joined); `resolve_config`, every argument and input checked and the recipe's defaults filled in
(the compute dtype by the device: `default_dtype`), and `defaults_line`, which says which were taken;
`check_same_run` and `finished_run`, what a run directory holds.
"""
import argparse
import json
import os
import sys
from dataclasses import asdict, dataclass

import torch
import torch.distributed as dist

from w2s.data.datadir import build_builtin
from w2s.data.jsonl import read_json_object
from w2s.data.provenance import (check_output_dir, file_fingerprint, normalize_path, start_fresh_hint,
                                 weights_fingerprint)
from w2s.data.world.sets import builtin_set_args
from w2s.dpo import DEFAULT_BETA
from w2s.errors import UserError
from w2s.gguf_checkpoint import is_gguf_file
from w2s.grpo import DEFAULTS as GRPO_DEFAULTS
from w2s.grpo import check_grpo_inputs
from w2s.hf_io import is_hub_id, read_hf_config
from w2s.model import PRESETS, ModelArgs
from w2s.model_source import resolve_checkpoint
from w2s.runtime import default_device


@dataclass
class Config:
    """The resolved settings of a run (written to DIR/args.json; a rerun checks they are unchanged)."""
    model: str
    from_scratch: bool
    data: str  # path of the training JSONL file
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
    objective: str = "sft"
    beta: float | None = None  # dpo only: the KL penalty's weight (None for other objectives)
    rpo_alpha: float | None = None  # dpo only: the chosen responses' NLL weight (0: plain DPO)
    # grpo only (w2s/grpo.py's OPTIONS; None for other objectives)
    group_size: int | None = None
    kl_coef: float | None = None
    clip_epsilon: float | None = None
    rollout_temperature: float | None = None
    rollout_max_new_tokens: int | None = None
    reward: str | None = None
    reward_model: str | None = None
    cutoff_penalty: float | None = None
    # What the run came from: the training file's and the starting weights' fingerprints (w2s/data/provenance.py),
    # so that a rerun after the data or the --init weights were replaced refuses instead of resuming on them.
    data_fingerprint: str | None = None  # None while a built-in set is still to be built
    init_fingerprint: str | None = None  # --init's, or a pretrained --model's; None from scratch
    reward_model_fingerprint: str | None = None  # grpo's --reward-model: a verifier replaced changes the rewards


# Settings a rerun may change: how often to save and how many checkpoints to keep.
RERUN_MAY_CHANGE = ("save_every", "keep_checkpoints")


# ---------------------------------------------------------------------------------------------
# Where --data points


DEFAULT_DATA_DIR = "data"


def resolve_data_path(data: str, data_dir: str) -> tuple[str, dict | None]:
    """(path, the arguments of w2s.data.datadir.build_builtin that build it if it is a missing built-in set, else None).

    A missing built-in set is built on demand only into the default data/ or into a directory that
    already holds the built-in world: a mistyped --data-dir must not quietly become a new world."""
    if data.endswith(".jsonl") or os.sep in data or os.path.exists(data):
        return data, None
    path = os.path.join(data_dir, data + ".jsonl")
    if os.path.exists(path):
        return path, None
    build_args = builtin_set_args(data)
    if build_args is not None and os.path.normpath(data_dir) != DEFAULT_DATA_DIR:
        manifest = os.path.join(data_dir, "manifest.json")
        if not os.path.isdir(data_dir):
            raise UserError(f"--data-dir {data_dir}: no such directory, so --data {data} is not there; check the "
                            f"name, or build it first (python data_prep.py --out {data_dir})")
        try:
            with open(manifest) as f:
                source = json.load(f).get("source")
        except (OSError, ValueError, AttributeError):
            source = None
        if source != "miniworld":
            raise UserError(f"--data {data}: {path} not found, and {data_dir} is not a built-in world directory "
                            f"(no {manifest} from data_prep.py), so it is not built there on demand; build it "
                            f"(python data_prep.py --out {data_dir}) or check --data-dir")
    return path, build_args


def build_missing_data(config: Config, build_args: dict | None, rank: int) -> None:
    """A built-in set that is not there yet is built into its directory's world, as data_prep.py
    would build it (by rank 0; the others wait), and fingerprinted: what it came from is known only
    now, so the run directory's settings are checked again. `build_args`: resolve_data_path's."""
    if build_args is not None:  # missing on every rank when it resolved its settings, before any joined the group
        if rank == 0 and not os.path.exists(config.data):
            data_dir = os.path.dirname(config.data)
            print(f"{config.data} not found: building it in the built-in world of {data_dir} (as data_prep.py does)",
                  flush=True)
            build_builtin(data_dir, {}, **build_args, log=lambda line: print(line, flush=True))
        dist.barrier()
    if config.data_fingerprint is None:
        config.data_fingerprint = file_fingerprint(config.data)
        check_same_run(config)


# ---------------------------------------------------------------------------------------------
# Every argument and input checked, and the recipe's defaults filled in


def resolve_dpo_options(args: argparse.Namespace) -> tuple[float | None, float | None]:
    """(--beta, --rpo-alpha) checked, with DPO's defaults; (None, None) for the other objectives."""
    if args.beta is not None and (args.objective != "dpo" or not args.beta > 0):
        raise UserError(f"--beta {args.beta}: only for --objective dpo, and must be > 0")
    if args.rpo_alpha is not None and (args.objective != "dpo" or not args.rpo_alpha >= 0):
        raise UserError(f"--rpo-alpha {args.rpo_alpha}: only for --objective dpo, and must be >= 0")
    if args.objective != "dpo":
        return None, None
    return (DEFAULT_BETA if args.beta is None else args.beta), (args.rpo_alpha or 0.0)


def resolve_grpo_options(args: argparse.Namespace) -> dict:
    """GRPO's options with their defaults for --objective grpo (each None for the other objectives, which
    refuse them)."""
    given = {name: getattr(args, name, None) for name in GRPO_DEFAULTS}
    if args.objective != "grpo":
        for name, value in given.items():
            if value is not None:
                raise UserError(f"--{name.replace('_', '-')} {value}: only for --objective grpo")
        return dict.fromkeys(GRPO_DEFAULTS)
    options = {name: GRPO_DEFAULTS[name] if value is None else value for name, value in given.items()}
    if options["reward_model"]:
        options["reward_model"] = normalize_path(options["reward_model"])
    return options


# Flag values a training run takes (fp16 would need loss scaling).
TRAIN_DTYPES = ("bf16", "fp32")


def default_dtype(device: str) -> tuple[str, str]:
    """bf16 on a GPU with bf16 support, else fp32; and why, for the defaults line. A CPU stays in fp32:
    bf16 is fast only on CPUs with bf16 instructions (4-6x slower without them, bench/RESULTS.md), and a
    default that followed the CPU's flags would change a run's numbers from one machine to the next."""
    if device == "cuda" and torch.cuda.is_bf16_supported():
        return "bf16", "a GPU with bf16"
    if device == "cuda":
        return "fp32", "this GPU has no bf16"
    return "fp32", "on a CPU; --dtype bf16 where the CPU has bf16 instructions"


def recipe_settings(args: argparse.Namespace, recipe: dict) -> dict:
    """The recipe's settings, each overridden by its flag where given; checked."""
    pick = {k: getattr(args, k) if getattr(args, k, None) is not None else v for k, v in recipe.items()}
    if pick["max_seq_len"] is None:
        pick["max_seq_len"] = PRESETS[args.model].get("max_seq_len", 8192)
    for name in ("epochs", "batch_size", "grad_accum", "max_seq_len", "save_every", "keep_checkpoints"):
        value = pick[name] if name in pick else getattr(args, name)
        if value < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if args.max_steps is not None and args.max_steps < 1:
        raise UserError(f"--max-steps must be at least 1, got {args.max_steps}")
    if not pick["lr"] > 0 or not 0 <= pick["warmup_ratio"] < 1 or args.clip < 0 or pick["weight_decay"] < 0:
        raise UserError("need --lr > 0, 0 <= --warmup-ratio < 1, --clip >= 0, --weight-decay >= 0")
    if pick["max_seq_len"] < 2:
        raise UserError(f"--max-seq-len must be at least 2, got {pick['max_seq_len']}")
    return pick


def defaults_line(args: argparse.Namespace, config: Config, scratch_defaults: dict, finetune_defaults: dict) -> str:
    """One line saying which recipe's defaults a run took and why, and its compute dtype."""
    recipe = scratch_defaults if config.from_scratch else finetune_defaults
    name, why = (("from-scratch", f"--model {config.model} is a preset") if config.from_scratch
                 else ("fine-tuning", f"--model {config.model} is a checkpoint"))
    taken = [f"{k} {getattr(config, k)}" for k in recipe if getattr(args, k, None) is None]
    dtype = "--dtype" if args.dtype else f"{default_dtype(config.device)[1]}; --dtype overrides"
    return (f"defaults: {name} recipe ({why}): {', '.join(taken) or 'none taken'} (flags override); "
            f"dtype {config.dtype} ({dtype})")


def check_init(args: argparse.Namespace, from_scratch: bool) -> None:
    """--init is an exported run (config and tokenizer); with a preset --model, one of that preset's shape."""
    init_dir = resolve_checkpoint(args.init) if os.path.exists(args.init) else args.init
    for name in ("config.json", "tokenizer.json"):
        if not os.path.exists(os.path.join(init_dir, name)):
            raise UserError(f"--init {args.init}: no {name}; pass another run's exported DIR/final")
    if from_scratch:
        init_args = ModelArgs.from_hf_config(*read_hf_config(init_dir))
        preset = ModelArgs.preset(args.model)
        shape = ("dim", "n_layers", "n_heads", "n_kv_heads", "ffn_dim")
        if any(getattr(init_args, k) != getattr(preset, k) for k in shape):
            raise UserError(f"--init {args.init} is not a {args.model!r} model "
                            f"({', '.join(f'{k}={getattr(init_args, k)}' for k in shape)}); pass its --model")


def resolve_tokenizer(args: argparse.Namespace, data_path: str, from_scratch: bool, data_is_built: bool) -> str:
    """--tokenizer, else --init's, else a preset's beside its data, else the checkpoint's own."""
    if args.tokenizer and not os.path.exists(args.tokenizer) and not is_hub_id(args.tokenizer):
        raise UserError(f"--tokenizer {args.tokenizer}: no such file or directory")
    tokenizer = args.tokenizer or args.init or (os.path.join(os.path.dirname(data_path) or ".", "tokenizer.json")
                                                if from_scratch else args.model)
    if from_scratch and not os.path.exists(tokenizer) and not data_is_built:
        raise UserError(f"no tokenizer at {tokenizer}: a preset trains with the tokenizer beside its data "
                        "(python data_prep.py writes data/tokenizer.json) or one given with --tokenizer")
    return tokenizer


def resolve_inputs(args: argparse.Namespace, from_scratch: bool) -> tuple[str, dict | None, str]:
    """--data's path (and build_builtin's arguments when it is a built-in set still to build), --init
    checked, and the tokenizer's path."""
    data_path, build_args = resolve_data_path(args.data, args.data_dir)
    if args.objective != "sft" and build_args is not None:
        raise UserError(f"--data {args.data}: {data_path} not found (only sft sets are built on demand)")
    if not os.path.exists(data_path) and build_args is None:
        raise UserError(f"--data {args.data}: {data_path} not found. Build the data first "
                        f"(python data_prep.py --out {args.data_dir}; --help lists the set names) or pass a JSONL path")
    if args.init is not None:
        check_init(args, from_scratch)
    return data_path, build_args, resolve_tokenizer(args, data_path, from_scratch, build_args is not None)


def resolve_config(args: argparse.Namespace, scratch_defaults: dict,
                   finetune_defaults: dict) -> tuple[Config, dict | None]:
    """Check every argument and input file; fill in the defaults (the recipe from scratch for a preset
    --model, else the fine-tuning one; the dtype by the device). Returns the settings and, when --data
    is a built-in set not built yet, the arguments of w2s.data.datadir.build_builtin that build it.
    Raises UserError saying what to run."""
    from_scratch = args.model in PRESETS
    if not from_scratch and not (os.path.isdir(args.model) or is_hub_id(args.model) or is_gguf_file(args.model)):
        raise UserError(f"--model {args.model}: no such folder (nor a preset: {', '.join(PRESETS)}; "
                        "nor a hub id like meta-llama/Meta-Llama-3-8B; nor a .gguf file)")
    pick = recipe_settings(args, scratch_defaults if from_scratch else finetune_defaults)
    device = args.device if args.device != "auto" else torch.device(default_device()).type
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda, but torch sees no GPU (torch.cuda.is_available() is False)")
    pick["dtype"] = args.dtype or default_dtype(device)[0]  # the device's, not the recipe's: see default_dtype
    beta, rpo_alpha = resolve_dpo_options(args)
    grpo_options = resolve_grpo_options(args)
    data_path, build_args, tokenizer = resolve_inputs(args, from_scratch)
    if args.objective == "grpo":
        check_grpo_inputs(data_path, grpo_options, tokenizer)
    start = args.init or (None if from_scratch else args.model)
    if args.max_seq_len is None and start is not None and os.path.isdir(start):  # a shorter model's own maximum
        pick["max_seq_len"] = min(pick["max_seq_len"], ModelArgs.from_hf_config(*read_hf_config(start)).max_seq_len)
    if from_scratch and args.init is None and pick["max_seq_len"] > PRESETS[args.model].get("max_seq_len", 8192):
        raise UserError(f"--max-seq-len {pick['max_seq_len']} exceeds the {args.model} preset's "
                        f"{PRESETS[args.model]['max_seq_len']}")

    model_name = os.path.basename(os.path.normpath(args.model)).removesuffix(".gguf")
    data_name = os.path.basename(data_path).removesuffix(".jsonl")
    out = normalize_path(args.out or os.path.join("runs", f"{data_name}-{model_name}-seed{args.seed}"))
    check_output_dir(out)
    # Paths as recorded: normalized, so `--model ./runs/x` and `--model runs/x` are one setting.
    model = args.model if from_scratch else normalize_path(args.model)
    data_path, tokenizer, init = normalize_path(data_path), normalize_path(tokenizer), normalize_path(args.init)
    start = init or (None if from_scratch else model)
    config = Config(model=model, from_scratch=from_scratch, data=data_path, tokenizer=tokenizer, init=init, out=out,
                    max_steps=args.max_steps, clip=args.clip, seed=args.seed, keep_checkpoints=args.keep_checkpoints,
                    group_by_length=args.group_by_length, activation_checkpointing=args.activation_checkpointing,
                    compile=args.compile, device=device, objective=args.objective, beta=beta, rpo_alpha=rpo_alpha,
                    **grpo_options, **pick,
                    data_fingerprint=file_fingerprint(data_path) if os.path.isfile(data_path) else None,
                    init_fingerprint=weights_fingerprint(start) if start else None,
                    reward_model_fingerprint=(weights_fingerprint(grpo_options["reward_model"])
                                              if grpo_options["reward_model"] else None))
    if not getattr(args, "overwrite", False):
        check_same_run(config)
    return config, build_args


# ---------------------------------------------------------------------------------------------
# What a run directory holds


def check_same_run(config: Config) -> None:
    """A rerun into a run directory continues that run, so its settings must be the ones in args.json."""
    path = os.path.join(config.out, "args.json")
    if not os.path.exists(path):
        return
    saved = read_json_object(path, "a settings file", start_fresh_hint())
    saved.setdefault("objective", "sft")  # written before there was a choice
    saved.setdefault("beta", None)
    saved.setdefault("rpo_alpha", 0.0 if saved["objective"] == "dpo" else None)  # written before RPO
    for name in (*GRPO_DEFAULTS, "reward_model_fingerprint"):  # written before GRPO
        saved.setdefault(name, None)
    # Paths recorded before they were normalized compare as normalized.
    paths = ("data", "tokenizer", "init", "out") + (() if saved.get("from_scratch") else ("model",))
    saved = {k: normalize_path(v) if k in paths else v for k, v in saved.items()}
    changed = [f"{k} (was {saved.get(k)!r}, now {v!r})" for k, v in asdict(config).items()
               if k not in RERUN_MAY_CHANGE and saved.get(k) != v]
    if changed:
        raise UserError(f"{path}: {config.out} holds a run with other settings or inputs: {', '.join(changed)}; rerun "
                        f"with its settings and inputs to resume it, or {start_fresh_hint()}")


# What a run writes into its directory: what --overwrite removes (and nothing else there).
RUN_OUTPUTS = ("args.json", "metrics.jsonl", "checkpoints", "final", "final.tmp", "summary.json", "loss.png")


def finished_run(out: str) -> dict | None:
    """The summary of a run that has finished (summary.json is written last), else None. A summary
    that is not valid JSON (a run killed while writing it) means not finished: the run's end is redone."""
    path = os.path.join(out, "summary.json")
    if not (os.path.exists(path) and os.path.exists(os.path.join(out, "final", "config.json"))):
        return None
    try:
        with open(path) as f:
            summary = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError):
        summary = None
    if not isinstance(summary, dict):
        print(f"{path}: not a valid summary; finishing the run again from its last checkpoint", file=sys.stderr)
        return None
    return summary
