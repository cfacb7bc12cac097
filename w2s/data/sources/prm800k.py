"""PRM800K (Lightman et al. 2023, openai/prm800k), from a downloaded copy, as verifier step rows
({"id", "prompt": [user message], "steps": [str, ...], "labels": [bool, ...]}, w2s/data/rows.py).
"""
import os
from collections import Counter

from w2s.data.rows import add_step_row, typed_field
from w2s.data.sources.reader import read_rows
from w2s.errors import UserError


def from_prm800k(path: str) -> tuple[list[dict], Counter]:
    """PRM800K rows {"question": {"problem", ...}, "label": {"steps": [{"completions": [{"text", "rating"}],
    "chosen_completion"}]}} -> step rows along the labeller's path: each step's chosen completion; where
    none was chosen (the labeller stopped), a completion rated -1 if there is one (else the first), and
    the row ends. A rating of -1 is a bad step; 0 and 1 are good. A completion without a rating ends the
    row before it (counted); a row left with no step is skipped (counted)."""
    rows, report = [], Counter()
    stem = os.path.splitext(os.path.basename(path))[0]
    for line_no, row in read_rows(path):
        where = f"{path}:{line_no}"
        problem = typed_field(typed_field(row, "question", dict, where), "problem", str, where, "question.problem")
        label_steps = typed_field(typed_field(row, "label", dict, where), "steps", list, where, "label.steps")
        steps, labels = [], []
        for i, step in enumerate(label_steps):
            completions = typed_field(step, "completions", list, where, f"label.steps[{i}].completions")
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
            text = typed_field(pick, "text", str, where, f"label.steps[{i}].completions[].text")
            rating = pick.get("rating")
            if rating is None:
                report["unrated steps (row ends there)"] += 1
                break
            if rating not in (-1, 0, 1):
                raise UserError(f"{where}: field 'label.steps[{i}].completions[].rating' must be -1, 0 or 1, "
                                f"got {rating!r}")
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
