"""What an output came from: fingerprints of input files and model weights, paths compared after
normalizing, and output paths checked before any work.

Reading order: a file's fingerprint (size plus sampled bytes: milliseconds on any size); the
weights' fingerprint (a checkpoint folder, a Hub id or a single weights file); paths as recorded;
output paths checked (a folder where a folder is meant, a file where a file is; writable); starting
fresh (--overwrite).

Every resumable output records these beside its settings (w2s/data/jsonl.py's OUT.settings.json,
train.py's DIR/args.json), so a rerun whose inputs changed refuses instead of mixing or keeping
stale rows.
"""
import hashlib
import os
import shutil

from w2s.errors import MissingFileError, UserError
from w2s.hf_io import model_fingerprint

SAMPLE_BYTES = 1 << 20  # read at the start, the middle and the end of a file


def file_fingerprint(path: str, sample_bytes: int = SAMPLE_BYTES) -> str:
    """A short hash of a file's size and its first, middle and last `sample_bytes`: rewriting a tasks
    or data file changes it (a rewrite changes the size or the sampled bytes nearly always), and a
    multi-GB file costs three reads. A small file is hashed whole."""
    if not os.path.isfile(path):
        raise MissingFileError(f"{path}: no such file")
    size = os.path.getsize(path)
    digest = hashlib.sha256(f"{size}:".encode())
    with open(path, "rb") as f:
        if size <= 3 * sample_bytes:
            digest.update(f.read())
        else:
            for offset in (0, size // 2 - sample_bytes // 2, size - sample_bytes):
                f.seek(offset)
                digest.update(f.read(sample_bytes))
    return digest.hexdigest()[:16]


def weights_fingerprint(path_or_hub_id: str) -> str:
    """The weights' fingerprint: a checkpoint folder's (w2s.hf_io.model_fingerprint), a single weights
    file's (a GGUF file), or a Hub id's own name."""
    if os.path.isfile(path_or_hub_id):
        return file_fingerprint(path_or_hub_id)
    return model_fingerprint(path_or_hub_id)


def normalize_path(path: str | None) -> str | None:
    """A path as settings record it: `./runs/x`, `runs/x/` and `runs//x` are the same run. Relative
    paths stay relative (a directory moved with its runs still resumes); a Hub id is unchanged."""
    return None if path is None else os.path.normpath(path)


def same_file(a: str, b: str) -> bool:
    """Do two paths name one file (existing or not)?"""
    if os.path.exists(a) and os.path.exists(b):
        return os.path.samefile(a, b)
    return os.path.abspath(a) == os.path.abspath(b)


# ---------------------------------------------------------------------------------------------
# Output paths, checked before anything heavy happens


def _check_creatable(path: str, flag: str) -> None:
    """`path` can be made: its nearest existing ancestor is a writable folder."""
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise UserError(f"{flag} {path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{flag} {path}: cannot write in {parent} (permission denied)")


def check_output_dir(path: str, flag: str = "--out") -> None:
    """`path` is (or can become) a writable folder."""
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise UserError(f"{flag} {path}: is a file; {flag} names a folder")
        if not os.access(path, os.W_OK | os.X_OK):
            raise UserError(f"{flag} {path}: cannot write in this folder (permission denied)")
        return
    _check_creatable(path, flag)


def check_output_file(path: str, flag: str = "--out") -> None:
    """`path` is (or can become) a writable file."""
    if os.path.isdir(path):
        raise UserError(f"{flag} {path}: is a folder; {flag} names a file (e.g. {os.path.join(path, 'samples.jsonl')})")
    if os.path.exists(path):
        if not os.access(path, os.W_OK):
            raise UserError(f"{flag} {path}: cannot write this file (permission denied)")
        return
    _check_creatable(path, flag)


def start_fresh_hint(flag: str = "--out") -> str:
    """How to start over, said the same way by every command that refuses a changed input."""
    return f"use another {flag}, or pass --overwrite to discard what is there and start fresh"


def remove_outputs(paths: list[str]) -> list[str]:
    """--overwrite: remove these files and folders (those that exist); returns the removed ones."""
    removed = []
    for path in paths:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.remove(path)
        else:
            continue
        removed.append(path)
    return removed
