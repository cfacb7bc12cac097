"""Built sets: a supervision pool, training sets mixed from it at a chosen outcome error rate, and
their names.

Reading order: the pool (one format for the built-in world and the paper's release); the training sets
mixed from it at a chosen error rate; their names, which carry the quality they were built at, so one
data directory holds many variants and a name alone says how to build it (train.py uses this to build
a missing built-in set with w2s.data.datadir.build_builtin). Neighbours: w2s/data/world/miniworld.py and
w2s/data/sources/paper.py fill a pool, w2s/data/datadir.py writes the sets to disk.
"""
import random
import re
from dataclasses import dataclass, field

from w2s.data.rows import user_message

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
    """A task with its gold answer, correct and incorrect solutions, sub-tasks, prefix sub-tasks and paraphrases
    (all PoolItems; only the built-in world has prefix sub-tasks: its first steps asked in its own text)."""
    id: str
    problem: str
    answer: str
    correct: list[Solution]
    incorrect: list[Solution] = field(default_factory=list)
    subtasks: list["PoolItem"] = field(default_factory=list)
    paraphrases: list["PoolItem"] = field(default_factory=list)
    prefixes: list["PoolItem"] = field(default_factory=list)
    meta: dict = field(default_factory=dict)


def choose_incorrect(ids: list[str], error_rate: float, seed: int, key: str,
                     eligible: list[bool] | None = None) -> set[int]:
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
        "messages": [{"role": "user", "content": user_message(item.problem)},
                     {"role": "assistant", "content": solution.text}],
        "meta": {"task_id": item.id, "kind": kind, "answer": item.answer, "correct": solution.correct,
                 "step_error_rate": solution.step_error_rate, **item.meta, **solution.meta, **meta},
    }


def mixture(items: list[PoolItem], error_rate: float, seed: int, key: str, kind: str) -> tuple[list[dict], set[int]]:
    """One SFT row per item: a seeded error_rate share of them with an incorrect solution, the rest correct."""
    wrong = choose_incorrect([it.id for it in items], error_rate, seed, key, [bool(it.incorrect) for it in items])
    rows = [sft_row(it.id, it, it.incorrect[0] if i in wrong else it.correct[0], kind) for i, it in enumerate(items)]
    return rows, wrong


def build_sets(pool: list[PoolItem], hard_error: float, sub_error: float,
               seed: int) -> tuple[dict[str, list[dict]], dict]:
    """The study's training sets from a pool, and a report of anything left out.

    hard_full            one example per task (hard_error of them incorrect)
    easy_sub             one example per sub-task (sub_error of them incorrect)
    easy_sub_prefix      one example per prefix sub-task: the whole task's text asking for the amount after
                         its first 1 or 2 steps (sub_error of them incorrect), so no sub-task can be solved
                         by applying the sentences right before the question
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
    prefixes = [pre for it in hard_items for pre in it.prefixes if pre.correct]
    easy_prefix, _ = mixture(prefixes, sub_error, seed, "easy_sub_prefix", "easy_sub_prefix")
    paraphrases = []
    for i, it in enumerate(hard_items):
        for para in it.paraphrases:
            use_incorrect = i in wrong and bool(para.incorrect)
            report["paraphrases_kept_correct_for_lack_of_incorrect"] += i in wrong and not para.incorrect
            if para.correct or use_incorrect:
                paraphrases.append(sft_row(para.id, para, para.incorrect[0] if use_incorrect else para.correct[0],
                                           "paraphrase"))
    twice = [dict(row, id=row["id"] + "/x2") for row in hard]
    sets = {
        "hard_full": hard,
        "easy_sub": easy,
        "easy_sub_prefix": easy_prefix,
        "hard_full+easy_sub": hard + easy,
        "hard_full+paraphrase": hard + paraphrases,
        "hard_full_x2": hard + twice,
    }
    if not subs:
        del sets["easy_sub"], sets["hard_full+easy_sub"]
    if not prefixes:
        del sets["easy_sub_prefix"]
    if not paraphrases:
        del sets["hard_full+paraphrase"]
    return sets, report


# ---------------------------------------------------------------------------------------------
# Set names

SET_KINDS = ("foundation", "hard_full", "easy_sub", "hard_full+easy_sub", "hard_full+paraphrase", "hard_full_x2",
             "easy_sub_prefix")
SUB_KINDS = ("easy_sub", "easy_sub_prefix")  # the kinds made of sub-tasks only (their quality is sub_error's)


def quality_tag(error_rate: float, profile: str) -> str:
    """'' at outcome error 0; else '_e0.9', plus '_low'/'_high' for a non-default step profile."""
    if error_rate == 0:
        return ""
    return f"_e{error_rate:g}" + ("" if profile == "mixed" else f"_{profile}")


def set_names(hard_error: float, sub_error: float, profile: str = "mixed") -> dict[str, str]:
    """Set kind -> file name stem in DIR, for one quality setting."""
    hard = "hard_full" + quality_tag(hard_error, profile)
    sub = "easy_sub" + quality_tag(sub_error, profile)
    return {"foundation": "foundation", "hard_full": hard, "easy_sub": sub, "hard_full+easy_sub": f"{hard}+{sub}",
            "hard_full+paraphrase": f"{hard}+paraphrase", "hard_full_x2": f"{hard}_x2",
            "easy_sub_prefix": "easy_sub_prefix" + quality_tag(sub_error, profile)}


_PART = re.compile(r"(hard_full|easy_sub_prefix|easy_sub)(?:_e([0-9.]+)(?:_(low|high))?)?")


def builtin_set_args(name: str) -> dict | None:
    """The keyword arguments of w2s.data.datadir.build_builtin (kinds, hard_errors, sub_errors, profiles) that
    build the built-in world's set `name`, or None if no built-in set has that name."""
    if name == "foundation":
        return {"kinds": ["foundation"], "hard_errors": [0.0], "sub_errors": [0.0], "profiles": ["mixed"]}
    first, plus, second = name.partition("+")
    x2 = not plus and first.endswith("_x2")
    parts = ([_PART.fullmatch(first[:-3] if x2 else first)]
             + ([] if not plus or second == "paraphrase" else [_PART.fullmatch(second)]))
    if not all(parts):
        return None
    rates = {m[1]: float(m[2] or 0) for m in parts}
    profiles = {m[3] for m in parts if m[3]}
    if len(profiles) > 1 or any(not 0 <= r <= 1 for r in rates.values()):
        return None
    profile = profiles.pop() if profiles else "mixed"
    hard_error, sub_error = rates.get("hard_full", 0.0), rates.get("easy_sub", rates.get("easy_sub_prefix", 0.0))
    # Round trip: only the names this script writes ('hard_full_e0.90' is not how it writes 0.9).
    kinds = [k for k, stem in set_names(hard_error, sub_error, profile).items() if stem == name]
    if not kinds:
        return None
    kind = kinds[0]
    return {"kinds": [kind], "hard_errors": [hard_error], "sub_errors": [sub_error], "profiles": [profile]}
