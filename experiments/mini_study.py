"""The paper in miniature: He, Yin, Peng (NAACL 2025)'s supervision study on the built-in world, on a CPU.

    python experiments/mini_study.py            # the whole study, Q1-Q6 (under an hour on 2 CPU cores)
    python experiments/mini_study.py --smoke    # the same plumbing at toy size, in about a minute

The paper asks what makes good supervision for hard math: hard full tasks with many wrong solutions,
or perfectly correct easy sub-tasks? Does it matter how a wrong solution is wrong? This script asks
the same questions of a 0.5M-parameter Llama trained from scratch on the built-in world
(w2s/data/world/miniworld.py), with the project's own commands (each called through its main(argv) in one of
two worker processes, which is `python <command>.py ...` without importing torch for every stage):

1. data_prep.py builds the training sets at the qualities the questions need, and the test sets.
2. train.py trains the stage-1 foundation model once per seed, on short (1-2 step) correct problems
   in the same answer format: the paper's easy-math SFT. Every stage-2 run starts from it (--init), so
   differences between conditions come from the stage-2 supervision, not from the format.
3. For every condition and seed: train.py --init <stage 1> on the condition's set (the same number of
   epochs for every set, as in the paper), then evaluate.py on the held-out test sets (greedy).
4. The model teacher: a weak model (stage 1 plus a little correct hard data) solves the hard training tasks
   with sample.py; the grader measures its outcome error rate and the world's exact step checker its
   step-wise error rate; its samples are one more training set, and a student is trained on them.
5. Q5 (experiments/weak_to_strong.py) and Q6 (experiments/easy_to_hard.py), in the same pool: a stage-1
   student learns hard tasks from two weak models' labels without gold (agreement, then DPO), and
   verifiers trained on easy problems re-rank samples of hard ones.
6. experiments/RESULTS.md (a table per question, the measured quality of every training set) and a
   figure, experiments/mini_study.png (when matplotlib is installed; it is optional).

Results are written as they come: each run's train.py output (`final/`) and evaluate.py output
(`eval/summary.json`) mark it finished, and a row per run is appended to results.jsonl. A killed study
rerun with the same command skips what is finished and resumes a half-trained run from its checkpoint.
"""
import argparse
import json
import math
import os
import sys
import textwrap
import threading
import time
from dataclasses import asdict, dataclass, replace

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the shared runner beside this script

import easy_to_hard  # noqa: E402
from runner import (Jobs, Progress, Workers, accuracy_bars, difference, pct, pyplot, spearman,  # noqa: E402
                    summarize, verdict)
from w2s.data.datadir import read_manifest  # noqa: E402
from w2s.data.jsonl import read_jsonl  # noqa: E402
from w2s.data.world import miniworld  # noqa: E402
import weak_to_strong  # noqa: E402  (Q5: its jobs join this study's pool, its section this report)

# ---------------------------------------------------------------------------------------------
# What is run: sizes, conditions, questions


@dataclass(frozen=True)
class Sizes:
    seeds: int
    num_hard: int  # hard full tasks in the world (every hard-task set has one example per task)
    num_foundation: int  # stage-1 problems
    num_test: int  # same-distribution test problems (as many steps as the hard training tasks)
    num_long_test: int  # longer test problems: generalization to more steps
    hard_steps: str  # steps of hard tasks and of the same-distribution test ("3-4")
    long_steps: str  # steps of the longer test
    stage1_epochs: int
    stage2_epochs: int  # every stage-2 set gets the same number of passes, as in the paper
    teacher_steps: int  # the weak teacher: stage 1 plus this many steps on correct hard tasks
    stage1_batch_size: int
    batch_size: int  # stage 2 and the weak teacher
    lr: float = 3e-3  # stage 2 and the weak teacher
    stage1_lr: float = 1e-3  # stage 1 (from scratch): see the trials above FULL
    max_steps: int | None = None  # a cap on every run (the smoke test only)
    max_new_tokens: int = 96  # a 6-step solution takes about 60 tokens; a little room for a model that rambles


# The full study. Sized from trial runs on this machine (one seed, 1-thread workers as in the study;
# the commands and the whole table are under "Trials behind the defaults" in experiments/RESULTS.md):
# - the world is data_prep.py's default one (one-digit operands, + - *), which the tiny model masters;
# - stage 1, 48000 correct 1-2 step problems at batch 64 (750 steps), teaches the format and the
#   arithmetic, but alone it solves 3% of the 3-4 step test (it never writes a third step);
# - stage 2 has a sharp threshold: from that stage 1, correct 3-4 step hard tasks gave 32% after 8000
#   examples (1 epoch at batch 32), 44% (batch 16), 42% after 12000 (6000 tasks, 2 epochs) and 96.2%
#   after 16000 (8000 tasks, 2 epochs, at batch 32 or 16). Hard tasks of 3-5 steps took 24000 examples
#   to reach 84%: too slow for an hour with 10 conditions x 3 seeds, hence 3-4 steps here;
# - so stage 2 is 2 epochs over each condition's set at batch 32 (500 steps for a hard-task set);
# - stage 1 at lr 1e-3: at 3e-3, the stage 1 of seed 2 left every stage 2 stalled (50.2% at the study's
#   settings, 39-82% over ten variants of stage 2's lr, batch, epochs, weight decay and batch order,
#   33-66% with stage 1 at lr 2e-3, cut to 375 steps or at batch 32), while the same stage 1 at 1e-3
#   gave 99.4%, and seeds 0 / 1 100% / 98.0% (stage 1 at 3e-3: 98.8% / 95.2%);
# - the weak teacher is stage 1 + 100 of those steps (3200 examples): below the threshold, as a weak
#   teacher should be (from the lr-1e-3 stage 1 of seed 2: 50 steps 4.1%, 100 steps 25.9%, 200 steps 92.8%).
FULL = Sizes(seeds=3, num_hard=8000, num_foundation=48000, num_test=1000, num_long_test=500, hard_steps="3-4",
             long_steps="5-6", stage1_epochs=1, stage2_epochs=2, teacher_steps=100, stage1_batch_size=64, batch_size=32)
# The plumbing only: every stage runs, on a world too small to learn anything.
SMOKE = replace(FULL, seeds=1, num_hard=40, num_foundation=40, num_test=8, num_long_test=4, teacher_steps=1,
                stage1_batch_size=8, batch_size=8, max_steps=2, max_new_tokens=24)

TEACHER_SET = "model_teacher"  # the training set made of the weak teacher's samples
TEACHER_RUN = "weak_teacher"

# Stage-2 conditions, named by their training set (data_prep.py's names carry the quality).
LABELS = {
    "hard_full": "hard full tasks, 0% wrong",
    "hard_full_e0.5": "hard full tasks, 50% wrong",
    "hard_full_e0.9": "hard full tasks, 90% wrong (mixed errors)",
    "easy_sub": "easy sub-tasks, 0% wrong",
    "hard_full_e0.9_low": "hard, 90% wrong: one late slip each",
    "hard_full_e0.9_high": "hard, 90% wrong: every step wrong",
    "hard_full+easy_sub": "hard full + easy sub-tasks",
    "hard_full+paraphrase": "hard full + paraphrases (merge rephrased)",
    "hard_full_x2": "hard full twice (duplicate)",
    TEACHER_SET: "student of the weak model teacher",
    TEACHER_RUN: "the weak model teacher itself",
}
CONDITIONS = [name for name in LABELS if name != TEACHER_RUN]


@dataclass(frozen=True)
class Question:
    title: str
    paper: str  # what the paper found
    conditions: tuple[str, ...]


QUESTIONS = [
    Question("Q1. Hard full tasks with errors vs correct easy sub-tasks",
             "hard full tasks at 90% outcome error still beat perfectly correct easy sub-tasks",
             ("hard_full", "hard_full_e0.5", "hard_full_e0.9", "easy_sub")),
    Question("Q2. Error severity at the same outcome error rate (90%)",
             "at the same outcome error, a lower step-wise error rate is much better (about 30 points on MATH)",
             ("hard_full_e0.9_low", "hard_full_e0.9", "hard_full_e0.9_high")),
    Question("Q3. Combining hard full tasks with their sub-tasks",
             "hard full + sub-tasks beats hard full alone and the same-size paraphrase and duplicate baselines",
             ("hard_full", "hard_full+easy_sub", "hard_full+paraphrase", "hard_full_x2")),
    Question("Q4. A model teacher",
             "students follow the quality of the teacher's supervision, and its step-wise error rate tells more "
             "than its outcome error rate",
             (TEACHER_RUN, TEACHER_SET, "hard_full", "hard_full_e0.9")),
]
HARD_TASK_SETS = ["hard_full", "hard_full_e0.5", "hard_full_e0.9", "hard_full_e0.9_low", "hard_full_e0.9_high",
                  TEACHER_SET]  # one solution per hard task: the sets whose error rates are compared in Q4
BENCHES = ["miniworld", "miniworld_long"]

# The data_prep.py calls that build every set above (one world; the calls add sets to it).
DATA_BUILDS = [
    ["--hard-error", "0", "--sets", "foundation", "hard_full", "easy_sub", "hard_full+easy_sub",
     "hard_full+paraphrase", "hard_full_x2"],
    ["--hard-error", "0.5", "0.9", "--sets", "hard_full"],
    ["--hard-error", "0.9", "--step-profile", "low", "high", "--sets", "hard_full"],
]


# ---------------------------------------------------------------------------------------------
# The study


class Study:
    def __init__(self, out: str, sizes: Sizes, jobs: int, threads: int):
        self.out, self.sizes, self.jobs, self.threads = out, sizes, jobs, threads
        self.workers = Workers(jobs, threads)
        self.data_dir = os.path.join(out, "data")
        self.results_path = os.path.join(out, "results.jsonl")
        self.lock = threading.Lock()

    # -- paths --------------------------------------------------------------------------------
    def run_dir(self, condition: str, seed: int | None) -> str:
        return os.path.join(self.out, "runs", condition if seed is None else f"{condition}/seed{seed}")

    def set_path(self, name: str) -> str:
        return os.path.join(self.data_dir, f"{name}.jsonl")

    def run(self, script: str, argv: list[str], log_path: str) -> None:
        """A project command (`python <script>.py <argv>`), in the next free worker process."""
        self.workers.run(script, argv, log_path)

    # -- stages -------------------------------------------------------------------------------
    def build_data(self) -> None:
        s = self.sizes
        world = ["world", "--out", self.data_dir, "--num-hard", str(s.num_hard), "--num-foundation", str(s.num_foundation),
                 "--num-test", str(s.num_test), "--num-long-test", str(s.num_long_test),
                 "--hard-steps", s.hard_steps, "--long-steps", s.long_steps]
        needed = ["foundation"] + [c for c in CONDITIONS if c != TEACHER_SET]
        if all(os.path.exists(self.set_path(name)) for name in needed):
            return
        for build in DATA_BUILDS:
            self.run("data_prep", [*world, *build], os.path.join(self.out, "logs", "data_prep.log"))
        missing = [name for name in needed if not os.path.exists(self.set_path(name))]
        if missing:
            raise RuntimeError(f"data_prep.py did not write {missing} into {self.data_dir}")

    def train(self, data: str, out: str, seed: int, init: str | None, max_steps: int | None = None, *,
              epochs: int | None = None, lr: float | None = None, extra: tuple[str, ...] = (),
              model: str = "tiny", batch_size: int | None = None) -> str:
        """train.py with the study's settings (stage 1 without `init`, stage 2 with it; `epochs`, `lr`,
        `model` (a preset), `batch_size` and `extra` flags override them for Q5 and Q6); a finished run is
        kept, a killed one resumed. Returns out/final."""
        final = os.path.join(out, "final")
        if os.path.exists(os.path.join(final, "config.json")):
            return final
        s = self.sizes
        epochs = epochs or (s.stage1_epochs if init is None else s.stage2_epochs)
        lr = lr or (s.lr if init else s.stage1_lr)
        steps = min(x for x in (max_steps, s.max_steps) if x) if (max_steps or s.max_steps) else None
        batch_size = batch_size or (s.batch_size if init else s.stage1_batch_size)
        argv = ["--model", model, "--data", data, "--out", out, "--seed", str(seed), "--epochs", str(epochs),
                "--batch-size", str(batch_size), "--lr", str(lr), "--save-every", "200",
                "--keep-checkpoints", "1", "--resume"]
        argv += ["--init", init] if init else []
        argv += ["--max-steps", str(steps)] if steps else []
        self.run("train", [*argv, *extra], os.path.join(out, "train.log"))
        return final

    def sample(self, model: str, tasks: str, out: str, n: int, temperature: float, seed: int, log: str) -> str:
        """sample.py with the study's settings (plain temperature sampling, no top-p; batch 256; the
        study's token limit): `n` solutions per task of `tasks` into `out`, which it returns."""
        self.run("sample", ["--model", model, "--tasks", tasks, "--out", out, "--n", str(n), "--temperature",
                            str(temperature), "--top-p", "1.0", "--batch-size", "256", "--seed", str(seed),
                            "--max-new-tokens", str(self.sizes.max_new_tokens), "--quiet"], log)
        return out

    def evaluate(self, run_dir: str) -> dict:
        """evaluate.py on the test sets (greedy); its summary.json marks the evaluation finished."""
        summary_path = os.path.join(run_dir, "eval", "summary.json")
        if not os.path.exists(summary_path):
            self.run("evaluate", ["--model", os.path.join(run_dir, "final"), "--bench", *BENCHES, "--data-dir", self.data_dir,
                                  "--out", os.path.join(run_dir, "eval"), "--batch-size", "256", "--max-new-tokens",
                                  str(self.sizes.max_new_tokens), "--group-by", "steps", "--quiet"],
                     os.path.join(run_dir, "eval.log"))
        with open(summary_path) as f:
            return json.load(f)

    def record(self, condition: str, seed: int | None, run_dir: str, summary: dict, seconds: float) -> None:
        """Append the run's row to results.jsonl, once."""
        with self.lock:
            done = {(r["condition"], r["seed"]) for r in read_jsonl(self.results_path)} if os.path.exists(self.results_path) else set()
            if (condition, seed) in done:
                return
            metrics = read_jsonl(os.path.join(run_dir, "metrics.jsonl"))
            row = {"condition": condition, "seed": seed, "run_dir": os.path.relpath(run_dir, self.out),
                   "steps": len(metrics), "final_loss": metrics[-1]["loss"] if metrics else None,
                   "seconds": round(seconds, 1),
                   "benches": {b: bench_row(summary[b], os.path.join(run_dir, "eval", f"{b}.jsonl")) for b in BENCHES}}
            with open(self.results_path, "a") as f:
                f.write(json.dumps(row) + "\n")

    def train_and_evaluate(self, condition: str, seed: int, progress: Progress, cost: float) -> None:
        run_dir = self.run_dir(condition, seed)
        finished = os.path.exists(os.path.join(run_dir, "eval", "summary.json"))
        start = time.time()
        if not finished:
            progress.log(f"start  {condition} seed {seed}")
        stage1 = os.path.join(self.run_dir("stage1", seed), "final")
        self.train(self.set_path(condition), run_dir, seed, stage1)
        summary = self.evaluate(run_dir)
        self.record(condition, seed, run_dir, summary, time.time() - start)
        progress.add(cost, skipped=finished)
        if not finished:
            accuracy = " ".join(f"{b} {summary[b]['accuracy']:.1%}" for b in BENCHES)
            progress.log(f"done   {condition} seed {seed} in {time.time() - start:.0f} s: {accuracy}")

    def weak_teacher(self, progress: Progress, cost: float) -> None:
        """A weak model: stage 1 (seed 0) plus a little correct hard data, a fraction of one epoch (stage 1
        plus easy sub-tasks alone never writes more than two steps, so its samples would all be alike:
        wrong from the third step on). Evaluated like every model, then it solves the hard training tasks
        (sample.py, one sample each, temperature 0.7), and its samples, checked step by step, become the
        set TEACHER_SET."""
        run_dir = self.run_dir(TEACHER_RUN, None)
        if os.path.exists(self.set_path(TEACHER_SET)):
            progress.add(cost, skipped=True)
            return
        progress.log("start  weak teacher: training, evaluation, sampling the hard tasks")
        start = time.time()
        self.train(self.set_path("hard_full"), run_dir, 0, os.path.join(self.run_dir("stage1", 0), "final"),
                   max_steps=self.sizes.teacher_steps)
        summary = self.evaluate(run_dir)
        self.record(TEACHER_RUN, None, run_dir, summary, time.time() - start)
        samples_path = self.sample(os.path.join(run_dir, "final"), os.path.join(self.data_dir, "tasks", "hard_full.jsonl"),
                                   os.path.join(run_dir, "samples.jsonl"), 1, 0.7, 0, os.path.join(run_dir, "sample.log"))
        # data_prep.py turns samples into an SFT set: outcome from sample.py's grader verdicts, step-wise
        # error rate from the world's exact step checker.
        self.run("data_prep", ["from-samples", samples_path, "--out", self.data_dir, "--name", TEACHER_SET],
                 os.path.join(self.out, "logs", "data_prep.log"))
        progress.add(cost)
        progress.log(f"done   weak teacher in {time.time() - start:.0f} s: test accuracy "
                     f"{summary['miniworld']['accuracy']:.1%}; its samples are {self.set_path(TEACHER_SET)}")

    def stage1(self, seed: int, progress: Progress, cost: float) -> None:
        run_dir = self.run_dir("stage1", seed)
        finished = os.path.exists(os.path.join(run_dir, "eval", "summary.json"))
        start = time.time()
        if not finished:
            progress.log(f"start  stage 1 seed {seed}")
        self.train(self.set_path("foundation"), run_dir, seed, None)
        summary = self.evaluate(run_dir)  # how far the foundation alone gets: the floor of every condition
        self.record("stage1", seed, run_dir, summary, time.time() - start)
        progress.add(cost, skipped=finished)
        if not finished:
            progress.log(f"done   stage 1 seed {seed} in {time.time() - start:.0f} s: "
                         f"miniworld {summary['miniworld']['accuracy']:.1%}")

    def run_all(self) -> dict[str, BaseException]:
        """Every job, in an order that keeps both workers busy: the teacher chain (the longest) early,
        its students last, so that nobody waits for the sampler."""
        s = self.sizes
        # ETA weights: examples seen by each job (a stage-2 set's size is ~num_hard x its multiplier).
        size = {"hard_full+easy_sub": 3, "hard_full+paraphrase": 2, "hard_full_x2": 2, "easy_sub": 2}
        stage2_cost = {c: s.stage2_epochs * s.num_hard * size.get(c, 1) for c in CONDITIONS}
        stage1_cost = s.stage1_epochs * s.num_foundation * 0.6  # foundation examples are shorter
        teacher_cost = s.teacher_steps * s.batch_size + s.num_hard * 0.5
        total = s.seeds * (stage1_cost + sum(stage2_cost.values())) + teacher_cost + easy_to_hard.cost(self)
        progress = Progress(total)
        progress.log(f"mini study: {len(CONDITIONS)} conditions x {s.seeds} seeds, {self.jobs} jobs side by side "
                     f"with {self.threads} thread(s) each; writing {self.out}")
        jobs = Jobs(self.jobs)
        jobs.add("data", self.build_data)
        for seed in range(s.seeds):
            jobs.add(f"stage1/{seed}", lambda seed=seed: self.stage1(seed, progress, stage1_cost), after=("data",))
        jobs.add(TEACHER_RUN, lambda: self.weak_teacher(progress, teacher_cost), after=("stage1/0",))
        # Q5's chains (about 5 minutes of one worker each) go before the short stage-2 runs, which then
        # fill the end: added last, the third chain ran alone while the other worker idled.
        weak_to_strong.add_jobs(self, jobs, progress)
        for seed in range(s.seeds):
            for condition in CONDITIONS:
                if condition != TEACHER_SET:
                    jobs.add(f"{condition}/{seed}", lambda c=condition, seed=seed: self.train_and_evaluate(
                        c, seed, progress, stage2_cost[c]), after=(f"stage1/{seed}",))
        for seed in range(s.seeds):
            jobs.add(f"{TEACHER_SET}/{seed}", lambda seed=seed: self.train_and_evaluate(
                TEACHER_SET, seed, progress, stage2_cost[TEACHER_SET]), after=(f"stage1/{seed}", TEACHER_RUN))
        easy_to_hard.add_jobs(self, jobs, progress)  # Q6: needs the data and each seed's policy model
        failures = jobs.wait()
        self.workers.shutdown()
        self.did_work = progress.done_cost > progress.skipped_cost
        for name, error in failures.items():
            progress.log(f"FAILED {name}: {error}")
        return failures


def bench_row(summary: dict, eval_rows_path: str) -> dict:
    """One test set's results for results.jsonl: accuracy, steps right, and the per-problem outcomes in
    the test file's order (1/0 final answer right, share of steps right, steps right by position), which
    the intervals' test-set term and the step-position table are computed from."""
    rows = read_jsonl(eval_rows_path)
    outcomes = [int(bool(r["verdict"])) for r in rows]
    step_outcomes, by_position = [], {}
    for r in rows:
        errors = miniworld.step_errors(r["responses"][0], r["problem"])
        task_steps = len(miniworld.parse_problem(r["problem"]).steps)
        step_outcomes.append(1 - sum(errors) / len(errors))
        for position, wrong in enumerate(errors[:task_steps], start=1):
            right_total = by_position.setdefault(str(position), [0, 0])
            right_total[0] += not wrong
            right_total[1] += 1
    return {"correct": sum(outcomes), "problems": len(rows), "accuracy": summary["accuracy"],
            "step_accuracy": sum(step_outcomes) / len(step_outcomes) if step_outcomes else float("nan"),
            "by_steps": {k: v["accuracy"] for k, v in summary["by"].get("steps", {}).items()},
            "step_right_by_position": {k: right / total for k, (right, total) in by_position.items()},
            "outcomes": outcomes, "step_outcomes": [round(x, 4) for x in step_outcomes]}


# ---------------------------------------------------------------------------------------------
# Statistics


def training_set_quality(study: Study) -> dict[str, dict]:
    """Examples, outcome error rate (the rows' verdicts) and step-wise error rate (rechecked here by the
    exact step checker: wrong steps / all steps) of every training set, as measured on the files."""
    from w2s.data.world.quality import measure

    quality = {}
    for name in ["foundation"] + CONDITIONS:
        path = study.set_path(name)
        if os.path.exists(path):
            stats = measure(read_jsonl(path), recheck_steps=True)
            quality[name] = {k: stats[k] for k in ("examples", "outcome_error", "step_error")}
    return quality


def question_table(question: Question, summary: dict, quality: dict) -> list[str]:
    lines = ["| condition | train set: outcome err % | step-wise err % | test acc % (mean ± SE) | std | seeds | "
             "test steps right % | long test acc % | long test steps right % |", "|---|---:|---:|---:|---:|---|---:|---:|---:|"]
    for condition in question.conditions:
        if condition not in summary:
            lines.append(f"| {LABELS[condition]} | | | not run | | | | | |")
            continue
        main, long = summary[condition]["miniworld"], summary[condition]["miniworld_long"]
        q = quality.get(TEACHER_SET if condition == TEACHER_SET else condition, {})
        if condition == TEACHER_RUN:
            q = {}  # trained on a little of `hard_full`, after stage 1: see the setup
        seeds = ", ".join(pct(v) for v in main["values"])
        lines.append(f"| {LABELS[condition]} (`{condition}`) | {pct(q.get('outcome_error'))} | {pct(q.get('step_error'))} | "
                     f"{pct(main['mean'])} ± {pct(main['se'])} | {pct(main['std'])} | {seeds} | "
                     f"{pct(main['step']['mean'])} ± {pct(main['step']['se'])} | {pct(long['mean'])} ± {pct(long['se'])} | "
                     f"{pct(long['step']['mean'])} ± {pct(long['step']['se'])} |")
    return lines


def compare(summary: dict, a: str, b: str) -> str:
    """One comparison in both measures: final answers (the paper's) and steps right (finer)."""
    return (f"final answer {verdict(difference(summary, a, b))}; "
            f"steps right {verdict(difference(summary, a, b, steps=True))}")


def question_verdicts(index: int, summary: dict, quality: dict) -> list[str]:
    """The comparisons each question is about, computed from the results."""
    if index == 0:
        return [f"- hard full at 90% error vs easy sub-tasks at 0%: {compare(summary, 'hard_full_e0.9', 'easy_sub')}",
                f"- hard full at 0% vs easy sub-tasks at 0%: {compare(summary, 'hard_full', 'easy_sub')}"]
    if index == 1:
        return [f"- one late slip vs every step wrong: {compare(summary, 'hard_full_e0.9_low', 'hard_full_e0.9_high')}",
                f"- one late slip vs mixed errors: {compare(summary, 'hard_full_e0.9_low', 'hard_full_e0.9')}"]
    if index == 2:
        return [f"- hard + sub-tasks vs {LABELS[b]}: {compare(summary, 'hard_full+easy_sub', b)}"
                for b in ("hard_full", "hard_full+paraphrase", "hard_full_x2")]
    lines = [f"- student vs its teacher (weak-to-strong: does the student beat the model that taught it?): "
             f"{compare(summary, TEACHER_SET, TEACHER_RUN)}"]
    sets = [s for s in HARD_TASK_SETS if s in summary and s in quality]
    if len(sets) >= 3:
        for name, pick in [("final-answer accuracy", lambda m: m["mean"]), ("steps right", lambda m: m["step"]["mean"])]:
            measured = [pick(summary[s]["miniworld"]) for s in sets]
            by_step = spearman([-quality[s]["step_error"] for s in sets], measured)
            by_outcome = spearman([-quality[s]["outcome_error"] for s in sets], measured)
            lines.append(f"- over the {len(sets)} hard-task training sets ({', '.join(f'`{s}`' for s in sets)}), the rank "
                         f"correlation of test {name} with a low step-wise error rate of the set is {by_step:+.2f}, "
                         f"with a low outcome error rate {by_outcome:+.2f}")
        lines.append("  (the paper: the step-wise error rate is the better predictor of the student's accuracy)")
    return lines


NOISY_SETS = ["hard_full_e0.5", "hard_full_e0.9", "hard_full_e0.9_low", "hard_full_e0.9_high", TEACHER_SET]


def weak_to_strong_table(summary: dict, quality: dict) -> list[str]:
    """Each noisy condition's student next to its own supervision: the share of the training set's final
    answers (and steps) that are right, against the share of the test's that the student gets right. A
    student above its supervision has learned more than it was shown."""
    lines = ["| condition | supervision: final answers right % | student: test final answers right % | student - supervision | "
             "supervision: steps right % | student: test steps right % | student - supervision |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name in NOISY_SETS:
        if name not in summary or name not in quality:
            continue
        test, q = summary[name]["miniworld"], quality[name]
        given, given_steps = 1 - q["outcome_error"], 1 - q["step_error"]
        lines.append(f"| {LABELS[name]} (`{name}`) | {pct(given)} | {pct(test['mean'])} ± {pct(test['se'])} | "
                     f"{(test['mean'] - given) * 100:+.1f} | {pct(given_steps)} | {pct(test['step']['mean'])} ± "
                     f"{pct(test['step']['se'])} | {(test['step']['mean'] - given_steps) * 100:+.1f} |")
    return lines


def write_report(study: Study, path: str, figure: str | None, command: str, wall_seconds: float) -> None:
    results = read_jsonl(study.results_path) if os.path.exists(study.results_path) else []
    summary = summarize(results)
    quality = training_set_quality(study)
    s = study.sizes
    job_seconds = sum(r["seconds"] for r in results)
    invocations_path = os.path.join(study.out, "invocations.jsonl")
    invocations = read_jsonl(invocations_path) if os.path.exists(invocations_path) else []
    study_minutes = sum(i["minutes"] for i in invocations)
    steps = {r["condition"]: r["steps"] for r in results}
    reading = ""
    if os.path.exists(path):  # the hand-written reading is kept across reruns
        with open(path) as f:
            text = f.read()
        if READING_MARK in text:
            reading = text[text.index(READING_MARK):]
    world = read_manifest(study.data_dir)
    lines = [
        "# The paper in miniature: results",
        "",
        "Every number below was produced by `experiments/mini_study.py` (the tables are rewritten by each run; "
        "only the reading at the end is written by hand). Raw results, one row per run: "
        f"`{os.path.relpath(study.results_path, REPO)}`.",
        "",
        f"- Command: `{command}`",
        f"- Wall time of the study: {study_minutes:.1f} min over {len(invocations)} invocation(s) that ran jobs "
        f"({', '.join(i['started'] + ' UTC' for i in invocations)}; {study.jobs} jobs side by side, {study.threads} "
        f"thread(s) each; {os.cpu_count()} CPU cores); sum of the recorded job times (train + evaluate, per run): "
        f"{job_seconds / 60:.1f} min. This file was written by an invocation of {wall_seconds / 60:.1f} min.",
        f"- Model: the `tiny` preset (dim 128, 2 layers, 4 heads, FFN 512, tied embeddings, ~0.5M parameters), "
        f"trained from scratch; AdamW, 5% warmup + cosine, lr {s.stage1_lr:g} and batch {s.stage1_batch_size} in stage 1, "
        f"lr {s.lr:g} and batch {s.batch_size} in stage 2, fp32, global batches drawn at random.",
        f"- Stage 1: {s.stage1_epochs} epoch{'s' * (s.stage1_epochs != 1)} over {s.num_foundation} correct 1-2 step problems "
        f"({steps.get('stage1', '?')} steps), once per seed. Stage 2: {s.stage2_epochs} epoch{'s' * (s.stage2_epochs != 1)} over each condition's set "
        f"(as in the paper, bigger sets get more steps: {', '.join(f'{c} {steps[c]}' for c in CONDITIONS if c in steps)}).",
        f"- World: the built-in world's defaults (starting amounts up to {world.get('max_start')}, operands of + and - "
        f"up to {world.get('max_add')}, of * up to {world.get('max_mul')}, operations {world.get('operations')}, "
        f"amounts up to {world.get('max_value')}); {s.num_hard} hard training tasks of {s.hard_steps} steps, each with 2 "
        f"sub-tasks (contiguous runs of 2 steps) and a paraphrase; stage-1 problems of 1-2 steps. "
        f"Tests: `miniworld` ({s.num_test} held-out problems of {s.hard_steps} steps) and `miniworld_long` "
        f"({s.num_long_test} of {s.long_steps} steps, longer than anything trained on); greedy decoding, "
        "graded by `w2s.grader`. *Steps right*: the share of a test problem's steps that the model's solution "
        "gets right, by the exact step checker (a missing or extra step is wrong): finer than the final answer.",
        f"- Seeds: {s.seeds} per condition (training seed: initialization of stage 1, data order; the data are the "
        "same for every seed). *mean ± SE*: mean over seeds ± the standard error of that mean (seed std / sqrt(seeds)); "
        "*std*: the seed-to-seed standard deviation. The test set alone adds a binomial standard error of at most "
        f"{pct(0.5 / math.sqrt(s.num_test))} points to one run ({s.num_test} problems). The comparisons under each "
        "table are paired by seed (every condition of a seed starts from that seed's stage-1 model): the mean "
        "per-seed difference ± its standard error; 'agrees' or 'disagrees' needs the difference beyond two of them.",
        f"- Weak teacher: stage 1 (seed 0) + {s.teacher_steps} steps on correct hard tasks (`hard_full`, "
        f"{s.teacher_steps * s.batch_size} examples); one sample per hard training "
        "task at temperature 0.7 (sample.py).",
        "",
        "## Training sets: measured quality",
        "",
        "Outcome error: the share of examples whose final answer is wrong (the rows' verdicts: the world's exact "
        "check for built sets, the grader for the teacher's samples). Step-wise error: wrong steps / all steps, "
        "rechecked here on every example by the world's exact step checker (`miniworld.step_errors`).",
        "",
        "| set | examples | outcome error % | step-wise error % |",
        "|---|---:|---:|---:|",
    ]
    for name, q in quality.items():
        lines.append(f"| `{name}` | {q['examples']} | {pct(q['outcome_error'])} | {pct(q['step_error'])} |")
    if "stage1" in summary:
        st = summary["stage1"]["miniworld"]
        lines += ["", f"Stage 1 alone (the starting point of every condition): test accuracy {pct(st['mean'])} ± "
                      f"{pct(st['se'])}% (long test {pct(summary['stage1']['miniworld_long']['mean'])}%)."]
    for i, question in enumerate(QUESTIONS):
        lines += ["", f"## {question.title}", "", f"The paper: {question.paper}.", ""]
        lines += question_table(question, summary, quality)
        lines += [""] + question_verdicts(i, summary, quality)
    lines += ["", "## Weak to strong: does a student answer better than its supervision?", "",
              "The share of right final answers (and right steps) in each noisy training set, next to the share "
              "its student gets right on the held-out test (same kind of task, never seen in training).", ""]
    lines += weak_to_strong_table(summary, quality)
    lines += weak_to_strong.report_lines(study, os.path.dirname(path))
    lines += easy_to_hard.report_lines(study, os.path.dirname(path))
    if figure:
        lines += ["", "## Figure", "", f"![mini study]({os.path.basename(figure)})"]
    lines += ["", reading.rstrip() if reading else f"{READING_MARK}\n\n## Reading\n\n(to be written by hand)"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


READING_MARK = "<!-- reading: written by hand, kept by mini_study.py -->"


def write_figure(study: Study, path: str) -> str | None:
    """One panel per question (final-answer accuracy and steps right on the test set, mean ± SE over
    seeds, each seed a dot), and accuracy against the step-wise error rate of every hard-task training
    set. Skipped, with a message, when matplotlib is missing."""
    plt = pyplot()
    if plt is None:
        print("matplotlib is not installed: no figure (pip install matplotlib to get one)")
        return None
    results = read_jsonl(study.results_path) if os.path.exists(study.results_path) else []
    summary, quality = summarize(results), training_set_quality(study)
    fig, axes = plt.subplots(2, 2, figsize=(14, 10))
    for ax, question in zip(axes.flat[:3], QUESTIONS[:3]):
        names = [c for c in question.conditions if c in summary]
        accuracy_bars(ax, summary, names, [textwrap.fill(LABELS[c], 22) for c in names])
        if "stage1" in summary:  # where every condition started from
            ax.axhline(summary["stage1"]["miniworld"]["mean"] * 100, color="gray", linestyle="--", linewidth=1,
                       label="stage 1 alone (final answer)")
        ax.set_title(question.title, fontsize=10)
        ax.set_ylabel("test set %")
        ax.legend(fontsize=8)
    ax = axes.flat[3]
    for name in HARD_TASK_SETS:
        if name in summary and name in quality:
            acc = summary[name]["miniworld"]
            ax.errorbar(quality[name]["step_error"] * 100, acc["mean"] * 100, yerr=acc["se"] * 100 if acc["n"] > 1 else 0,
                        fmt="o", capsize=3)
            ax.annotate(f"{name}\n(outcome error {pct(quality[name]['outcome_error'], 0)}%)",
                        (quality[name]["step_error"] * 100, acc["mean"] * 100), fontsize=7, xytext=(4, 4),
                        textcoords="offset points")
    ax.set_xlabel("step-wise error rate of the training set %")
    ax.set_ylabel("test accuracy % (final answer)")
    ax.set_title("Accuracy vs the training set's step-wise error rate (hard-task sets)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="The paper's supervision study in miniature, on the built-in world.")
    parser.add_argument("--smoke", action="store_true", help="toy sizes: checks the plumbing in about a minute")
    parser.add_argument("--out", help="work directory (default runs/mini_study, or runs/mini_study_smoke)")
    parser.add_argument("--results", help="report path (default experiments/RESULTS.md; with --smoke, OUT/RESULTS.md)")
    parser.add_argument("--seeds", type=int, help="seeds per condition (default 3)")
    parser.add_argument("--jobs", type=int, default=2, help="commands run side by side (default 2)")
    parser.add_argument("--threads", type=int, help="threads per command (default: CPU cores / jobs)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.time()
    sizes = SMOKE if args.smoke else FULL
    if args.seeds:
        sizes = replace(sizes, seeds=args.seeds)
    out = os.path.abspath(args.out or os.path.join(REPO, "runs", "mini_study_smoke" if args.smoke else "mini_study"))
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.jobs)
    os.makedirs(out, exist_ok=True)
    # One directory, one set of sizes: resuming with other sizes would mix runs that are not comparable.
    settings_path = os.path.join(out, "sizes.json")
    if os.path.exists(settings_path):
        with open(settings_path) as f:
            saved = json.load(f)
        if saved != asdict(sizes):
            raise SystemExit(f"{out} holds a study with other sizes ({saved}); use another --out or delete it")
    else:
        with open(settings_path, "w") as f:
            json.dump(asdict(sizes), f, indent=2)

    study = Study(out, sizes, args.jobs, threads)
    failures = study.run_all()
    # The study's wall time, summed over the invocations that did work (a rerun that only rewrites the
    # report, or resumes a killed study, adds its own time, not the earlier invocations').
    if study.did_work:
        with open(os.path.join(out, "invocations.jsonl"), "a") as f:
            f.write(json.dumps({"started": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(started)),
                                "minutes": round((time.time() - started) / 60, 2)}) + "\n")
    results_path = args.results or (os.path.join(out, "RESULTS.md") if args.smoke else os.path.join(REPO, "experiments", "RESULTS.md"))
    figure = write_figure(study, os.path.join(os.path.dirname(results_path), "mini_study.png"))
    command = " ".join(["python", "experiments/mini_study.py"] + (argv if argv is not None else sys.argv[1:]))
    write_report(study, results_path, figure, command, time.time() - started)
    print(f"wrote {results_path}" + (f" and {figure}" if figure else "") + f" in {(time.time() - started) / 60:.1f} min")
    if failures:
        print(f"{len(failures)} job(s) failed: {', '.join(failures)}; rerun the same command to retry them", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
