"""Step rows for verifiers ({"id", "prompt": [user message], "steps": [str, ...], "labels": [bool, ...]}),
made from a policy's samples (sample.py output). PRM800K and Math-Shepherd give the same rows from their
releases (w2s/data/sources/prm800k.py, math_shepherd.py).

Reading order: labels from the built-in world's exact step checker; step rows from samples. Every prompt is the project's user message (the problem and its
step-by-step instruction), the one evaluate.py's re-ranking scores with, so a verifier is trained and
used on the same layout (w2s.verifier.layout).

Labels. In the built-in world every step is checked exactly: a step line `a op b = c` is good when it
applies the task's next operation to the amount so far and computes it right (miniworld.step_errors:
an error counts once, where it is made); the answer line is good when the final answer is right; any
other line is bad (it is no step of the world's solutions). Free-form text has no step checker: only the
outcome is known, so it needs --outcome. With --outcome every step carries the solution's outcome (one
label per solution, repeated at each step, as Cobbe et al.'s verifiers predict the outcome at every
token): an outcome reward model, used by its last verdict.
"""
from collections import Counter

from w2s.data.jsonl import read_jsonl_numbered
from w2s.data.rows import add_step_row
from w2s.data.selection.samples import finish_reasons
from w2s.data.world import miniworld
from w2s.errors import UserError
from w2s.grader import grade
from w2s.verifier import split_steps


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
                         {"task_id": row["id"], "correct": correct, "labels": "world step checker" if task else "outcome"})
    if not rows:
        raise UserError(f"{path}: no samples")
    return rows, report
