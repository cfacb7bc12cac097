"""Math-Shepherd (Wang et al. 2024, peiyi9979/Math-Shepherd), from a downloaded copy, as verifier step
rows ({"id", "prompt": [user message], "steps": [str, ...], "labels": [bool, ...]}, w2s/data/rows.py).
"""
import os
from collections import Counter

from w2s.data.rows import add_step_row, typed_field
from w2s.data.sources.reader import read_rows
from w2s.errors import UserError

SHEPHERD_TAG = "ки"


def from_math_shepherd(path: str) -> tuple[list[dict], Counter]:
    """Math-Shepherd rows {"input": question and steps, each step followed by "ки", "label": the same text
    with "+" (good) or "-" (bad) in place of each tag} -> step rows. The question is the text before
    "Step 1:" (Math-Shepherd's own step prefix, kept in the steps)."""
    rows, report = [], Counter()
    stem = os.path.splitext(os.path.basename(path))[0]
    for line_no, row in read_rows(path):
        where = f"{path}:{line_no}"
        text, labelled = typed_field(row, "input", str, where), typed_field(row, "label", str, where)
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
