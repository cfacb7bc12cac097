"""Rows every part of the data package shares: the prompt, and SFT rows read and checked.

Reading order: the prompt every part of the project asks with (training data, sampling, evaluation);
SFT rows ({"id", "messages", "meta"}) read and checked. Neighbours: w2s/data/world/sets.py mixes SFT
rows from a pool, w2s/sft.py turns them into token ids and a loss.
"""
from collections import Counter

from w2s.data.jsonl import check_meta, check_object_with_id, read_rows_with_unique_ids
from w2s.errors import UserError

# One instruction for every prompt the project makes (SFT data, sampling, evaluation), so a
# model trained on our data is asked questions exactly the way it was taught.
INSTRUCTION = "Solve the problem step by step. Put the final answer in \\boxed{}."

ROLES = ("system", "user", "assistant")


def user_message(problem: str) -> str:
    """The user turn for a math problem: the problem, then the step-by-step / \\boxed{} instruction."""
    return f"{problem.strip()}\n{INSTRUCTION}"


def problem_from_user_message(content: str) -> str:
    """Inverse of `user_message`: the problem text without the instruction line."""
    suffix = "\n" + INSTRUCTION
    return content[: -len(suffix)].strip() if content.endswith(suffix) else content.strip()


# ---------------------------------------------------------------------------------------------
# SFT rows


def validate_sft_row(row: object, where: str) -> dict:
    """Check one SFT row {"id", "messages": [{"role", "content"}, ...], "meta"}; `where` is "file:line"."""
    check_object_with_id(row, where)
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages:
        raise UserError(f"{where}: field 'messages' must be a non-empty list, got {messages!r}"[:300])
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise UserError(f"{where}: field 'messages[{i}]' must be an object")
        if message.get("role") not in ROLES:
            raise UserError(f"{where}: field 'messages[{i}].role' must be one of {ROLES}, got {message.get('role')!r}")
        if not isinstance(message.get("content"), str):
            raise UserError(f"{where}: field 'messages[{i}].content' must be a string")
    if not any(m["role"] == "assistant" for m in messages):
        raise UserError(f"{where}: field 'messages' has no assistant turn: nothing to train on")
    return check_meta(row, where)


def load_sft_examples(path: str) -> list[dict]:
    """Read and validate a chat SFT JSONL file. Any bad row fails with file, line and field; ids must be unique."""
    return read_rows_with_unique_ids(path, validate_sft_row, "examples")


# ---------------------------------------------------------------------------------------------
# Verifier step rows: {"id", "prompt": [user message], "steps": [str, ...], "labels": [bool, ...], "meta"}


def prompt_for(problem: str) -> list[dict]:
    return [{"role": "user", "content": user_message(problem)}]


def add_step_row(rows: list[dict], report: Counter, row_id: str, problem: str, steps: list[str], labels: list[bool],
                 meta: dict) -> None:
    """Append a step row to `rows`, and count its steps and good steps in `report`."""
    rows.append({"id": row_id, "prompt": prompt_for(problem), "steps": steps, "labels": labels, "meta": meta})
    report["steps"] += len(steps)
    report["good steps"] += sum(labels)
