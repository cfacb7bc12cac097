"""Step rows for verifiers ({"id", "prompt": [user message], "steps": [str, ...], "labels": [bool, ...]}),
made from a policy's samples (sample.py output), from PRM800K, or from Math-Shepherd.

Reading order: labels from the built-in world's exact step checker; step rows from samples; the
PRM800K and Math-Shepherd converters. Every prompt is the project's user message (the problem and its
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
import os
from collections import Counter

from w2s import miniworld
from w2s.data import user_message
from w2s.errors import MissingFileError, UserError
from w2s.jsonl import read_jsonl_numbered
from w2s.release import refuse_lfs_pointer
from w2s.verifier import split_steps


def prompt_for(problem: str) -> list[dict]:
    return [{"role": "user", "content": user_message(problem)}]


def add_step_row(rows: list[dict], report: Counter, row_id: str, problem: str, steps: list[str], labels: list[bool],
                 meta: dict) -> None:
    """Append a step row to `rows`, and count its steps and good steps in `report`."""
    rows.append({"id": row_id, "prompt": prompt_for(problem), "steps": steps, "labels": labels, "meta": meta})
    report["steps"] += len(steps)
    report["good steps"] += sum(labels)


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
    from w2s.grader import grade

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
        from w2s.selection import finish_reasons

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


# ---------------------------------------------------------------------------------------------
# PRM800K and Math-Shepherd, from downloaded copies


def _read(path: str) -> list[tuple[int, object]]:
    if not os.path.isfile(path):
        raise MissingFileError(f"{path}: no such file")
    refuse_lfs_pointer(path)  # PRM800K's files on GitHub are Git LFS pointers
    return read_jsonl_numbered(path)


def _field(obj: object, name: str, kind: type, where: str, label: str | None = None):
    value = obj.get(name) if isinstance(obj, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise UserError(f"{where}: field {label or name!r} must be a {kind.__name__}, got {value!r}"[:300])
    return value


def from_prm800k(path: str) -> tuple[list[dict], Counter]:
    """PRM800K rows {"question": {"problem", ...}, "label": {"steps": [{"completions": [{"text", "rating"}],
    "chosen_completion"}]}} -> step rows along the labeller's path: each step's chosen completion; where
    none was chosen (the labeller stopped), a completion rated -1 if there is one (else the first), and
    the row ends. A rating of -1 is a bad step; 0 and 1 are good. A completion without a rating ends the
    row before it (counted); a row left with no step is skipped (counted)."""
    rows, report = [], Counter()
    stem = os.path.splitext(os.path.basename(path))[0]
    for line_no, row in _read(path):
        where = f"{path}:{line_no}"
        problem = _field(_field(row, "question", dict, where), "problem", str, where, "question.problem")
        label_steps = _field(_field(row, "label", dict, where), "steps", list, where, "label.steps")
        steps, labels = [], []
        for i, step in enumerate(label_steps):
            completions = _field(step, "completions", list, where, f"label.steps[{i}].completions")
            chosen = step.get("chosen_completion") if isinstance(step, dict) else None
            if chosen is not None and (not isinstance(chosen, int) or not 0 <= chosen < len(completions)):
                raise UserError(f"{where}: field 'label.steps[{i}].chosen_completion' is {chosen!r}, "
                                f"not an index into its {len(completions)} completions")
            if chosen is None:
                pick = next((c for c in completions if isinstance(c, dict) and c.get("rating") == -1), None)
                pick = pick if pick is not None else (completions[0] if completions else None)
            else:
                pick = completions[chosen]
            if pick is None:
                break
            text = _field(pick, "text", str, where, f"label.steps[{i}].completions[].text")
            rating = pick.get("rating")
            if rating is None:
                report["unrated steps (row ends there)"] += 1
                break
            if rating not in (-1, 0, 1):
                raise UserError(f"{where}: field 'label.steps[{i}].completions[].rating' must be -1, 0 or 1, got {rating!r}")
            steps.append(text)
            labels.append(rating != -1)
            if chosen is None:
                break
        if not steps:
            report["rows without a rated step (skipped)"] += 1
            continue
        report["rows"] += 1
        add_step_row(rows, report, f"{stem}:{line_no}", problem, steps, labels, {"source": "prm800k"})
    if not rows:
        raise UserError(f"{path}: no PRM800K row with a rated step")
    return rows, report


SHEPHERD_TAG = "ки"


def from_math_shepherd(path: str) -> tuple[list[dict], Counter]:
    """Math-Shepherd rows {"input": question and steps, each step followed by "ки", "label": the same text
    with "+" (good) or "-" (bad) in place of each tag} -> step rows. The question is the text before
    "Step 1:" (Math-Shepherd's own step prefix, kept in the steps)."""
    rows, report = [], Counter()
    stem = os.path.splitext(os.path.basename(path))[0]
    for line_no, row in _read(path):
        where = f"{path}:{line_no}"
        text, labelled = _field(row, "input", str, where), _field(row, "label", str, where)
        pieces = text.split(SHEPHERD_TAG)
        if len(pieces) < 2:
            raise UserError(f"{where}: field 'input' has no {SHEPHERD_TAG!r} step tag")
        labels, pos = [], 0
        for i, piece in enumerate(pieces[:-1]):
            if not labelled.startswith(piece, pos) or pos + len(piece) >= len(labelled) \
                    or labelled[pos + len(piece)] not in "+-":
                raise UserError(f"{where}: field 'label' does not match 'input' with '+' or '-' in place of step tag "
                                f"{i + 1}")
            pos += len(piece)
            labels.append(labelled[pos] == "+")
            pos += 1
        start = pieces[0].find("Step 1:")
        if start <= 0:
            raise UserError(f"{where}: field 'input': cannot tell the question from the first step (no 'Step 1:' "
                            "after the question)")
        question = pieces[0][:start]
        steps = [pieces[0][start:].strip()] + [p.strip() for p in pieces[1:-1]]
        report["rows"] += 1
        add_step_row(rows, report, f"{stem}:{line_no}", question, steps, labels,
                     {"source": "math-shepherd", **({"task": row["task"]} if isinstance(row.get("task"), str) else {})})
    if not rows:
        raise UserError(f"{path}: no Math-Shepherd rows")
    return rows, report
