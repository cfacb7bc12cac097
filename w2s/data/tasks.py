"""Task rows ({"id", "problem", "answer"?, ...}) and the few-shot examples shown before them: what
sample.py and evaluate.py read.

Reading order: task rows read and checked; few-shot examples read from an SFT set, a sample.py output
or {"problem", "solution"} rows; the shots chosen (weak-ICL: the strong model shown a few of the weak
model's solved examples), never the task itself.
"""
import os
import random
import sys

from w2s.data.jsonl import read_jsonl_numbered, read_rows_with_unique_ids
from w2s.data.rows import problem_from_user_message
from w2s.errors import MissingFileError, UserError

# ---------------------------------------------------------------------------------------------
# Task rows


def load_tasks(path: str) -> list[dict]:
    """Read and check a tasks JSONL file: {"id": str, "problem": str, "answer": str (optional), ...}.

    Other fields are kept as they are. A numeric answer is turned into its string. Any bad row fails
    naming the file, the line and the field; ids must be unique.
    """
    if not os.path.isfile(path):
        raise MissingFileError(f"{path}: no such tasks file")
    return read_rows_with_unique_ids(path, check_task_row, "tasks")


def check_task_row(row: object, where: str) -> None:
    """One task row; `where` is "file:line". A numeric answer is turned into its string, in place."""
    if not isinstance(row, dict):
        raise UserError(f"{where}: a task must be a JSON object, got {type(row).__name__}")
    if not isinstance(row.get("id"), str) or not row["id"]:
        raise UserError(f"{where}: field 'id' must be a non-empty string, got {row.get('id')!r}")
    if not isinstance(row.get("problem"), str) or not row["problem"].strip():
        raise UserError(f"{where}: field 'problem' must be a non-empty string, got {row.get('problem')!r}"[:300])
    if "answer" in row:
        answer = row["answer"]
        if isinstance(answer, (int, float)) and not isinstance(answer, bool):
            row["answer"] = str(answer)
        elif not isinstance(answer, str) or not answer.strip():
            raise UserError(f"{where}: field 'answer' must be a non-empty string, got {answer!r}"[:300])


# ---------------------------------------------------------------------------------------------
# Few-shot examples (weak-ICL: the strong model shown a few of the weak model's solved examples)


def load_few_shot(path: str) -> list[dict]:
    """Solved examples as {"id", "problem", "solution"}, from an SFT set ({"messages"}: the user turn's
    problem, the last assistant turn), a sample.py output ({"problem", "samples"}: the first sample)
    or rows {"problem", "solution"}. A row without an id is named by its line. A sample.py row whose
    first sample is empty (a model that answered nothing) is skipped, and counted on stderr."""
    if not os.path.isfile(path):
        raise MissingFileError(f"{path}: no such few-shot file")
    out, empty = [], 0
    for line_no, row in read_jsonl_numbered(path):
        where = f"{path}:{line_no}"
        if not isinstance(row, dict):
            raise UserError(f"{where}: a row must be a JSON object")
        row_id = str(row.get("id", f"line{line_no}"))
        if isinstance(row.get("messages"), list):
            turns = {m.get("role"): m.get("content") for m in row["messages"] if isinstance(m, dict)}
            problem, solution = problem_from_user_message(str(turns.get("user", ""))), turns.get("assistant")
        elif isinstance(row.get("samples"), list) and row["samples"]:
            problem, solution = row.get("problem"), row["samples"][0]
            if isinstance(solution, str) and not solution.strip():
                empty += 1
                continue
        else:
            problem, solution = row.get("problem"), row.get("solution")
        for field, value in (("problem", problem), ("solution", solution)):
            if not isinstance(value, str) or not value.strip():
                raise UserError(f"{where}: field '{field}' (or messages / samples giving it) "
                                "must be a non-empty string")
        out.append({"id": row_id, "problem": problem, "solution": solution})
    if empty:
        print(f"{path}: {empty} rows skipped as few-shot examples (their first sample is empty)", file=sys.stderr)
    if not out:
        raise UserError(f"{path}: no few-shot examples")
    return out


def choose_shots(examples: list[dict], shots: int, seed: int) -> list[dict]:
    """shots + 1 examples drawn by `seed` (the same whatever the file's order): a task gets the first
    `shots` of them that are not the task itself (`shots_for`), so every task sees the same ones
    except a task that is among them."""
    if shots < 0:
        raise UserError(f"--shots must be >= 0, got {shots}")
    if shots and len(examples) < shots + 1:
        raise UserError(f"--shots {shots} needs at least {shots + 1} few-shot examples (one spare, for a task "
                        f"that is itself among them); the file has {len(examples)}")
    ordered = sorted(examples, key=lambda e: (e["id"], e["problem"]))
    return random.Random(f"few_shot/{seed}").sample(ordered, shots + 1) if shots else []


def shots_for(task: dict, chosen: list[dict], shots: int) -> list[dict]:
    """The shots a task's prompt shows: never the task itself (same id or same problem)."""
    return [e for e in chosen if e["id"] != task["id"] and e["problem"].strip() != task["problem"].strip()][:shots]
