"""Build the data directory: training sets of chosen quality, test sets, and (built-in world) a tokenizer.

    python data_prep.py                                   # the built-in world into data/
    python data_prep.py --hard-error 0.9 --step-profile low high   # more variants, same dir
    python data_prep.py --source hf                       # the paper's data (hexuan21/weak-to-strong)
    python data_prep.py --stats data/hard_full_e0.9.jsonl  # the quality of a set

Set names carry the quality they were built at, so one directory holds many variants:
`hard_full` is at outcome error 0, `hard_full_e0.9` at 0.9 with the default (mixed) step profile,
`hard_full_e0.9_low` / `_high` with one late slip / errors in every step; easy_sub likewise;
combinations are named by their parts (`hard_full_e0.9+easy_sub`, `hard_full_e0.9_x2`, ...).
"""
import argparse
import os
import sys
import time

from w2s.data.datadir import (WORLD_DEFAULTS, build_builtin, build_gair, build_hf, claim_sets, step_range,
                            write_selection, write_sets)
from w2s.data.jsonl import file_stem, write_jsonl
from w2s.data.provenance import check_output_dir
from w2s.data.selection.samples import agreement_from_files, pairs_from_files, sft_from_samples
from w2s.data.selection.verifier_rows import step_rows_from_samples
from w2s.data.sources.math_shepherd import from_math_shepherd
from w2s.data.sources.paper import HF_TESTS
from w2s.data.sources.prm800k import from_prm800k
from w2s.data.world import miniworld, quality
from w2s.data.world.sets import SET_KINDS
from w2s.errors import run_main

BUILTIN_SETS = SET_KINDS  # the built-in world's sets at their default quality (outcome error 0)
BUILTIN_TESTS = tuple(miniworld.TEST_SETS)  # DIR/test/<name>.jsonl
WORLD_FLAGS = tuple(WORLD_DEFAULTS)  # --seed, --num-hard, ...: None = the directory's manifest, else the default


def _rate(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def print_table(stats: dict[str, dict]) -> None:
    """One line per set. outcome err: share of incorrect solutions (checked by the grader); step err:
    wrong steps / all steps (the step checker's count; n/a where steps are not known)."""
    if not stats:
        return
    width = max(len(name) for name in stats) + 2
    print(f"{'set':<{width}}{'examples':>9}{'tokens':>11}{'outcome err':>13}{'step err':>10}")
    for name, s in stats.items():
        tokens = "n/a" if s["tokens"] is None else str(s["tokens"])
        print(f"{name:<{width}}{s['examples']:>9}{tokens:>11}{_rate(s['outcome_error']):>13}{_rate(s['step_error']):>10}")


# ---------------------------------------------------------------------------------------------
# The commands: each calls w2s/ and reports


def stats_command(path: str, tokenizer_path: str | None) -> dict:
    """--stats: counts, outcome and step-wise error rates (rechecked when the rows are built-in world ones), lengths."""
    s, lengths, unit = quality.set_report(path, tokenizer_path)
    print(f"{path}: {s['examples']} examples, kinds {s['kinds']}")
    print(f"  outcome error rate: {_rate(s['outcome_error'])} from meta.correct ({s['unknown_correctness']} rows without), "
          f"{_rate(s['outcome_error_by_grader'])} by the grader on {s['graded']} rows with a gold answer "
          f"({s['grader_disagrees_with_meta']} disagree with meta)")
    print(f"  step-wise error rate: {_rate(s['step_error'])} ({s['unknown_step_error']} rows unknown)")
    print(f"  length in {unit}: total {sum(lengths)}, mean {sum(lengths) / len(lengths):.1f}, max {max(lengths)}")
    for low, high, count in quality.histogram(lengths):
        print(f"    {low:>6}-{high:<6} {count:>8} {'#' * round(50 * count / len(lengths))}")
    return s


def from_samples_command(args) -> None:
    """--from-samples: every sample of a model teacher as an SFT example, measured."""
    name = args.name or f"weak_{file_stem(args.from_samples)}"
    rows, report = sft_from_samples(args.from_samples, name)
    os.makedirs(args.out, exist_ok=True)
    tokenizer = quality.find_tokenizer(os.path.join(args.out, "x.jsonl"), args.tokenizer)
    written = {}
    write_sets(args.out, {name: rows}, tokenizer, written, {}, kind="from_samples")
    print(f"{args.from_samples}: {dict(report)}")
    print_table(written)
    print(f"wrote {os.path.join(args.out, name + '.jsonl')}")


def verifier_data_command(args) -> None:
    """Step rows for train.py --objective prm (w2s/data/selection/verifier_rows.py, w2s/data/sources/): from samples, PRM800K or Math-Shepherd."""
    if args.verifier_from_samples:
        source = args.verifier_from_samples
        name = args.name or f"steps_{file_stem(source)}"
        rows, report = step_rows_from_samples(source, args.outcome, args.verifier_split)
    else:
        source = args.input
        name = args.name or args.source.replace("-", "_")
        convert = from_prm800k if args.source == "prm800k" else from_math_shepherd
        rows, report = convert(source)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, name + ".jsonl")
    claim_sets(args.out, [name], "verifier")
    write_jsonl(path, rows)
    print(f"{source}: {dict(report)}")
    print(f"wrote {len(rows)} step rows to {path}")


def _report_selection(out: str, name: str, rows: list[dict], report: dict, kind: str) -> None:
    path = write_selection(out, name, rows, report, kind)
    for key, value in report.items():
        print(f"  {key}: {value}")
    print(f"wrote {path}: {len(rows)} rows (report in {name}.report.json)")


def agree_command(args) -> dict:
    """--agree A B: the hybrid SFT set of the tasks whose first samples' final answers agree."""
    rows, report = agreement_from_files(*args.agree)
    print(f"agreement of {args.agree[0]} and {args.agree[1]}:")
    _report_selection(args.out, args.name, rows, report, "agree")
    return report


def pairs_command(args) -> dict:
    """--pairs STRONG --weak WEAK: DPO pairs by the strong samples' confidence and the weak answer."""
    rows, report = pairs_from_files(args.pairs, args.weak, min_confidence=args.min_confidence,
                                              flip_confidence=args.flip_confidence, max_pairs=args.max_pairs,
                                              seed=args.seed or 0)
    print(f"confidence pairs from {args.pairs} (weak: {args.weak}):")
    _report_selection(args.out, args.name, rows, report, "pairs")
    return report


def build_command(args) -> None:
    """A data directory from one of the three sources, and the table of the sets written."""
    t0 = time.time()
    if args.source == "hf":
        written = build_hf(args.out, args.hf_dir, args.hf_subset, args.seed, args.sets, args.hard_error, args.sub_error)
    elif args.source == "gair":
        written = build_gair(args.out, args.gair_dir)
    else:
        written = build_builtin(args.out, {k: getattr(args, k) for k in WORLD_FLAGS}, args.sets,
                                args.hard_error, args.sub_error, args.step_profile)
    print()
    print_table(written)
    if args.source != "gair":
        print(f"\nwrote {len(written)} sets to {args.out}/ in {time.time() - t0:.1f}s")


# ---------------------------------------------------------------------------------------------


def _step_range_arg(text: str) -> tuple[int, int]:
    try:
        return step_range(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"""
files written to --out DIR:
  <set>.jsonl         chat SFT rows {{"id", "messages": [user, assistant], "meta"}}
  test/<bench>.jsonl  {{"id", "problem", "answer"}}: built-in {', '.join(BUILTIN_TESTS)}; hf {', '.join(HF_TESTS.values())}
  tokenizer.json      (built-in world) byte-level BPE trained on the world's training text
  tasks/hard_full.jsonl  the hard training tasks as {{"id", "problem", "answer"}}, for a model teacher (sample.py)
  manifest.json       the settings DIR was built with; a later run into DIR must use the same ones

set kinds (--sets): {', '.join(SET_KINDS)}
  hf adds weak_<teacher> (weaker_sampling; correctness from the release's judge fields).
names carry the quality: outcome error E > 0 adds _e<E>, a low/high step profile adds _low/_high:
  hard_full, hard_full_e0.5, hard_full_e0.9_low, easy_sub_e0.2, hard_full_e0.9+easy_sub,
  hard_full_e0.9+paraphrase, hard_full_e0.9_x2, foundation (1-2 step problems, always correct)
step profiles of incorrect solutions (built-in world):
  mixed  1..all steps wrong at random places, computation or method errors (default)
  low    one computation slip in the last step       (step-wise error 1/steps per wrong solution)
  high   every step wrong, from the first on         (step-wise error 1 per wrong solution)
examples:
  python data_prep.py --hard-error 0 0.5 0.9            # three hard_full variants (and their combinations)
  python data_prep.py --hard-error 0.9 --step-profile low high --sets hard_full
  python data_prep.py --stats data/hard_full_e0.9_low.jsonl
  python sample.py --model runs/weak/final --tasks data/tasks/hard_full.jsonl --out runs/weak/samples.jsonl --n 1
  python data_prep.py --from-samples runs/weak/samples.jsonl --name weak_model   # -> data/weak_model.jsonl
verifier step rows {{"id", "prompt", "steps", "labels"}} (train.py --objective prm):
  python data_prep.py --verifier-from-samples samples.jsonl --name prm_easy     # exact step labels (built-in world)
  python data_prep.py --verifier-from-samples samples.jsonl --name orm_easy --outcome   # outcome labels
  python data_prep.py --source prm800k --input phase2_train.jsonl               # -> data/prm800k.jsonl
  python data_prep.py --source math-shepherd --input math-shepherd.jsonl        # -> data/math_shepherd.jsonl""")
    parser.add_argument("--out", default="data", help="output directory (default: data)")
    parser.add_argument("--source", choices=["builtin", "hf", "gair", "prm800k", "math-shepherd"], default="builtin",
                        help="the built-in world (default), the paper's data (hf), Weak-to-Strong Reasoning's release "
                             "(gair), or verifier step rows converted from a downloaded PRM800K / Math-Shepherd file (--input)")
    parser.add_argument("--seed", type=int, help="world / mixture seed (default 0, or the directory's)")
    parser.add_argument("--hard-error", type=float, nargs="+", default=[0.0], metavar="E",
                        help="outcome error rate(s) of hard full tasks (default 0; the paper's grid: 0 0.2 0.5 0.7 0.9 1)")
    parser.add_argument("--sub-error", type=float, nargs="+", default=[0.0], metavar="E", help="outcome error rate(s) of easy sub-tasks (default 0)")
    parser.add_argument("--step-profile", nargs="+", choices=miniworld.PROFILES, default=["mixed"],
                        help="error profile(s) of incorrect solutions, built-in world only (default mixed)")
    parser.add_argument("--sets", nargs="+", choices=SET_KINDS, metavar="KIND", help="write only these set kinds (default: all)")
    world = parser.add_argument_group("the built-in world (defaults: the directory's manifest.json, else these)")
    world.add_argument("--num-hard", type=int, help=f"hard full tasks ({WORLD_DEFAULTS['num_hard']})")
    world.add_argument("--num-foundation", type=int, help=f"stage-1 foundation problems ({WORLD_DEFAULTS['num_foundation']})")
    world.add_argument("--num-test", type=int, help=f"same-distribution test problems ({WORLD_DEFAULTS['num_test']})")
    world.add_argument("--num-long-test", type=int, help=f"longer test problems ({WORLD_DEFAULTS['num_long_test']})")
    world.add_argument("--hard-steps", type=_step_range_arg, help=f"steps of hard tasks and the same-distribution test ({WORLD_DEFAULTS['hard_steps']})")
    world.add_argument("--long-steps", type=_step_range_arg, help=f"steps of the longer test ({WORLD_DEFAULTS['long_steps']})")
    world.add_argument("--foundation-steps", type=_step_range_arg, help=f"steps of foundation problems ({WORLD_DEFAULTS['foundation_steps']})")
    world.add_argument("--max-value", type=int, help=f"largest amount in a task ({WORLD_DEFAULTS['max_value']})")
    world.add_argument("--max-start", type=int, help=f"largest starting amount ({WORLD_DEFAULTS['max_start']})")
    world.add_argument("--max-add", type=int, help=f"largest operand of + and - ({WORLD_DEFAULTS['max_add']})")
    world.add_argument("--max-mul", type=int, help=f"largest operand of * and / ({WORLD_DEFAULTS['max_mul']})")
    world.add_argument("--operations", help=f"the operations tasks use, e.g. '+-*' ({WORLD_DEFAULTS['operations']})")
    world.add_argument("--phrasings", type=int, choices=[1, 2, 3],
                       help=f"templates per kind of sentence; fewer are easier to learn ({WORLD_DEFAULTS['phrasings']})")
    world.add_argument("--vocab-size", type=int, help=f"tokenizer vocabulary ({WORLD_DEFAULTS['vocab_size']})")
    hf = parser.add_argument_group("the paper's data (--source hf)")
    hf.add_argument("--hf-dir", help="convert an already-downloaded copy of the dataset instead of downloading")
    hf.add_argument("--hf-subset", help="only this subset folder of task_sol_pairs/ and paraphrase/")
    parser.add_argument("--gair-dir", metavar="DIR", help="--source gair: a downloaded copy of "
                        "GAIR-NLP/weak-to-strong-reasoning (or its data/ folder); no download happens")
    parser.add_argument("--stats", metavar="FILE.jsonl", help="report a set's quality (counts, error rates, lengths) and exit")
    parser.add_argument("--from-samples", metavar="SAMPLES.jsonl",
                        help="turn a model teacher's samples (sample.py output) into the set DIR/<--name>.jsonl and exit")
    verifier = parser.add_argument_group("verifier step rows (w2s/data/selection/verifier_rows.py, w2s/data/sources/)")
    verifier.add_argument("--verifier-from-samples", metavar="SAMPLES.jsonl",
                          help="turn samples (sample.py output) into step rows DIR/<--name>.jsonl and exit: exact step "
                               "labels for built-in world problems, else --outcome")
    verifier.add_argument("--outcome", action="store_true",
                          help="label every step with its solution's outcome (an outcome reward model's data)")
    verifier.add_argument("--verifier-split", choices=["lines", "blank"], default="lines",
                          help="steps of a sample: its non-empty lines, or its blank-line-separated paragraphs (default lines)")
    verifier.add_argument("--input", metavar="FILE.jsonl", help="with --source prm800k / math-shepherd: the downloaded file")
    parser.add_argument("--name", help="with --from-samples: the set's name (default weak_<file stem>); with "
                        "--verifier-from-samples: the step rows' name (default steps_<file stem>); "
                        "with --agree / --pairs (required): the output OUT/NAME.jsonl")
    w2s_group = parser.add_argument_group("weak-to-strong reasoning (Yang et al. 2024): selection without gold answers")
    w2s_group.add_argument("--agree", nargs=2, metavar=("A.jsonl", "B.jsonl"),
                           help="two sample.py outputs over the same tasks: keep the tasks whose first samples' final "
                                "answers agree (the grader's is_equiv), and write both responses as an SFT set (hybrid)")
    w2s_group.add_argument("--pairs", metavar="STRONG.jsonl",
                           help="the strong model's samples (e.g. 10 at temperature 1): DPO pairs against --weak")
    w2s_group.add_argument("--weak", metavar="WEAK.jsonl", help="with --pairs: the weak model's samples (its first is its response)")
    w2s_group.add_argument("--min-confidence", type=float, default=0.6,
                           help="with --pairs: skip a task whose majority answer has a smaller share of the samples (default 0.6)")
    w2s_group.add_argument("--flip-confidence", type=float, default=0.8,
                           help="with --pairs: a weak answer outside the majority is rejected (against a majority "
                                "sample) only at this confidence or above (default 0.8)")
    w2s_group.add_argument("--max-pairs", type=int, default=1, help="with --pairs: pairs per task at most (default 1; the paper's MATH: 3)")
    parser.add_argument("--tokenizer", help="with --stats / --from-samples: tokenizer for token counts (default: tokenizer.json beside the file / in --out)")
    args = parser.parse_args(argv)
    for rate in args.hard_error + args.sub_error:
        if not 0 <= rate <= 1:
            parser.error(f"error rates must be in [0, 1], got {rate}")
    if args.source in ("prm800k", "math-shepherd") and not args.input:
        parser.error(f"--source {args.source} converts a downloaded file: pass it with --input")
    for flag, path in (("--stats", args.stats), ("--from-samples", args.from_samples),
                       ("--verifier-from-samples", args.verifier_from_samples), ("--input", args.input),
                       ("--pairs", args.pairs), ("--weak", args.weak), *(("--agree", p) for p in args.agree or [])):
        if path and not os.path.isfile(path):
            parser.error(f"{flag} {path}: no such file")
    if (args.agree or args.pairs) and not args.name:
        parser.error("--agree and --pairs need --name (the output OUT/NAME.jsonl)")
    if args.pairs and not args.weak:
        parser.error("--pairs needs --weak WEAK.jsonl (the weak model's samples)")
    if not 0 <= args.min_confidence <= args.flip_confidence <= 1 or args.max_pairs < 1:
        parser.error("need 0 <= --min-confidence <= --flip-confidence <= 1 and --max-pairs >= 1")
    if args.hf_dir:
        args.source = "hf"
        if not os.path.isdir(args.hf_dir):
            parser.error(f"--hf-dir {args.hf_dir}: no such directory")
    if args.gair_dir:
        args.source = "gair"
        if not os.path.isdir(args.gair_dir):
            parser.error(f"--gair-dir {args.gair_dir}: no such directory")
    elif args.source == "gair":
        parser.error("--source gair needs --gair-dir DIR (a downloaded copy of GAIR-NLP/weak-to-strong-reasoning)")
    if args.source != "builtin" and args.step_profile != ["mixed"]:
        parser.error("--step-profile applies to the built-in world only (the paper's data brings its own errors)")
    for name in ("num_hard", "num_test", "num_long_test", "vocab_size", "max_value", "max_start", "max_add"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.max_value is not None and args.max_value < 3:
        parser.error("--max-value must be at least 3")
    if args.max_mul is not None and args.max_mul < 2:
        parser.error("--max-mul must be at least 2")
    if args.operations is not None and (not args.operations or set(args.operations) - set("+-*/")):
        parser.error(f"--operations {args.operations!r}: use some of + - * / (e.g. '+-*')")
    if args.num_foundation is not None and args.num_foundation < 0:
        parser.error("--num-foundation must not be negative")
    for name in ("hard_steps", "long_steps", "foundation_steps"):  # recorded in the manifest as text
        if getattr(args, name) is not None:
            setattr(args, name, "-".join(map(str, getattr(args, name))))
    return args


def prepare(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if not args.stats:
        check_output_dir(args.out)
    if args.stats:
        stats_command(args.stats, args.tokenizer)
    elif args.from_samples:
        from_samples_command(args)
    elif args.verifier_from_samples or args.source in ("prm800k", "math-shepherd"):
        verifier_data_command(args)
    elif args.agree:
        agree_command(args)
    elif args.pairs:
        pairs_command(args)
    else:
        build_command(args)


def main(argv: list[str] | None = None) -> None:
    """data_prep.py's command line: a bad input ends it with one line on stderr (exit status 2)."""
    return run_main(prepare, argv, "data_prep.py")


if __name__ == "__main__":
    main(sys.argv[1:])
