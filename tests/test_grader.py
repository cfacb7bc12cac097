"""Tests of w2s.grader: labelled cases by kind, extraction, hostile inputs, threads, processes."""
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from bench.grader_cases import CASES, KINDS
from w2s import grader
from w2s.grader import equivalence, sympy_check
from w2s.grader import extract_answer, grade, is_equiv

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("response,gold,verdict,kind", CASES,
                         ids=[f"{kind}-{i}" for i, (_, _, _, kind) in enumerate(CASES)])
def test_labelled_case(response, gold, verdict, kind):
    assert grade(response, gold) is verdict


def test_labelled_cases_agree_with_themselves_and_each_kind_can_fail_both_ways():
    """A case listed under two kinds carries one verdict; every kind but the malformed holds answers a
    grader must accept and ones it must refuse, so no kind passes a grader that always says one thing."""
    verdicts: dict[tuple[str, str], set[bool]] = {}
    for response, gold, verdict, _ in CASES:
        verdicts.setdefault((response, gold), set()).add(verdict)
    assert [pair for pair, seen in verdicts.items() if len(seen) > 1] == []
    assert [kind for kind, cases in KINDS.items()
            if kind != "malformed" and {verdict for _, _, verdict in cases} != {True, False}] == []


@pytest.mark.parametrize("text,answer", [
    (r"so \boxed{\frac{a}{\sqrt{b}}} holds", r"\frac{a}{\sqrt{b}}"),
    (r"\boxed{1} then \boxed{\{2, 3\}}", r"\{2, 3\}"),
    (r"$\boxed 5$", "5"),
    (r"\fbox{x+1}", "x+1"),
    (r"The final answer is $\frac{1}{2}$. I hope it is correct.", r"\frac{1}{2}"),
    ("The answer is 7.5.", "7.5"),
    ("step one\n#### 1,234", "1,234"),
    (r"so we get $x = 2$ and then $y = 3$", "y = 3"),
    (r"\[ 4 \]", "4"),
    ("It costs 12 dollars, then 15 dollars.", "15"),
    (r"\frac{1}{2}", r"\frac{1}{2}"),
    ("0.5", "0.5"),
    (r"The answer is: $\$70$", r"\$70"),
    ("so he spent $70/7=$10 per teacher.\nEach gift cost $10.", "$10"),
    ("Final Answer: The largest $n$ is 34.", "34"),
    (r"The answer is \boxed{2} or \boxed{3}.", "2, 3"),
    ("So the answer is \\boxed{3}.\nThe answer is 4.", "4"),  # the last statement stands
    (r"The answer is: \begin{pmatrix} 1 & 2 \\ 6 & -1 \end{pmatrix}", r"\begin{pmatrix} 1 & 2 \\ 6 & -1 \end{pmatrix}"),
    ("The answer is:\n\\begin{bmatrix}\n7 \\\\\n-2\n\\end{bmatrix}", "\\begin{bmatrix}\n7 \\\\\n-2\n\\end{bmatrix}"),
])
def test_extract_answer(text, answer):
    assert extract_answer(text) == answer


@pytest.mark.parametrize("text", [r"the answer is \boxed{12", r"\boxed{\frac{1}{2}", r"\boxed{}", "no numbers here at all",
                                  "", "In May she sold 48 / 2 = ", "First 16 - 3 - 4 = 9 eggs. Then she sells them at",
                                  "She has 5 apples.\n" * 8])
def test_extract_answer_none(text):
    assert extract_answer(text) is None


def test_strict_extraction_keeps_only_boxed():
    assert extract_answer("The answer is 5.", strict=True) is None
    assert extract_answer(r"The answer is \boxed{5}.", strict=True) == "5"
    assert extract_answer(r"an unclosed \boxed{5", strict=True) is None


def test_unclosed_box_is_not_rescued_by_fallbacks():
    # A truncated generation has earlier numbers and "the answer is" text, but no finished box.
    assert extract_answer(r"The answer is 3, so \boxed{3") is None
    assert grade(r"The answer is 3, so \boxed{3", "3") is False


def test_gold_solution_is_extracted_strictly():
    gold = r"Add $2+2$ to get $4$, then double: $\boxed{8}$."
    assert grade(r"\boxed{8}", gold) and not grade(r"\boxed{4}", gold)


def test_number_golds_are_read_as_text():
    assert grade(r"Answer: \boxed{0}", 0) and grade("The answer is 2.5.", 2.5) and not grade(r"\boxed{1}", 0)
    assert is_equiv("0", 0) and is_equiv(3, "3") and not is_equiv(True, "1")


@pytest.mark.parametrize("pred", [None, "", "   "])
def test_empty_answers_are_false(pred):
    assert is_equiv(pred, "1") is False
    assert is_equiv("1", pred) is False


def test_plain_numbers_never_reach_sympy(monkeypatch):
    def refuse(*args):
        raise AssertionError("sympy was asked about plain numbers")
    grader.clear_caches()
    monkeypatch.setattr(equivalence, "sympy_equal", refuse)
    assert is_equiv("0.25", r"\frac{1}{4}") and is_equiv("1,000", "1000") and not is_equiv("3", "4")
    assert is_equiv(r"\frac{3}{6}", "1/2") and not is_equiv("0.333", "1/3")


def test_repeated_pairs_are_cached():
    grader.clear_caches()
    pair = (r"\frac{\sqrt{8}}{2}", r"\sqrt{2}")
    assert is_equiv(*pair)
    hits = equivalence._is_equiv_cached.cache_info().hits
    assert is_equiv(*pair)
    assert equivalence._is_equiv_cached.cache_info().hits == hits + 1


HOSTILE = [
    (r"10^{10^{10^{10}}}", "1"),
    (r"x^{999999999}", "x"),
    ("(" * 400 + "1" + ")" * 400, "1"),
    # Ten hostile parts: the limit is for the whole check, not for each of up to 100 comparisons.
    (", ".join(r"10^{10^{10^{%d}}}" % k for k in range(2, 12)), ", ".join(str(k) for k in range(10))),
    (r"\frac{" * 60 + "1" + "}{2}" * 60, "1"),
]


def test_hostile_inputs_are_false_within_the_limit():
    limit = 1.0
    grader.clear_caches()
    start = time.monotonic()
    for pred, gold in HOSTILE:
        assert is_equiv(pred, gold, timeout=limit) is False
    # Each comparison may use its limit plus the start of a fresh helper (about a second,
    # a few on a loaded machine): a hang would blow through this.
    assert time.monotonic() - start < len(HOSTILE) * (limit + 5)
    # The helper that timed out was replaced: symbolic checks still work.
    assert is_equiv(r"\frac{\pi}{2}", r"\pi/2", timeout=10) is True


def test_long_inputs_are_answered_quickly():
    long_pairs = [
        (r"\boxed{%s}" % ", ".join(["1"] * 3000), ", ".join(["2"] * 3000)),
        (r"\boxed{%s}" % ", ".join(str(i) for i in range(40)), ", ".join(str(i) for i in reversed(range(40)))),
        ("x < " * 20000 + "1", "(0, 1)"),
        ("$" + "1" * 50000, "1"),
        (r"\boxed{" + "{" * 20000, "1"),
    ]
    start = time.monotonic()
    verdicts = [grade(response, gold, timeout=1.0) for response, gold in long_pairs]
    assert verdicts == [False, True, False, False, False]
    assert time.monotonic() - start < 10


def test_thread_pool_gives_the_serial_results():
    pairs = [(response, gold) for response, gold, _, _ in CASES[::3]]
    grader.clear_caches()
    serial = [grade(response, gold) for response, gold in pairs]
    grader.clear_caches()
    with ThreadPoolExecutor(max_workers=8) as pool:
        threaded = list(pool.map(lambda pair: grade(*pair), pairs))
    assert threaded == serial


def _grade_in_child(pair):
    return grade(*pair)


START_METHODS = ["spawn"] + (["fork"] if "fork" in multiprocessing.get_all_start_methods() else [])


@pytest.mark.parametrize("start_method", START_METHODS)
def test_works_inside_daemonic_pool_workers(start_method):
    # multiprocessing.Pool workers are daemons, which may not start multiprocessing children;
    # a forked worker must start helpers of its own, not share its parent's.
    assert is_equiv(r"\sqrt{50}", r"5\sqrt{2}")  # the parent has a helper before the fork
    pairs = [(r"\boxed{\frac{\sqrt{2}}{2}}", r"\frac{1}{\sqrt3}"), (r"\boxed{x+1}", "1+x"), (r"\boxed{7}", "8")]
    with multiprocessing.get_context(start_method).Pool(2 if start_method == "fork" else 1) as pool:
        assert pool.map_async(_grade_in_child, pairs).get(timeout=120) == [False, True, False]  # no hang
    assert is_equiv(r"\sqrt{72}", r"6\sqrt{2}")  # and the parent's helpers still work


def test_helpers_outlive_the_thread_that_started_them():
    grader.stop_helpers()
    grader.clear_caches()
    thread = threading.Thread(target=is_equiv, args=(r"\sqrt{8}", r"2\sqrt{2}"))
    thread.start()
    thread.join()
    time.sleep(0.5)  # a helper tied to the finished thread would be killed by now
    assert sympy_check._pool.helpers and all(helper.alive() for helper in sympy_check._pool.helpers)
    assert is_equiv(r"\sqrt{18}", r"3\sqrt{2}")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and Linux's parent-death signal")
def test_a_busy_helper_dies_with_its_parent():
    script = ("import sys; sys.path.insert(0, sys.argv[1]); from w2s import grader; "
              "grader.is_equiv(r'\\sqrt{8}', r'2\\sqrt{2}'); print('ready', flush=True); "
              "grader.is_equiv(r'10^{10^{10^{10}}}', '1', timeout=60)")
    parent = subprocess.Popen([sys.executable, "-c", script, ROOT], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout.readline().strip() == "ready"
        helpers = [int(pid) for task in os.listdir(f"/proc/{parent.pid}/task")
                   for pid in open(f"/proc/{parent.pid}/task/{task}/children").read().split()]
        time.sleep(1.0)  # the helper is now deep in a C-level big-integer computation
    finally:
        parent.kill()
        parent.wait()
    assert helpers
    deadline = time.monotonic() + 10
    while any(map(_running, helpers)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(_running, helpers))


def _running(pid: int) -> bool:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
