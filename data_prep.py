"""Build the data directory: training sets of chosen quality, test sets, and (built-in world) a tokenizer.

    python data_prep.py                                    # the built-in world into data/ (the `world` command)
    python data_prep.py world --hard-error 0.9 --step-profile low high   # more variants, same dir
    python data_prep.py hf                                 # the paper's data (hexuan21/weak-to-strong)
    python data_prep.py gair weak-to-strong-reasoning/     # Weak-to-Strong Reasoning's release
    python data_prep.py stats data/hard_full_e0.9.jsonl    # the quality of a set

One command per source or selection, each with its own flags (`data_prep.py CMD --help`): world, hf,
gair, prm800k, math-shepherd (outside sources); from-samples, agree, pairs, verifier (sets chosen from
a model's samples); stats (a set's measured quality). With no command, `world`.

Set names carry the quality they were built at, so one directory holds many variants:
`hard_full` is at outcome error 0, `hard_full_e0.9` at 0.9 with the default (mixed) step profile,
`hard_full_e0.9_low` / `_high` with one late slip / errors in every step; easy_sub and easy_sub_prefix likewise;
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
from w2s.data.selection.verifier_rows import balance_rows, oprm_rows, step_rows_from_samples
from w2s.data.sources.math_shepherd import from_math_shepherd
from w2s.data.sources.paper import HF_TESTS
from w2s.data.sources.prm800k import from_prm800k
from w2s.data.world import miniworld, quality
from w2s.data.world.sets import SET_KINDS
from w2s.errors import UserError, run_main

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
        print(f"{name:<{width}}{s['examples']:>9}{tokens:>11}"
              f"{_rate(s['outcome_error']):>13}{_rate(s['step_error']):>10}")


# ---------------------------------------------------------------------------------------------
# The commands: each calls w2s/ and reports


def stats_command(path: str, tokenizer_path: str | None) -> dict:
    """stats: counts, outcome and step-wise error rates (rechecked when the rows are built-in world ones), lengths."""
    s, lengths, unit = quality.set_report(path, tokenizer_path)
    print(f"{path}: {s['examples']} examples, kinds {s['kinds']}")
    print(f"  outcome error rate: {_rate(s['outcome_error'])} from meta.correct "
          f"({s['unknown_correctness']} rows without), "
          f"{_rate(s['outcome_error_by_grader'])} by the grader on {s['graded']} rows with a gold answer "
          f"({s['grader_disagrees_with_meta']} disagree with meta)")
    print(f"  step-wise error rate: {_rate(s['step_error'])} ({s['unknown_step_error']} rows unknown)")
    print(f"  length in {unit}: total {sum(lengths)}, mean {sum(lengths) / len(lengths):.1f}, max {max(lengths)}")
    for low, high, count in quality.histogram(lengths):
        print(f"    {low:>6}-{high:<6} {count:>8} {'#' * round(50 * count / len(lengths))}")
    return s


def from_samples_command(args) -> None:
    """from-samples: every sample of a model teacher as an SFT example, measured."""
    name = args.name or f"weak_{file_stem(args.samples)}"
    rows, report = sft_from_samples(args.samples, name)
    os.makedirs(args.out, exist_ok=True)
    tokenizer = quality.find_tokenizer(os.path.join(args.out, "x.jsonl"), args.tokenizer)
    written = {}
    write_sets(args.out, {name: rows}, tokenizer, written, {}, kind="from_samples")
    print(f"{args.samples}: {dict(report)}")
    print_table(written)
    print(f"wrote {os.path.join(args.out, name + '.jsonl')}")


def step_rows_command(args) -> None:
    """Step rows for train.py --objective prm: from samples (verifier), PRM800K or Math-Shepherd."""
    if args.command == "verifier":
        source, name = args.samples, args.name or f"steps_{file_stem(args.samples)}"
        if args.oprm and args.outcome:
            raise UserError("verifier: --oprm already holds the outcome-labelled rows; drop --outcome")
        rows, report = (oprm_rows(source, args.split) if args.oprm
                        else step_rows_from_samples(source, args.outcome, args.split))
        if args.balance:
            rows, balance = balance_rows(rows, args.seed)
            print("balanced good and bad steps: " + ", ".join(f"{k} {v}" for k, v in balance.items()))
    else:
        source, name = args.file, args.name or args.command.replace("-", "_")
        convert = from_prm800k if args.command == "prm800k" else from_math_shepherd
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
    """agree A B: the hybrid SFT set of the tasks whose first samples' final answers agree."""
    rows, report = agreement_from_files(args.a, args.b)
    print(f"agreement of {args.a} and {args.b}:")
    _report_selection(args.out, args.name, rows, report, "agree")
    return report


def pairs_command(args) -> dict:
    """pairs STRONG --weak WEAK: DPO pairs by the strong samples' confidence and the weak answer."""
    rows, report = pairs_from_files(args.strong, args.weak, min_confidence=args.min_confidence,
                                    flip_confidence=args.flip_confidence, max_pairs=args.max_pairs, seed=args.seed,
                                    student_only=args.student_only)
    print(f"confidence pairs from {args.strong} (weak: {args.weak}):")
    _report_selection(args.out, args.name, rows, report, "pairs")
    return report


def build_command(args) -> None:
    """A data directory from one of the three sources (world, hf, gair), and the table of the sets written."""
    t0 = time.time()
    if args.command == "hf":
        written = build_hf(args.out, args.dir, args.subset, args.seed, args.sets, args.hard_error, args.sub_error)
    elif args.command == "gair":
        written = build_gair(args.out, args.dir)
    else:
        written = build_builtin(args.out, {k: getattr(args, k) for k in WORLD_FLAGS}, args.sets,
                                args.hard_error, args.sub_error, args.step_profile)
    print()
    print_table(written)
    if args.command != "gair":
        print(f"\nwrote {len(written)} sets to {args.out}/ in {time.time() - t0:.1f}s")


COMMANDS = {"world": build_command, "hf": build_command, "gair": build_command, "prm800k": step_rows_command,
            "math-shepherd": step_rows_command, "from-samples": from_samples_command, "agree": agree_command,
            "pairs": pairs_command, "verifier": step_rows_command,
            "stats": lambda args: stats_command(args.file, args.tokenizer)}


# ---------------------------------------------------------------------------------------------
# The command line: one small parser per command


def _step_range_arg(text: str) -> tuple[int, int]:
    try:
        return step_range(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _rate_arg(text: str) -> float:
    rate = float(text)
    if not 0 <= rate <= 1:
        raise argparse.ArgumentTypeError(f"error rates must be in [0, 1], got {rate}")
    return rate


def _positive(least: int):
    def parse(text: str) -> int:
        value = int(text)
        if value < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
        return value
    return parse


def _operations_arg(text: str) -> str:
    if not text or set(text) - set("+-*/"):
        raise argparse.ArgumentTypeError(f"{text!r}: use some of + - * / (e.g. '+-*')")
    return text


def _file_arg(path: str) -> str:
    if not os.path.isfile(path):
        raise argparse.ArgumentTypeError(f"{path}: no such file")
    return path


def _dir_arg(path: str) -> str:
    if not os.path.isdir(path):
        raise argparse.ArgumentTypeError(f"{path}: no such directory")
    return path


WORLD_EPILOG = f"""
files written to --out DIR:
  <set>.jsonl         chat SFT rows {{"id", "messages": [user, assistant], "meta"}}
  test/<bench>.jsonl  {{"id", "problem", "answer"}}: built-in {', '.join(BUILTIN_TESTS)}; \
hf {', '.join(HF_TESTS.values())}
  tokenizer.json      (built-in world) byte-level BPE trained on the world's training text
  tasks/hard_full.jsonl  the hard training tasks as {{"id", "problem", "answer"}}, for a model teacher (sample.py)
  manifest.json       the settings DIR was built with; a later run into DIR must use the same ones

set kinds (--sets): {', '.join(SET_KINDS)}
  easy_sub: runs of 2-3 steps of each hard task, each posed as a problem of its own;
  easy_sub_prefix: each hard task's whole text asking for the amount after its first 1 and 2 steps
  (built-in world only; its quality is set by --sub-error, like easy_sub's).
  hf adds weak_<teacher> (weaker_sampling; correctness from the release's judge fields).
names carry the quality: outcome error E > 0 adds _e<E>, a low/high step profile adds _low/_high:
  hard_full, hard_full_e0.5, hard_full_e0.9_low, easy_sub_e0.2, easy_sub_prefix_e0.2, hard_full_e0.9+easy_sub,
  hard_full_e0.9+paraphrase, hard_full_e0.9_x2, foundation (1-2 step problems, always correct)
step profiles of incorrect solutions (built-in world):
  mixed  1..all steps wrong at random places, computation or method errors (default)
  low    one computation slip in the last step       (step-wise error 1/steps per wrong solution)
  high   every step wrong, from the first on         (step-wise error 1 per wrong solution)
examples:
  python data_prep.py world --hard-error 0 0.5 0.9      # three hard_full variants (and their combinations)
  python data_prep.py world --hard-error 0.9 --step-profile low high --sets hard_full"""


def _quality_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, help="world / mixture seed (default 0, or the directory's)")
    p.add_argument("--hard-error", type=_rate_arg, nargs="+", default=[0.0], metavar="E",
                   help="outcome error rate(s) of hard full tasks "
                        "(default 0; the paper's grid: 0 0.2 0.5 0.7 0.9 1)")
    p.add_argument("--sub-error", type=_rate_arg, nargs="+", default=[0.0], metavar="E",
                   help="outcome error rate(s) of easy sub-tasks (default 0)")
    p.add_argument("--sets", nargs="+", choices=SET_KINDS, metavar="KIND",
                   help="write only these set kinds (default: all)")


def _world_args(p: argparse.ArgumentParser) -> None:
    _quality_args(p)
    p.add_argument("--step-profile", nargs="+", choices=miniworld.PROFILES, default=["mixed"],
                   help="error profile(s) of incorrect solutions (default mixed)")
    world = p.add_argument_group("the world (defaults: the directory's manifest.json, else these)")
    world.add_argument("--num-hard", type=_positive(1), help=f"hard full tasks ({WORLD_DEFAULTS['num_hard']})")
    world.add_argument("--num-foundation", type=_positive(0),
                       help=f"stage-1 foundation problems ({WORLD_DEFAULTS['num_foundation']})")
    world.add_argument("--num-test", type=_positive(1),
                       help=f"same-distribution test problems ({WORLD_DEFAULTS['num_test']})")
    world.add_argument("--num-long-test", type=_positive(1),
                       help=f"longer test problems ({WORLD_DEFAULTS['num_long_test']})")
    world.add_argument("--hard-steps", type=_step_range_arg,
                       help=f"steps of hard tasks and the same-distribution test ({WORLD_DEFAULTS['hard_steps']})")
    world.add_argument("--long-steps", type=_step_range_arg,
                       help=f"steps of the longer test ({WORLD_DEFAULTS['long_steps']})")
    world.add_argument("--foundation-steps", type=_step_range_arg,
                       help=f"steps of foundation problems ({WORLD_DEFAULTS['foundation_steps']})")
    world.add_argument("--max-value", type=_positive(3),
                       help=f"largest amount in a task ({WORLD_DEFAULTS['max_value']})")
    world.add_argument("--max-start", type=_positive(1),
                       help=f"largest starting amount ({WORLD_DEFAULTS['max_start']})")
    world.add_argument("--max-add", type=_positive(1), help=f"largest operand of + and - ({WORLD_DEFAULTS['max_add']})")
    world.add_argument("--max-mul", type=_positive(2), help=f"largest operand of * and / ({WORLD_DEFAULTS['max_mul']})")
    world.add_argument("--operations", type=_operations_arg,
                       help=f"the operations tasks use, e.g. '+-*' ({WORLD_DEFAULTS['operations']})")
    world.add_argument("--phrasings", type=int, choices=[1, 2, 3],
                       help="templates per kind of sentence; fewer are easier to learn "
                            f"({WORLD_DEFAULTS['phrasings']})")
    world.add_argument("--vocab-size", type=_positive(1), help=f"tokenizer vocabulary ({WORLD_DEFAULTS['vocab_size']})")


def _hf_args(p: argparse.ArgumentParser) -> None:
    _quality_args(p)
    p.add_argument("--dir", type=_dir_arg,
                   help="convert an already-downloaded copy of the dataset instead of downloading")
    p.add_argument("--subset", help="only this subset folder of task_sol_pairs/ and paraphrase/")


def _gair_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", type=_dir_arg, metavar="DIR",
                   help="a downloaded copy (or its data/ folder); no download happens")


def _step_file_args(p: argparse.ArgumentParser, name: str) -> None:
    """prm800k and math-shepherd: one downloaded file of the source."""
    p.add_argument("file", type=_file_arg, metavar="FILE.jsonl")
    p.add_argument("--name", help=f"the step rows' name (default {name.replace('-', '_')})")


def _from_samples_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("samples", type=_file_arg, metavar="SAMPLES.jsonl")
    p.add_argument("--name", help="the set's name, DIR/NAME.jsonl (default weak_<file stem>)")
    p.add_argument("--tokenizer", help="tokenizer for token counts (default: tokenizer.json in --out)")


def _agree_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", type=_file_arg, metavar="A.jsonl", help="a sample.py output")
    p.add_argument("b", type=_file_arg, metavar="B.jsonl", help="another, over the same tasks")
    p.add_argument("--name", required=True, help="the output DIR/NAME.jsonl")


def _pairs_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("strong", type=_file_arg, metavar="STRONG.jsonl",
                   help="the strong model's samples (e.g. 10 at temperature 1)")
    p.add_argument("--weak", type=_file_arg, required=True, metavar="WEAK.jsonl",
                   help="the weak model's samples (its first is its response)")
    p.add_argument("--name", required=True, help="the output DIR/NAME.jsonl")
    p.add_argument("--min-confidence", type=float, default=0.6,
                   help="skip a task whose majority answer has a smaller share of the samples (default 0.6)")
    p.add_argument("--flip-confidence", type=float, default=0.8,
                   help="a weak answer outside the majority is rejected (against a majority sample) only at "
                        "this confidence or above (default 0.8)")
    p.add_argument("--max-pairs", type=int, default=1,
                   help="pairs per task at most (default 1, the release's GSM8K; its MATH and OlympicArena: 3)")
    p.add_argument("--seed", type=int, default=0, help="which samples make a task's pairs (default 0)")
    p.add_argument("--student-only", action="store_true",
                   help="the same tasks, both sides the strong model's samples (a majority one chosen over a "
                        "non-majority one) instead of the weak response on one side")


def _verifier_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("samples", type=_file_arg, metavar="SAMPLES.jsonl")
    p.add_argument("--name", help="the step rows' name, DIR/NAME.jsonl (default steps_<file stem>)")
    p.add_argument("--outcome", action="store_true", help="label every step with its solution's outcome (an "
                   "outcome reward model's data; needed for problems outside the built-in world)")
    p.add_argument("--split", choices=["lines", "blank"], default="lines",
                   help="steps of a sample: its non-empty lines, or its blank-line-separated paragraphs "
                        "(default lines)")
    p.add_argument("--oprm", action="store_true", help="each sample twice: with exact step labels and with its "
                   "outcome at every step (an OPRM's data, Sun et al. 2024; built-in world problems)")
    p.add_argument("--balance", action="store_true", help="drop whole rows at random until good and bad step "
                   "labels are as near equal as whole rows allow (what was dropped is printed)")
    p.add_argument("--seed", type=int, default=0, help="which rows --balance drops (default 0)")


def _stats_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=_file_arg, metavar="FILE.jsonl")
    p.add_argument("--tokenizer", help="tokenizer for token counts (default: tokenizer.json beside the file)")


def _add_command(commands, name: str, help: str, epilog: str | None = None,
                 out: bool = True) -> argparse.ArgumentParser:
    """One subcommand, its help as its description; every command but stats writes into --out."""
    p = commands.add_parser(name, help=help, description=help, epilog=epilog,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    if out:
        p.add_argument("--out", default="data", help="output directory (default: data)")
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _world_args(_add_command(commands, "world", "the built-in offline math world: train sets at chosen qualities, "
                             "test sets, tokenizer (the default command)", WORLD_EPILOG))
    _hf_args(_add_command(commands, "hf", "the paper's data (hexuan21/weak-to-strong) and its benchmarks"))
    _gair_args(_add_command(commands, "gair", "Weak-to-Strong Reasoning's release (GAIR-NLP/weak-to-strong-reasoning), "
                            "converted set by set"))
    for name, what in (("prm800k", "a downloaded PRM800K file (e.g. phase2_train.jsonl)"),
                       ("math-shepherd", "a downloaded Math-Shepherd file")):
        _step_file_args(_add_command(commands, name, f"verifier step rows from {what} -> "
                                     f"DIR/{name.replace('-', '_')}.jsonl"), name)
    _from_samples_args(_add_command(commands, "from-samples", "every sample of a model teacher (sample.py output) "
                                    "as a measured SFT set"))
    _agree_args(_add_command(commands, "agree", "weak-to-strong stage I: the tasks whose first samples' final "
                             "answers agree (the grader's is_equiv), both responses as an SFT set (hybrid); "
                             "no gold answer is read"))
    _pairs_args(_add_command(commands, "pairs", "weak-to-strong stage II: DPO pairs from the strong model's "
                             "samples' confidence against the weak model's answer"))
    _verifier_args(_add_command(commands, "verifier", "verifier step rows {\"id\", \"prompt\", \"steps\", "
                                "\"labels\"} (train.py --objective prm) from samples (sample.py output)"))
    _stats_args(_add_command(commands, "stats", "a set's quality: counts, outcome and step-wise error rates, lengths",
                             out=False))
    return parser


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = set(COMMANDS)
    if not argv or argv[0] not in commands | {"-h", "--help"}:
        argv = old_form(argv) or ["world", *argv]  # no command: the built-in world
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "pairs" and (not 0 <= args.min_confidence <= args.flip_confidence <= 1 or args.max_pairs < 1):
        parser.error("need 0 <= --min-confidence <= --flip-confidence <= 1 and --max-pairs >= 1")
    for name in ("hard_steps", "long_steps", "foundation_steps"):  # recorded in the manifest as text
        if getattr(args, name, None) is not None:
            setattr(args, name, "-".join(map(str, getattr(args, name))))
    return args


# ---------------------------------------------------------------------------------------------
# The old flag-chosen modes, kept for one round


OLD_MODES = {"--stats": ("stats", 1), "--from-samples": ("from-samples", 1), "--verifier-from-samples": ("verifier", 1),
             "--agree": ("agree", 2), "--pairs": ("pairs", 1), "--gair-dir": ("gair", 1)}
OLD_RENAMED = {"--hf-dir": "--dir", "--hf-subset": "--subset", "--verifier-split": "--split"}


def old_form(argv: list[str]) -> list[str] | None:
    """The same command line in the new form, when `argv` is in the old one (a mode chosen by --source,
    --stats, --from-samples, ...), with a one-line notice on stderr; None when it is not."""
    argv = [part for arg in argv for part in (arg.split("=", 1) if arg.startswith("--") and "=" in arg else [arg])]
    command, shown, positional, rest, i = None, None, [], [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--source" and i + 1 < len(argv):
            source = argv[i + 1]
            command, shown = command or {"builtin": "world"}.get(source, source), shown or f"--source {source}"
            i += 2
        elif arg in OLD_MODES:
            count = OLD_MODES[arg][1]
            command, shown = OLD_MODES[arg][0], shown or arg
            positional += argv[i + 1:i + 1 + count]
            i += 1 + count
        elif arg == "--input":
            positional += argv[i + 1:i + 2]
            i += 2
        else:
            if arg == "--hf-dir":
                command, shown = command or "hf", shown or arg
            rest.append(OLD_RENAMED.get(arg, arg))
            i += 1
    if command is None:
        return None
    if command == "stats" and "--out" in rest:  # stats writes nothing
        at = rest.index("--out")
        del rest[at:at + 2]
    print(f"data_prep.py: {shown} is now `data_prep.py {command}` (the old form still runs, for now)", file=sys.stderr)
    return [command, *positional, *rest]


def prepare(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.command != "stats":
        check_output_dir(args.out)
    COMMANDS[args.command](args)


def main(argv: list[str] | None = None) -> None:
    """data_prep.py's command line: a bad input ends it with one line on stderr (exit status 2)."""
    return run_main(prepare, argv, "data_prep.py")


if __name__ == "__main__":
    main(sys.argv[1:])
