"""A GGUF file (llama.cpp's single-file format) as a checkpoint: converted once into a Hugging Face folder.

Every loader here reads Hugging Face folders (config.json, safetensors, tokenizer.json). Rather than teach
each of them a second format, a `.gguf` path is turned once into such a folder, cached under
$W2S_CACHE/gguf (default ~/.cache/w2s/gguf) and named by the file's fingerprint, so a changed file gets a
new folder. The file is read with `gguf`, the reader llama.cpp publishes; nothing in it is unpickled.

Reading order: where the folder lives (converted by one process, written atomically); the metadata ->
config.json; the tensors (dequantized, llama.cpp's q/k row order undone, renamed); the tokenizer rebuilt
from the vocabulary, merges and special tokens in the metadata, with the pre-tokenizer that
`tokenizer.ggml.pre` names.

Reference: transformers' own GGUF loader (`from_pretrained(dir, gguf_file=...)`); tests/test_gguf.py
compares logits and token ids with it. Where it and llama.cpp disagree on a tokenizer we follow llama.cpp,
whose pre-tokenizer names these are (see PRE_TOKENIZER_SPLITS).
"""
import contextlib
import fcntl
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np
import torch
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors

from w2s import hf_io
from w2s.errors import UserError

GGUF_SUFFIX = ".gguf"

# GGUF's per-layer tensor names -> Hugging Face Llama names (llama.cpp's convert_hf_to_gguf.py, reversed).
LAYER_TENSORS = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
MODEL_TENSORS = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}

# How each `tokenizer.ggml.pre` splits text before byte-level BPE, as llama.cpp's llama-vocab.cpp does it.
_GPT2_SPLIT = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"
_LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                 r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
# Each entry: (regexes applied one after another, whether a piece found whole in the vocabulary skips the
# merges). Llama-3's pre-tokenizers skip them, as its own tokenizer.json does (`ignore_merges`).
# SmolLM's family first cuts digits one by one (its tokenizer.json: Digits(individual_digits) then
# ByteLevel); transformers' GGUF loader skips that cut, so "\n\n1" there becomes two newline tokens
# where SmolLM and llama.cpp have one.
PRE_TOKENIZER_SPLITS = {
    "default": ([_GPT2_SPLIT], False), "gpt2": ([_GPT2_SPLIT], False), "gpt-2": ([_GPT2_SPLIT], False),
    "llama3": ([_LLAMA3_SPLIT], True), "llama-v3": ([_LLAMA3_SPLIT], True), "llama-bpe": ([_LLAMA3_SPLIT], True),
    "smaug-bpe": ([_LLAMA3_SPLIT], False),
    **{name: ([r"\p{N}", _GPT2_SPLIT], False) for name in
       ("smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b")},
}

TOKEN_TYPE_CONTROL, TOKEN_TYPE_USER_DEFINED = 3, 4  # llama.cpp's token types (1 is a normal token)


# ---------------------------------------------------------------------------------------------
# Where the converted folder lives


def is_gguf_file(path: str) -> bool:
    """A path naming a GGUF file (by its suffix; the reader checks the magic bytes)."""
    return isinstance(path, str) and path.lower().endswith(GGUF_SUFFIX) and os.path.isfile(path)


def cache_root() -> str:
    """$W2S_CACHE/gguf, or ~/.cache/w2s/gguf."""
    return os.path.join(os.environ.get("W2S_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "w2s"), "gguf")


def gguf_checkpoint_folder(path: str) -> str:
    """The Hugging Face folder converted from the GGUF file `path`, converting it the first time. The
    folder's name holds the file's fingerprint, so another file (or this one changed) gets its own. One
    process converts: the others (torchrun's ranks, a second command) wait on a lock beside the folder,
    then find it done."""
    stem = os.path.basename(path)[: -len(GGUF_SUFFIX)]
    folder = os.path.join(cache_root(), f"{stem}-{hf_io.file_fingerprint(path)}")
    if _is_converted(folder):
        return folder
    os.makedirs(cache_root(), exist_ok=True)
    lock_path = folder + ".lock"
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        try:
            if not _is_converted(folder):  # checked again: the process that held the lock may have done it
                convert_into_folder(path, folder)
        finally:
            # Removed while still held: the folder, not the lock, says the work is done, and a process
            # still waiting on this (now nameless) lock checks the folder again once it gets it.
            with contextlib.suppress(FileNotFoundError):
                os.remove(lock_path)
    return folder


def _is_converted(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, "config.json"))


def convert_into_folder(path: str, folder: str) -> None:
    """convert_gguf into a temporary folder, renamed `folder` when complete: a killed conversion leaves
    nothing half done."""
    partial = tempfile.mkdtemp(prefix=f".{os.path.basename(folder)}-", dir=os.path.dirname(folder))
    started = time.monotonic()
    print(f"{path}: converting it once into a Hugging Face folder (reading its metadata)", file=sys.stderr, flush=True)
    try:
        convert_gguf(path, partial)
        os.chmod(partial, 0o755 & ~_umask())
        try:
            os.rename(partial, folder)
        except OSError:  # a conversion the lock did not hold off (another machine sharing the cache): keep theirs
            if not _is_converted(folder):
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    print(f"{path}: converted in {time.monotonic() - started:.0f}s to {folder} (kept for next time)",
          file=sys.stderr, flush=True)


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def convert_gguf(path: str, out_dir: str) -> None:
    """Write config.json, model.safetensors, tokenizer.json, tokenizer_config.json and
    generation_config.json for the Llama-architecture GGUF file `path` into `out_dir`."""
    reader = read_gguf(path)
    metadata = read_metadata(reader)
    config = hf_config(metadata, {t.name for t in reader.tensors}, path)
    tokenizer, tokenizer_config = build_tokenizer(metadata, path)
    state = hf_state_dict(reader, config, path)
    hf_io.write_checkpoint(out_dir, config, state, max_shard_bytes=5 * 1024**3)
    tokenizer.save(os.path.join(out_dir, "tokenizer.json"))
    generation = {"bos_token_id": config["bos_token_id"], "eos_token_id": config["eos_token_id"]}
    for name, value in [("tokenizer_config.json", tokenizer_config), ("generation_config.json", generation)]:
        with open(os.path.join(out_dir, name), "w", encoding="utf-8") as f:
            json.dump(value, f, indent=2, ensure_ascii=False)


def read_gguf(path: str):
    """gguf's reader over the file (memory-mapped); one line naming the file if it is not GGUF."""
    from gguf import GGUFReader  # here: 0.3 s of import, paid only when a GGUF file is read

    try:
        return GGUFReader(path)
    except Exception as e:  # gguf raises ValueError / struct errors for a bad or short file
        raise UserError(f"{path}: not a readable GGUF file ({type(e).__name__}: {e})") from None


def read_metadata(reader) -> dict:
    """Every key-value field of the file as plain Python values (strings, numbers, lists)."""
    return {name: field.contents() for name, field in reader.fields.items() if not name.startswith("GGUF.")}


# ---------------------------------------------------------------------------------------------
# config.json from the metadata


def hf_config(metadata: dict, tensor_names: set[str], path: str) -> dict:
    """A LlamaForCausalLM config.json from llama.cpp's `llama.*` keys."""
    architecture = metadata.get("general.architecture")
    if architecture != "llama":
        raise UserError(f"{path}: general.architecture is {architecture!r}; only 'llama' GGUF files are supported")

    def key(name: str, default=None):
        value = metadata.get(f"llama.{name}", default)
        if value is None:
            raise UserError(f"{path}: missing metadata key 'llama.{name}'")
        return value

    n_heads, dim = key("attention.head_count"), key("embedding_length")
    n_kv_heads = key("attention.head_count_kv", n_heads)
    if isinstance(n_heads, list) or isinstance(n_kv_heads, list):
        raise UserError(f"{path}: per-layer head counts are not supported")
    head_dim = (metadata.get("llama.attention.key_length") or metadata.get("llama.rope.dimension_count")
                or dim // n_heads)
    scaling = metadata.get("llama.rope.scaling.type", "none")
    if scaling not in ("none", None):
        raise UserError(f"{path}: rope scaling {scaling!r} is not supported (Llama-3.1's, stored as "
                        "rope_freqs.weight, is)")
    vocab_size = metadata.get("llama.vocab_size") or len(metadata.get("tokenizer.ggml.tokens") or [])
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": dim,
        "num_hidden_layers": key("block_count"),
        "num_attention_heads": n_heads,
        "num_key_value_heads": n_kv_heads,
        "head_dim": head_dim,
        "intermediate_size": key("feed_forward_length"),
        "vocab_size": vocab_size,
        "rms_norm_eps": float(key("attention.layer_norm_rms_epsilon", 1e-5)),
        "rope_theta": float(key("rope.freq_base", 10000.0)),
        "rope_scaling": None,  # Llama-3.1's is a tensor: see llama3_rope_scaling
        "max_position_embeddings": key("context_length", 8192),
        # llama.cpp leaves out output.weight when the head is the embedding.
        "tie_word_embeddings": "output.weight" not in tensor_names,
        "hidden_act": "silu",
        "attention_bias": False,
        "mlp_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": metadata.get("tokenizer.ggml.bos_token_id"),
        "eos_token_id": metadata.get("tokenizer.ggml.eos_token_id"),
    }


# ---------------------------------------------------------------------------------------------
# The tensors


def unpermute_rows(weight: np.ndarray, n_heads: int) -> np.ndarray:
    """Undo llama.cpp's q/k row order. Its converter interleaves each head's two rotary halves
    (rows 0, d/2, 1, d/2+1, ...) because llama.cpp rotates adjacent pairs; Hugging Face rotates halves."""
    rows = weight.shape[0]
    return weight.reshape(n_heads, rows // n_heads // 2, 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def hf_name(gguf_name: str) -> str | None:
    """The Hugging Face name of a GGUF tensor, or None for one a Llama does not have."""
    stem, _, suffix = gguf_name.rpartition(".")
    if stem in MODEL_TENSORS:
        return f"{MODEL_TENSORS[stem]}.{suffix}"
    parts = stem.split(".")
    if len(parts) == 3 and parts[0] == "blk" and parts[1].isdigit() and parts[2] in LAYER_TENSORS:
        return f"model.layers.{parts[1]}.{LAYER_TENSORS[parts[2]]}.{suffix}"
    return None


def llama3_rope_scaling(rope_factors: np.ndarray, config: dict, path: str) -> dict:
    """config.json's `rope_scaling` for a file that stores Llama-3.1's frequency scaling as a tensor.

    llama.cpp's converter writes `rope_freqs.weight`: for each rotary frequency, by how much it is divided.
    Every Llama 3.1-3.3 release computes those with low_freq_factor 1, high_freq_factor 4 and an original
    context of 8192, the largest being `factor`: recompute them so, and accept only an exact match."""
    scaling = {"rope_type": "llama3", "factor": float(np.max(rope_factors)), "low_freq_factor": 1.0,
               "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
    head_dim, theta = config["head_dim"], config["rope_theta"]
    freqs = 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    wavelen = 2 * np.pi / freqs
    smooth = (8192 / wavelen - 1.0) / (4.0 - 1.0)
    expected = np.where(wavelen < 8192 / 4.0, 1.0, np.where(wavelen > 8192 / 1.0, scaling["factor"],
                                                             1 / ((1 - smooth) / scaling["factor"] + smooth)))
    if rope_factors.shape != expected.shape or not np.allclose(rope_factors, expected, rtol=1e-4):
        raise UserError(f"{path}: rope_freqs.weight is not Llama-3.1's frequency scaling "
                        "(low_freq_factor 1, high_freq_factor 4, original context 8192); not supported")
    return scaling


def hf_state_dict(reader, config: dict, path: str) -> dict[str, torch.Tensor]:
    """Every tensor dequantized with gguf's own dequantizer, renamed, q/k rows reordered. fp32, unless
    the file stores every weight as f16 or bf16 (then that). A `rope_freqs.weight` sets config's rope_scaling."""
    from gguf import GGMLQuantizationType  # here: as in read_gguf
    from gguf.quants import dequantize

    stored = {t.tensor_type for t in reader.tensors if t.name != "rope_freqs.weight"}
    dtype = {frozenset({GGMLQuantizationType.F16}): torch.float16,
             frozenset({GGMLQuantizationType.BF16}): torch.bfloat16}.get(frozenset(stored), torch.float32)
    state, started, shown = {}, time.monotonic(), time.monotonic()
    for i, tensor in enumerate(reader.tensors):
        if tensor.name == "rope_freqs.weight":  # not a weight: config.json's rope_scaling
            factors = dequantize(tensor.data, tensor.tensor_type).ravel()
            config["rope_scaling"] = llama3_rope_scaling(factors, config, path)
            continue
        name = hf_name(tensor.name)
        if name is None:
            raise UserError(f"{path}: tensor {tensor.name!r} is not part of a Llama model")
        try:
            values = dequantize(tensor.data, tensor.tensor_type)
        except NotImplementedError:
            raise UserError(f"{path}: tensor {tensor.name!r} has type {tensor.tensor_type.name}, "
                            "which gguf cannot dequantize") from None
        values = values.reshape([int(n) for n in reversed(tensor.shape)])  # GGUF lists dims fastest first
        if tensor.name.endswith("attn_q.weight"):
            values = unpermute_rows(values, config["num_attention_heads"])
        elif tensor.name.endswith("attn_k.weight"):
            values = unpermute_rows(values, config["num_key_value_heads"])
        # A copy: the file is mapped read-only.
        state[name] = torch.from_numpy(np.array(values, dtype=np.float32)).to(dtype)
        if time.monotonic() - shown > 3:  # a big file takes minutes: say how far it is
            shown = time.monotonic()
            print(f"{path}: converting: {i + 1}/{len(reader.tensors)} tensors, "
                  f"{shown - started:.0f}s", file=sys.stderr, flush=True)
    return state


# ---------------------------------------------------------------------------------------------
# The tokenizer


def build_tokenizer(metadata: dict, path: str):
    """(a `tokenizers.Tokenizer`, tokenizer_config.json's contents) from the file's tokenizer metadata:
    byte-level BPE over its tokens and merges, control tokens as special added tokens, user-defined ones
    as plain added tokens, the pre-tokenizer `tokenizer.ggml.pre` names, and its chat template."""
    kind = metadata.get("tokenizer.ggml.model")
    if kind != "gpt2":
        raise UserError(f"{path}: tokenizer.ggml.model is {kind!r}; only byte-level BPE ('gpt2') is supported "
                        "(a SentencePiece 'llama' vocabulary is not yet)")
    tokens = metadata.get("tokenizer.ggml.tokens")
    merges = metadata.get("tokenizer.ggml.merges")
    if not tokens or merges is None:
        raise UserError(f"{path}: missing metadata key 'tokenizer.ggml.{'tokens' if not tokens else 'merges'}'")
    pre = metadata.get("tokenizer.ggml.pre", "default")
    if pre not in PRE_TOKENIZER_SPLITS:
        raise UserError(f"{path}: tokenizer.ggml.pre {pre!r} is not supported "
                        f"(known: {', '.join(sorted(PRE_TOKENIZER_SPLITS))})")
    splits, ignore_merges = PRE_TOKENIZER_SPLITS[pre]
    token_types = metadata.get("tokenizer.ggml.token_type") or [1] * len(tokens)

    bpe = models.BPE(vocab={token: i for i, token in enumerate(tokens)},
                     merges=[tuple(merge.split(" ", 1)) for merge in merges],
                     fuse_unk=False, ignore_merges=ignore_merges)
    tokenizer = Tokenizer(bpe)
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(split), behavior="isolated") for split in splits]
        + [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tokenizer.decoder = decoders.ByteLevel()
    # In a byte-level vocabulary a real token is spelled in the byte alphabet; llama.cpp also marks a few
    # other strings as control tokens, and adding those would grow the vocabulary past the model's.
    alphabet = set(pre_tokenizers.ByteLevel.alphabet())
    tokenizer.add_special_tokens([AddedToken(t, normalized=False, special=True)
                                  for t, kind in zip(tokens, token_types)
                                  if kind == TOKEN_TYPE_CONTROL and set(t) <= alphabet])
    tokenizer.add_tokens([AddedToken(t, normalized=False, special=False)
                          for t, kind in zip(tokens, token_types) if kind == TOKEN_TYPE_USER_DEFINED])

    def special(key: str) -> str | None:
        token_id = metadata.get(f"tokenizer.ggml.{key}")
        return tokens[token_id] if token_id is not None and 0 <= token_id < len(tokens) else None

    bos, add_bos = special("bos_token_id"), bool(metadata.get("tokenizer.ggml.add_bos_token", False))
    if add_bos and bos is not None:  # as a Llama-3 tokenizer.json does: encode() puts BOS first
        bos_id = tokens.index(bos)
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{bos}:0 $A:0", pair=f"{bos}:0 $A:0 {bos}:1 $B:1", special_tokens=[(bos, bos_id)])
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": bos,
        "eos_token": special("eos_token_id"),
        "unk_token": special("unknown_token_id"),
        "pad_token": special("padding_token_id"),
        "add_bos_token": add_bos,
        "add_eos_token": bool(metadata.get("tokenizer.ggml.add_eos_token", False)),
        "clean_up_tokenization_spaces": False,
        "model_input_names": ["input_ids", "attention_mask"],
    }
    if metadata.get("tokenizer.chat_template"):
        config["chat_template"] = metadata["tokenizer.chat_template"]
    return tokenizer, config
