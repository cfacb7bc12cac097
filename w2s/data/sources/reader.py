"""Reading an outside release as it is published: the one row reader every source module uses.

Reading order: a Git LFS pointer named as such; rows read with their line numbers from a JSON list (as
the paper's release and LLaMA-Factory store them) or from JSON Lines (GAIR's raw sets, PRM800K,
Math-Shepherd). Fields are checked with w2s/data/rows.py's `string_field` / `typed_field`. A bad row
fails in one line naming file and line, or, where the caller passes `skip` (GAIR's converter: bad
rows are skipped and counted), is handed to it instead.
"""
import json
import os
from typing import Callable, Iterator

from w2s.errors import MissingFileError, UserError

LFS_POINTER = b"version https://git-lfs"

Skip = Callable[[str, str], None]  # skip("file:line", why)


def refuse_lfs_pointer(path: str) -> None:
    """One line for a Git LFS pointer (what a clone without git-lfs holds in place of a large file)."""
    with open(path, "rb") as f:
        if f.read(len(LFS_POINTER)) == LFS_POINTER:
            raise UserError(f"{path}: a Git LFS pointer, not the data: fetch the real file (git lfs pull)")


def _decode(path: str, data: bytes, first_line: int = 1) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line_no = first_line + data.count(b"\n", 0, e.start)
        raise UserError(f"{path}:{line_no}: not UTF-8 text (byte 0x{data[e.start]:02x})") from None


def _bad(where: str, why: str, skip: Skip | None) -> None:
    if skip is None:
        raise UserError(f"{where}: {why}")
    skip(where, why)


def _object(row: object, where: str, skip: Skip | None) -> bool:
    if isinstance(row, dict):
        return True
    _bad(where, f"expected a JSON object, got {type(row).__name__}", skip)
    return False


def read_rows(path: str, skip: Skip | None = None) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each row of a JSON list or of a JSON Lines file.

    JSON Lines is read line by line. A JSON list is decoded element by element, the line number carried
    forward from the last element (counting from the file's start each time would be quadratic). A row
    that is not an object, or a JSON Lines line that is not JSON, fails or goes to `skip`; a broken list
    element always fails (one can't resume a list past it).
    """
    if not os.path.isfile(path):
        raise MissingFileError(f"{path}: no such file")
    refuse_lfs_pointer(path)  # PRM800K's files on GitHub are Git LFS pointers
    with open(path, "rb") as f:
        head = f.read(1024)
        if head.lstrip()[:1] != b"[":
            f.seek(0)
            for line_no, raw in enumerate(f, 1):
                if not raw.strip():
                    continue
                try:
                    row = json.loads(_decode(path, raw, line_no))
                except json.JSONDecodeError as e:
                    _bad(f"{path}:{line_no}", f"bad JSON: {e.msg}", skip)
                    continue
                if _object(row, f"{path}:{line_no}", skip):
                    yield line_no, row
            return
        text = _decode(path, head + f.read())
    decoder, pos, line_no, counted_to = json.JSONDecoder(), text.index("[") + 1, 1, 0
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text):
            raise UserError(f"{path}: unterminated JSON list")
        if text[pos] == "]":
            return
        line_no += text.count("\n", counted_to, pos)
        counted_to = pos
        try:
            row, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            raise UserError(f"{path}:{e.lineno}: bad JSON: {e.msg}") from None
        if _object(row, f"{path}:{line_no}", skip):
            yield line_no, row
