"""experiments/easy_to_hard_rl.py (Q7) without running the study: ReST-EM's filter, the gaming check, the
training curves it reads, and the report from hand-made rows."""
import json
import os
import sys
from types import SimpleNamespace

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "experiments"))

import easy_to_hard_rl as q7  # noqa: E402
import mini_study  # noqa: E402


def test_the_machinery_check_starts_from_the_studys_weak_teacher():
    assert q7.WARM_START == mini_study.TEACHER_RUN and q7.ALL_LEVELS in mini_study.CONDITIONS
    assert q7.ALL_LEVELS in mini_study.needed_conditions(["q7"])


def test_rest_em_keeps_what_the_reward_accepts_and_stopped():
    rows = [{"id": "a", "problem": "p", "answer": "1", "samples": ["x", "y", "z"],
             "finish_reasons": ["stop", "length", "stop"], "correct": [True, True, False]},
            {"id": "b", "problem": "q", "answer": "2", "samples": ["u", "v"], "finish_reasons": ["stop", "stop"],
             "correct": [False, False]}]
    by_answer = q7.accepted(rows, None)  # the grader's verdicts: only a's first sample (its second was cut off)
    assert [(r["id"], r["samples"], r["correct"]) for r in by_answer] == [("a", ["x"], [True])]
    by_verifier = q7.accepted(rows, [[0.9, 0.9, q7.ACCEPT], [0.1, 0.49]])  # a score of exactly ACCEPT is kept
    assert [(r["id"], r["samples"], r["finish_reasons"]) for r in by_verifier] == [("a", ["x", "z"], ["stop", "stop"])]
    assert q7.accepted(rows, [[0.0] * 3, [0.0] * 2]) == []


def test_a_policy_games_its_reward_when_reward_rises_and_accuracy_falls():
    assert q7.trend([0.1]) is None
    assert abs(q7.trend([0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.5]) - 0.75) < 1e-9  # last two minus first two
    rising, falling, flat = [0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1], [0.3, 0.3, 0.3, 0.3]
    assert q7.gamed({"reward": rising, "accuracy": falling}) is True
    assert q7.gamed({"reward": rising, "accuracy": rising}) is False
    assert q7.gamed({"reward": rising, "accuracy": flat}) is False  # reward up, accuracy unchanged: not gamed
    assert q7.gamed({"reward": rising, "accuracy": [0.02, 0.02, 0.0, 0.0]}) is True  # from near 0%, any fall counts
    assert q7.gamed(None) is None and q7.gamed({"reward": [1.0], "accuracy": [0.0]}) is None


def test_training_curves_from_grpo_metrics_and_rest_em_rounds(tmp_path):
    grpo = tmp_path / "grpo"
    grpo.mkdir()
    (grpo / "metrics.jsonl").write_text("".join(json.dumps({"step": i, "reward": i / 10, "accuracy": 0.5}) + "\n"
                                                for i in (1, 2)))
    assert q7.training_curve(str(grpo)) == {"reward": [0.1, 0.2], "accuracy": [0.5, 0.5]}
    rest = tmp_path / "rest"
    for i, (reward, accuracy) in enumerate([(0.2, 0.1), (0.4, 0.05)]):
        (rest / f"round{i}").mkdir(parents=True)
        (rest / f"round{i}" / "round.json").write_text(json.dumps({"reward": reward, "accuracy": accuracy}))
    assert q7.training_curve(str(rest)) == {"reward": [0.2, 0.4], "accuracy": [0.1, 0.05]}
    assert q7.training_curve(str(tmp_path / "missing")) is None


def row(condition: str, seed: int, greedy: list[int], curve: dict | None = None) -> dict:
    return {"condition": condition, "seed": seed, "k": 4, "problems": len(greedy), "seconds": 1.0,
            "outcomes": {"greedy": greedy, "greedy_exact": greedy, "maj": greedy, "pass": [1] * len(greedy),
                         "pass_exact": [0] * len(greedy)}, "prm_auc": 0.6, "curve": curve}


def test_report_from_rows(tmp_path):
    """Every condition gets a line (measured or "not run"), a gaming seed is counted, and the verdicts follow
    the intervals: the gold-answer GRPO clearly above easy-only SFT is reproduced, the PRM-rewarded GRPO far
    below the all-levels baseline contradicted."""
    study = SimpleNamespace(out=str(tmp_path), sizes=SimpleNamespace(max_steps=None))
    low, high = [0] * 36 + [1] * 4, [1] * 36 + [0] * 4
    gaming = {"reward": [0.1, 0.2, 0.3, 0.4], "accuracy": [0.4, 0.3, 0.2, 0.1]}
    honest = {"reward": [0.1, 0.2, 0.3, 0.4], "accuracy": [0.1, 0.2, 0.3, 0.4]}
    rows = [row(name, seed, greedy, curve) for seed in (0, 1, 2) for name, greedy, curve in (
        ("sft_easy", low, None), ("sft_all", high, None), ("grpo_prm", low, gaming if seed == 1 else honest),
        ("grpo_gold", high, honest))]
    with open(q7.results_path(study), "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    text = "\n".join(q7.report_lines(study, str(tmp_path)))
    assert "## Q7." in text and "Seeds: 0, 1, 2." in text
    for name in q7.CONDITIONS:
        assert f"(`{name}`) |" in text
    assert "(`rest_prm`) | not run |" in text
    prm_line = next(line for line in text.splitlines() if "(`grpo_prm`) |" in line)
    assert prm_line.endswith("| 1 of 3 |") and "0.600" in prm_line
    claims = {line.split(" (`")[1].split("`)")[0]: line for line in text.splitlines()
              if line.startswith("- ") and "` - `" in line}
    assert claims["grpo_gold` - `sft_easy"].endswith(": reproduced")
    assert claims["grpo_prm` - `sft_all"].endswith(": contradicted")
    assert claims["grpo_prm` - `sft_easy"].endswith(": no clear difference")
    assert claims["rest_prm` - `sft_easy"].endswith("not measured: not measured")
    assert "every step right for 0.0 ± 0.0% of the hard test problems" in text
