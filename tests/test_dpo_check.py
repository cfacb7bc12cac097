"""experiments/dpo_check.py at toy size (--smoke): every setting gets a report row, and a rerun resumes;
its first-error classifier on hand-made solutions; the fork's re-masking on a hand-made pair."""
import os
import random
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "experiments"))

import dpo_check  # noqa: E402
from w2s.data.world import miniworld as mw  # noqa: E402
from w2s.dpo import PairExample  # noqa: E402


def run_smoke(out: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, os.path.join(ROOT, "experiments", "dpo_check.py"), "--smoke", "--out", out],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_smoke_reports_every_setting_and_resumes(tmp_path):
    out = str(tmp_path / "check")
    done = run_smoke(out)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with open(os.path.join(out, "REPORT.md")) as f:
        report = f.read()
    assert report in done.stdout
    rows = [line for line in report.splitlines() if line.startswith("| ") and not line.startswith("| setting")]
    names = ["start", *dpo_check.settings(out, dpo_check.SMOKE)]
    assert len(names) == 5  # the start, 2 DPO settings, 1 fork, 1 SFT
    assert [row.split(" | ")[0][2:] for row in rows] == names
    for row in rows:
        cells = row.strip("| ").split(" | ")
        assert len(cells) == 6 + len(dpo_check.ERROR_TYPES) and "failed" not in cells, row
        shares = [float(c.rstrip("%")) for c in cells[6:]]
        assert abs(sum(shares) - 100) < 0.5, row
        dpo_run = row.startswith(("| dpo", "| fork"))
        assert (cells[4] != "-") == dpo_run and (cells[5] != "-") == dpo_run, row
    # Each pair set exists, the fork's a copy of the gold pairs under its own name.
    with open(os.path.join(out, "gold_pairs.jsonl")) as a, open(os.path.join(out, "gold_pairs_fork.jsonl")) as b:
        assert a.read() == b.read()
    again = run_smoke(out)
    assert again.returncode == 0 and "] start  " not in again.stdout  # every command skipped: nothing started


def test_first_error_types():
    task = mw.Task(7, (mw.Step("+", 5), mw.Step("*", 3), mw.Step("-", 4)))
    problem = mw.render_problem(task, mw.sample_phrasing(random.Random(0), task))
    assert mw.parse_problem(problem) == task
    right = mw.correct_lines(task)  # 7 + 5 = 12, 12 * 3 = 36, 36 - 4 = 32
    cases = {
        "none": right,
        "wrong carry": [right[0], mw.Line(13, "*", 3, 39), mw.Line(39, "-", 4, 35)],
        "wrong operand/op": [right[0], mw.Line(12, "*", 4, 48), mw.Line(48, "-", 4, 44)],
        "arithmetic": [right[0], mw.Line(12, "*", 3, 38), mw.Line(38, "-", 4, 34)],
        "missing step": right[:2],
        "extra step": [*right, mw.Line(32, "+", 1, 33)],
    }
    assert set(cases) == set(dpo_check.ERROR_TYPES)
    for kind, lines in cases.items():
        assert dpo_check.first_error(mw.solution_text(lines), problem) == kind, kind
    assert dpo_check.first_error("no steps at all", problem) == "missing step"
    assert dpo_check.first_error("7 - 5 = 2\n2 * 3 = 6\n6 - 4 = 2", problem) == "wrong operand/op"  # the operation


def test_cut_at_fork_keeps_the_responses_up_to_where_they_part():
    # prompt 1 2, then responses 3 4 5 6 and 3 4 9; the fork is position 4 (5 vs 9).
    pair = PairExample([1, 2, 3, 4, 5, 6], [False, False, True, True, True, True],
                       [1, 2, 3, 4, 9], [False, False, True, True, True])
    dpo_check.cut_at_fork([pair])
    assert pair.chosen_mask == [False, False, True, True, True, False]
    assert pair.rejected_mask == [False, False, True, True, True]
    # One response a prefix of the other: up to the shorter one's last token.
    prefix = PairExample([1, 3, 4], [False, True, True], [1, 3, 4, 5], [False, True, True, True])
    dpo_check.cut_at_fork([prefix])
    assert prefix.chosen_mask == [False, True, True] and prefix.rejected_mask == [False, True, True, False]
