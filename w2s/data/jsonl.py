"""JSON Lines files: reading with errors that name the file and line, atomic writes, and outputs
that a killed run resumes (rows appended as they are made, settings kept beside them).

Reading order: reading (`read_jsonl_numbered` is the one place a line is decoded and parsed);
rows with unique ids; writing whole files; resumable outputs and their settings files; output files
over tasks (rows checked against the tasks, torchrun's rank files merged into one).
"""
import glob
import json
import os
import sys
from typing import Callable

from w2s.errors import MissingFileError, UserError


def file_stem(path: str) -> str:
    """A file's name without its folder and last extension (data/weak.jsonl -> weak): how a set or a
    source made from a file is named."""
    return os.path.basename(path).rsplit(".", 1)[0]


def _parse_line(raw: bytes, path: str, line_no: int) -> object:
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}:{line_no}: not UTF-8 text (byte 0x{raw[e.start]:02x} at column {e.start + 1}); "
                        "save the file as UTF-8") from None
    try:
        return json.loads(line)
    except json.JSONDecodeError as e:
        raise UserError(f"{path}:{line_no}: bad JSON: {e.msg} (column {e.colno})") from None


def read_jsonl_numbered(path: str) -> list[tuple[int, object]]:
    """(line number, parsed row) pairs, so that validation errors can name the line. Blank lines are allowed."""
    if not os.path.isfile(path):
        raise MissingFileError(f"{path}: no such file")
    out = []
    with open(path, "rb") as f:
        for line_no, raw in enumerate(f, 1):
            if raw.strip():
                out.append((line_no, _parse_line(raw, path, line_no)))
    return out


def read_jsonl(path: str) -> list[dict]:
    """Rows of a JSON Lines file. Bad JSON or bytes fail naming the file and line."""
    return [row for _, row in read_jsonl_numbered(path)]


def check_object_with_id(row: object, where: str, what: str = "a row") -> dict:
    """`row` if it is a JSON object with a non-empty string id (what every row format here starts
    with); else a UserError naming `where` ("file:line") and `what` ("a pair", "a step row")."""
    if not isinstance(row, dict):
        raise UserError(f"{where}: {what} must be a JSON object, got {type(row).__name__}")
    if not isinstance(row.get("id"), str) or not row["id"]:
        raise UserError(f"{where}: field 'id' must be a non-empty string, got {row.get('id')!r}")
    return row


def check_meta(row: dict, where: str) -> dict:
    """`row` if its optional 'meta' is an object."""
    if not isinstance(row.get("meta", {}), dict):
        raise UserError(f"{where}: field 'meta' must be an object")
    return row


def read_rows_with_unique_ids(path: str, check_row: Callable[[object, str], object], what: str) -> list[dict]:
    """The rows of a JSONL file, each passed to `check_row(row, "file:line")` (which raises on a bad row);
    ids must be unique, and the file must hold at least one row (`what` names them: "tasks", "examples")."""
    rows, first_line = [], {}
    for line_no, row in read_jsonl_numbered(path):
        where = f"{path}:{line_no}"
        check_row(row, where)
        if row["id"] in first_line:
            raise UserError(f"{where}: field 'id': duplicate id {row['id']!r} (first on line {first_line[row['id']]})")
        first_line[row["id"]] = line_no
        rows.append(row)
    if not rows:
        raise UserError(f"{path}: no {what}")
    return rows


def write_jsonl(path: str, rows: list[dict], cache: dict | None = None) -> None:
    """Write rows as JSON Lines, atomically (a killed run never leaves half a file behind).

    `cache` saves serializing the same row objects again for another file. It is keyed by id(row)
    and keeps the row itself, so a freed row's id, reused by a new row, never hits a stale line.
    """
    tmp = path + ".tmp"
    cache = {} if cache is None else cache
    with open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            cached = cache.get(id(row))
            if cached is None or cached[0] is not row:
                cached = cache[id(row)] = (row, json.dumps(row, ensure_ascii=False) + "\n")
            f.write(cached[1])
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# Resumable outputs: appended row by row; the settings that decide the rows in OUT.settings.json


def read_output_rows(path: str) -> list[tuple[int, dict]]:
    """(line number, row) of every complete row of an output file being appended to.

    A last line without its newline is what a killed run leaves behind: it is cut off the file
    (and reported), so appending can go on from a clean end. A bad line anywhere else is an error.
    """
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        data = f.read()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        print(f"{path}: dropped an incomplete last line ({len(data) - end} bytes, from an interrupted run)",
              file=sys.stderr)
        with open(path, "r+b") as f:
            f.truncate(end)
    rows = []
    for line_no, raw in enumerate(data[:end].split(b"\n")[:-1], 1):
        if not raw.strip():
            continue
        row = _parse_line(raw, path, line_no)
        if not isinstance(row, dict) or not isinstance(row.get("id"), str):
            raise UserError(f"{path}:{line_no}: field 'id': expected an object with a string id")
        rows.append((line_no, row))
    return rows


def append_row(f, row: dict) -> None:
    """One row, one write, flushed: a killed run loses at most the row being written."""
    f.write(json.dumps(row, ensure_ascii=False) + "\n")
    f.flush()


def settings_path(out: str) -> str:
    return out + ".settings.json"


def read_json_object(path: str, what: str = "a JSON object", advice: str = "") -> dict:
    """A JSON object from a file (a checkpoint's config.json, the settings a command keeps beside its output,
    a manifest); anything else is one line naming the file, `what` it should be and the `advice` for starting over."""
    if not os.path.isfile(path):
        raise MissingFileError(f"{path}: no such file")
    then = f"; {advice}" if advice else ""
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not {what} ({e}){then}") from None
    if not isinstance(value, dict):
        raise UserError(f"{path}: not {what} (a JSON {type(value).__name__}, not an object){then}")
    return value


def check_settings(out: str, settings: dict, begun: bool, older: str | None = None) -> None:
    """An output already begun must be resumed with the settings recorded beside it when it began
    (OUT.settings.json), or one file would mix rows from two models or two distributions.
    A begun output without a settings file is refused, unless `older` names the command whose older
    versions wrote none (sample.py): then resuming goes on with a warning."""
    path = settings_path(out)
    if not begun:
        return
    if not os.path.exists(path):
        if older:
            print(f"{out}: no {path} (written by an older {older}): cannot check that this run's settings "
                  "match the ones its rows were made with", file=sys.stderr)
            return
        raise UserError(f"{out}: no {os.path.basename(path)} beside it, so the settings its rows were made with "
                        "are unknown; use another --out, or pass --overwrite to discard it and start fresh")
    recorded = read_json_object(path, "a settings file",
                                "use another --out, or pass --overwrite to discard the output and start fresh")
    # Both key sets: a setting recorded then but gone now differs too. A key missing on one side
    # reads as None, so a setting added to a command later (None when unused) keeps older outputs resumable.
    keys = list(settings) + [key for key in recorded if key not in settings]
    differ = [f"{key}: recorded {json.dumps(recorded.get(key))}, now {json.dumps(settings.get(key))}"
              for key in keys if recorded.get(key) != settings.get(key)]
    if differ:
        raise UserError(f"{path}: {out} was made with other settings or inputs ({'; '.join(differ)}); rerun with "
                        "the recorded ones to resume, use another --out, "
                        "or pass --overwrite to discard it and start fresh")


def write_settings(out: str, settings: dict) -> None:
    tmp = settings_path(out) + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(settings, indent=1) + "\n")
    os.replace(tmp, settings_path(out))


# ---------------------------------------------------------------------------------------------
# Output files over tasks: rows checked against the tasks, torchrun's rank files merged


def check_output_row(row: dict, where: str, task_ids: set, n: int, list_field: str) -> None:
    """A row already in an output file must belong to these tasks and settings, or resuming would mix runs."""
    if row["id"] not in task_ids:
        raise UserError(f"{where}: field 'id': {row['id']!r} is not among the tasks; is this output from another run?")
    if not isinstance(row.get(list_field), list) or len(row[list_field]) != n:
        got = len(row[list_field]) if isinstance(row.get(list_field), list) else row.get(list_field)
        raise UserError(f"{where}: field {list_field!r} has {got} entries but --n is {n}; "
                        "use the --n of the run that wrote this file, or another --out")


def rank_files(out: str) -> list[str]:
    """OUT.rank<r>: what each process of a torchrun run appends to."""
    return sorted(glob.glob(glob.escape(out) + ".rank*"))


def merge_outputs(out: str, tasks: list[dict], n: int, list_field: str = "samples") -> list[dict]:
    """Gather the rows of `out` and of any rank files OUT.rank<r> (a torchrun run, finished or not),
    check them, and rewrite `out` alone, in task order. Returns the rows."""
    task_ids = {task["id"] for task in tasks}
    found, duplicates = {}, 0
    parts = rank_files(out)
    for path in [out] + parts:
        for line_no, row in read_output_rows(path):
            check_output_row(row, f"{path}:{line_no}", task_ids, n, list_field)
            if row["id"] in found:
                duplicates += 1  # merged before, but killed before the rank file was removed: same row
                continue
            found[row["id"]] = row
    rows = [found[task["id"]] for task in tasks if task["id"] in found]
    if parts or duplicates or os.path.exists(out):
        write_jsonl(out, rows)
    for path in parts:
        os.remove(path)
    return rows
