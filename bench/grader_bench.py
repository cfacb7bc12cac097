"""Grader benchmark: w2s.grader against math-verify on the project's labelled cases.

For both graders: agreement with the human labels (overall and by kind) and checks per second,
measured in the same run on the same cases. Ours is timed cold (caches cleared, sympy helper
processes already started: they are started once per evaluation, like math-verify's imports)
(a fresh helper for each round: no parse is cached) and warm (every pair seen before: an
evaluation with many samples per problem, maj@k, repeats pairs).
math-verify keeps no cache between calls, so it is timed once per round.

    pip install math-verify==0.9.0    # benchmark-only dependency
    python bench/grader_bench.py [--rounds 3]
"""
import argparse
import os
import sys
import time
from collections import defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.results import write_section  # noqa: E402
from bench.grader_cases import CASES  # noqa: E402
from w2s import grader  # noqa: E402


def math_verify_grade(response: str, gold: str) -> bool:
    """math-verify as its README uses it: the gold in $...$ (or as given when it has a box)."""
    from math_verify import parse, verify

    gold_text = gold if "\\boxed" in gold else f"${gold}$"
    return bool(verify(parse(gold_text), parse(response)))


def run(grade_fn, cases) -> tuple[list[bool], float]:
    start = time.perf_counter()
    verdicts = [grade_fn(response, gold) for response, gold, _, _ in cases]
    return verdicts, time.perf_counter() - start


def agreement_by_kind(cases, verdicts) -> dict[str, tuple[int, int]]:
    by_kind = defaultdict(lambda: [0, 0])
    for (_, _, label, kind), verdict in zip(cases, verdicts):
        by_kind[kind][0] += verdict == label
        by_kind[kind][1] += 1
    return dict(by_kind)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed passes over the cases (best is reported)")
    parser.add_argument("--dry-run", action="store_true", help="print the results without writing RESULTS.md")
    args = parser.parse_args()
    import math_verify  # noqa: F401 - fail early when the benchmark dependency is missing
    from importlib.metadata import version

    startup = time.perf_counter()
    grader.is_equiv(r"\sqrt{2}", r"\frac{2}{\sqrt{2}}")  # start a sympy helper
    startup = time.perf_counter() - startup
    math_verify_grade(r"\boxed{\sqrt{2}}", r"\frac{2}{\sqrt{2}}")  # import its parsers

    ours_cold, ours_warm, theirs = [], [], []
    for _ in range(args.rounds):
        grader.clear_caches()
        grader.stop_helpers()  # their parse caches go too
        grader.is_equiv(r"\sqrt{5}", r"\frac{5}{\sqrt{5}}")  # start a fresh helper (a pair not among the cases)
        ours_verdicts, seconds = run(grader.grade, CASES)
        ours_cold.append(seconds)
        ours_warm.append(run(grader.grade, CASES)[1])
        theirs_verdicts, seconds = run(math_verify_grade, CASES)
        theirs.append(seconds)

    n = len(CASES)
    ours_ok = sum(v == label for v, (_, _, label, _) in zip(ours_verdicts, CASES))
    theirs_ok = sum(v == label for v, (_, _, label, _) in zip(theirs_verdicts, CASES))
    rate = {name: n / min(times) for name, times in
            (("cold", ours_cold), ("warm", ours_warm), ("theirs", theirs))}
    lines = [
        "## Grader: w2s.grader vs math-verify",
        "",
        f"{n} labelled cases from `bench/grader_cases.py` ({sum(1 for c in CASES if not c[2])} of them False); "
        f"math-verify {version('math-verify')}; best of {args.rounds} passes.",
        "",
        "| grader | agreement with labels | checks/s | speed vs math-verify |",
        "|---|---|---|---|",
        f"| w2s.grader, cold (caches cleared) | {ours_ok}/{n} ({100 * ours_ok / n:.1f}%) | {rate['cold']:.0f} | "
        f"{rate['cold'] / rate['theirs']:.1f}x |",
        f"| w2s.grader, warm (pairs seen before) | {ours_ok}/{n} ({100 * ours_ok / n:.1f}%) | {rate['warm']:.0f} | "
        f"{rate['warm'] / rate['theirs']:.1f}x |",
        f"| math-verify | {theirs_ok}/{n} ({100 * theirs_ok / n:.1f}%) | {rate['theirs']:.0f} | 1.0x |",
        "",
        f"Starting the first sympy helper process took {startup:.1f} s (once per process, not in the rates).",
        "",
        "| kind | cases | w2s.grader | math-verify |",
        "|---|---|---|---|",
    ]
    ours_by_kind, theirs_by_kind = agreement_by_kind(CASES, ours_verdicts), agreement_by_kind(CASES, theirs_verdicts)
    for kind, (ok, total) in ours_by_kind.items():
        lines.append(f"| {kind} | {total} | {ok} | {theirs_by_kind[kind][0]} |")
    disagreements = [(c, o, t) for c, o, t in zip(CASES, ours_verdicts, theirs_verdicts) if o != c[2] or t != c[2]]
    lines += ["", "Cases where a grader disagrees with the label (label / w2s.grader / math-verify):", ""]
    for (response, gold, label, kind), ours, theirs_v in disagreements:
        response_text = response.replace("\n", " ").replace("|", "\\|")
        lines.append(f"- {kind}: `{response_text}` vs `{gold}`: {label} / {ours} / {theirs_v}")
    text = "\n".join(lines)
    print(text)
    if not args.dry_run:
        write_section("grader", text)


if __name__ == "__main__":
    main()
