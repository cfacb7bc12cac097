"""experiments/weak_to_strong.py's pure parts: the random-subset control, the gold-chosen pairs and PGR's
test-set term."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "experiments"))

import runner  # noqa: E402
import weak_to_strong  # noqa: E402


def solution(answer: str) -> str:
    return f"1 + 1 = 2.\nThe answer is \\boxed{{{answer}}}."


def task(i: int, samples: list[str], answer: str = "2") -> dict:
    return {"id": f"t{i}", "problem": f"Problem {i}?", "answer": answer, "samples": samples}


def test_random_hybrid_draws_k_answered_tasks_with_both_responses():
    a = [task(i, [solution(str(i))]) for i in range(10)] + [task(10, ["no answer here"])]
    b = {r["id"]: r for r in [task(i, [solution(str(i + 1))]) for i in range(11)]}
    rows = weak_to_strong.random_hybrid(a, b, 4, seed=0, source_a="teacher", source_b="icl")
    assert len(rows) == 8  # 4 tasks, both responses
    tasks = {r["meta"]["task_id"] for r in rows}
    assert len(tasks) == 4 and "t10" not in tasks  # a task with no stated answer is never drawn
    teacher = [r for r in rows if r["meta"]["source"] == "teacher"]
    assert all(r["meta"]["label"] == r["meta"]["task_id"][1:] for r in teacher)  # each response keeps its own answer
    assert rows == weak_to_strong.random_hybrid(a, b, 4, seed=0, source_a="teacher", source_b="icl")  # seeded
    assert len(weak_to_strong.random_hybrid(a, b, 50, 0, "teacher", "icl")) == 20  # at most every answered task


def test_random_hybrid_depends_on_the_seed():
    a = [task(i, [solution(str(i))]) for i in range(30)]
    b = {r["id"]: r for r in a}
    draws = {frozenset(r["meta"]["task_id"] for r in weak_to_strong.random_hybrid(a, b, 5, s, "x", "y"))
             for s in range(4)}
    assert len(draws) > 1


def test_gold_pairs_choose_a_right_response_over_a_wrong_one():
    strong = [task(0, [solution("2"), solution("3"), solution("3")]),  # right and wrong: a pair
              task(1, [solution("2"), solution("2")]),  # all right (the weak one too): no pair
              task(2, [solution("5"), "cut off"])]  # only the weak response is right: chosen from it
    weak = {"t0": task(0, [solution("3")]), "t1": task(1, [solution("2")]), "t2": task(2, [solution("2")])}
    pairs = weak_to_strong.gold_pairs(strong, weak, seed=0)
    assert [p["meta"]["task_id"] for p in pairs] == ["t0", "t2"]
    for p in pairs:
        assert "\\boxed{2}" in p["chosen"][0]["content"] and "\\boxed{2}" not in p["rejected"][0]["content"]
        assert p["prompt"][0]["role"] == "user" and "Problem" in p["prompt"][0]["content"]


def test_pgr_outcomes_is_the_linearized_pgr():
    # Per problem (student, teacher, ceiling): 0 (1,0,1), 1 (1,1,1), 2 (0,0,1), 3 (1,0,1), 4 (0,0,0), 5 (1,1,1).
    student, teacher, ceiling = [1, 1, 0, 1, 0, 1] * 100, [0, 1, 0, 0, 0, 1] * 100, [1, 1, 1, 1, 0, 1] * 100

    def pgr(s, t, c):
        mean = lambda x: sum(x) / len(x)  # noqa: E731
        return (mean(s) - mean(t)) / (mean(c) - mean(t))

    def flip(outcomes, i):
        return outcomes[:i] + [1 - outcomes[i]] + outcomes[i + 1:]

    terms = weak_to_strong.pgr_outcomes(student, teacher, ceiling)
    assert sum(terms) / len(terms) == pytest.approx(0.0, abs=1e-12)  # PGR is scale-free: its gradient sums to 0
    n, base = len(student), pgr(student, teacher, ceiling)
    # Two problems that differ in one model's outcome differ in their terms by PGR's derivative in that
    # model's accuracy, which flipping one such outcome (a step of 1/n) measures.
    assert terms[0] - terms[2] == pytest.approx((pgr(flip(student, 2), teacher, ceiling) - base) * n, rel=0.02)
    assert terms[1] - terms[0] == pytest.approx((pgr(student, flip(teacher, 0), ceiling) - base) * n, rel=0.02)
    assert terms[2] - terms[4] == pytest.approx((pgr(student, teacher, flip(ceiling, 4)) - base) * n, rel=0.02)


def test_pgr_interval_counts_the_teachers_test_error():
    student = {0: [1, 1, 1, 0] * 25, 1: [1, 1, 0, 1] * 25}
    teacher = {0: [1, 0, 0, 0] * 25, 1: [0, 1, 0, 0] * 25}
    ceiling = {0: [1] * 100, 1: [1] * 100}
    iv = weak_to_strong.pgr_interval(student, teacher, ceiling)
    assert iv.mean == pytest.approx(2 / 3) and iv.n == 2
    assert iv.test_se > 0  # the test set's term: with zero seed spread it alone makes the interval
    assert weak_to_strong.pgr_interval(student, {0: [1] * 100}, ceiling) is None  # no gap to recover


def test_paired_difference_pairs_by_seed():
    a = {0: [1, 1, 0, 0], 1: [1, 1, 1, 0], 2: [1, 0, 0, 0]}
    b = {0: [1, 0, 0, 0], 1: [1, 1, 0, 0]}
    iv = runner.outcomes_difference(a, b)
    assert iv.n == 2 and iv.mean == pytest.approx(0.25)
    assert runner.outcomes_difference(a, {}) is None


def test_pgr_and_differences_by_seed_are_the_spread_behind_the_intervals():
    student = {0: [1, 1, 1, 0] * 25, 1: [1, 1, 0, 0] * 25, 2: [1] * 100}
    teacher = {0: [1, 0, 0, 0] * 25, 1: [0, 1, 0, 0] * 25, 2: [1] * 100}
    ceiling = {0: [1] * 100, 1: [1, 1, 1, 0] * 25, 2: [1] * 100}  # seed 2: no gap to recover, left out
    values = weak_to_strong.pgr_values(student, teacher, ceiling)
    assert values == {0: pytest.approx(2 / 3), 1: pytest.approx(0.5)}
    assert weak_to_strong.pgr_interval(student, teacher, ceiling).mean == pytest.approx(7 / 12)
    assert runner.outcomes_difference(student, teacher).seed_values() == "+50.0, +25.0, +0.0"
    assert runner.outcomes_difference(student, {1: teacher[1]}).seed_values() == "+25.0"


def test_every_student_has_a_ceiling_of_its_own_in_the_table():
    assert weak_to_strong.CEILING_OF[weak_to_strong.LATENT_STAGE1] == weak_to_strong.LATENT_CEILING
    assert weak_to_strong.CEILING_OF[weak_to_strong.STAGE1] == weak_to_strong.CEILING
    every = {c for comparison in weak_to_strong.COMPARISONS for c in comparison[:2]}
    assert every <= set(weak_to_strong.CONDITIONS)


def test_rounds_table_shows_each_round_beside_the_release():
    reports = [{0: {"agree": 100, "examples": 200, "label_accuracy": 0.5},
                1: {"agree": 120, "examples": 240, "label_accuracy": 0.6}},
               {0: {"agree": 300, "examples": 600, "label_accuracy": 0.4}, 1: {"agree": 0, "examples": 0}}]
    runs = [{0: [1, 0, 0, 0], 1: [1, 1, 0, 0]}, {0: [1, 1, 1, 0]}]
    header, rule, first, second = weak_to_strong.rounds_table(reports, runs)
    assert header.count("|") == rule.count("|") == first.count("|") == second.count("|")
    assert "| 1 | weak teacher | 110 (100, 120) | 220 | 55.0 (50.0, 60.0) | 37.5 (25.0, 50.0) | 5,366, 90.0 |" == first
    # a seed with no agreed task counts in the sizes, not in the label quality; only seeds with a student in the acc
    assert "| 150 (300, 0) | 300 | 40.0 (40.0) | 75.0 (75.0) | 8,044, 87.0 |" in second
    empty = weak_to_strong.rounds_table([{}], [{}])[2]
    assert empty == "| 1 | weak teacher | not run |  | not measured | not run | 5,366, 90.0 |"


def test_round_two_is_compared_with_round_one():
    assert weak_to_strong.ROUNDS[:2] == (weak_to_strong.STAGE1, weak_to_strong.STAGE1_R2)
    assert (weak_to_strong.STAGE1_R2, weak_to_strong.STAGE1, 1) in weak_to_strong.COMPARISONS
    assert weak_to_strong.CEILING_OF[weak_to_strong.STAGE1_R2] == weak_to_strong.CEILING
    assert weak_to_strong.FULL.rounds == 2 and weak_to_strong.FULL.rounds <= len(weak_to_strong.ROUNDS)
