"""Q6's measures and report (experiments/easy_to_hard.py) from rows made by hand: AUCs against the
world's step labels, the table, and the claims' intervals and verdict words."""
import json
import os
import random
import sys
from types import SimpleNamespace

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "experiments"))

import easy_to_hard  # noqa: E402
from w2s.data.world import miniworld  # noqa: E402


def test_aucs_use_the_worlds_step_labels():
    task = miniworld.Task(17, (miniworld.Step("*", 3), miniworld.Step("+", 16)))
    problem = miniworld.render_problem(task, miniworld.sample_phrasing(random.Random(0), task))
    right = miniworld.correct_solution(task)  # 3 good steps
    slip = "17 * 3 = 51\n51 + 16 = 68\nThe answer is \\boxed{68}"  # good, bad (arithmetic), bad
    row = {"problem": problem, "responses": [right, slip], "correct": [True, False], "finish_reasons": ["stop"] * 2,
           "answer_groups": [0, 1], "step_scores": [[0.9, 0.8, 0.7], [0.6, 0.2, 0.1]], "scores": [0.7, 0.1]}
    stats = easy_to_hard.verifier_stats("prm_easy", [row], [row])
    assert stats["position"]["all"] == 1.0 and stats["outcome"]["own"] == 1.0 and stats["easy_outcome"]["own"] == 1.0
    assert stats["position"]["step 2"] == 1.0 and stats["position"]["answer"] == 1.0
    assert stats["error"] == {"arithmetic": 1.0}
    assert stats["outcome"]["mean"] == 1.0 and stats["best_of"]["own"] == {"1": 1.0, "2": 1.0}
    # The slip's first step (good) now scores below the slip's last (bad): 1 of 4 x 2 pairs misordered.
    row["step_scores"][1] = [0.15, 0.2, 0.1]
    assert easy_to_hard.verifier_stats("prm_easy", [row], [row])["position"]["all"] == 1 - 1 / 8
    # by error type: the slip's first bad step (0.2) against the 4 good steps, one of them (0.15) below it
    assert easy_to_hard.verifier_stats("prm_easy", [row], [row])["error"] == {"arithmetic": 0.75}
    row["correct"] = [True, True]  # one outcome class only: no outcome AUC
    assert easy_to_hard.verifier_stats("prm_easy", [row], [row])["outcome"]["own"] is None
    # a baseline has its own scores only, no aggregations of step scores
    assert set(easy_to_hard.verifier_stats("logprob", [row], [row])["outcome"]) == {"own"}


def fake_rows(problems: int = 400) -> list[dict]:
    """Three seeds where majority gets every odd problem right and weighted voting those and every fourth
    one too (+25 points), best-of-K is majority, and every verifier the same: ORM equals PRM, and the
    OPRM ties them."""
    rows = []
    for seed in range(3):
        maj = [i % 2 for i in range(problems)]
        weighted = [int(i % 4 == 0) or m for i, m in enumerate(maj)]
        for name in easy_to_hard.VERIFIERS:
            outcomes = {"greedy": maj, "maj": maj, "pass": [1] * problems, "best_of": maj, "weighted_maj": weighted}
            curves = {str(k): {f"{m}@{k}": sum(outcomes[m]) / problems for m in easy_to_hard.MEASURES}
                      for k in (1, 2, 4)}
            rows.append({"verifier": name, "seed": seed, "agg": easy_to_hard.VERIFIERS[name][3], "k": 4,
                         "bench": "miniworld", "problems": problems, "curves": curves, "outcomes": outcomes,
                         "stats": {"outcome": {"own": 0.5 + seed / 10}, "easy_outcome": {"own": 0.9},
                                   "within": {"own": 0.5}, "position": {"all": 0.75}, "error": {},
                                   "best_of": {"own": {str(k): 0.5 for k in (1, 2, 4)}}}})
    return rows


def test_report_from_rows(tmp_path):
    study = SimpleNamespace(out=str(tmp_path), sizes=SimpleNamespace(max_steps=2))
    with open(easy_to_hard.results_path(study), "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in fake_rows())
    text = "\n".join(easy_to_hard.report_lines(study, str(tmp_path)))
    assert "| test set | greedy | maj@4 | pass@4 | best-of-4 prm_easy |" in text
    assert "| prm_easy (PRM trained on easy problems) | 0.900 | 0.600 | 0.500 |" in text
    assert "- prm_easy: 0.900: passes" in text
    claims = {line.split(":")[0]: line for line in text.splitlines() if line.startswith("- ")}
    assert claims["- weighted maj@4 vs maj@4, prm_easy"].endswith(": reproduced")
    assert claims["- weighted maj@4 vs best-of-4, oprm_easy"].endswith(": reproduced")
    assert ("+0.0 points (95% CI +0.0 to +0.0, 3 seeds: +0.0, +0.0, +0.0): within ±2 points, so reproduced as "
            "stated") in \
        claims["- ORM ≈ PRM (best-of-4, orm_easy - prm_easy)"]
    orm_prm = claims["- ORM ≈ PRM (best-of-4, orm_easy - prm_easy)"]
    assert orm_prm.endswith("direction, as a difference): no clear difference")
    # The OPRM ties the better of PRM and ORM: no clear difference, not "best".
    assert claims["- OPRM best (weighted maj@4)"].endswith(": no clear difference")
    assert "+25.0 points" in claims["- weighted maj@4 vs maj@4, prm_easy"]
    assert "meets the aim" in text  # greedy 50%, pass@4 50 points above maj@4
