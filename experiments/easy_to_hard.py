"""Q6 of the miniature: does a verifier trained on easy problems re-rank hard ones? (Sun et al. 2024,
"Easy-to-Hard Generalization: Scalable Alignment Beyond Human Supervision")

Not a script of its own: experiments/mini_study.py calls `add_jobs` to put Q6's jobs in its pool (they
need its data and each seed's policy model) and `report_lines` for its section of RESULTS.md and its
figure. Everything runs through the project's commands, in the study's worker processes:

1. Per seed, the policy is that seed's POLICY model: a model trained at a reduced budget, so that its
   greedy accuracy on the 3-4 step test is well below 100% and pass@K well above maj@K (a policy near
   100% leaves nothing to re-rank). It must also solve easy problems, or the easy verifier data hold
   bad steps only. It solves EASY_TASKS easy problems (1-2 steps: stage 1's
   foundation problems) SAMPLES_EASY times each and, for the upper bound only, HARD_TASKS hard training
   tasks SAMPLES_HARD times each (sample.py, temperature 0.7).
2. `data_prep.py verifier --balance` turns them into step rows with as many good as bad steps (a good
   policy's samples are mostly good steps, and a verifier trained on them says "good" to everything):
   - prm_easy: the world's exact step labels;
   - orm_easy: the solution's outcome at every step (--outcome), scored by its last verdict;
   - oprm_easy: both (--oprm): each sample once with step labels and once with its outcome at every
     step, Sun et al.'s OPRM trained on process and outcome data together; scored like a PRM (min), as
     its step verdicts are trained on exact step labels;
   - prm_all: easy + hard samples with exact labels: the upper bound, a verifier that has seen hard problems.
3. train.py --objective prm --init <policy> trains each verifier (VERIFIER_EPOCHS over its rows, at most
   VERIFIER_MAX_STEPS steps of 16: how many rows balancing keeps depends on the policy's error rate on
   easy problems; data_prep.log says what it kept).
4. The policy draws K samples of each of the first TEST_PROBLEMS problems of the 3-4 step test once
   (sample.py, temperature 0.7), and evaluate.py --samples --verifier scores that one file with every
   verifier: maj@K, pass@K, best-of-K and weighted majority, and the curves over k = 1, 2, 4, ... K.
   A PRM's score is its weakest step (min), an ORM's its last verdict. Greedy comes from the policy
   run's own evaluation of those problems. The 5-6 step test is left out: a policy at 40-70% on 3-4
   steps is near the floor there, and it would double the cost.

Results: OUT/easy_to_hard.jsonl, one row per (verifier, seed), written as each finishes, with each
problem's outcomes (for the test set's term of the intervals) and the verifier's AUCs; the report and
figure are computed from those rows alone. What Q6 costs is in experiments/RESULTS.md ("Notes from the
study scripts").
"""
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from runner import (TrainSettings, decide, mean_and_spread, not_a_script,  # noqa: E402
                    outcomes_difference, outcomes_interval, pyplot, save_figure)
from w2s.data.jsonl import read_jsonl, write_jsonl  # noqa: E402
from w2s.data.rows import problem_from_user_message  # noqa: E402
from w2s.data.selection.verifier_rows import world_step_labels  # noqa: E402
from w2s.data.world import miniworld  # noqa: E402
from w2s.verifier import (AGGREGATIONS, LOGPROB, WORLD, aggregate, auc, rerank_curves,  # noqa: E402
                          split_steps)


@dataclass(frozen=True)
class E2HSizes:
    easy_tasks: int  # easy (1-2 step) problems the policy solves for the verifiers' data
    samples_easy: int
    easy_held: int  # the next easy problems, held out: a verifier that fails on these is undertrained
    hard_tasks: int  # hard training tasks, for the upper bound's data only
    samples_hard: int
    verifier_epochs: int
    verifier_max_steps: int  # a cap on each verifier's training: the balanced sets' size depends on the policy
    lr: float  # fine-tuning the policy into a verifier: below the study's stage-2 3e-3
    k: int  # samples per test problem
    test_problems: int  # the first N problems of the test set


FULL = E2HSizes(easy_tasks=400, samples_easy=8, easy_held=150, hard_tasks=150, samples_hard=4, verifier_epochs=3,
                verifier_max_steps=200, lr=1e-3, k=16, test_problems=250)
SMOKE = E2HSizes(easy_tasks=6, samples_easy=2, easy_held=3, hard_tasks=4, samples_hard=2, verifier_epochs=1,
                 verifier_max_steps=2,
                 lr=1e-3, k=4, test_problems=3)

POLICY = "hard_full+easy_sub_half"  # the Q3 condition: hard full tasks + one sub-task each, at the study's budget
VERIFIERS = {  # name -> (what it is, samples its rows come from, data_prep.py labels flag, aggregation)
    "prm_easy": ("PRM trained on easy problems", "easy", None, "min"),
    "orm_easy": ("ORM trained on easy problems", "easy", "--outcome", "last"),
    "oprm_easy": ("OPRM (step labels + outcome) trained on easy problems", "easy", "--oprm", "min"),
    "prm_all": ("PRM trained on easy + hard problems (upper bound)", "all", None, "min"),
}
BASELINES = {  # name -> (what it is, evaluate.py's --verifier for a policy): scorers that need no training
    "oracle": ("the world's exact step checker (an oracle)", lambda policy: WORLD),
    "logprob": ("the policy's own mean token log-prob (length-normalised)", lambda policy: LOGPROB + policy),
}
KS = (1, 2, 4, 8, 16)  # the best-of-k curve's points
EASY_GATE = 0.85  # a verifier's held-out easy outcome AUC: below it, a poor hard ranking may be undertraining
ERROR_TYPES = ("premature answer / missing step", "wrong operand: a neighbouring step's", "wrong operand: other",
               "wrong operation", "arithmetic", "wrong amount carried", "other (no answer, extra step, answer line)")
BENCH = "miniworld"  # the 3-4 step test (see 4. above for why not the 5-6 step one)
MEASURES = ("maj", "pass", "best_of", "weighted_maj")  # per-problem outcomes at K, kept per (verifier, seed)
EQUIVALENT = 0.02  # "ORM ~ PRM": the difference's 95% interval inside +-2 points


def sizes_for(study) -> E2HSizes:
    """The smoke study (its runs capped at a few steps) gets toy sizes; the full study FULL."""
    return SMOKE if study.sizes.max_steps else FULL


def work_dir(study) -> str:
    return os.path.join(study.out, "easy_to_hard")


def results_path(study) -> str:
    return os.path.join(study.out, "easy_to_hard.jsonl")


# ---------------------------------------------------------------------------------------------
# Jobs


def cost(study) -> float:
    """ETA weight, in the study's unit (examples trained on): samples and scorings counted as examples."""
    e = sizes_for(study)
    per_seed = (e.easy_tasks * e.samples_easy + e.hard_tasks * e.samples_hard + e.test_problems * e.k
                + len(VERIFIERS) * (e.verifier_max_steps * 16 + e.test_problems * e.k * 0.2))
    return study.sizes.seeds * per_seed


def add_jobs(study, jobs, progress) -> None:
    """Q6's jobs in the study's pool: the task files once, then per seed the samples (training and test)
    and one job per verifier (train it, score the seed's test samples with it)."""
    e = sizes_for(study)
    per_seed = cost(study) / study.sizes.seeds
    jobs.add("e2h/data", lambda: write_task_files(study), after=("data",))
    for seed in range(study.sizes.seeds):
        jobs.add(f"e2h/samples/{seed}", lambda seed=seed: make_samples(study, seed, progress, per_seed * 0.4),
                 after=("e2h/data", f"{POLICY}/{seed}"))
        for name in VERIFIERS:
            jobs.add(f"e2h/{name}/{seed}", lambda name=name, seed=seed: train_and_rerank(
                study, name, seed, progress, per_seed * 0.55 / len(VERIFIERS)), after=(f"e2h/samples/{seed}",))
        for name in BASELINES:
            jobs.add(f"e2h/{name}/{seed}", lambda name=name, seed=seed: baseline(
                study, name, seed, progress, per_seed * 0.05 / len(BASELINES)), after=(f"e2h/samples/{seed}",))
    check_sizes(study, e)


def check_sizes(study, e: E2HSizes) -> None:
    """One directory, one set of Q6 sizes (as mini_study.py does for its own)."""
    path = os.path.join(study.out, "easy_to_hard_sizes.json")
    if os.path.exists(path):
        with open(path) as f:
            if json.load(f) != asdict(e):
                raise SystemExit(f"{path}: Q6 ran here with other sizes; use another --out or delete it")
    else:
        with open(path, "w") as f:
            json.dump(asdict(e), f, indent=2)


def _write_jsonl(path: str, rows: list[dict]) -> None:
    """w2s's atomic write_jsonl, into a folder made if missing."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_jsonl(path, rows)


def test_path(study) -> str:
    return os.path.join(work_dir(study), "test", f"{BENCH}.jsonl")


def write_task_files(study) -> None:
    """Easy tasks (the first foundation problems) and the next ones held out, hard tasks, and the test subset,
    as task JSONL files."""
    e, out = sizes_for(study), work_dir(study)
    if os.path.exists(test_path(study)):
        return
    easy = []
    for row in read_jsonl(study.set_path("foundation"))[:e.easy_tasks + e.easy_held]:
        problem = problem_from_user_message(row["messages"][0]["content"])
        easy.append({"id": row["id"], "problem": problem, "answer": str(row["meta"]["answer"]),
                     "steps": len(miniworld.parse_problem(problem).steps)})
    _write_jsonl(os.path.join(out, "tasks", "easy.jsonl"), easy[:e.easy_tasks])
    _write_jsonl(os.path.join(out, "tasks", "easy_held.jsonl"), easy[e.easy_tasks:])
    hard = read_jsonl(os.path.join(study.data_dir, "tasks", "hard_full.jsonl"))[:e.hard_tasks]
    _write_jsonl(os.path.join(out, "tasks", "hard.jsonl"), hard)
    _write_jsonl(test_path(study), read_jsonl(os.path.join(study.data_dir, "test", f"{BENCH}.jsonl"))[:e.test_problems])


def seed_dir(study, seed: int) -> str:
    return os.path.join(work_dir(study), f"seed{seed}")


def policy(study, seed: int) -> str:
    return os.path.join(study.run_dir(POLICY, seed), "final")


def test_samples(study, seed: int) -> str:
    return os.path.join(seed_dir(study, seed), "samples_test.jsonl")


def held_samples(study, seed: int) -> str:
    return os.path.join(seed_dir(study, seed), "samples_easy_held.jsonl")


def make_samples(study, seed: int, progress, job_cost: float) -> None:
    """The policy's samples of easy (and hard) problems, the four balanced step-row sets made from them,
    and its K samples of each test problem, which every verifier of this seed scores."""
    e, directory = sizes_for(study), seed_dir(study, seed)
    sets = {name: os.path.join(directory, f"{name}.jsonl") for name in VERIFIERS}
    if all(os.path.exists(p) for p in (*sets.values(), test_samples(study, seed), held_samples(study, seed))):
        progress.add(job_cost, skipped=True)
        return
    start = time.time()
    progress.log(f"start  Q6 seed {seed}: the policy samples easy, hard and test problems")
    log = os.path.join(directory, "sample.log")
    samples = {}
    for kind, n in (("easy", e.samples_easy), ("easy_held", e.samples_easy), ("hard", e.samples_hard)):
        samples[kind] = study.sample(policy(study, seed), os.path.join(work_dir(study), "tasks", f"{kind}.jsonl"),
                                     os.path.join(directory, f"samples_{kind}.jsonl"), n, 0.7, seed, log)
    both = os.path.join(directory, "samples_all.jsonl")  # easy and hard samples in one file (their ids differ)
    _write_jsonl(both, read_jsonl(samples["easy"]) + read_jsonl(samples["hard"]))
    log = os.path.join(directory, "data_prep.log")
    for name, (_, source, labels, _) in VERIFIERS.items():
        argv = ["verifier", both if source == "all" else samples["easy"], "--out", directory, "--name", name,
                "--balance", "--seed", str(seed)]
        study.run("data_prep", argv + ([labels] if labels else []), log)
    study.sample(policy(study, seed), test_path(study), test_samples(study, seed), e.k, 0.7, seed,
                 os.path.join(directory, "sample_test.log"))
    progress.add(job_cost)
    progress.log(f"done   Q6 seed {seed}: step rows and test samples in {time.time() - start:.0f} s")


def score(study, verifier: str, agg: str, scorer_dir: str, seed: int) -> None:
    """evaluate.py --samples --verifier on the seed's test samples (SCORER_DIR/eval) and held-out easy
    samples (SCORER_DIR/eval_easy); each summary.json marks its scoring done."""
    for out, bench, samples in ((os.path.join(scorer_dir, "eval"), test_path(study), test_samples(study, seed)),
                                (os.path.join(scorer_dir, "eval_easy"), os.path.join(work_dir(study), "tasks",
                                 "easy_held.jsonl"), held_samples(study, seed))):
        if not os.path.exists(os.path.join(out, "summary.json")):
            study.run("evaluate", ["--bench", bench, "--samples", samples, "--out", out, "--batch-size", "256",
                                   "--verifier", verifier, "--verifier-agg", agg, "--quiet"], out + ".log")


def train_and_rerank(study, name: str, seed: int, progress, job_cost: float) -> None:
    """Train one verifier from the policy, score the seed's test and held-out easy samples with it, and
    record the row."""
    e, directory = sizes_for(study), seed_dir(study, seed)
    run_dir = os.path.join(directory, name)
    finished = os.path.exists(os.path.join(run_dir, "eval_easy", "summary.json"))
    start = time.time()
    if not finished:
        progress.log(f"start  Q6 {name} seed {seed}")
        rows = os.path.join(directory, f"{name}.jsonl")
        with open(rows) as f:
            examples = sum(1 for line in f if line.strip())
        # train.py's --max-steps sets the run's length (it does not cap the epochs): the smaller of the two.
        steps = min(e.verifier_max_steps, math.ceil(examples * e.verifier_epochs / 16))
        study.train(rows, run_dir, seed, policy(study, seed), TrainSettings(
            max_steps=steps, epochs=e.verifier_epochs, lr=e.lr, batch_size=16, extra=("--objective", "prm")))
        score(study, os.path.join(run_dir, "final"), VERIFIERS[name][3], run_dir, seed)
    record(study, name, seed, run_dir, time.time() - start)
    progress.add(job_cost, skipped=finished)
    if not finished:
        progress.log(f"done   Q6 {name} seed {seed} in {time.time() - start:.0f} s")


def baseline(study, name: str, seed: int, progress, job_cost: float) -> None:
    """Score the seed's samples with a scorer that needs no training (BASELINES), and record the row."""
    scorer_dir = os.path.join(seed_dir(study, seed), name)
    finished = os.path.exists(os.path.join(scorer_dir, "eval_easy", "summary.json"))
    start = time.time()
    score(study, BASELINES[name][1](policy(study, seed)), "min", scorer_dir, seed)
    record(study, name, seed, scorer_dir, time.time() - start)
    progress.add(job_cost, skipped=finished)


def greedy_outcomes(study, seed: int, ids: list[str]) -> list[int]:
    """The policy's greedy verdict on each test problem (in `ids` order), from its own evaluation's rows."""
    rows = read_jsonl(os.path.join(study.run_dir(POLICY, seed), "eval", f"{BENCH}.jsonl"))
    verdicts = {r["id"]: r["verdict"] for r in rows}
    return [int(verdicts[i]) for i in ids]


# What a verifier's scores show, beside the accuracies: AUCs (overall, within a problem, by step position
# and by error type) and the best-of-k curve for each way of aggregating step scores into one.


def _finite(value: float) -> float | None:
    return None if value != value else value  # nan (one class only, no question to answer): null in JSON


def scorings(name: str, rows: list[dict]) -> dict[str, list[list[float]]]:
    """A solution's score, by how it is made: "own" (what evaluate.py scored it with: the verifier's own
    aggregation, the oracle's verdict, the log-prob baseline's mean) and, for a trained verifier, every
    aggregation of its step scores."""
    found = {"own": [row["scores"] for row in rows]}
    if name in VERIFIERS:
        found.update({how: [[aggregate(steps, how) for steps in row["step_scores"]] for row in rows]
                      for how in AGGREGATIONS})
    return found


def outcome_auc(rows: list[dict], scores: list[list[float]]) -> float | None:
    """Each solution's score against its correctness, over every solution."""
    return _finite(auc([s for row in scores for s in row], [c for row in rows for c in row["correct"]]))


def within_problem_auc(rows: list[dict], scores: list[list[float]]) -> float | None:
    """The same within each problem, averaged over problems with right and wrong solutions: what best-of-k
    depends on (a score that only tells easy problems from hard ones ranks nothing here)."""
    found = [auc(s, row["correct"]) for row, s in zip(rows, scores) if 0 < sum(row["correct"]) < len(s)]
    return sum(found) / len(found) if found else None


def step_position(step: str, index: int) -> str:
    """'step i' for the i-th step line, 'answer' for the answer line, 'other' for any other line."""
    if miniworld.STEP_LINE.match(step):
        return f"step {index}"
    return "answer" if "\\boxed" in step or step.lower().startswith("the answer is") else "other"


def error_type(response: str, task: miniworld.Task, finish_reason: str) -> str:
    """A wrong solution's kind, from its first error by the world's step checker."""
    other = ERROR_TYPES[-1]
    if finish_reason != "stop" or miniworld.final_answer(response) is None:
        return other
    lines = miniworld.parse_lines(response)
    first = next((i for i, wrong in enumerate(miniworld.line_errors(lines, task)) if wrong), None)
    if first is None or first >= len(task.steps):  # right steps but a wrong answer line, or an extra step
        return other
    if first >= len(lines):
        return ERROR_TYPES[0]
    line, step = lines[first], task.steps[first]
    if line.a != (task.start if first == 0 else lines[first - 1].c):
        return "wrong amount carried"
    if line.op != step.op:
        return "wrong operation"
    if line.b == step.operand:
        return "arithmetic"
    neighbours = [s.operand for s in task.steps[max(first - 1, 0):first + 2] if s is not step]
    return ERROR_TYPES[1] if line.b in neighbours else ERROR_TYPES[2]


def step_aucs(rows: list[dict]) -> dict[str, dict[str, float | None]]:
    """Step AUC (each step's score against the world's exact label of that step): over all steps, by
    position, and by error type (every good step against the first bad step of the solutions whose
    first error is of that type)."""
    scores, labels, first_bad = {}, {}, {}
    for row in rows:
        task = miniworld.parse_problem(row["problem"])
        for response, correct, steps_scored, reason in zip(row["responses"], row["correct"], row["step_scores"],
                                                            row["finish_reasons"]):
            steps = split_steps(response)
            index, kind = 0, None if correct else error_type(response, task, reason)
            # a response past the verifier's context has fewer scores than steps
            for step, label, s in zip(steps, world_step_labels(steps, task, correct), steps_scored):
                index += bool(miniworld.STEP_LINE.match(step))
                for where in ("all", step_position(step, index)):
                    scores.setdefault(where, []).append(s)
                    labels.setdefault(where, []).append(label)
                if not label and kind is not None:
                    first_bad.setdefault(kind, []).append(s)
                    kind = None
    good = [s for s, label in zip(scores.get("all", []), labels.get("all", [])) if label]
    return {"position": {w: _finite(auc(scores[w], labels[w])) for w in sorted(scores) if w != "other"},
            "error": {kind: _finite(auc(good + bad, [True] * len(good) + [False] * len(bad)))
                      for kind, bad in sorted(first_bad.items())}}


def verifier_stats(name: str, rows: list[dict], easy_rows: list[dict]) -> dict:
    """Everything the report reads about one verifier on one seed's samples, per scoring."""
    hard, easy = scorings(name, rows), scorings(name, easy_rows)
    ks = [k for k in KS if k <= len(rows[0]["responses"])]
    return {"outcome": {how: outcome_auc(rows, s) for how, s in hard.items()},
            "within": {how: within_problem_auc(rows, s) for how, s in hard.items()},
            "easy_outcome": {how: outcome_auc(easy_rows, s) for how, s in easy.items()},
            "best_of": {how: {str(k): c[f"best_of@{k}"] for k, c in zip(ks, rerank_curves(
                [{**row, "scores": r} for row, r in zip(rows, s)], ks).values())} for how, s in hard.items()},
            **step_aucs(rows)}


def record(study, name: str, seed: int, scorer_dir: str, seconds: float) -> None:
    """Append the (verifier, seed) row to easy_to_hard.jsonl, once: the curves, each problem's outcomes
    at K (greedy, maj, pass, best_of, weighted_maj) and what its scores show (`verifier_stats`)."""
    path = results_path(study)
    with study.lock:
        if os.path.exists(path) and any((r["verifier"], r["seed"]) == (name, seed) for r in read_jsonl(path)):
            return
        with open(os.path.join(scorer_dir, "eval", "summary.json")) as f:
            summary = json.load(f)[BENCH]
        rows = read_jsonl(os.path.join(scorer_dir, "eval", f"{BENCH}.jsonl"))
        easy_rows = read_jsonl(os.path.join(scorer_dir, "eval_easy", "easy_held.jsonl"))
        outcomes = {"greedy": greedy_outcomes(study, seed, [r["id"] for r in rows]),
                    "maj": [int(r["verdict"]) for r in rows], "pass": [int(any(r["correct"])) for r in rows],
                    "best_of": [int(r["best_of"]) for r in rows],
                    "weighted_maj": [int(r["weighted_verdict"]) for r in rows]}
        row = {"verifier": name, "seed": seed, "agg": summary["verifier_agg"], "k": summary["n"],
               "seconds": round(seconds, 1), "bench": BENCH, "problems": len(rows), "curves": summary["curves"],
               "outcomes": outcomes, "stats": verifier_stats(name, rows, easy_rows)}
        with open(path, "a") as f:
            f.write(json.dumps(row) + "\n")


# ---------------------------------------------------------------------------------------------
# The report


def runs(rows: list[dict], verifier: str, measure: str) -> dict[int, list[int]]:
    """seed -> per-problem outcomes of one measure (the policy's own measures from any verifier's row:
    every verifier of a seed scored the same samples)."""
    if measure in ("greedy", "maj", "pass"):
        by_seed = {}
        for r in rows:
            by_seed.setdefault(r["seed"], r["outcomes"][measure])
        return by_seed
    return {r["seed"]: r["outcomes"][measure] for r in rows if r["verifier"] == verifier}


def accuracy(rows: list[dict], verifier: str, measure: str):
    """One measure's mean over seeds, with its 95% interval (seeds and the test set's sampling)."""
    return outcomes_interval(runs(rows, verifier, measure))


def difference(rows: list[dict], a: tuple[str, str], b: tuple[str, str]):
    """(verifier, measure) a minus b, paired by seed and by problem: mean and 95% interval."""
    return outcomes_difference(runs(rows, *a), runs(rows, *b))


def cell(iv) -> str:
    return "not run" if iv is None else f"{iv.mean * 100:.1f} ± {iv.half * 100:.1f}"


def claims(rows: list[dict], k: int) -> list[str]:
    """Sun et al.'s claims as stated, each with its paired interval and decide()'s word."""
    names = sorted({r["verifier"] for r in rows if r["verifier"] in VERIFIERS}, key=list(VERIFIERS).index)
    lines = [f"Claims (paired by seed and by problem, K = {k}; 95% intervals over seeds plus the test set's term; "
             "the verdict word is against the paper's direction):"]

    def line(what, a, b, sign=1, extra=""):
        iv = difference(rows, a, b)
        lines.append(f"- {what}: {iv.text() if iv else 'not measured'}: {decide(iv, sign)}{extra}")
        return iv

    for name in names:
        line(f"weighted maj@{k} vs maj@{k}, {name}", (name, "weighted_maj"), (name, "maj"))
    for name in names:
        line(f"weighted maj@{k} vs best-of-{k}, {name}", (name, "weighted_maj"), (name, "best_of"))
    if {"prm_easy", "orm_easy"} <= set(names):
        for measure, label in (("best_of", f"best-of-{k}"), ("weighted_maj", f"weighted maj@{k}")):
            iv = difference(rows, ("orm_easy", measure), ("prm_easy", measure))
            inside = iv is not None and -EQUIVALENT <= iv.lo and iv.hi <= EQUIVALENT
            lines.append(f"- ORM ≈ PRM ({label}, orm_easy - prm_easy): {iv.text() if iv else 'not measured'}: "
                         f"{'within' if inside else 'not shown within'} ±{EQUIVALENT * 100:.0f} points, so "
                         f"{'reproduced' if inside else 'not reproduced'} as stated; PRM ahead of ORM (Sun et al.'s "
                         f"direction, as a difference): {decide(iv, -1)}")
    if {"prm_easy", "orm_easy", "oprm_easy"} <= set(names):
        for measure, label in (("best_of", f"best-of-{k}"), ("weighted_maj", f"weighted maj@{k}")):
            # The better of the two is picked on these same data: a bar that favours it, not the OPRM.
            better = max(("prm_easy", "orm_easy"), key=lambda n: accuracy(rows, n, measure).mean)
            line(f"OPRM best ({label}): oprm_easy - {better} (the better of PRM and ORM here)",
                 ("oprm_easy", measure), (better, measure))
    return lines


def report_lines(study, figure_dir: str) -> list[str]:
    """Q6's section of RESULTS.md (and its figure, easy_to_hard.png in figure_dir), from easy_to_hard.jsonl."""
    path = results_path(study)
    rows = read_jsonl(path) if os.path.exists(path) else []
    e = sizes_for(study)
    lines = ["", "## Q6. Does a verifier trained on easy problems re-rank hard ones?", "",
             "Sun et al. (2024): a reward model trained only on easy problems still judges solutions to hard ones well "
             "enough that re-ranking many samples beats majority voting, weighted voting beating best-of-N; an ORM "
             "does about as well as a PRM, and the OPRM (trained on process and outcome data) best.", "",
             f"Setup (`experiments/easy_to_hard.py`): the policy is each seed's `{POLICY}` model. It solves "
             f"{e.easy_tasks} easy (1-2 step) problems {e.samples_easy} times each at temperature 0.7; the world's "
             "step checker labels every step of those samples (PRM), every step gets its solution's outcome (ORM), or "
             "both rows are kept (OPRM); each set is balanced to as many good as bad steps by dropping whole "
             f"solutions at random. Each verifier is the policy fine-tuned ({e.verifier_epochs} epochs, lr {e.lr:g}) "
             f"to write `+`/`-` after each step. The upper bound adds {e.hard_tasks} hard training tasks x "
             f"{e.samples_hard} samples to the PRM's data. Test: the first {e.test_problems} problems of "
             f"`{BENCH}` (3-4 steps), {e.k} samples each drawn once (temperature 0.7) and scored by every verifier; "
             "a PRM or OPRM scores a solution by its weakest step (min), an ORM by its last verdict. Greedy: the "
             "policy's own greedy evaluation of those problems. Beside the verifiers, two scorers that need no "
             "training: the world's exact step checker (an oracle: what a perfect verifier gets from the same "
             "samples) and the policy's own mean token log-prob (`evaluate.py --verifier logprob:DIR`, the baseline "
             f"a trained verifier should beat). Every scorer also scores the policy's samples of the next "
             f"{e.easy_held} easy problems (held out): a verifier that does not rank those is undertrained. "
             "Cells: mean ± the 95% interval's half-width.", ""]
    if not rows:
        return lines + ["(not run yet)"]
    k = max(r["k"] for r in rows)
    names = sorted({r["verifier"] for r in rows if r["verifier"] in VERIFIERS}, key=list(VERIFIERS).index)
    seeds = sorted({r["seed"] for r in rows})
    lines.append(f"Seeds: {', '.join(map(str, seeds))}. Raw rows: `{os.path.relpath(path, study.out)}` in the study's "
                 "work directory.")
    greedy, maj, passk = (accuracy(rows, None, m) for m in ("greedy", "maj", "pass"))
    fit = 0.40 <= greedy.mean <= 0.70 and passk.mean - maj.mean >= 0.10
    lines += ["", f"The policy: greedy {cell(greedy)}, maj@{k} {cell(maj)}, pass@{k} {cell(passk)}: "
                  f"{'meets' if fit else 'misses'} the aim of 40-70% greedy with pass@{k} at least 10 points "
                  f"above maj@{k}."]
    columns = [("greedy", None, "greedy"), (f"maj@{k}", None, "maj"), (f"pass@{k}", None, "pass")]
    columns += [(f"best-of-{k} {n}", n, "best_of") for n in names + [b for b in BASELINES if runs(rows, b, "best_of")]]
    columns += [(f"weighted maj@{k} {n}", n, "weighted_maj") for n in names]
    lines += ["", "| test set | " + " | ".join(c[0] for c in columns) + " |", "|---|" + "---:|" * len(columns),
              f"| `{BENCH}` | " + " | ".join(cell(accuracy(rows, n, m)) for _, n, m in columns) + " |", ""]
    lines += instrument_lines(rows, names)
    lines += ["", *claims(rows, k), ""]
    figure = write_figure(rows, names, os.path.join(figure_dir, "easy_to_hard.png"))
    if figure:
        lines += [f"![easy to hard]({os.path.basename(figure)})", ""]
    return lines


def mean_stat(rows: list[dict], name: str, *keys: str) -> float | None:
    """A verifier's stat (verifier_stats' keys, e.g. "outcome", "min") averaged over its seeds."""
    values = []
    for r in rows:
        if r["verifier"] == name:
            value = r["stats"]
            for key in keys:
                value = value.get(key) if isinstance(value, dict) else None
            if value is not None:
                values.append(value)
    return sum(values) / len(values) if values else None


def fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def instrument_lines(rows: list[dict], names: list[str]) -> list[str]:
    """Is the instrument working? The sanity gates (a verifier must rank held-out easy solutions; the oracle's
    best-of-k must not fall), AUCs per aggregation beside the baselines, the best-of-k curve, and the step
    AUC by position and by error type. Means over seeds."""
    scorers = names + [n for n in BASELINES if any(r["verifier"] == n for r in rows)]
    what = {**{n: VERIFIERS[n][0] for n in VERIFIERS}, **{n: BASELINES[n][0] for n in BASELINES}}
    lines = ["", f"**Sanity gates.** A verifier whose outcome AUC on held-out easy solutions (its own aggregation) "
             f"is under {EASY_GATE} is undertrained, and its hard ranking says nothing about easy-to-hard transfer:"]
    for name in names:
        easy = mean_stat(rows, name, "easy_outcome", "own")
        lines.append(f"- {name}: {fmt(easy)}: {'passes' if easy is not None and easy >= EASY_GATE else 'FAILS'}")
    if "prm_all" in names:
        hard = mean_stat(rows, "prm_all", "outcome", "own")
        ranks = hard is not None and hard >= EASY_GATE
        lines.append(f"- the upper bound prm_all, which also saw hard samples, ranks hard test solutions (outcome AUC "
                     f"{fmt(hard)}, at least {EASY_GATE}): " + ("passes" if ranks else "FAILS: the verifier recipe, "
                                                                 "not easy-to-hard transfer, limits what Q6 can show"))
    if "oracle" in scorers:
        curve = [mean_stat(rows, "oracle", "best_of", "own", str(k)) for k in KS]
        curve = [c for c in curve if c is not None]
        ok = bool(curve) and min(curve) >= curve[0]
        lines.append(f"- the oracle's best-of-k never falls below k = 1 ({' / '.join(fmt(c * 100, 1) for c in curve)}"
                     f" at k = {', '.join(map(str, KS[:len(curve)]))}): {'passes' if ok else 'FAILS'}")
    lines += ["", "Outcome AUC (each solution's score against its correctness; 0.5 ranks nothing) on held-out easy "
              "and on hard test solutions, and within a hard problem (averaged over problems with right and wrong "
              "solutions: what best-of-k depends on); step AUC against the world's exact step labels. A trained "
              "verifier's own aggregation first, then the others of its step scores:", "",
              "| scorer | easy held-out | hard | hard, within problem | hard: min / mean / prod / last "
              "| step AUC, hard |",
              "|---|---:|---:|---:|---:|---:|"]
    for name in scorers:
        others = " / ".join(fmt(mean_stat(rows, name, "outcome", how)) for how in ("min", "mean", "prod", "last")) \
            if name in VERIFIERS else ""
        own = [fmt(mean_stat(rows, name, key, "own")) for key in ("easy_outcome", "outcome", "within")]
        lines.append(f"| {name} ({what[name]}) | {' | '.join(own)} | {others} | "
                     f"{fmt(mean_stat(rows, name, 'position', 'all'))} |")
    ks = [k for k in KS if any(str(k) in r["curves"] for r in rows)]
    lines += ["", "Best-of-k on the hard test (%, the first k of each problem's samples; mean over seeds):", "",
              "| scorer | " + " | ".join(f"k={k}" for k in ks) + " |", "|---|" + "---:|" * len(ks)]
    for measure in ("maj", "pass"):
        values = [[r["curves"][str(k)][f"{measure}@{k}"] for r in rows if r["verifier"] == scorers[0]] for k in ks]
        lines.append(f"| {measure}@k | " + " | ".join(fmt(sum(v) / len(v) * 100, 1) for v in values) + " |")
    for name in scorers:
        lines.append(f"| {name} | " + " | ".join(fmt(None if (m := mean_stat(rows, name, "best_of", "own", str(k)))
                                                         is None else m * 100, 1) for k in ks) + " |")
    positions = sorted({p for r in rows if r["verifier"] in names for p in r["stats"]["position"] if p != "all"})
    errors = [t for t in ERROR_TYPES if any(t in r["stats"]["error"] for r in rows if r["verifier"] in names)]
    lines += ["", "Step AUC on hard solutions, by the step's position and by error type (every good step against "
              "the first wrong step of the solutions whose first error is of that type):", "",
              "| verifier | " + " | ".join(positions + errors) + " |", "|---|" + "---:|" * len(positions + errors)]
    for name in names:
        lines.append(f"| {name} | " + " | ".join([fmt(mean_stat(rows, name, "position", p)) for p in positions] +
                                                 [fmt(mean_stat(rows, name, "error", t)) for t in errors]) + " |")
    return lines


def write_figure(rows: list[dict], names: list[str], path: str) -> str | None:
    """Accuracy over the first k samples (k = 1, 2, 4, ... K): maj and pass, and each verifier's
    best-of-k (solid) and weighted maj@k (dashed); mean ± SE over seeds."""
    plt = pyplot()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = dict(zip(VERIFIERS, ("tab:blue", "tab:orange", "tab:red", "tab:green")))
    curves = [("maj", None, "maj@k", "black", "-"), ("pass", None, "pass@k", "gray", ":")]
    curves += [(m, n, f"{label}, {n}", colors[n], style) for n in names
               for m, label, style in (("best_of", "best-of-k", "-"), ("weighted_maj", "weighted maj@k", "--"))]
    for measure, name, label, color, style in curves:
        chosen = [r for r in rows if r["verifier"] == (name or names[0])]  # maj, pass: any verifier's row
        ks = sorted(chosen[0]["curves"], key=int)
        stats = [mean_and_spread([r["curves"][kk][f"{measure}@{kk}"] for r in chosen]) for kk in ks]
        ax.errorbar([int(kk) for kk in ks], [s["mean"] * 100 for s in stats],
                    yerr=[s["se"] * 100 if s["n"] > 1 else 0 for s in stats],
                    label=label, color=color, linestyle=style, capsize=2)
    greedy = accuracy(rows, None, "greedy")
    ax.axhline(greedy.mean * 100, color="gray", linewidth=1, label="greedy")
    ax.set_xscale("log", base=2)
    ax.set(xlabel="samples per problem (k)", ylabel="test accuracy %", title=f"{BENCH}: re-ranking k samples")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return save_figure(plt, fig, path)


if __name__ == "__main__":
    not_a_script(__doc__, __file__)
