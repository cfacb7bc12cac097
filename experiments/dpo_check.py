"""Q5's DPO sanity gate: DPO on gold-chosen pairs must not lower the model it starts from (one seed).

Weak-to-strong stage II trains DPO on pairs whose chosen side is only probably right. Before its result
can say anything about weak supervision, DPO must pass a simpler test: on pairs whose chosen side is
certainly right (graded against the gold answer) and drawn from the model's own samples, it should keep
or raise the starting model's accuracy. This script measures whether it does, through the project's
commands (data_prep.py, train.py, sample.py, evaluate.py), on the built-in world:

1. A world of 8,000 hard (3-4 step) tasks and 48,000 foundation problems; a tiny model trained one epoch
   on the foundation set, then 150 steps on the hard set: the start.
2. The start samples pool tasks (the last 1,000 hard tasks, rows 7001-8000) 4 times each at temperature 1.
   A task with a right sample (that stopped on its own) and a wrong one gives a gold pair: one of each,
   drawn with the task's id as the seed.
3. DPO from the start on those pairs over a grid of lr, beta and rpo_alpha (RPO's NLL term on the
   chosen side); two controls beside it:
   - fork: the same DPO with both responses scored only up to the first token where they differ,
     so the loss sees the step where a right and a wrong solution part, not their shared prefix or tails;
   - SFT on the chosen responses alone: what the gold half of the pairs teaches without the rejected one.
4. Each model answers the first 500 problems of the 3-4 step test greedily. Beside the accuracy: the
   first and last step's mean log-probs of the chosen and rejected responses and their reward margin
   (whether the margin grows by lowering the chosen side too), and the first error of each response
   by type (the world's own step checker: `first_error`).

    python experiments/dpo_check.py [--out runs/dpo_check] [--smoke]

Writes OUT/REPORT.md (and prints it). Every command is skipped when its output exists, so a rerun resumes;
each command's log sits beside its output (OUT/*.log, OUT/runs/<setting>.log).
`--smoke`: a world of a few dozen tasks, 2 steps of each training, 2 DPO settings, 1 fork, 1 SFT (the test's).
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from runner import count_rows  # noqa: E402
from w2s.data.jsonl import read_jsonl, write_jsonl  # noqa: E402
from w2s.data.rows import pair_row, user_message  # noqa: E402
from w2s.data.world import miniworld  # noqa: E402

# The grids, as train.py flags: (lr, beta, rpo_alpha) for DPO, (lr, beta) for the fork, lr for SFT.
DPO_GRID = (("1e-5", "0.1", "0"), ("3e-5", "0.1", "0"), ("1e-4", "0.1", "0"), ("3e-4", "0.1", "0"),
            ("1e-3", "0.1", "0"), ("1e-4", "0.1", "1"), ("3e-4", "0.1", "1"), ("1e-3", "0.1", "1"),
            ("1e-4", "1.0", "0"), ("3e-4", "1.0", "0"))
FORK_GRID = (("1e-4", "0.1"), ("3e-4", "0.1"), ("1e-3", "0.1"), ("1e-4", "1.0"))
SFT_LRS = ("1e-4", "3e-4", "1e-3")
ERROR_TYPES = ("none", "wrong carry", "wrong operand/op", "arithmetic", "missing step", "extra step")
# What every training run shares (train.py flags); each adds its data, start, lr and objective.
COMMON = ("--batch-size", "32", "--seed", "0", "--save-every", "1000")
EVALUATE = ("--batch-size", "256", "--max-new-tokens", "96", "--quiet")


@dataclass(frozen=True)
class Sizes:
    world: tuple[str, ...]  # data_prep.py world flags
    pool: tuple[int, int]  # rows [first, last) of tasks/hard_full.jsonl the start samples
    val: int  # the first problems of test/miniworld.jsonl
    train_extra: tuple[str, ...] = ()  # appended to every train.py command (argparse keeps the last --max-steps)
    dpo_grid: tuple = DPO_GRID
    fork_grid: tuple = FORK_GRID
    sft_lrs: tuple = SFT_LRS


FULL = Sizes(world=("--num-hard", "8000", "--num-foundation", "48000", "--num-test", "1000", "--hard-steps", "3-4"),
             pool=(7000, 8000), val=500)
SMOKE = Sizes(world=("--num-hard", "40", "--num-foundation", "40", "--num-test", "20", "--num-long-test", "5",
                     "--hard-steps", "3-4"),
              pool=(20, 40), val=10, train_extra=("--max-steps", "2"),
              dpo_grid=(DPO_GRID[2], DPO_GRID[5]), fork_grid=FORK_GRID[:1], sft_lrs=SFT_LRS[:1])


def settings(out: str, sizes: Sizes) -> dict[str, list[str]]:
    """Setting name -> its train.py flags from the start (the fork's are run through --fork-train)."""
    start = ["--init", os.path.join(out, "runs", "start", "final"), "--epochs", "2", *COMMON]
    pairs, fork_pairs = os.path.join(out, "gold_pairs.jsonl"), os.path.join(out, "gold_pairs_fork.jsonl")
    runs = {}
    for lr, beta, rpo in sizes.dpo_grid:
        runs[f"dpo_lr{lr}_b{beta}_rpo{rpo}"] = ["--objective", "dpo", "--data", pairs, *start,
                                                "--lr", lr, "--beta", beta, "--rpo-alpha", rpo]
    for lr, beta in sizes.fork_grid:
        runs[f"fork_lr{lr}_b{beta}"] = ["--objective", "dpo", "--data", fork_pairs, *start, "--lr", lr, "--beta", beta]
    for lr in sizes.sft_lrs:
        runs[f"sftchosen_lr{lr}"] = ["--data", os.path.join(out, "chosen_sft.jsonl"), *start, "--lr", lr]
    return runs


# ---------------------------------------------------------------------------------------------
# Running commands


def log_line(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(argv: list[str], log: str) -> bool:
    """`python <argv>` from the repository root with one thread, its output appended to `log`; False
    (and the log's last lines printed) when it fails, so one diverged setting leaves the others to run."""
    os.makedirs(os.path.dirname(log), exist_ok=True)
    log_line(f"start  {' '.join(argv)}")
    with open(log, "a") as f:
        f.write(f"\n$ python {' '.join(argv)}\n")
        f.flush()
        code = subprocess.run([sys.executable, *argv], cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"},
                              stdout=f, stderr=f).returncode
    if code != 0:
        with open(log) as f:
            print(f"FAIL (exit {code}), {log}:\n" + "".join(f.readlines()[-3:]), flush=True)
    return code == 0


def train(out: str, name: str, argv: list[str], sizes: Sizes, script: tuple[str, ...] = ("train.py",)) -> bool:
    """One training run into OUT/runs/<name>, skipped once it has finished (train.py writes summary.json last)."""
    run_dir = os.path.join(out, "runs", name)
    if os.path.exists(os.path.join(run_dir, "summary.json")):
        return True
    return run([*script, *argv, "--out", run_dir, *sizes.train_extra], run_dir + ".log")


def evaluate(out: str, name: str) -> None:
    """Greedy answers of run `name` to OUT/val.jsonl, into OUT/runs/<name>/val (skipped once done)."""
    run_dir = os.path.join(out, "runs", name)
    if not os.path.exists(os.path.join(run_dir, "val", "summary.json")):
        run(["evaluate.py", "--model", os.path.join(run_dir, "final"), "--bench", os.path.join(out, "val.jsonl"),
             "--out", os.path.join(run_dir, "val"), *EVALUATE], run_dir + ".log")


def cut_at_fork(examples: list) -> None:
    """Score DPO pairs (w2s.dpo.PairExample) only up to the fork: the first token where chosen and rejected
    differ (their prompt is shared, so it lies in the responses), or the shorter one's last if one is a prefix."""
    for e in examples:
        fork = next((i for i, (a, b) in enumerate(zip(e.chosen_ids, e.rejected_ids)) if a != b),
                    min(len(e.chosen_ids), len(e.rejected_ids)) - 1)
        e.chosen_mask = [m and i <= fork for i, m in enumerate(e.chosen_mask)]
        e.rejected_mask = [m and i <= fork for i, m in enumerate(e.rejected_mask)]


def fork_train(argv: list[str]) -> None:
    """train.py (its command line `argv`) with DPO's pairs cut at the fork."""
    import train as train_script
    from w2s import dpo

    tokenize = dpo.tokenize_pairs

    def tokenize_to_fork(rows, tokenizer, max_seq_len):
        examples, report = tokenize(rows, tokenizer, max_seq_len)
        cut_at_fork(examples)
        report["loss_tokens"] = sum(sum(e.chosen_mask[1:]) + sum(e.rejected_mask[1:]) for e in examples)
        return examples, report

    # load_dpo_data calls w2s.dpo's tokenize_pairs, so replacing it there re-masks every pair train.py reads
    # (and caches: the cache is keyed by the data file, hence the fork's own copy of the pairs).
    dpo.tokenize_pairs = tokenize_to_fork
    train_script.main(argv)


# ---------------------------------------------------------------------------------------------
# The data and the start




def copy_lines(source: str, dest: str, first: int, last: int) -> None:
    """Lines [first, last) of `source` into `dest`, byte for byte (skipped when `dest` exists)."""
    if not os.path.exists(dest):
        with open(source) as f:
            lines = f.readlines()[first:last]
        with open(dest + ".tmp", "w") as f:
            f.writelines(lines)
        os.replace(dest + ".tmp", dest)


def prepare_start(out: str, sizes: Sizes) -> None:
    """The world, the validation and pool tasks, and the start model (stage 1, then 150 steps on hard tasks)."""
    data = os.path.join(out, "data")
    if not os.path.exists(os.path.join(data, "manifest.json")):
        run(["data_prep.py", "world", "--out", data, *sizes.world, "--sets", "foundation", "hard_full"],
            os.path.join(out, "data_prep.log"))
    copy_lines(os.path.join(data, "test", "miniworld.jsonl"), os.path.join(out, "val.jsonl"), 0, sizes.val)
    copy_lines(os.path.join(data, "tasks", "hard_full.jsonl"), os.path.join(out, "pool.jsonl"), *sizes.pool)
    stage1 = ["--data", os.path.join(data, "foundation.jsonl"), "--epochs", "1", "--batch-size", "64", "--lr", "1e-3",
              "--seed", "0", "--save-every", "1000"]
    start = ["--data", os.path.join(data, "hard_full.jsonl"), "--init", os.path.join(out, "runs", "stage1", "final"),
             "--max-steps", "150", "--epochs", "1", "--batch-size", "32", "--lr", "3e-3", "--seed", "0",
             "--save-every", "1000"]
    if not (train(out, "stage1", stage1, sizes) and train(out, "start", start, sizes)):
        raise SystemExit("the start model failed to train; see the logs above")
    evaluate(out, "start")


def gold_pairs(samples: list[dict], stand_in: bool = False) -> list[dict]:
    """One pair per pool task with a right sample that stopped on its own and a wrong one, each drawn
    with the task's id as the seed. `stand_in` (the smoke run, whose barely trained model is never
    right): the world's correct solution stands in for a missing right sample."""
    pairs = []
    for r in samples:
        right = [t for t, ok, finish in zip(r["samples"], r["correct"], r["finish_reasons"]) if ok and finish == "stop"]
        wrong = [t for t, ok in zip(r["samples"], r["correct"]) if not ok]
        if stand_in and not right:
            right = [miniworld.correct_solution(miniworld.parse_problem(r["problem"]))]
        if right and wrong:
            rng = random.Random(r["id"])
            pairs.append(pair_row(r["id"], user_message(r["problem"]), rng.choice(right), rng.choice(wrong)))
    return pairs


def prepare_pairs(out: str, sizes: Sizes, smoke: bool) -> int:
    """The start's pool samples -> gold pairs, their copy for the fork (the tokenized-pairs cache beside a
    data file is keyed by the file, not by the fork's masking) and the chosen responses as SFT rows."""
    pool, samples = os.path.join(out, "pool.jsonl"), os.path.join(out, "pool_samples.jsonl")
    if count_rows(samples) < count_rows(pool):  # sample.py resumes a cut-off file
        run(["sample.py", "--model", os.path.join(out, "runs", "start", "final"), "--tasks", pool, "--out", samples,
             "--n", "4", "--temperature", "1.0", "--max-new-tokens", "96", "--batch-size", "256", "--quiet"],
            os.path.join(out, "pool_samples.log"))
    paths = {name: os.path.join(out, f"{name}.jsonl") for name in ("gold_pairs", "gold_pairs_fork", "chosen_sft")}
    if not os.path.exists(paths["gold_pairs"]):
        write_jsonl(paths["gold_pairs"], gold_pairs(read_jsonl(samples), stand_in=smoke))
    pairs = read_jsonl(paths["gold_pairs"])
    if not os.path.exists(paths["gold_pairs_fork"]):
        shutil.copyfile(paths["gold_pairs"], paths["gold_pairs_fork"])
    if not os.path.exists(paths["chosen_sft"]):
        write_jsonl(paths["chosen_sft"], [{"id": r["id"], "messages": r["prompt"] + r["chosen"]} for r in pairs])
    return len(pairs)


# ---------------------------------------------------------------------------------------------
# The report


def first_error(text: str, problem: str) -> str:
    """The type of a response's first error (one of ERROR_TYPES), checked step by step against the task:
    the amount a step starts from (carried from the previous line), its operation and operand, its result."""
    task, lines = miniworld.parse_problem(problem), miniworld.parse_lines(text)
    first = next((i for i, wrong in enumerate(miniworld.line_errors(lines, task)) if wrong), None)
    if first is None:
        return "none"
    if first >= len(task.steps):
        return "extra step"
    if first >= len(lines):
        return "missing step"
    line, step = lines[first], task.steps[first]
    if line.a != (lines[first - 1].c if first else task.start):  # the amount the world's checker carries
        return "wrong carry"
    if (line.op, line.b) != (step.op, step.operand):
        return "wrong operand/op"
    return "arithmetic"


def error_shares(val_rows: list[dict]) -> dict[str, float]:
    """Share of the greedy responses by first-error type."""
    counts = Counter(first_error(r["responses"][0], r["problem"]) for r in val_rows)
    return {kind: counts[kind] / len(val_rows) for kind in ERROR_TYPES}


def log_probs(run_dir: str) -> tuple[str, str]:
    """'chosen / rejected / margin' at the first and the last step of a DPO run ('-' for other runs)."""
    path = os.path.join(run_dir, "metrics.jsonl")
    rows = read_jsonl(path) if os.path.exists(path) else []
    if not rows or "logps/chosen" not in rows[0]:
        return "-", "-"
    def cell(r: dict) -> str:
        return f"{r['logps/chosen']:.2f} / {r['logps/rejected']:.2f} / {r['rewards/margins']:.3f}"
    return cell(rows[0]), cell(rows[-1])


def report(out: str, names: list[str], pairs: int) -> str:
    """The markdown table: one row per setting, 'failed' where its run or evaluation did not finish."""
    header = ["setting", "val acc", "no_answer", "cut_off", "first step logp c / r / margin",
              "last step logp c / r / margin", *(f"err: {kind}" for kind in ERROR_TYPES)]
    lines = [f"# Q5's DPO sanity gate ({pairs} gold pairs)", "", "| " + " | ".join(header) + " |",
             "|" + "---|" * len(header)]
    for name in names:
        run_dir = os.path.join(out, "runs", name)
        summary = os.path.join(run_dir, "val", "summary.json")
        if not os.path.exists(summary):
            lines.append(f"| {name} |" + " failed |" * (len(header) - 1))
            continue
        with open(summary) as f:
            s = json.load(f)["val"]
        shares = error_shares(read_jsonl(os.path.join(run_dir, "val", "val.jsonl")))
        cells = [name, f"{s['accuracy']:.3f}", f"{s['no_answer']:.3f}", f"{s['cut_off_share']:.3f}",
                 *log_probs(run_dir), *(f"{shares[kind]:.1%}" for kind in ERROR_TYPES)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join("runs", "dpo_check"), help="output directory")
    parser.add_argument("--smoke", action="store_true", help="toy sizes, for the test")
    args = parser.parse_args(argv)
    out, sizes = os.path.abspath(args.out), SMOKE if args.smoke else FULL
    prepare_start(out, sizes)
    pairs = prepare_pairs(out, sizes, args.smoke)
    runs = settings(out, sizes)
    for name, flags in runs.items():
        script = ("experiments/dpo_check.py", "--fork-train") if name.startswith("fork") else ("train.py",)
        if train(out, name, flags, sizes, script):
            evaluate(out, name)
    table = report(out, ["start", *runs], pairs)
    with open(os.path.join(out, "REPORT.md"), "w") as f:
        f.write(table)
    print(table)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--fork-train"]:
        fork_train(sys.argv[2:])
    else:
        main()
