"""Supervision data: the prompt, SFT rows checked, and training sets mixed at a chosen error rate.

Reading order: the prompt every part of the project asks with; SFT rows ({"id", "messages", "meta"})
read and checked; the supervision pool (one format for the built-in world and the paper's data) and
the training sets mixed from it at a chosen outcome error rate. Neighbours: w2s/release.py reads the
paper's released files into a pool, w2s/sft.py turns SFT rows into token ids and a loss,
w2s/batches.py draws the global batches, data_prep.py writes it all to disk.
"""
import random
from dataclasses import dataclass, field

from w2s.errors import UserError
from w2s.jsonl import check_meta, check_object_with_id, read_rows_with_unique_ids

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
# The supervision pool: one format for the built-in world and the paper's data


@dataclass
class Solution:
    text: str
    correct: bool
    step_error_rate: float | None = None  # wrong steps / all steps, when it is known
    meta: dict = field(default_factory=dict)


@dataclass
class PoolItem:
    """A task with its gold answer, correct and incorrect solutions, sub-tasks and paraphrases (both PoolItems)."""
    id: str
    problem: str
    answer: str
    correct: list[Solution]
    incorrect: list[Solution] = field(default_factory=list)
    subtasks: list["PoolItem"] = field(default_factory=list)
    paraphrases: list["PoolItem"] = field(default_factory=list)
    meta: dict = field(default_factory=dict)


def choose_incorrect(ids: list[str], error_rate: float, seed: int, key: str, eligible: list[bool] | None = None) -> set[int]:
    """Indices of the examples that get an incorrect solution: exactly round(error_rate * n) of them.

    The choice walks one seeded random order of the examples and takes the first eligible ones,
    so the incorrect examples at a lower rate are a subset of those at a higher rate: conditions
    differ only in the examples the rate adds, not in which tasks happened to be drawn.
    """
    if not 0.0 <= error_rate <= 1.0:
        raise ValueError(f"error rate must be in [0, 1], got {error_rate}")
    wanted = int(error_rate * len(ids) + 0.5)
    order = sorted(range(len(ids)), key=lambda i: ids[i])  # a fixed start, whatever the input order
    random.Random(f"choose_incorrect/{seed}/{key}").shuffle(order)
    if eligible is not None:
        order = [i for i in order if eligible[i]]
    if len(order) < wanted:
        raise ValueError(f"{key}: outcome error rate {error_rate} needs {wanted} incorrect solutions, "
                         f"but only {len(order)} of {len(ids)} tasks have one")
    return set(order[:wanted])


def sft_row(row_id: str, item: PoolItem, solution: Solution, kind: str, **meta) -> dict:
    """A chat SFT example: user = problem + instruction, assistant = the solution; meta says what it is."""
    return {
        "id": row_id,
        "messages": [{"role": "user", "content": user_message(item.problem)}, {"role": "assistant", "content": solution.text}],
        "meta": {"task_id": item.id, "kind": kind, "answer": item.answer, "correct": solution.correct,
                 "step_error_rate": solution.step_error_rate, **item.meta, **solution.meta, **meta},
    }


def mixture(items: list[PoolItem], error_rate: float, seed: int, key: str, kind: str) -> tuple[list[dict], set[int]]:
    """One SFT row per item: a seeded error_rate share of them with an incorrect solution, the rest correct."""
    wrong = choose_incorrect([it.id for it in items], error_rate, seed, key, [bool(it.incorrect) for it in items])
    rows = [sft_row(it.id, it, it.incorrect[0] if i in wrong else it.correct[0], kind) for i, it in enumerate(items)]
    return rows, wrong


def build_sets(pool: list[PoolItem], hard_error: float, sub_error: float, seed: int) -> tuple[dict[str, list[dict]], dict]:
    """The study's training sets from a pool, and a report of anything left out.

    hard_full            one example per task (hard_error of them incorrect)
    easy_sub             one example per sub-task (sub_error of them incorrect)
    hard_full+easy_sub   both
    hard_full+paraphrase hard_full plus each task's paraphrases (the paper's "merge rephrased"
                         baseline); a paraphrase takes the same side (correct or incorrect) as its
                         task, so it adds wording, not new supervision
    hard_full_x2         hard_full twice (the paper's "4 epochs" baseline)
    """
    report = {"tasks_without_correct_solution": 0, "paraphrases_kept_correct_for_lack_of_incorrect": 0}
    hard_items = [it for it in pool if it.correct]
    report["tasks_without_correct_solution"] = len(pool) - len(hard_items)
    hard, wrong = mixture(hard_items, hard_error, seed, "hard_full", "hard_full")
    subs = [sub for it in hard_items for sub in it.subtasks if sub.correct]
    easy, _ = mixture(subs, sub_error, seed, "easy_sub", "easy_sub")
    paraphrases = []
    for i, it in enumerate(hard_items):
        for para in it.paraphrases:
            use_incorrect = i in wrong and bool(para.incorrect)
            report["paraphrases_kept_correct_for_lack_of_incorrect"] += i in wrong and not para.incorrect
            if para.correct or use_incorrect:
                paraphrases.append(sft_row(para.id, para, para.incorrect[0] if use_incorrect else para.correct[0], "paraphrase"))
    twice = [dict(row, id=row["id"] + "/x2") for row in hard]
    sets = {
        "hard_full": hard,
        "easy_sub": easy,
        "hard_full+easy_sub": hard + easy,
        "hard_full+paraphrase": hard + paraphrases,
        "hard_full_x2": hard + twice,
    }
    if not subs:
        del sets["easy_sub"], sets["hard_full+easy_sub"]
    if not paraphrases:
        del sets["hard_full+paraphrase"]
    return sets, report
