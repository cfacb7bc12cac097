"""Step rows for verifiers ({"id", "prompt": [user message], "steps": [str, ...], "labels": [bool, ...]}),
made from a policy's samples (sample.py output). PRM800K and Math-Shepherd give the same rows from their
releases (w2s/data/sources/prm800k.py, math_shepherd.py).

Reading order: labels from the built-in world's exact step checker; step rows from samples. Every prompt
is the project's user message (the problem and its step-by-step instruction), the one evaluate.py's
re-ranking scores with, so a verifier is trained and used on the same layout (w2s.verifier.layout).

Labels. In the built-in world every step is checked exactly: a step line `a op b = c` is good when it
applies the task's next operation to the amount so far and computes it right (miniworld.step_errors:
an error counts once, where it is made); the answer line is good when the final answer is right; any
other line is bad (it is no step of the world's solutions). Free-form text has no step checker: only the
outcome is known, so it needs --outcome. With --outcome every step carries the solution's outcome (one
label per solution, repeated at each step, as Cobbe et al.'s verifiers predict the outcome at every
token): an outcome reward model, used by its last verdict. `oprm_rows` gives both rows of each sample
(Sun et al. 2024's OPRM: one model trained on the process and the outcome data together).

Balance. A good policy's samples are mostly good steps, and a verifier trained on them learns to say
"good" to everything. `balance_rows` drops whole rows (a row's steps only make sense together), at
random with a seed, until good and bad steps are as near equal as whole rows allow.
"""
import random
from collections import Counter

from w2s.data.jsonl import read_jsonl_numbered
from w2s.data.rows import add_step_row, split_steps
from w2s.data.selection.samples import finish_reasons
from w2s.data.world import miniworld
from w2s.errors import UserError
from w2s.grader import grade


# ---------------------------------------------------------------------------------------------
# The built-in world: exact step labels


def world_step_labels(steps: list[str], task: miniworld.Task, correct: bool) -> list[bool]:
    """A label per line-step of a solution to `task` (see the module's docstring)."""
    step_lines = [miniworld.Line(int(m[1]), m[2], int(m[3]), int(m[4]))
                  for m in map(miniworld.STEP_LINE.match, steps) if m]
    errors = iter(miniworld.line_errors(step_lines, task)[:len(step_lines)])
    labels = []
    for step in steps:
        if miniworld.STEP_LINE.match(step):
            labels.append(not next(errors))
        elif "\\boxed" in step or step.lower().startswith("the answer is"):
            labels.append(correct)
        else:
            labels.append(False)
    return labels


# ---------------------------------------------------------------------------------------------
# sample.py output -> step rows


def step_rows_from_samples(path: str, outcome: bool = False, split: str = "lines") -> tuple[list[dict], Counter]:
    """One step row per sample of {"id", "problem", "answer", "samples", "correct"} rows. Built-in world
    problems get exact step labels (unless `outcome`); others need `outcome` (only the verdict is known).
    Row ids are "<task id>/s<k>"; each row's "meta" says where its labels come from."""
    rows, report = [], Counter()
    for line_no, row in read_jsonl_numbered(path):
        where = f"{path}:{line_no}"
        if not isinstance(row, dict):
            raise UserError(f"{where}: a samples row must be a JSON object")
        for name in ("id", "problem", "answer"):
            if not isinstance(row.get(name), str) or not row[name].strip():
                raise UserError(f"{where}: field {name!r} must be a non-empty string (sample.py output rows)")
        samples, verdicts = row.get("samples"), row.get("correct")
        if not isinstance(samples, list) or not samples or not all(isinstance(x, str) for x in samples):
            raise UserError(f"{where}: field 'samples' must be a non-empty list of strings")
        if verdicts is not None and (not isinstance(verdicts, list) or len(verdicts) != len(samples)
                                     or not all(isinstance(v, bool) for v in verdicts)):
            raise UserError(f"{where}: field 'correct' must be a list of booleans, one per sample")
        reasons = finish_reasons(row, where)
        task = None
        if not outcome:
            try:
                task = miniworld.parse_problem(row["problem"])
            except ValueError:
                raise UserError(f"{where}: field 'problem' is not a built-in world problem, so its steps cannot be "
                                "checked and only the outcome is known; pass --outcome") from None
        for k, text in enumerate(samples):
            # A sample cut off at the length limit states no answer: its outcome is wrong, whatever it holds.
            correct = reasons[k] == "stop" and (verdicts[k] if verdicts is not None else grade(text, row["answer"]))
            steps = split_steps(text, split)
            labels = world_step_labels(steps, task, correct) if task is not None else [correct] * len(steps)
            report["samples"] += 1
            report["correct samples"] += correct
            add_step_row(rows, report, f"{row['id']}/s{k}", row["problem"], steps, labels,
                         {"task_id": row["id"], "correct": correct,
                          "labels": "world step checker" if task else "outcome"})
    if not rows:
        raise UserError(f"{path}: no samples")
    return rows, report


def oprm_rows(path: str, split: str = "lines") -> tuple[list[dict], Counter]:
    """An OPRM's rows (Sun et al. 2024): each sample twice, once with the world's exact step labels (a
    PRM's row) and once with its outcome at every step (an ORM's row, id suffixed "/outcome"), so one
    model learns both to find the wrong step and to judge the whole solution. (The outcome as the last
    step's label alone would change nothing here: the world already labels the answer line by the outcome.)"""
    process, report = step_rows_from_samples(path, False, split)
    outcome, outcome_report = step_rows_from_samples(path, True, split)
    for row in outcome:
        row["id"] += "/outcome"
    report.update({f"outcome-labelled {k}": v for k, v in outcome_report.items() if k in ("steps", "good steps")})
    return process + outcome, report


def balance_rows(rows: list[dict], seed: int = 0) -> tuple[list[dict], dict]:
    """Drop whole rows, chosen at random (`seed`), until good and bad step labels are as near equal as
    whole rows allow: a row is dropped only when it holds more of the commoner label than of the other,
    and no more of that excess than is left (so the counts never cross). Rows of one label only are
    kept as they are. Returns the kept rows, in their
    order, and what was dropped."""
    good = sum(sum(r["labels"]) for r in rows)
    bad = sum(len(r["labels"]) for r in rows) - good
    common = good > bad  # the label to drop steps of
    # With one label only there is nothing to balance against: dropping would empty the set.
    excess = abs(good - bad) if good and bad else 0
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    dropped = set()
    for i in order:
        if excess == 0:
            break
        labels = rows[i]["labels"]
        lean = sum(labels) - (len(labels) - sum(labels)) if common else (len(labels) - sum(labels)) - sum(labels)
        if 0 < lean <= excess:
            dropped.add(i)
            excess -= lean
    kept = [row for i, row in enumerate(rows) if i not in dropped]
    kept_good = sum(sum(r["labels"]) for r in kept)
    report = {"rows before": len(rows), "good steps before": good, "bad steps before": bad,
              "rows dropped": len(dropped), "steps dropped": sum(len(rows[i]["labels"]) for i in dropped),
              "good steps after": kept_good, "bad steps after": sum(len(r["labels"]) for r in kept) - kept_good,
              "seed": seed}
    return kept, report
