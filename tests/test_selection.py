"""Selection without gold (w2s/data/selection/samples.py, data_prep.py agree / pairs): answers grouped by
equivalence, every stage-II rule, determinism, and gold read only for the report."""
import json

import pytest

import data_prep
from w2s.data.rows import load_sft_examples
from w2s.data.selection.samples import agreement_set, confidence_pairs, groups_by_size
from w2s.dpo import load_pair_rows


def sol(answer: str | None, k: int = 0) -> str:
    """A response with a final answer (or none), made distinct by k."""
    return f"Let me think{'!' * k}.\n" + (f"The answer is \\boxed{{{answer}}}" if answer is not None else "I am not sure.")


def task(task_id: str, samples: list[str], answer: str | None = None) -> dict:
    row = {"id": task_id, "problem": f"Problem {task_id}?", "samples": samples}
    if answer is not None:
        row["answer"] = answer
    return row


def test_answers_are_grouped_by_equivalence_and_none_votes_for_nothing():
    assert groups_by_size(["\\frac{1}{2}", "0.5", None, "3", "1/2", "3.0"]) == [[0, 1, 4], [3, 5]]
    assert groups_by_size([None, None]) == []


def test_agreement_keeps_tasks_whose_first_answers_agree_and_writes_both_responses():
    a = [task("t1", [sol("0.5"), sol("9")]), task("t2", [sol("3")]), task("t3", [sol("4")])]
    b = {"t1": task("t1", [sol("\\frac{1}{2}", 1)]), "t2": task("t2", [sol("4")]), "t3": task("t3", [sol(None)])}
    rows, report = agreement_set(a, b, "weak_sft", "weak_icl")
    assert report == {"tasks": 3, "agree": 1, "disagree": 1, "no_answer": 1}
    assert [r["id"] for r in rows] == ["t1/weak_sft", "t1/weak_icl"]
    assert rows[1]["messages"][1]["content"] == sol("\\frac{1}{2}", 1) and rows[0]["meta"]["label"] == "0.5"


STRONG = [
    # 7 of 10 say 4 (three spellings), 3 say 5; the weak answer (4.0) is the majority's
    task("majority", [sol(x, k) for k, x in enumerate(["4", "4.0", "\\frac{8}{2}", "4", "4", "4", "4", "5", "5", "5"])], "4"),
    # 9 of 10 say 6, one has no answer (it still counts: confidence 0.9); the weak answer 7 is not
    task("flip", [sol("6", k) for k in range(9)] + [sol(None, 9)], "6"),
    task("below_flip", [sol("8", k) for k in range(7)] + [sol("9", k) for k in range(7, 10)], "8"),  # 0.7, weak 9
    task("tie", [sol("1", k) for k in range(5)] + [sol("2", k) for k in range(5, 10)], "1"),
    task("low", [sol("1", k) for k in range(5)] + [sol("2", k) for k in range(5, 8)] + [sol("3", 8), sol("3", 9)], "1"),
    task("unanimous", [sol("3", k) for k in range(10)], "3"),
    task("no_answer", [sol(None, k) for k in range(10)], "3"),
]
WEAK = {"majority": sol("4.0", 99), "flip": sol("7", 99), "below_flip": sol("9", 99), "tie": sol("1", 99),
        "low": sol("1", 99), "unanimous": sol("3", 99), "no_answer": sol("3", 99)}


def weak_rows() -> dict[str, dict]:
    return {t: task(t, [text]) for t, text in WEAK.items()}


def test_every_confidence_rule():
    rows, report = confidence_pairs(STRONG, weak_rows(), max_pairs=3, seed=1)
    assert report == {"tasks": 7, "tasks/weak_is_majority": 1, "pairs/weak_is_majority": 3, "tasks/confident_flip": 1,
                      "pairs/confident_flip": 3, "skip/weak_in_minority_below_flip": 1, "skip/tie": 1,
                      "skip/low_confidence": 1, "skip/unanimous": 1, "skip/no_answer": 1}
    majority = [r for r in rows if r["meta"]["task_id"] == "majority"]
    assert all(r["chosen"][0]["content"] == WEAK["majority"] for r in majority)
    assert sorted(r["rejected"][0]["content"] for r in majority) == sorted(sol("5", k) for k in (7, 8, 9))
    assert majority[0]["meta"]["confidence"] == pytest.approx(0.7)
    flip = [r for r in rows if r["meta"]["task_id"] == "flip"]
    assert all(r["rejected"][0]["content"] == WEAK["flip"] for r in flip)
    assert len({r["chosen"][0]["content"] for r in flip}) == 3
    assert all("\\boxed{6}" in r["chosen"][0]["content"] for r in flip) and flip[0]["meta"]["confidence"] == pytest.approx(0.9)
    # A lower flip threshold takes the 0.7 task too; a higher min confidence drops the 0.7 majority task.
    _, report = confidence_pairs(STRONG, weak_rows(), flip_confidence=0.7)
    assert report["tasks/confident_flip"] == 2 and report["pairs/confident_flip"] == 2
    _, report = confidence_pairs(STRONG, weak_rows(), min_confidence=0.75)
    assert report["skip/low_confidence"] == 3 and "tasks/weak_is_majority" not in report


def test_pairs_are_deterministic_under_the_seed_and_blind_to_gold():
    blind = [{k: v for k, v in row.items() if k != "answer"} for row in STRONG]
    a, _ = confidence_pairs(STRONG, weak_rows(), max_pairs=2, seed=3)
    b, _ = confidence_pairs(blind, weak_rows(), max_pairs=2, seed=3)
    assert a == b
    seeds = {json.dumps(confidence_pairs(STRONG, weak_rows(), max_pairs=2, seed=s)[0]) for s in range(6)}
    assert len(seeds) > 1  # the seed does pick among the candidates


def release_pair_counts(preds: list[str], weak_pred: str, max_pairs: int = 3) -> int:
    """The pairs construct_paired_data_math of GAIR-NLP/weak-to-strong-reasoning makes of one task, transcribed
    (Counter.most_common; '' is a missing answer and forms a group of its own; its thresholds 0.6 and 0.8)."""
    from collections import Counter
    top, count = Counter(preds).most_common(1)[0]
    confidence = count / len(preds)
    if confidence < 0.6 or top == "":
        return 0
    if weak_pred == top:
        return min(max_pairs, sum(p != top for p in preds))
    return min(max_pairs, count) if confidence >= 0.8 else 0


def test_confidence_pairs_make_as_many_pairs_per_task_as_the_release():
    import random
    rng = random.Random(0)
    strong, weak, expected = [], {}, {}
    for t in range(300):
        skew = rng.choice([["1"] * 6 + ["2", "3", ""], ["1", "2", "3", ""], ["1"] * 9 + [""]])
        preds = [rng.choice(skew) for _ in range(10)]
        weak_pred = rng.choice(["1", "2", ""])
        strong.append(task(f"t{t}", [sol(p or None, k) for k, p in enumerate(preds)]))
        weak[f"t{t}"] = task(f"t{t}", [sol(weak_pred or None, 99)])
        expected[f"t{t}"] = release_pair_counts(preds, weak_pred)
    rows, report = confidence_pairs(strong, weak, max_pairs=3, seed=0)
    got = {t: sum(r["meta"]["task_id"] == t for r in rows) for t in expected}
    assert got == expected and sum(got.values()) > 200 and report["tasks/confident_flip"] > 10


def test_student_only_pairs_keep_the_tasks_and_leave_the_weak_response_out():
    rows, report = confidence_pairs(STRONG, weak_rows(), max_pairs=3, seed=1, student_only=True)
    assert report["tasks/weak_is_majority"] == 1 and report["pairs/weak_is_majority"] == 3
    # the flip task's non-majority sample is its one answerless reply: one pair
    assert report["tasks/confident_flip"] == 1 and report["pairs/confident_flip"] == 1
    assert not {WEAK[r["meta"]["task_id"]] for r in rows} & {t for r in rows for t in (r["chosen"][0]["content"],
                                                                                          r["rejected"][0]["content"])}
    texts = {row["id"]: row["samples"] for row in STRONG}
    assert all(r["chosen"][0]["content"] in texts[r["meta"]["task_id"]] for r in rows)
    majority = [r for r in rows if r["meta"]["task_id"] == "majority"]
    assert all("\\boxed{5}" in r["rejected"][0]["content"] for r in majority)
    assert all("\\boxed{5}" not in r["chosen"][0]["content"] for r in majority)


def write(path, rows) -> str:
    with open(path, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    return str(path)


def test_pairs_command_writes_trl_rows_and_reports_quality_from_gold(tmp_path):
    strong = write(tmp_path / "strong.jsonl", STRONG)
    weak = write(tmp_path / "weak.jsonl", list(weak_rows().values()))
    data_prep.main(["pairs", strong, "--weak", weak, "--name", "pairs", "--out", str(tmp_path / "out"),
                    "--max-pairs", "3", "--seed", "1"])
    rows = load_pair_rows(str(tmp_path / "out" / "pairs.jsonl"))  # TRL's format, as train.py reads it
    assert len(rows) == 6
    report = json.load(open(tmp_path / "out" / "pairs.report.json"))
    assert report["pairs/weak_is_majority"] == 3 and report["chosen_right"] == 1.0
    assert report["chosen_right_and_rejected_wrong"] == 1.0 and report["graded_pairs"] == 6


def test_agree_command_writes_the_hybrid_set_with_label_quality(tmp_path):
    a = write(tmp_path / "weak_sft.jsonl", [task("t1", [sol("2")], "2"), task("t2", [sol("5")], "3"), task("t3", [sol("1")], "1")])
    b = write(tmp_path / "weak_icl.jsonl", [task("t1", [sol("2.0")], "2"), task("t2", [sol("5", 1)], "3"), task("t3", [sol("7")], "1")])
    data_prep.main(["agree", a, b, "--name", "hybrid", "--out", str(tmp_path / "out")])
    rows = load_sft_examples(str(tmp_path / "out" / "hybrid.jsonl"))
    assert [r["id"] for r in rows] == ["t1/weak_sft", "t1/weak_icl", "t2/weak_sft", "t2/weak_icl"]
    assert [r["meta"]["correct"] for r in rows] == [True, True, False, False]
    report = json.load(open(tmp_path / "out" / "hybrid.report.json"))
    assert report["agree"] == 2 and report["label_accuracy"] == 0.5
    assert report["first_sample_accuracy"] == {"weak_sft": pytest.approx(2 / 3), "weak_icl": pytest.approx(1 / 3)}


def test_tasks_that_differ_are_refused_with_file_and_field(tmp_path, capsys):
    a = write(tmp_path / "a.jsonl", [task("t1", [sol("2")]), task("t2", [sol("5")])])
    b = write(tmp_path / "b.jsonl", [task("t1", [sol("2")])])
    with pytest.raises(SystemExit):
        data_prep.main(["agree", a, b, "--name", "x", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert f"{b}: field 'id': no row for task 't2'" in err and len(err.strip().splitlines()) == 1


def test_confidence_histogram_counts_tasks_by_majority_share():
    from w2s.data.selection.samples import confidence_histogram, majority_share
    assert majority_share(["1", "1.0", "2", None]) == 0.5 and majority_share([None, None]) == 0.0
    assert majority_share(["1", "2"]) == 0.5  # a tie: the share of one of the tied groups
    answers = [["4", "4", "4", "5"], ["1", "2", "3", None], [None] * 4, ["7"] * 4, ["8", "8", "8", "9"]]
    assert confidence_histogram(answers) == {"0.00": 1, "0.25": 1, "0.75": 2, "1.00": 1}
