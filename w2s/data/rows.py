"""Rows every part of the data package shares: the prompt, field checks, SFT rows, verifier step rows,
preference pairs.

Reading order: the prompt every part of the project asks with (training data, sampling, evaluation);
a field checked in one line naming file, line and field (every source and sample reader uses these);
SFT rows ({"id", "messages", "meta"}) read and checked; verifier step rows made, and a response split
into steps; preference pair rows made. Neighbours: w2s/data/world/sets.py mixes SFT rows from a pool,
w2s/sft.py turns them into token ids and a loss.
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
# Field checks: one line naming file, line and field


def string_field(obj: dict, name: str, where: str, allow_empty: bool = False) -> str:
    """A string field of a released row (`a.b` reaches into a nested object; a number reads as its text);
    fails naming file, line and field."""
    value = obj
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            raise UserError(f"{where}: missing field '{name}'")
        value = value[part]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise UserError(f"{where}: field '{name}' must be a non-empty string, got {value!r}"[:300])
    return value


def typed_field(obj: object, name: str, kind: type, where: str, label: str | None = None):
    """Field `name` of a row, which must be of type `kind` (a bool is no int); `label` names it in the error."""
    value = obj.get(name) if isinstance(obj, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise UserError(f"{where}: field {label or name!r} must be a {kind.__name__}, got {value!r}"[:300])
    return value


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


# ---------------------------------------------------------------------------------------------
# Responses split into steps (the verifier's unit: w2s/verifier.py scores each, w2s/prm.py trains on them)

SPLITS = ("lines", "blank")  # free-form text: one step per non-empty line, or per blank-line-separated paragraph


def split_steps(text: str, split: str = "lines") -> list[str]:
    """A response's steps: its non-empty lines ("lines") or its blank-line-separated paragraphs ("blank").
    Never empty: a response with no text is one empty step (it still gets a verdict)."""
    if split == "lines":
        steps = [line.strip() for line in text.splitlines()]
    elif split == "blank":
        steps, paragraph = [], []
        for line in text.splitlines() + [""]:
            if line.strip():
                paragraph.append(line.rstrip())
            elif paragraph:
                steps.append("\n".join(paragraph).strip())
                paragraph = []
    else:
        raise ValueError(f"unknown step split {split!r}; choose from {', '.join(SPLITS)}")
    steps = [s for s in steps if s]
    return steps or [text.strip()]


# ---------------------------------------------------------------------------------------------
# Preference pair rows, TRL's conversational format (checked and read by w2s/dpo.py):
# {"id", "prompt": [user message], "chosen": [assistant message], "rejected": [assistant message], "meta"}


def pair_row(row_id: str, prompt: str, chosen: str, rejected: str, **meta) -> dict:
    """A pair row from texts: the prompt as one user turn, each response as one assistant turn."""
    return {"id": row_id, "prompt": [{"role": "user", "content": prompt}],
            "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}], "meta": meta}
