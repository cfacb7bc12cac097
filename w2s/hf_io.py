"""Hugging Face checkpoint files: config.json <-> ModelArgs fields, safetensors in and out, and
Hub ids (told from local paths, fetched once).

Reading order: a Hub id told from a path, and its files fetched; config.json read and written;
safetensors read (names and shapes checked, errors naming the file and tensor) and written (sharded
above a size, readable by everyone, as HF writes them); a fingerprint of the weights that says whether
two evaluations ran the same model. w2s.model's `Llama.from_pretrained` and
`save_pretrained` are built on these; w2s/model_source.py turns a path, a Hub id or a GGUF file into
the checkpoint folder they read.
"""
import hashlib
import json
import os
import re
from contextlib import contextmanager

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from w2s.data.jsonl import read_json_object
from w2s.errors import MissingFileError, UserError


# ---------------------------------------------------------------------------------------------
# Hub ids


def is_hub_id(name: str) -> bool:
    """A plausible Hugging Face Hub repo id ("org/name") rather than a local path: nothing exists at
    `name`, it is two plain names joined by one slash (so "./x", "/abs/x" and "a/b/c" are paths), and
    its first part is not a local folder (so "runs/nosuch" is a missing run, not a Hub repo)."""
    if os.path.exists(name) or re.fullmatch(r"[\w-][\w.-]*/[\w.-]+", name) is None:
        return False
    return not os.path.isdir(name.split("/")[0])


def fetch_from_hub(hub_id: str, allow_patterns: list[str]) -> str:
    """The local folder of a Hub repo's files (downloaded once per machine). A repo the Hub cannot
    provide (no network, offline mode, no such repo) is reported as the missing folder it also is."""
    from huggingface_hub import snapshot_download  # here: only a download needs the Hub client

    try:
        return snapshot_download(hub_id, allow_patterns=allow_patterns)
    except Exception as e:  # network, offline mode, auth, no such repo: the user sees one cause
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise MissingFileError(f"{hub_id}: no such folder, and the Hugging Face Hub could not provide it "
                               f"({type(e).__name__}: {reason[:200]})") from None


# ---------------------------------------------------------------------------------------------
# config.json


def read_hf_config(directory: str) -> tuple[dict, str]:
    """(config.json's contents, its path) of a checkpoint folder."""
    path = os.path.join(directory, "config.json")
    if not os.path.exists(path):
        raise MissingFileError(f"{path}: missing config.json")
    return read_json_object(path), path


def args_from_hf_config(config: dict, source: str = "config.json") -> dict:
    """ModelArgs fields from a Hugging Face `config.json` dict, in either spelling of the rotary
    settings: `rope_theta` + `rope_scaling` at top level (released Llama-3.1 files) or one
    `rope_parameters` dict holding both (recent transformers)."""
    architectures = config.get("architectures") or []
    if config.get("model_type", "llama") != "llama" or (architectures and "LlamaForCausalLM" not in architectures):
        raise UserError(f"{source}: unsupported architecture {architectures or config.get('model_type')!r}; "
                         "only LlamaForCausalLM (model_type 'llama') is supported")
    for key, supported in [("hidden_act", "silu"), ("attention_bias", False), ("mlp_bias", False)]:
        if key in config and config[key] != supported:
            raise UserError(f"{source}: unsupported {key}={config[key]!r} (only {supported!r} is supported)")
    for key in ["hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size"]:
        if key not in config:
            raise UserError(f"{source}: missing key {key!r}")
    rope = dict(config.get("rope_parameters") or {})
    rope_theta = rope.pop("rope_theta", config.get("rope_theta", 10000.0))
    scaling = rope or config.get("rope_scaling")
    if scaling is not None:
        scaling = dict(scaling)
        scaling["rope_type"] = scaling.pop("type", None) or scaling.get("rope_type", "default")
        if scaling["rope_type"] not in ("default", "llama3"):
            raise UserError(f"{source}: unsupported rope_type {scaling['rope_type']!r} (default or llama3)")
    n_heads = config["num_attention_heads"]
    return dict(
        dim=config["hidden_size"],
        n_layers=config["num_hidden_layers"],
        n_heads=n_heads,
        n_kv_heads=config.get("num_key_value_heads") or n_heads,
        vocab_size=config["vocab_size"],
        ffn_dim=config["intermediate_size"],
        head_dim=config.get("head_dim") or config["hidden_size"] // n_heads,
        norm_eps=config.get("rms_norm_eps", 1e-5),
        rope_theta=float(rope_theta),
        rope_scaling=scaling,
        max_seq_len=config.get("max_position_embeddings", 8192),
        tie_embeddings=config.get("tie_word_embeddings", False),
        init_std=config.get("initializer_range", 0.02),
        bos_token_id=config.get("bos_token_id"),
        eos_token_id=config.get("eos_token_id"),
    )


def hf_config_from_args(args) -> dict:
    """The classic `config.json` spelling of ModelArgs, which transformers (old and new) and vLLM all read."""
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": args.dim,
        "num_hidden_layers": args.n_layers,
        "num_attention_heads": args.n_heads,
        "num_key_value_heads": args.n_kv_heads,
        "head_dim": args.head_dim,
        "intermediate_size": args.ffn_dim,
        "vocab_size": args.vocab_size,
        "rms_norm_eps": args.norm_eps,
        "rope_theta": args.rope_theta,
        "rope_scaling": dict(args.rope_scaling) if args.rope_scaling else None,
        "max_position_embeddings": args.max_seq_len,
        "tie_word_embeddings": args.tie_embeddings,
        "initializer_range": args.init_std,
        "hidden_act": "silu",
        "attention_bias": False,
        "mlp_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": args.bos_token_id,
        "eos_token_id": args.eos_token_id,
    }


# ---------------------------------------------------------------------------------------------
# safetensors


@contextmanager
def _open_safetensors(path: str, device):
    """safe_open, with the path in the error of a file that is not safetensors (or cut short)."""
    try:
        f = safe_open(path, framework="pt", device=str(device))
    except Exception as e:  # safetensors raises its own error type for a bad or truncated header
        raise UserError(f"{path}: not a readable safetensors file ({e}); is it truncated?") from None
    with f:
        yield f


def read_safetensors(directory: str, expected: dict[str, tuple], device, dtype) -> dict[str, torch.Tensor]:
    """Read every tensor of a (possibly sharded) checkpoint, checking names and shapes against
    `expected` (our names, without HF's `model.` prefix). Errors name the file and the key."""
    index_path = os.path.join(directory, "model.safetensors.index.json")
    single_path = os.path.join(directory, "model.safetensors")
    if os.path.exists(index_path):
        weight_map = read_json_object(index_path).get("weight_map")
        if not isinstance(weight_map, dict):
            raise UserError(f"{index_path}: missing key 'weight_map'")
        files = sorted(set(weight_map.values()))
        where = index_path
    elif os.path.exists(single_path):
        files, where = ["model.safetensors"], single_path
    else:
        raise MissingFileError(f"{directory}: no model.safetensors or model.safetensors.index.json "
                                "(only safetensors checkpoints are read)")
    state = {}
    for file_name in files:
        path = os.path.join(directory, file_name)
        if not os.path.exists(path):
            raise MissingFileError(f"{path}: shard listed in {index_path} is missing")
        with _open_safetensors(path, device) as f:
            for hf_name in f.keys():
                name = hf_name.removeprefix("model.")
                if name == "lm_head.weight" and "lm_head.weight" not in expected:
                    continue  # a tied checkpoint that stores the head anyway: the embedding is the head
                if name not in expected:
                    raise UserError(f"{path}: unexpected tensor {hf_name!r} (not part of a Llama model)")
                shape = tuple(f.get_slice(hf_name).get_shape())
                if shape != expected[name]:
                    raise UserError(f"{path}: tensor {hf_name!r} has shape {list(shape)}, "
                                     f"config.json implies {list(expected[name])}")
                try:
                    tensor = f.get_tensor(hf_name)
                except Exception as e:  # safetensors' own error type; a short file fails here or in the header
                    raise UserError(f"{path}: tensor {hf_name!r} cannot be read ({e}); "
                                    "is the file truncated?") from None
                state[name] = tensor.to(dtype) if dtype is not None else tensor
    missing = sorted(set(expected) - set(state))
    if missing:
        hf = [("model." + n if n != "lm_head.weight" else n) for n in missing]
        raise UserError(f"{where}: missing tensor {hf[0]!r}" + (f" and {len(hf) - 1} more" if len(hf) > 1 else ""))
    return state


def write_checkpoint(out_dir: str, config: dict, state: dict, max_shard_bytes: int) -> None:
    """config.json and the tensors of `state` (HF names), in one safetensors file or shards with an index."""
    os.makedirs(out_dir, exist_ok=True)
    shards, current, size = [], {}, 0
    for name, t in state.items():
        nbytes = t.numel() * t.element_size()
        if current and size + nbytes > max_shard_bytes:
            shards.append(current)
            current, size = {}, 0
        current[name] = t
        size += nbytes
    shards.append(current)
    config = {**config, "torch_dtype": str(next(iter(state.values())).dtype).removeprefix("torch.")}
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    names = ["model.safetensors"] if len(shards) == 1 else \
        [f"model-{i:05d}-of-{len(shards):05d}.safetensors" for i in range(1, len(shards) + 1)]
    for file_name, shard in zip(names, shards):
        path = os.path.join(out_dir, file_name)
        save_file(shard, path, metadata={"format": "pt"})
        _readable_like_other_files(path)
    if len(shards) > 1:
        index = {"metadata": {"total_size": sum(t.numel() * t.element_size() for t in state.values())},
                 "weight_map": {name: file_name for file_name, shard in zip(names, shards) for name in shard}}
        with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
            json.dump(index, f, indent=2)


def _readable_like_other_files(path: str) -> None:
    """safetensors writes its files mode 0600 (through a temporary file); give them the mode the
    umask gives every other file we write, so a shared checkpoint is readable by its group."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


# ---------------------------------------------------------------------------------------------
# Which model: a fingerprint of the weights


def model_fingerprint(path_or_hub_id: str, sample_bytes: int = 1 << 20) -> str:
    """A short hash that changes when a checkpoint folder holds other weights: its config.json and,
    for each safetensors file, its size and its first and last MiB (the header, the first and the
    last tensors' values), so it costs milliseconds even for an 8B model. A GGUF file is fingerprinted
    the same way (not its converted folder). A Hub id is its own name."""
    if os.path.isfile(path_or_hub_id) and path_or_hub_id.lower().endswith(".gguf"):
        return file_fingerprint(path_or_hub_id, sample_bytes)
    if not os.path.isdir(path_or_hub_id):
        return path_or_hub_id
    digest = hashlib.sha256()
    for name in sorted(os.listdir(path_or_hub_id)):
        if name != "config.json" and not name.endswith(".safetensors"):
            continue
        _digest_file(digest, os.path.join(path_or_hub_id, name), sample_bytes)
    return digest.hexdigest()[:16]


def file_fingerprint(path: str, sample_bytes: int = 1 << 20) -> str:
    """A short hash of one file's name, size and first and last MiB."""
    digest = hashlib.sha256()
    _digest_file(digest, path, sample_bytes)
    return digest.hexdigest()[:16]


def _digest_file(digest, path: str, sample_bytes: int) -> None:
    size = os.path.getsize(path)
    digest.update(f"{os.path.basename(path)}:{size}:".encode())
    with open(path, "rb") as f:
        digest.update(f.read(sample_bytes))
        if size > sample_bytes:
            f.seek(max(sample_bytes, size - sample_bytes))
            digest.update(f.read())
