"""The built-in world: tasks, phrasings, sub-tasks, the exact step checker and the weak teachers."""
import random

import pytest

from w2s.data.world import miniworld as mw
from w2s.grader import grade

TASK = mw.Task(17, (mw.Step("*", 3), mw.Step("+", 16), mw.Step("-", 5)))  # 51, 67, 62


@pytest.fixture(scope="module")
def world():
    return mw.build_world(seed=3, num_hard=1500, num_foundation=500, num_test=400, num_long_test=100)


def test_reference_solution_is_one_step_per_line():
    assert mw.correct_solution(TASK) == "17 * 3 = 51\n51 + 16 = 67\n67 - 5 = 62\nThe answer is \\boxed{62}"
    assert mw.step_errors(mw.correct_solution(TASK), TASK) == [False, False, False]
    assert grade(mw.correct_solution(TASK), "62") and not grade(mw.correct_solution(TASK), "67")


@pytest.mark.parametrize("config", [mw.WorldConfig(), mw.WorldConfig(operations="+-*/", max_value=50, add_range=(1, 20))])
def test_tasks_stay_small_and_problems_parse_back(config):
    rng = random.Random(0)
    for _ in range(500):
        task = mw.sample_task(rng, rng.randint(1, 7), config)
        assert all(1 <= v <= config.max_value for v in task.values), task
        assert config.start_range[0] <= task.start <= config.start_range[1]
        for step in task.steps:
            low, high = config.mul_range if step.op in "*/" else config.add_range
            assert low <= step.operand <= high, task
        phrasing = mw.sample_phrasing(rng, task)
        text = mw.render_problem(task, phrasing)
        assert mw.parse_problem(text) == task
        paraphrase = mw.render_problem(task, mw.sample_phrasing(rng, task, avoid=phrasing))
        assert paraphrase != text and mw.parse_problem(paraphrase) == task
    ops = {s.op for _ in range(200) for s in mw.sample_task(rng, 4, config).steps}
    assert ops == set(config.operations)  # every allowed operation is used, and no other


def test_parse_problem_rejects_other_text():
    with pytest.raises(ValueError, match="not a problem of the built-in world"):
        mw.parse_problem("What is 2 + 2? Think. How many?")


@pytest.mark.parametrize("solution, expected", [
    # a computation slip in step 2, carried on correctly: one error, where it was made
    ("17 * 3 = 51\n51 + 16 = 68\n68 - 5 = 63\nThe answer is \\boxed{63}", [False, True, False]),
    # a method error (wrong operation) in step 1, carried on
    ("17 + 3 = 20\n20 + 16 = 36\n36 - 5 = 31\nThe answer is \\boxed{31}", [True, False, False]),
    # a wrong operand in step 3
    ("17 * 3 = 51\n51 + 16 = 67\n67 - 6 = 61\nThe answer is \\boxed{61}", [False, False, True]),
    # step 2 does not continue from step 1's result
    ("17 * 3 = 51\n50 + 16 = 66\n66 - 5 = 61\nThe answer is \\boxed{61}", [False, True, False]),
    # a missing step, and an extra step
    ("17 * 3 = 51\n51 + 16 = 67\nThe answer is \\boxed{67}", [False, False, True]),
    ("17 * 3 = 51\n51 + 16 = 67\n67 - 5 = 62\n62 + 1 = 63\nThe answer is \\boxed{63}", [False, False, False, True]),
    # no steps at all
    ("The answer is \\boxed{62}", [True, True, True]),
])
def test_step_checker_finds_planted_errors(solution, expected):
    assert mw.step_errors(solution, TASK) == expected
    text = mw.render_problem(TASK, mw.sample_phrasing(random.Random(1), TASK))
    assert mw.step_errors(solution, text) == expected  # from the problem text too
    assert mw.step_error_rate(solution, TASK) == pytest.approx(sum(expected) / len(expected))


@pytest.mark.parametrize("profile", mw.PROFILES)
def test_weak_teachers_profiles(profile):
    rng, kinds = random.Random(profile), set()
    for i in range(300):
        task = mw.sample_task(rng, rng.randint(3, 5))
        weak = mw.weak_solution(task, profile, random.Random(i))
        errors = mw.step_errors(weak.text, task)
        assert mw.final_answer(weak.text) != task.answer and not grade(weak.text, str(task.answer))
        assert [i for i, e in enumerate(errors) if e] == weak.error_steps
        kinds.update(weak.kinds)
        if profile == "low":
            assert errors == [False] * (len(task.steps) - 1) + [True] and weak.kinds == ["computation"]
        elif profile == "high":
            assert all(errors)
        else:
            assert any(errors)
    assert kinds == ({"computation"} if profile == "low" else {"computation", "method"})


def test_subtasks_are_self_contained_and_check(world):
    for problem in world.hard[:400]:
        n = len(problem.task.steps)
        assert 3 <= n <= 5 and 2 <= len(problem.subtasks) <= 3
        values, covered = problem.task.values, set()
        for sub in problem.subtasks:
            m = len(sub.task.steps)
            assert 2 <= m <= 3 and m < n  # neither a single step nor the whole task
            assert mw.parse_problem(sub.text) == sub.task  # its own text states its start: self-contained
            # a contiguous run of the task's steps, starting from the amount the task had there
            first, last = sub.span
            assert last - first + 1 == m and problem.task.steps[first:last + 1] == sub.task.steps
            assert sub.task.start == values[first]
            assert sub.task.answer == values[first + m]
            covered.update(range(first, first + m))
            solution = mw.correct_solution(sub.task)
            assert not any(mw.step_errors(solution, sub.text)) and grade(solution, str(sub.task.answer))
        assert covered == set(range(n))


def test_no_test_problem_in_training(world):
    train = {mw.signature(p.task) for h in world.hard for p in [h] + h.subtasks + h.paraphrases}
    train |= {mw.signature(p.task) for p in world.foundation}
    train_text = {p.text for h in world.hard for p in [h] + h.subtasks + h.paraphrases} | {p.text for p in world.foundation}
    for name, problems in world.tests.items():
        assert problems and not {mw.signature(p.task) for p in problems} & train, name
        assert not {p.text for p in problems} & train_text
    assert all(len(p.task.steps) >= 6 for p in world.tests["miniworld_long"])
    assert len({p.id for p in world.hard}) == len(world.hard)


def test_world_is_deterministic_in_its_seed(world):
    again = mw.build_world(seed=3, num_hard=50, num_foundation=10, num_test=400, num_long_test=100)
    assert [p.text for p in again.hard] == [p.text for p in world.hard[:50]]
    other = mw.build_world(seed=4, num_hard=50, num_foundation=10, num_test=10, num_long_test=10)
    assert [p.text for p in other.hard] != [p.text for p in again.hard]


def test_fewer_phrasings_use_only_the_first_templates():
    world = mw.build_world(seed=0, num_hard=200, num_foundation=20, num_test=20, num_long_test=5,
                           config=mw.WorldConfig(phrasings=1))
    for problem in world.hard:
        for p in [problem] + problem.subtasks + problem.paraphrases:
            first_sentence = p.text.split(". ")[0]
            assert " has " in first_sentence and p.text.endswith(" have now?"), p.text
            assert "multiplies" not in p.text and "splits" not in p.text and "finds" not in p.text
            assert mw.parse_problem(p.text) == p.task
        assert problem.paraphrases[0].text != problem.text  # other name and unit


# ---------------------------------------------------------------------------------------------- prefix sub-tasks

def test_prefix_question_parses_to_the_first_steps():
    rng = random.Random(0)
    for _ in range(300):
        task = mw.sample_task(rng, rng.randint(3, 5))
        phrasing = mw.sample_phrasing(rng, task)
        whole = mw.render_problem(task, phrasing)
        for j in (1, 2, len(task.steps)):
            text = mw.render_problem(task, phrasing, prefix=j)
            # the whole story, only the question differs
            assert text.rsplit(". ", 1)[0] == whole.rsplit(". ", 1)[0] and text != whole
            assert mw.parse_problem(text) == task.part(0, j - 1)
        assert mw.parse_problem(whole) == task  # an ordinary question still asks for every step
    text = mw.render_problem(TASK, mw.Phrasing(1, 1, 1, (0, 0, 0), 0), prefix=1)
    assert text == "Ben starts with 17 apples. He now has 3 times as many. He gets 16 more. He gives away 5. " \
                   "How many apples does Ben have after the first change?"
    assert mw.render_problem(TASK, mw.Phrasing(1, 1, 1, (0, 0, 0), 2), prefix=2).endswith(
        "How many does Ben have after the first 2 changes?")


def test_prefix_question_beyond_the_story_is_rejected():
    story = "Ben has 17 apples. He gets 2 more. He gets 3 more."
    for question in ["How many apples does Ben have after the first 3 changes?",
                     "How many apples does Ben have after the first 0 changes?"]:
        with pytest.raises(ValueError, match="not a problem of the built-in world"):
            mw.parse_problem(f"{story} {question}")


def test_step_checker_on_a_prefix_problem():
    text = mw.render_problem(TASK, mw.Phrasing(1, 1, 1, (0, 0, 0), 0), prefix=2)
    assert mw.step_errors("17 * 3 = 51\n51 + 16 = 67\nThe answer is \\boxed{67}", text) == [False, False]
    # the positional shortcut: the two operations before the question, applied to the start
    assert mw.step_errors("17 + 16 = 33\n33 - 5 = 28\nThe answer is \\boxed{28}", text) == [True, True]
    # going on past the asked-for steps is an error per extra line, as for any task
    assert mw.step_errors(mw.correct_solution(TASK), text) == [False, False, True]
    assert mw.final_answer(mw.correct_solution(mw.parse_problem(text))) == 67


def test_prefixes_of_the_world(world):
    for problem in world.hard[:400]:
        assert [p.id for p in problem.prefixes] == [f"{problem.id}-pre1", f"{problem.id}-pre2"]
        for j, pre in enumerate(problem.prefixes, start=1):
            assert pre.span == (0, j - 1) and pre.task == problem.task.part(0, j - 1)
            assert pre.text.rsplit(". ", 1)[0] == problem.text.rsplit(". ", 1)[0]  # the task's own story
            assert mw.parse_problem(pre.text) == pre.task and pre.task.answer == problem.task.values[j]


def test_prefixes_change_no_other_problem_nor_the_tokenizer_corpus():
    # Stored from the world built before prefix sub-tasks existed (commit e272d3d): same problems,
    # same tokenizer training text, so existing sets and the tokenizer are unchanged for a seed.
    import hashlib
    world = mw.build_world(seed=0, num_hard=20, num_foundation=10, num_test=10, num_long_test=5)
    assert world.hard[0].text == "Eva owns 18 apples. She gets 1 more. She buys 3 more. The number is multiplied by 2. " \
                                 "How many does Eva have in the end?"
    assert world.hard[0].subtasks[0].text == "Eva has 18 apples. She gets 1 more. She buys 3 more. How many apples are there now?"
    assert hashlib.sha256("\x00".join(mw.corpus(world)).encode()).hexdigest() == \
        "50e85eb5d96aa8d62275de8d17008e3e956a73119b7cbdb958c8012c111af63a"
