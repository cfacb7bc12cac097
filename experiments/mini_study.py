"""The paper in miniature: He, Yin, Peng (NAACL 2025)'s supervision study on the built-in world, on a CPU.

    python experiments/mini_study.py                       # the whole study, Q1-Q7 (about 1 h 45 min on 2 CPU cores)
    python experiments/mini_study.py --questions q3 q6     # some questions only (and the runs they need)
    python experiments/mini_study.py --smoke               # the same plumbing at toy size, in about a minute

The paper asks what makes good supervision for hard math: hard full tasks with many wrong solutions,
or perfectly correct easy sub-tasks? Does it matter how a wrong solution is wrong? This script asks
the same questions of a 0.5M-parameter Llama trained from scratch on the built-in world
(w2s/data/world/miniworld.py), with the project's own commands (each called through its main(argv) in one of
two worker processes, which is `python <command>.py ...` without importing torch for every stage):

1. data_prep.py builds the training sets at the qualities the questions need, the test set, and a
   validation split of other held-out hard tasks (every setting is chosen on it, never on the test).
2. train.py trains the stage-1 foundation model once per seed, on short (1-2 step) correct problems
   in the same answer format: the paper's easy-math SFT. Every stage-2 run starts from it (--init), so
   differences between conditions come from the stage-2 supervision, not from the format.
3. For every condition and seed: train.py --init <stage 1> on the condition's set for the same number of
   steps (the same examples seen, whatever the set's size), then evaluate.py on the held-out test (greedy).
4. The model teacher, one per seed: a weak model (its seed's stage 1 plus a little correct hard data)
   solves the hard training tasks with sample.py; the grader measures its outcome error rate and the
   world's exact step checker its step-wise error rate; its samples are one more training set, and that
   seed's student is trained on them.
5. Q5 (experiments/weak_to_strong.py), Q6 (experiments/easy_to_hard.py) and Q7
   (experiments/easy_to_hard_rl.py), in the same pool: a student learns hard tasks from weaker models'
   labels without gold (agreement in two rounds, then DPO), verifiers trained on easy problems re-rank
   samples of hard ones, and a policy trained on easy problems learns hard ones by RL (GRPO, ReST-EM)
   from an easy-trained verifier's reward.
6. experiments/RESULTS.md (a table per question with 95% intervals over seeds and test problems, the
   measured quality of every training set) and a figure, experiments/mini_study.png (when matplotlib is
   installed; it is optional).

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
import easy_to_hard_rl  # noqa: E402  (Q7: RL from an easy-trained verifier)
from runner import (Jobs, Progress, TrainSettings, Workers, accuracy_bars, command_costs,  # noqa: E402
                    condition_interval, count_rows, decide, paired_interval, pct, pyplot, save_figure, seed_runs,
                    spearman, summarize)
from w2s.data.datadir import read_manifest  # noqa: E402
from w2s.data.jsonl import read_jsonl, write_jsonl  # noqa: E402
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
    num_long_test: int  # longer test problems (built with the world; not evaluated: at the floor, see RESULTS.md)
    num_validation: int  # hard tasks held out of training and test: every choice of a setting is made on them
    hard_steps: str  # steps of hard tasks and of the same-distribution test ("3-4")
    long_steps: str  # steps of the longer test
    stage1_epochs: int
    stage2_steps: int  # every stage-2 condition trains exactly this many steps: the same examples seen
    teacher_steps: int  # the Q4 weak teacher: stage 1 plus this many steps on correct hard tasks
    stage1_batch_size: int
    batch_size: int  # stage 2 and the weak teacher
    lr: float = 3e-3  # stage 2 and the weak teacher
    stage1_lr: float = 1e-3  # stage 1 (from scratch): see the trials in RESULTS.md
    max_steps: int | None = None  # a cap on every run (the smoke test only)
    max_new_tokens: int = 96  # a 4-step solution takes about 45 tokens; room for a model that rambles


# The full study, sized by the trials in experiments/RESULTS.md: one stage-2 budget for every condition,
# the one that leaves `hard_full` between floor and ceiling on the validation split; stage 1 at lr 1e-3,
# where no seed stalls; the Q4 teacher stopped below the threshold where stage 2 starts to learn.
FULL = Sizes(seeds=5, num_hard=8000, num_foundation=48000, num_test=1000, num_long_test=500, num_validation=500,
             hard_steps="3-4", long_steps="5-6", stage1_epochs=1, stage2_steps=225, teacher_steps=100,
             stage1_batch_size=64, batch_size=32)
# The plumbing only: every stage runs, on a world too small to learn anything.
SMOKE = replace(FULL, seeds=1, num_hard=40, num_foundation=40, num_test=8, num_long_test=4, num_validation=6,
                stage2_steps=2, teacher_steps=1, stage1_batch_size=8, batch_size=8, max_steps=2, max_new_tokens=24)

TEACHER_SET = "model_teacher"  # the training set made of a weak teacher's samples (one teacher per seed)
TEACHER_RUN = "weak_teacher"
SUB_HALF = "hard_full+easy_sub_half"  # hard full tasks + one of each task's two sub-tasks: 16000, like the baselines

# Stage-2 conditions, named by their training set (data_prep.py's names carry the quality).
LABELS = {
    "hard_full": "hard full tasks, 0% wrong",
    "hard_full_e0.9": "hard full tasks, 90% wrong (mixed errors)",
    "easy_sub": "easy sub-tasks, 0% wrong",
    "easy_sub_prefix": "easy sub-tasks in the full problem's context, 0% wrong",
    "hard_full_e0.9_low": "hard, 90% wrong: one late slip each",
    "hard_full_e0.9_high": "hard, 90% wrong: every step wrong",
    SUB_HALF: "hard full + easy sub-tasks (one per task)",
    "hard_full+paraphrase": "hard full + paraphrases (merge rephrased)",
    "hard_full_x2": "hard full twice (duplicate)",
    TEACHER_SET: "student of the weak model teacher",
    TEACHER_RUN: "the weak model teacher itself",
}
CONDITIONS = [name for name in LABELS if name != TEACHER_RUN]
BUILT_SETS = [c for c in CONDITIONS if c not in (TEACHER_SET, SUB_HALF)]  # written by data_prep.py


@dataclass(frozen=True)
class Question:
    key: str  # --questions names it
    title: str
    paper: str  # what the paper found
    conditions: tuple[str, ...]


QUESTIONS = [
    Question("q1", "Q1. Hard full tasks with errors vs correct easy sub-tasks",
             "hard full tasks at 90% outcome error still beat perfectly correct easy sub-tasks",
             ("hard_full", "hard_full_e0.9", "easy_sub", "easy_sub_prefix")),
    Question("q2", "Q2. Error severity at the same outcome error rate (90%)",
             "at the same outcome error, a lower step-wise error rate is much better (about 30 points on MATH)",
             ("hard_full_e0.9_low", "hard_full_e0.9", "hard_full_e0.9_high")),
    Question("q3", "Q3. Combining hard full tasks with their sub-tasks",
             "hard full + sub-tasks beats hard full alone and the same-size paraphrase and duplicate baselines",
             ("hard_full", SUB_HALF, "hard_full+paraphrase", "hard_full_x2")),
    Question("q4", "Q4. A model teacher",
             "students follow the quality of the teacher's supervision, and its step-wise error rate tells more "
             "than its outcome error rate",
             (TEACHER_RUN, TEACHER_SET, "hard_full", "hard_full_e0.9")),
]
QUESTION_KEYS = [q.key for q in QUESTIONS] + ["q5", "q6", "q7"]  # weak_to_strong, easy_to_hard, easy_to_hard_rl
HARD_TASK_SETS = ["hard_full", "hard_full_e0.9", "hard_full_e0.9_low", "hard_full_e0.9_high",
                  TEACHER_SET]  # one solution per hard task: the sets whose error rates are compared in Q4
BENCHES = ["miniworld"]  # the 5-6 step test sat at the floor for every condition: not evaluated
VALIDATION = "validation"  # a bench file of held-out hard tasks, data/validation.jsonl

# The data_prep.py calls that build every set above (one world; the calls add sets to it).
DATA_BUILDS = [
    ["--hard-error", "0", "--sets", "foundation", "hard_full", "easy_sub", "easy_sub_prefix", "hard_full+paraphrase",
     "hard_full_x2"],
    ["--hard-error", "0.9", "--sets", "hard_full"],
    ["--hard-error", "0.9", "--step-profile", "low", "high", "--sets", "hard_full"],
]
VALIDATION_OFFSET = 20000  # validation tasks are drawn this far past the study's hard tasks: Q5's pool comes first


# ---------------------------------------------------------------------------------------------
# The study


class Study:
    def __init__(self, out: str, sizes: Sizes, jobs: int, threads: int):
        self.out, self.sizes, self.jobs, self.threads = out, sizes, jobs, threads
        self.workers = Workers(jobs, threads, record=os.path.join(out, "commands.jsonl"))
        self.data_dir = os.path.join(out, "data")
        self.results_path = os.path.join(out, "results.jsonl")
        self.validation_path = os.path.join(self.data_dir, f"{VALIDATION}.jsonl")
        self.lock = threading.Lock()

    # -- paths --------------------------------------------------------------------------------
    def run_dir(self, condition: str, seed: int | None) -> str:
        return os.path.join(self.out, "runs", condition if seed is None else f"{condition}/seed{seed}")

    def set_path(self, name: str) -> str:
        return os.path.join(self.data_dir, f"{name}.jsonl")

    def teacher_set(self, seed: int) -> str:
        """The set made of seed `seed`'s weak teacher's samples."""
        return self.set_path(f"{TEACHER_SET}_seed{seed}")

    def condition_set(self, condition: str, seed: int) -> str:
        return self.teacher_set(seed) if condition == TEACHER_SET else self.set_path(condition)

    def run(self, script: str, argv: list[str], log_path: str) -> None:
        """A project command (`python <script>.py <argv>`), in the next free worker process."""
        self.workers.run(script, argv, log_path)

    # -- stages -------------------------------------------------------------------------------
    def world_args(self, num_hard: int) -> list[str]:
        s = self.sizes
        return ["--num-hard", str(num_hard), "--num-foundation", str(s.num_foundation), "--num-test", str(s.num_test),
                "--num-long-test", str(s.num_long_test), "--hard-steps", s.hard_steps, "--long-steps", s.long_steps]

    def build_data(self) -> None:
        """Every training set, the tests, the derived Q3 set and the validation split."""
        needed = ["foundation"] + BUILT_SETS
        if not all(os.path.exists(self.set_path(name)) for name in needed):
            for build in DATA_BUILDS:
                self.run("data_prep", ["world", "--out", self.data_dir, *self.world_args(self.sizes.num_hard), *build],
                         os.path.join(self.out, "logs", "data_prep.log"))
            missing = [name for name in needed if not os.path.exists(self.set_path(name))]
            if missing:
                raise RuntimeError(f"data_prep.py did not write {missing} into {self.data_dir}")
        if not os.path.exists(self.set_path(SUB_HALF)):
            write_sub_half(self.set_path("hard_full"), self.set_path("easy_sub"), self.set_path(SUB_HALF))
        if not os.path.exists(self.validation_path):
            self.build_validation()

    def build_validation(self) -> None:
        """num_validation hard tasks drawn VALIDATION_OFFSET past the study's (data_prep.py draws hard tasks
        as one stream, so a larger --num-hard extends it): never trained on, and never a test problem
        (checked). Every choice of a setting (stage 2's budget, Q5's DPO settings) is made on them."""
        s, world = self.sizes, os.path.join(self.out, "validation_world")
        offset = s.num_hard + (VALIDATION_OFFSET if not s.max_steps else 50)
        self.run("data_prep", ["world", "--out", world, *self.world_args(offset + s.num_validation),
                               "--num-foundation", "0", "--sets", "hard_full"],
                 os.path.join(self.out, "logs", "data_prep.log"))
        tasks = read_jsonl(os.path.join(world, "tasks", "hard_full.jsonl"))
        study_tasks = read_jsonl(os.path.join(self.data_dir, "tasks", "hard_full.jsonl"))
        if [t["problem"] for t in tasks[:len(study_tasks)]] != [t["problem"] for t in study_tasks]:
            raise RuntimeError(f"{world}: the larger world does not begin with the study's hard tasks")
        test = {t["problem"] for t in read_jsonl(os.path.join(self.data_dir, "test", "miniworld.jsonl"))}
        seen = {t["problem"] for t in study_tasks} | test
        validation = [{**t, "id": f"validation-{i:05d}"} for i, t in enumerate(tasks[offset:])
                      if t["problem"] not in seen]
        write_jsonl(self.validation_path, validation)

    def train(self, data: str, out: str, seed: int, init: str | None,
              settings: TrainSettings = TrainSettings()) -> str:
        """train.py with the study's settings (stage 1 without `init`; with it, stage 2: exactly
        stage2_steps steps unless `settings.max_steps` says otherwise); `settings` overrides them for the
        weak teachers, Q5 and Q6. A finished run is kept, a killed one resumed. Returns out/final."""
        final = os.path.join(out, "final")
        if os.path.exists(os.path.join(final, "config.json")):
            return final
        s, max_steps, epochs = self.sizes, settings.max_steps, settings.epochs
        batch_size = settings.batch_size or (s.batch_size if init else s.stage1_batch_size)
        if init and not max_steps and not epochs:  # stage 2: a fixed number of steps, as many epochs as that takes
            max_steps = s.stage2_steps
            epochs = max(1, math.ceil(max_steps * batch_size / max(count_rows(data), 1)))
        epochs = epochs or s.stage1_epochs
        lr = settings.lr or (s.lr if init else s.stage1_lr)
        steps = min(x for x in (max_steps, s.max_steps) if x) if (max_steps or s.max_steps) else None
        argv = ["--model", settings.model, "--data", data, "--out", out, "--seed", str(seed), "--epochs", str(epochs),
                "--batch-size", str(batch_size), "--lr", str(lr), "--save-every", "200",
                "--keep-checkpoints", "1", "--resume"]
        argv += ["--init", init] if init else []
        argv += ["--max-steps", str(steps)] if steps else []
        self.run("train", [*argv, *settings.extra], os.path.join(out, "train.log"))
        return final

    def sample(self, model: str, tasks: str, out: str, n: int, temperature: float, seed: int, log: str) -> str:
        """sample.py with the study's settings (plain temperature sampling, no top-p; batch 256; the
        study's token limit): `n` solutions per task of `tasks` into `out`, which it returns."""
        self.run("sample", ["--model", model, "--tasks", tasks, "--out", out, "--n", str(n), "--temperature",
                            str(temperature), "--top-p", "1.0", "--batch-size", "256", "--seed", str(seed),
                            "--max-new-tokens", str(self.sizes.max_new_tokens), "--quiet"], log)
        return out

    def evaluate(self, run_dir: str, benches: tuple[str, ...] = tuple(BENCHES)) -> dict:
        """evaluate.py on the test sets (greedy; a bench is a name under data/test/ or a file); its
        summary.json marks the evaluation finished."""
        summary_path = os.path.join(run_dir, "eval", "summary.json")
        if not os.path.exists(summary_path):
            self.run("evaluate", ["--model", os.path.join(run_dir, "final"), "--bench", *benches,
                                  "--data-dir", self.data_dir, "--out", os.path.join(run_dir, "eval"),
                                  "--batch-size", "256", "--max-new-tokens", str(self.sizes.max_new_tokens),
                                  "--group-by", "steps", "--quiet"],
                     os.path.join(run_dir, "eval.log"))
        with open(summary_path) as f:
            return json.load(f)

    def record(self, condition: str, seed: int | None, run_dir: str, summary: dict, seconds: float) -> None:
        """Append the run's row to results.jsonl, once."""
        with self.lock:
            rows = read_jsonl(self.results_path) if os.path.exists(self.results_path) else []
            done = {(r["condition"], r["seed"]) for r in rows}
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
        self.train(self.condition_set(condition, seed), run_dir, seed, stage1)
        summary = self.evaluate(run_dir)
        self.record(condition, seed, run_dir, summary, time.time() - start)
        progress.add(cost, skipped=finished)
        if not finished:
            progress.log(f"done   {condition} seed {seed} in {time.time() - start:.0f} s: "
                         f"{summary['miniworld']['accuracy']:.1%}")

    def weak_teacher(self, seed: int, progress: Progress, cost: float) -> None:
        """Seed `seed`'s weak model teacher: its stage 1 plus a little correct hard data, a fraction of
        one epoch (stage 1 plus easy sub-tasks alone never writes more than two steps, so its samples
        would all be alike: wrong from the third step on). Evaluated like every model, then it solves the
        hard training tasks (sample.py, one sample each, temperature 0.7), and its samples, checked step
        by step, become that seed's TEACHER_SET. One teacher per seed: no verdict rests on one model."""
        run_dir = self.run_dir(TEACHER_RUN, seed)
        if os.path.exists(self.teacher_set(seed)):
            progress.add(cost, skipped=True)
            return
        progress.log(f"start  weak teacher seed {seed}: training, evaluation, sampling the hard tasks")
        start = time.time()
        self.train(self.set_path("hard_full"), run_dir, seed, os.path.join(self.run_dir("stage1", seed), "final"),
                   TrainSettings(max_steps=self.sizes.teacher_steps, epochs=1))
        summary = self.evaluate(run_dir)
        self.record(TEACHER_RUN, seed, run_dir, summary, time.time() - start)
        hard_tasks = os.path.join(self.data_dir, "tasks", "hard_full.jsonl")
        samples_path = self.sample(os.path.join(run_dir, "final"), hard_tasks, os.path.join(run_dir, "samples.jsonl"),
                                   1, 0.7, seed, os.path.join(run_dir, "sample.log"))
        # data_prep.py turns samples into an SFT set: outcome from sample.py's grader verdicts, step-wise
        # error rate from the world's exact step checker.
        self.run("data_prep", ["from-samples", samples_path, "--out", self.data_dir,
                               "--name", f"{TEACHER_SET}_seed{seed}"], os.path.join(self.out, "logs", "data_prep.log"))
        progress.add(cost)
        progress.log(f"done   weak teacher seed {seed} in {time.time() - start:.0f} s: test accuracy "
                     f"{summary['miniworld']['accuracy']:.1%}; its samples are {self.teacher_set(seed)}")

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

    def run_all(self, questions: list[str]) -> dict[str, BaseException]:
        """The jobs of the chosen questions (and what they need), in an order that keeps both workers
        busy: the long chains (Q5's, the teachers) early, short stage-2 runs last to fill the end."""
        s = self.sizes
        conditions = needed_conditions(questions)
        stage2_cost = s.stage2_steps * s.batch_size
        stage1_cost = s.stage1_epochs * s.num_foundation * 0.6  # foundation examples are shorter
        teacher_cost = s.teacher_steps * s.batch_size + s.num_hard * 0.5
        total = s.seeds * (stage1_cost + stage2_cost * len(conditions) + teacher_cost * (TEACHER_SET in conditions))
        total += easy_to_hard.cost(self) if "q6" in questions else 0
        total += easy_to_hard_rl.cost(self) if "q7" in questions else 0
        progress = Progress(total)
        progress.log(f"mini study: questions {' '.join(questions)}; {len(conditions)} stage-2 conditions x "
                     f"{s.seeds} seeds, {self.jobs} jobs side by side with {self.threads} thread(s) each; "
                     f"writing {self.out}")
        jobs = Jobs(self.jobs)
        jobs.add("data", self.build_data)
        for seed in range(s.seeds):
            jobs.add(f"stage1/{seed}", lambda seed=seed: self.stage1(seed, progress, stage1_cost), after=("data",))
        if TEACHER_SET in conditions or "q7" in questions:  # Q7's machinery check starts from the weak teacher
            for seed in range(s.seeds):
                jobs.add(f"{TEACHER_RUN}/{seed}", lambda seed=seed: self.weak_teacher(seed, progress, teacher_cost),
                         after=(f"stage1/{seed}",))
        if "q5" in questions:  # Q5's chains go before the short stage-2 runs, which then fill the end
            weak_to_strong.add_jobs(self, jobs, progress)
        for seed in range(s.seeds):
            for condition in conditions:
                after = (f"stage1/{seed}",) + ((f"{TEACHER_RUN}/{seed}",) if condition == TEACHER_SET else ())
                jobs.add(f"{condition}/{seed}", lambda c=condition, seed=seed: self.train_and_evaluate(
                    c, seed, progress, stage2_cost), after=after)
        if "q6" in questions:
            easy_to_hard.add_jobs(self, jobs, progress)  # needs the data and each seed's policy model
        if "q7" in questions:
            easy_to_hard_rl.add_jobs(self, jobs, progress)  # needs each seed's stage 1 and all-levels runs
        try:
            failures = jobs.wait()
        except KeyboardInterrupt:
            self.workers.stop()
            raise
        self.workers.shutdown()
        self.did_work = progress.done_cost > progress.skipped_cost
        for name, error in failures.items():
            progress.log(f"FAILED {name}: {error}")
        return failures


def needed_conditions(questions: list[str]) -> list[str]:
    """The stage-2 conditions the chosen questions compare or build on (Q5's ceiling is hard_full; Q6's
    policy is its POLICY condition), in CONDITIONS order."""
    needed = {c for q in QUESTIONS if q.key in questions for c in q.conditions if c != TEACHER_RUN}
    if "q4" in questions:
        needed |= set(HARD_TASK_SETS)  # Q4's rank correlation runs over every hard-task set
    if "q5" in questions:
        needed.add(weak_to_strong.CEILING)
    if "q6" in questions:
        needed.add(easy_to_hard.POLICY)
    if "q7" in questions:
        needed.add(easy_to_hard_rl.ALL_LEVELS)
    return [c for c in CONDITIONS if c in needed]


def write_sub_half(hard_full: str, easy_sub: str, out: str, seed: int = 0) -> None:
    """hard full tasks plus one of each task's sub-tasks (picked at random, seeded): as many examples as
    hard_full+paraphrase and hard_full_x2, so that Q3 compares sets of one size."""
    import random

    by_parent: dict[str, list[dict]] = {}
    for row in read_jsonl(easy_sub):
        by_parent.setdefault(row["meta"]["parent_id"], []).append(row)
    rng = random.Random(seed)
    rows = read_jsonl(hard_full)
    subs = [rng.choice(by_parent[row["id"]]) for row in rows if row["id"] in by_parent]
    write_jsonl(out, rows + subs)


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
    exact step checker: wrong steps / all steps) of every training set, as measured on the files. The
    teachers' sets are measured one by one (model_teacher_seedS) and averaged over seeds (model_teacher)."""
    from w2s.data.world.quality import measure

    quality = {}
    teacher_sets = [f"{TEACHER_SET}_seed{seed}" for seed in range(study.sizes.seeds)]
    for name in ["foundation"] + BUILT_SETS + [SUB_HALF] + teacher_sets:
        path = study.set_path(name)
        if os.path.exists(path):
            stats = measure(read_jsonl(path), recheck_steps=True)
            quality[name] = {k: stats[k] for k in ("examples", "outcome_error", "step_error")}
    measured = [quality[name] for name in teacher_sets if name in quality]
    if measured:
        quality[TEACHER_SET] = {k: sum(q[k] for q in measured) / len(measured)
                                for k in ("examples", "outcome_error", "step_error")}
        quality[TEACHER_SET]["examples"] = round(quality[TEACHER_SET]["examples"])
    return quality


def cell(iv) -> str:
    """A mean over seeds with its 95% interval, in percent."""
    return "not run" if iv is None else f"{pct(iv.mean)} [{', '.join(pct(x) for x in iv.accuracy_bounds())}]"


def question_table(question: Question, results: list[dict], quality: dict) -> list[str]:
    lines = ["| condition | train set: outcome err % | step-wise err % | test acc % (mean [95% CI]) | per seed | "
             "test steps right % (mean [95% CI]) |", "|---|---:|---:|---:|---|---:|"]
    for condition in question.conditions:
        acc = condition_interval(results, condition)
        if acc is None:
            lines.append(f"| {LABELS[condition]} (`{condition}`) | | | not run | | |")
            continue
        q = {} if condition == TEACHER_RUN else quality.get(condition, {})  # the teacher: a little of hard_full
        runs = seed_runs(results, condition)
        seeds = ", ".join(pct(runs[seed]["accuracy"]) for seed in sorted(runs))
        lines.append(f"| {LABELS[condition]} (`{condition}`) | {pct(q.get('outcome_error'))} | "
                     f"{pct(q.get('step_error'))} | {cell(acc)} | {seeds} | "
                     f"{cell(condition_interval(results, condition, steps=True))} |")
    return lines


def at_bound(results: list[dict], condition: str) -> str | None:
    """'ceiling' or 'floor' when a condition's every seed is within 3 points of 100% or 0%."""
    values = [r["accuracy"] for r in seed_runs(results, condition).values()]
    if values and min(values) >= 0.97:
        return "ceiling"
    if values and max(values) <= 0.03:
        return "floor"
    return None


def compare(results: list[dict], a: str, b: str, expected_sign: int = 1) -> str:
    """One comparison in both measures, final answers (the paper's) and steps right (finer): the paired
    difference with its 95% interval and the verdict word. Two conditions at the same bound cannot
    differ: 'not testable here'."""
    bound = at_bound(results, a)
    if bound and bound == at_bound(results, b):
        return f"both at the {bound}: not testable here"
    parts = []
    for name, steps in (("final answer", False), ("steps right", True)):
        iv = paired_interval(results, a, b, steps=steps)
        parts.append(f"{name} {iv.text()}: **{decide(iv, expected_sign)}**" if iv else f"{name}: not measured")
    return "; ".join(parts)


def step_position_table(results: list[dict], conditions: tuple[str, ...]) -> list[str]:
    """Steps right by position in the solution (mean over seeds): where a student's solutions go wrong."""
    positions = sorted({p for r in results if r["condition"] in conditions
                        for p in r["benches"]["miniworld"].get("step_right_by_position", {})}, key=int)
    if not positions:
        return []
    lines = ["", "Steps right by position (test set, mean over seeds; step 4 exists in half of the problems):", "",
             "| condition | " + " | ".join(f"step {p}" for p in positions) + " |", "|---|" + "---:|" * len(positions)]
    for condition in conditions:
        runs = [r["benches"]["miniworld"].get("step_right_by_position", {})
                for r in results if r["condition"] == condition]
        if runs:
            means = [sum(run.get(p, 0) for run in runs) / len(runs) for p in positions]
            lines.append(f"| `{condition}` | " + " | ".join(pct(m) for m in means) + " |")
    return lines


def question_verdicts(question: Question, results: list[dict], quality: dict, seeds: int) -> list[str]:
    """The comparisons each question is about, computed from the results."""
    if question.key == "q1":
        return [f"- hard full at 90% error vs easy sub-tasks at 0%: {compare(results, 'hard_full_e0.9', 'easy_sub')}",
                f"- hard full at 0% vs easy sub-tasks at 0%: {compare(results, 'hard_full', 'easy_sub')}",
                f"- hard full at 90% error vs easy sub-tasks in context at 0%: "
                f"{compare(results, 'hard_full_e0.9', 'easy_sub_prefix')}",
                f"- easy sub-tasks in context vs standalone (does the context let sub-task training transfer?): "
                f"{compare(results, 'easy_sub_prefix', 'easy_sub', expected_sign=0)}"
                ] + step_position_table(results, question.conditions + ("stage1",))
    if question.key == "q2":
        return [f"- one late slip vs every step wrong: {compare(results, 'hard_full_e0.9_low', 'hard_full_e0.9_high')}",
                f"- one late slip vs mixed errors: {compare(results, 'hard_full_e0.9_low', 'hard_full_e0.9')}"]
    if question.key == "q3":
        return [f"- hard + sub-tasks vs {LABELS[b]}: {compare(results, SUB_HALF, b)}"
                for b in ("hard_full", "hard_full+paraphrase", "hard_full_x2")]
    lines = [f"- student vs its own teacher, seed by seed (weak-to-strong: does the student beat the model that taught "
             f"it?): {compare(results, TEACHER_SET, TEACHER_RUN)}",
             f"- student of the model teacher vs student of the built 90%-wrong set: "
             f"{compare(results, TEACHER_SET, 'hard_full_e0.9', expected_sign=0)}"]
    # One point per training set: the built sets (mean over seeds), and each seed's teacher set with the
    # accuracy of the student trained on it.
    points = []
    for name in HARD_TASK_SETS:
        if name == TEACHER_SET:
            for seed, run in seed_runs(results, TEACHER_SET).items():
                if f"{TEACHER_SET}_seed{seed}" in quality:
                    points.append((quality[f"{TEACHER_SET}_seed{seed}"], run["accuracy"], run["step_accuracy"]))
        elif name in quality and seed_runs(results, name):
            runs = list(seed_runs(results, name).values())
            points.append((quality[name], sum(r["accuracy"] for r in runs) / len(runs),
                           sum(r["step_accuracy"] for r in runs) / len(runs)))
    if len(points) >= 3:
        for what, index in (("final-answer accuracy", 1), ("steps right", 2)):
            measured = [p[index] for p in points]
            by_step = spearman([-p[0]["step_error"] for p in points], measured)
            by_outcome = spearman([-p[0]["outcome_error"] for p in points], measured)
            lines.append(f"- over {len(points)} training sets (the built hard-task sets and each seed's teacher "
                         f"set), the rank correlation of the student's test {what} with a low step-wise error rate is "
                         f"{by_step:+.2f}, with a low outcome error rate {by_outcome:+.2f}")
        lines.append(f"  (the paper: the step-wise error rate is the better predictor). With {len(points)} points, "
                     "three of which share a 90% outcome error by construction, two rank correlations cannot be told "
                     "apart: this part of Q4 is **not testable here**.")
    return lines


NOISY_SETS = ["hard_full_e0.9", "hard_full_e0.9_low", "hard_full_e0.9_high", TEACHER_SET]


def weak_to_strong_table(results: list[dict], quality: dict) -> list[str]:
    """Each noisy condition's student next to its own supervision: the share of the training set's final
    answers (and steps) that are right, against the share of the test's that the student gets right. A
    student above its supervision has learned more than it was shown."""
    lines = ["| condition | supervision: final answers right % | student: test final answers right % | "
             "student - supervision | supervision: steps right % | student: test steps right % | "
             "student - supervision |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name in NOISY_SETS:
        acc, steps = condition_interval(results, name), condition_interval(results, name, steps=True)
        if acc is None or name not in quality:
            continue
        q = quality[name]
        given, given_steps = 1 - q["outcome_error"], 1 - q["step_error"]
        lines.append(f"| {LABELS[name]} (`{name}`) | {pct(given)} | {cell(acc)} | {(acc.mean - given) * 100:+.1f} | "
                     f"{pct(given_steps)} | {cell(steps)} | {(steps.mean - given_steps) * 100:+.1f} |")
    return lines


def code_versions(invocations: list[dict]) -> str:
    """Which versions of the sources (runner.code_fingerprint) ran the study's invocations: one, or a warning."""
    codes = list(dict.fromkeys(i.get("code", "not recorded") for i in invocations))
    if not codes:
        return "no invocation recorded."
    if codes == ["not recorded"]:
        return "not recorded (the invocations predate the sources' fingerprint)."
    if len(codes) == 1:
        return f"every invocation ran the same sources (fingerprint {codes[0]})."
    return (f"**the invocations ran {len(codes)} versions of the sources** ({', '.join(codes)}): runs made by "
            "different code sit side by side in these tables.")


def report_header(study: Study, command: str, wall_seconds: float, results: list[dict]) -> list[str]:
    """The report's title, where its numbers come from, and how long the study ran, with which sources."""
    job_seconds = sum(r["seconds"] for r in results)
    invocations_path = os.path.join(study.out, "invocations.jsonl")
    invocations = read_jsonl(invocations_path) if os.path.exists(invocations_path) else []
    study_minutes = sum(i["minutes"] for i in invocations)
    started = "; ".join(i["started"] + " UTC " + " ".join(i.get("questions", []))
                        + (" (interrupted)" if i.get("interrupted") else "") for i in invocations)
    return [
        "# The paper in miniature: results",
        "",
        "Every number below was produced by `experiments/mini_study.py` (the tables are rewritten by each run; "
        "only the reading at the end is written by hand). Raw results, one row per run: "
        f"`{os.path.relpath(study.results_path, REPO)}`. Runs repeat exactly on one machine, not across CPU types "
        "(their float kernels differ, and a run near a learning threshold amplifies that): a rerun elsewhere gives "
        "other numbers, which is why every verdict below rests on intervals over seeds of every model involved.",
        "",
        f"- Command: `{command}`",
        f"- Wall time of the study: {study_minutes:.1f} min over {len(invocations)} invocation(s) that ran jobs "
        f"({started}; {study.jobs} jobs "
        f"side by side, {study.threads} thread(s) each; {os.cpu_count()} CPU cores); sum of the recorded job times "
        f"(train + evaluate, per run): {job_seconds / 60:.1f} min. This file was written by an invocation of "
        f"{wall_seconds / 60:.1f} min.",
        f"- Code: {code_versions(invocations)}",
    ]


def cost_lines(study: Study) -> list[str]:
    """Where the study's time went, from its commands' records (commands.jsonl), where it has them."""
    path = os.path.join(study.out, "commands.jsonl")
    invocations_path = os.path.join(study.out, "invocations.jsonl")
    if not os.path.exists(path):
        return []
    study_minutes = sum(i["minutes"] for i in read_jsonl(invocations_path)) if os.path.exists(invocations_path) else 0
    return ["", "Where the time went (each command's own run time, summed over the invocations; one worker runs one "
            "command at a time):", "", *command_costs(read_jsonl(path), study.out, study_minutes * study.jobs)]


def setup_lines(study: Study) -> list[str]:
    """The model, the two stages, the world, the seeds and the intervals, and Q4's teacher, at the study's sizes."""
    s = study.sizes
    world = read_manifest(study.data_dir)
    validation = count_rows(study.validation_path) if os.path.exists(study.validation_path) else 0
    return [
        f"- Model: the `tiny` preset (dim 128, 2 layers, 4 heads, FFN 512, tied embeddings, ~0.5M parameters), "
        f"trained from scratch; AdamW, 5% warmup + cosine, lr {s.stage1_lr:g} and batch {s.stage1_batch_size} in "
        f"stage 1, lr {s.lr:g} and batch {s.batch_size} in stage 2, fp32, global batches drawn at random.",
        f"- Stage 1: {s.stage1_epochs} epoch over {s.num_foundation} correct 1-2 step problems, once per seed. "
        f"Stage 2: every condition trains exactly {s.stage2_steps} steps at batch {s.batch_size} "
        f"({s.stage2_steps * s.batch_size} examples seen) from its seed's stage-1 model, whatever its set's size: "
        "conditions differ in what they see, not in how much. The budget was chosen on the validation split, where "
        "`hard_full` sits between floor and ceiling (see the trials).",
        f"- World: the built-in world's defaults (starting amounts up to {world.get('max_start')}, operands of + and - "
        f"up to {world.get('max_add')}, of * up to {world.get('max_mul')}, operations {world.get('operations')}, "
        f"amounts up to {world.get('max_value')}); {s.num_hard} hard training tasks of {s.hard_steps} steps, each "
        f"with 2 sub-tasks (contiguous runs of 2 steps) and a paraphrase; stage-1 problems of 1-2 steps. Test: "
        f"`miniworld` ({s.num_test} held-out problems of {s.hard_steps} steps), greedy decoding, graded by "
        f"`w2s.grader`. Validation: {validation} other held-out hard tasks (`data/{VALIDATION}.jsonl`), used for "
        "every choice of a setting and never reported as a result. *Steps right*: the share of a test problem's "
        "steps that the model's solution gets right, by the exact step checker (a missing or extra step is wrong): "
        "finer than the final answer.",
        f"- Seeds: {s.seeds}. A seed seeds every model of its chain: stage 1 (initialization, data order), the weak "
        "teachers and the students; the built noisy sets are drawn once, with the world. *[95% CI]*: mean over seeds "
        "± t(n-1) x sqrt(seed variance / n + test-set variance), where the test-set term is the variance over test "
        "problems of the per-problem outcome (averaged over seeds) / problems: the test set is the same for every "
        "seed, so the seed spread alone cannot see its sampling error; an accuracy's interval is cut at 0 and 100%. "
        "Comparisons are paired by seed (a seed's conditions all start from its stage-1 model) and by test problem. "
        "**reproduced** / **contradicted**: the interval excludes zero on the paper's side / the other side; "
        "*no clear difference*: it contains zero.",
        f"- Q4's weak teacher, one per seed: that seed's stage 1 + {s.teacher_steps} steps on correct hard tasks "
        f"(`hard_full`, {s.teacher_steps * s.batch_size} examples); one sample per hard training task at temperature "
        "0.7 (sample.py); its seed's student learns from those samples.",
    ]


def quality_lines(quality: dict) -> list[str]:
    """The measured outcome and step-wise error rates of every training set."""
    lines = [
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
    return lines


READING_MARK = "<!-- reading: written by hand, kept by mini_study.py -->"


def kept_reading(path: str) -> str:
    """The hand-written reading of the report at `path` (from READING_MARK to its end): kept across reruns."""
    if not os.path.exists(path):
        return ""
    with open(path) as f:
        text = f.read()
    return text[text.index(READING_MARK):] if READING_MARK in text else ""


def write_report(study: Study, path: str, figure: str | None, command: str, wall_seconds: float) -> None:
    results = read_jsonl(study.results_path) if os.path.exists(study.results_path) else []
    quality = training_set_quality(study)
    reading = kept_reading(path)
    lines = report_header(study, command, wall_seconds, results) + setup_lines(study) + cost_lines(study)
    lines += quality_lines(quality)
    stage1 = condition_interval(results, "stage1")
    if stage1:
        lines += ["", f"Stage 1 alone (the starting point of every condition): test accuracy {cell(stage1)}%."]
    for question in QUESTIONS:
        lines += ["", f"## {question.title}", "", f"The paper: {question.paper}.", ""]
        lines += question_table(question, results, quality)
        lines += [""] + question_verdicts(question, results, quality, study.sizes.seeds)
    lines += ["", "## Weak to strong: does a student answer better than its supervision?", "",
              "The share of right final answers (and right steps) in each noisy training set, next to the share "
              "its student gets right on the held-out test (same kind of task, never seen in training).", ""]
    lines += weak_to_strong_table(results, quality)
    lines += weak_to_strong.report_lines(study, os.path.dirname(path))
    lines += easy_to_hard.report_lines(study, os.path.dirname(path))
    lines += easy_to_hard_rl.report_lines(study, os.path.dirname(path))
    if figure:
        lines += ["", "## Figure", "", f"![mini study]({os.path.basename(figure)})"]
    lines += ["", reading.rstrip() if reading else f"{READING_MARK}\n\n## Reading\n\n(to be written by hand)"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


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
            ax.errorbar(quality[name]["step_error"] * 100, acc["mean"] * 100,
                        yerr=acc["se"] * 100 if acc["n"] > 1 else 0, fmt="o", capsize=3)
            ax.annotate(f"{name}\n(outcome error {pct(quality[name]['outcome_error'], 0)}%)",
                        (quality[name]["step_error"] * 100, acc["mean"] * 100), fontsize=7, xytext=(4, 4),
                        textcoords="offset points")
    ax.set_xlabel("step-wise error rate of the training set %")
    ax.set_ylabel("test accuracy % (final answer)")
    ax.set_title("Accuracy vs the training set's step-wise error rate (hard-task sets)", fontsize=10)
    return save_figure(plt, fig, path)


# ---------------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="The paper's supervision study in miniature, on the built-in world.")
    parser.add_argument("--smoke", action="store_true", help="toy sizes: checks the plumbing in about a minute")
    parser.add_argument("--out", help="work directory (default runs/mini_study, or runs/mini_study_smoke)")
    parser.add_argument("--results", help="report path (default experiments/RESULTS.md; with --smoke, OUT/RESULTS.md)")
    parser.add_argument("--seeds", type=int, help=f"seeds per condition (default {FULL.seeds})")
    parser.add_argument("--questions", nargs="+", choices=QUESTION_KEYS, default=QUESTION_KEYS, metavar="Q",
                        help=f"run only these questions' jobs (and what they need): {' '.join(QUESTION_KEYS)} "
                             "(default all); the report shows every question that has results")
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

    def record_invocation(**extra) -> None:
        """The study's wall time is summed over its invocations that did work (a rerun that only rewrites
        the report adds nothing; an interrupted one adds the time it ran)."""
        with open(os.path.join(out, "invocations.jsonl"), "a") as f:
            f.write(json.dumps({"started": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(started)),
                                "minutes": round((time.time() - started) / 60, 2), "questions": args.questions,
                                "code": study.workers.code, **extra}) + "\n")

    try:
        failures = study.run_all(args.questions)
    except KeyboardInterrupt:
        record_invocation(interrupted=True)
        print("mini_study.py: interrupted; rerun the same command to resume", file=sys.stderr, flush=True)
        return 130
    if study.did_work:
        record_invocation()
    default_results = os.path.join(out, "RESULTS.md") if args.smoke else os.path.join(REPO, "experiments", "RESULTS.md")
    results_path = args.results or default_results
    figure = write_figure(study, os.path.join(os.path.dirname(results_path), "mini_study.png"))
    command = " ".join(["python", "experiments/mini_study.py"] + (argv if argv is not None else sys.argv[1:]))
    write_report(study, results_path, figure, command, time.time() - started)
    print(f"wrote {results_path}" + (f" and {figure}" if figure else "")
          + f" in {(time.time() - started) / 60:.1f} min")
    if failures:
        print(f"{len(failures)} job(s) failed: {', '.join(failures)}; rerun the same command to retry them",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
