"""What an objective computes once from a data file (its tokens, DPO's reference log-probs), cached beside
the file in DIR/.cache/ as plain arrays (.npz, no pickle).

Why: tokenizing 30k examples takes longer than a short from-scratch run's first hundred steps, and a
study trains on the same file many times (seeds, stages). A cache is keyed by everything its contents
depend on: the file (size and modification time), the tokenizer, the length limit and the code that
reads and tokenizes (a change there is a new cache).
"""
import hashlib
import json
import os
import sys

import numpy as np


def tokenized_key(data_path: str, tokenizer, max_seq_len: int, code_files: list[str]) -> str:
    """The key of `data_path` tokenized by `tokenizer` at `max_seq_len` by the code in `code_files`
    (the tokenizer's own module is added)."""
    stat = os.stat(data_path)
    key = hashlib.sha256(json.dumps([stat.st_size, stat.st_mtime_ns, max_seq_len]).encode())
    key.update(tokenizer.raw.to_str().encode())
    for module_file in (*code_files, sys.modules[type(tokenizer).__module__].__file__):
        with open(module_file, "rb") as f:
            key.update(f.read())
    return key.hexdigest()


def cache_path(data_path: str, kind: str, key: str) -> str:
    """DIR/.cache/<file>.<kind>.<key>.npz beside the data file (the key's first 16 hex digits)."""
    name = f"{os.path.basename(data_path)}.{kind}.{key[:16]}.npz"
    return os.path.join(os.path.dirname(data_path) or ".", ".cache", name)


def load_cache(path: str) -> tuple[dict[str, np.ndarray], dict] | None:
    """(arrays, report) of a cache file, or None where there is none yet."""
    if not os.path.exists(path):
        return None
    with np.load(path, allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in stored.files if name != "report"}
        report = json.loads(stored["report"].tobytes()) if "report" in stored.files else {}
    return arrays, report


def save_cache(path: str, arrays: dict[str, np.ndarray], report: dict | None = None) -> None:
    """Write a cache file atomically (a reader never sees half of one); a read-only data directory just
    means no cache."""
    if report is not None:
        arrays = {**arrays, "report": np.frombuffer(json.dumps(report).encode(), dtype=np.uint8)}
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + f".{os.getpid()}.tmp.npz"
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    except OSError as e:
        print(f"not caching at {path}: {e}", file=sys.stderr)
