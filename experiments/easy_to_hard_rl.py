"""Q7 of the miniature: does RL from a verifier trained on easy problems teach a policy hard ones? (Sun et al.
2024, "Easy-to-Hard Generalization": a policy SFT-trained on easy problems, rewarded by a reward model trained
on easy problems, beats the SFT policy and reaches one SFT-trained on all levels.)

Not a script of its own: experiments/mini_study.py calls `add_jobs` to put Q7's jobs in its pool and
`report_lines` for its section of RESULTS.md and its figure. Per seed, with the project's commands:

1. The easy-only policy is the seed's stage-1 model (the study's SFT on 1-2 step problems); the all-levels
   baseline is the seed's `hard_full` run (stage 1, then 3-4 step problems with gold solutions).
2. The verifier sees easy problems only: the easy policy solves EASY_TASKS foundation problems (sample.py),
   `data_prep.py verifier --balance` labels every step with the world's exact checker, and
   `train.py --objective prm --init <easy policy>` trains the PRM (Q6's prm_easy recipe, from this policy:
   Q6's verifier starts from a model that saw hard solutions).
3. RL starts from the easy policy (CONDITIONS): GRPO (`train.py --objective grpo`) on hard training tasks with
   the PRM's weakest-step reward, the world's exact step checker (an oracle: does the RL machinery work?) or
   the gold answer (an upper bound), or on easy tasks with their gold answer; and ReST-EM (Singh et al. 2023):
   `rest_em`, a recipe over sample.py, evaluate.py --verifier and train.py. A control checks the machinery:
   GRPO with the oracle reward from the study's weak teacher, which (unlike the easy policy) writes some right
   hard solutions for the reward to reinforce. A verifier reward never reads a
   hard task's answer: only the run's accuracy metric does, which shows whether the policy games the
   verifier (its reward rising while its accuracy falls, in metrics.jsonl).
4. Every model: greedy on the first TEST_PROBLEMS of the 3-4 step test (evaluate.py), K samples of each
   (sample.py, temperature 0.7), scored by the PRM (evaluate.py --samples --verifier): maj@K, pass@K and the
   PRM's outcome AUC on that policy's own solutions.

Results: OUT/easy_to_hard_rl.jsonl, one row per (condition, seed) with each problem's outcomes; the report
and figure are computed from those rows alone. What Q7 costs is in experiments/RESULTS.md.
"""
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from runner import (TrainSettings, decide, mean_and_spread, not_a_script, outcomes_difference,  # noqa: E402
                    outcomes_interval, pyplot, save_figure)
from w2s.data.jsonl import read_jsonl, write_jsonl  # noqa: E402
from w2s.data.rows import problem_from_user_message  # noqa: E402
from w2s.grpo import world_rewards  # noqa: E402
from w2s.verifier import WORLD, auc  # noqa: E402


@dataclass(frozen=True)
class RLSizes:
    easy_tasks: int  # easy (1-2 step) problems the easy policy solves for the verifier's data
    samples_easy: int
    verifier_epochs: int
    verifier_max_steps: int  # of 16 rows; balancing decides how many rows there are
    verifier_lr: float
    rl_tasks: int  # hard (and easy) training tasks RL draws its prompts from
    grpo_steps: int
    control_steps: int  # the machinery check's GRPO steps: a sparse 0/1 reward moves a greedy policy slowly
    prompts_per_step: int
    group_size: int
    lr: float  # GRPO's; Adam moves every weight by about lr per step, so well below SFT's
    kl_coef: float
    rest_rounds: int
    rest_tasks: int  # hard tasks ReST-EM samples each round
    rest_samples: int  # per task and round
    rest_max_steps: int  # SFT steps per round, at most (2 epochs over what the reward kept)
    k: int  # samples per test problem
    test_problems: int


FULL = RLSizes(easy_tasks=400, samples_easy=8, verifier_epochs=3, verifier_max_steps=200, verifier_lr=1e-3,
               rl_tasks=2000, grpo_steps=40, control_steps=120, prompts_per_step=16, group_size=8, lr=2e-4,
               kl_coef=0.04,
               rest_rounds=2, rest_tasks=400, rest_samples=8, rest_max_steps=60, k=16, test_problems=200)
SMOKE = RLSizes(easy_tasks=6, samples_easy=2, verifier_epochs=1, verifier_max_steps=2, verifier_lr=1e-3,
                rl_tasks=6, grpo_steps=2, control_steps=2, prompts_per_step=2, group_size=2, lr=3e-4, kl_coef=0.04,
                rest_rounds=1, rest_tasks=3, rest_samples=2, rest_max_steps=2, k=4, test_problems=3)

EASY_POLICY, ALL_LEVELS = "stage1", "hard_full"  # the study's runs these conditions are
# The study's weak teacher (mini_study.TEACHER_RUN: stage 1 plus a little hard gold data): a start that already
# writes some right hard solutions, for the machinery check. The easy policy writes none (see the report).
WARM_START = "weak_teacher"
ROLLOUT_TEMPERATURE = 0.7  # GRPO's rollouts and ReST-EM's samples: the study's sampling temperature
ACCEPT = 0.5  # ReST-EM keeps a sample whose reward (a verifier's P(good), or 0/1) is at least this
BENCH = "miniworld"  # the 3-4 step test
CONDITIONS = {  # name -> (what it is, how: ("study", run) or (method, tasks, reward, start run))
    "sft_easy": ("SFT on easy problems only (the study's stage 1)", ("study", EASY_POLICY)),
    "sft_all": ("SFT on all levels (stage 1, then hard gold solutions: the baseline to beat)", ("study", ALL_LEVELS)),
    "grpo_prm": ("GRPO on hard problems, reward: the easy-trained PRM", ("grpo", "hard", "prm", EASY_POLICY)),
    "grpo_easy_answer": ("GRPO on easy problems, reward: their gold final answer",
                         ("grpo", "easy_rl", "answer", EASY_POLICY)),
    "rest_prm": ("ReST-EM on hard problems, reward: the easy-trained PRM", ("rest", "hard_rest", "prm", EASY_POLICY)),
    "grpo_world": ("GRPO on hard problems, reward: the world's exact step checker (oracle)",
                   ("grpo", "hard", "world", EASY_POLICY)),
    "grpo_gold": ("GRPO on hard problems, reward: the gold final answer (upper bound)",
                  ("grpo", "hard", "answer", EASY_POLICY)),
    "weak_start": ("the weak teacher: stage 1 plus a little hard gold data (the control's start)",
                   ("study", WARM_START)),
    "weak_grpo_world": ("GRPO with the oracle reward from the weak teacher (machinery check)",
                        ("grpo", "hard", "world", WARM_START)),
}
GAMING_MARGIN = 0.02  # "rising": the last quarter's mean above the first quarter's by this much


def sizes_for(study) -> RLSizes:
    return SMOKE if study.sizes.max_steps else FULL


def work_dir(study) -> str:
    return os.path.join(study.out, "easy_to_hard_rl")


def results_path(study) -> str:
    return os.path.join(study.out, "easy_to_hard_rl.jsonl")


def task_path(study, name: str) -> str:
    """easy / easy_rl / hard / hard_rest tasks, or the test subset (name BENCH: evaluate.py's rows are BENCH.jsonl)."""
    return os.path.join(work_dir(study), "tasks", f"{name}.jsonl")


def seed_dir(study, seed: int) -> str:
    return os.path.join(work_dir(study), f"seed{seed}")


def verifier_path(study, seed: int) -> str:
    return os.path.join(seed_dir(study, seed), "prm_easy", "final")


def easy_policy(study, seed: int) -> str:
    return os.path.join(study.run_dir(EASY_POLICY, seed), "final")


# ---------------------------------------------------------------------------------------------
# Jobs


def cost(study) -> float:
    """ETA weight in the study's unit (examples trained on): a rollout or a sample counted as half of one."""
    e = sizes_for(study)
    grpo_steps = sum(e.control_steps if how[3] == WARM_START else e.grpo_steps
                     for _, how in CONDITIONS.values() if how[0] == "grpo")
    grpo = grpo_steps * e.prompts_per_step * e.group_size * 0.5
    rest = e.rest_rounds * (e.rest_tasks * e.rest_samples * 0.5 + e.rest_max_steps * 32)
    per_seed = (e.easy_tasks * e.samples_easy * 0.5 + e.verifier_max_steps * 16 + grpo + rest
                + len(CONDITIONS) * e.test_problems * e.k * 0.5)
    return study.sizes.seeds * per_seed


def add_jobs(study, jobs, progress) -> None:
    """Q7's jobs: the task files once; per seed the verifier, then one job per condition (train it if it is
    RL, evaluate it, record the row)."""
    check_sizes(study, sizes_for(study))
    per_condition = cost(study) / study.sizes.seeds / (len(CONDITIONS) + 1)
    jobs.add("q7/data", lambda: write_task_files(study), after=("data",))
    for seed in range(study.sizes.seeds):
        jobs.add(f"q7/verifier/{seed}", lambda seed=seed: train_verifier(study, seed, progress, per_condition),
                 after=("q7/data", f"{EASY_POLICY}/{seed}"))
        for name, (_, how) in CONDITIONS.items():
            start = how[1] if how[0] == "study" else how[3]
            after = (f"q7/verifier/{seed}",) + ((f"{start}/{seed}",) if start != EASY_POLICY else ())
            jobs.add(f"q7/{name}/{seed}", lambda name=name, seed=seed: run_condition(
                study, name, seed, progress, per_condition), after=after)


def check_sizes(study, e: RLSizes) -> None:
    """One directory, one set of Q7 sizes."""
    path = os.path.join(study.out, "easy_to_hard_rl_sizes.json")
    if os.path.exists(path):
        with open(path) as f:
            if json.load(f) != asdict(e):
                raise SystemExit(f"{path}: Q7 ran here with other sizes; use another --out or delete it")
    else:
        os.makedirs(study.out, exist_ok=True)
        with open(path, "w") as f:
            json.dump(asdict(e), f, indent=2)


def _write_jsonl(path: str, rows: list[dict]) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_jsonl(path, rows)


def write_task_files(study) -> None:
    """Easy tasks for the verifier's data and the next ones for easy-answer RL (foundation problems), hard
    training tasks for GRPO and the first of them for ReST-EM, and the test subset."""
    e = sizes_for(study)
    if os.path.exists(task_path(study, BENCH)):
        return
    easy = [{"id": row["id"], "problem": problem_from_user_message(row["messages"][0]["content"]),
             "answer": str(row["meta"]["answer"])}
            for row in read_jsonl(study.set_path("foundation"))[:e.easy_tasks + e.rl_tasks]]
    _write_jsonl(task_path(study, "easy"), easy[:e.easy_tasks])
    _write_jsonl(task_path(study, "easy_rl"), easy[e.easy_tasks:])
    hard = read_jsonl(os.path.join(study.data_dir, "tasks", "hard_full.jsonl"))
    _write_jsonl(task_path(study, "hard"), hard[:e.rl_tasks])
    _write_jsonl(task_path(study, "hard_rest"), hard[:e.rest_tasks])  # ReST-EM samples every task each round
    _write_jsonl(task_path(study, BENCH),
                 read_jsonl(os.path.join(study.data_dir, "test", f"{BENCH}.jsonl"))[:e.test_problems])


def train_verifier(study, seed: int, progress, job_cost: float) -> None:
    """The PRM from easy problems only: the easy policy's samples, exact step labels, balanced, trained from it."""
    e, directory = sizes_for(study), seed_dir(study, seed)
    if os.path.exists(os.path.join(verifier_path(study, seed), "config.json")):
        progress.add(job_cost, skipped=True)
        return
    start = time.time()
    progress.log(f"start  Q7 seed {seed}: the easy-only PRM")
    samples = study.sample(easy_policy(study, seed), task_path(study, "easy"),
                           os.path.join(directory, "samples_easy.jsonl"), e.samples_easy, 0.7, seed,
                           os.path.join(directory, "sample.log"))
    study.run("data_prep", ["verifier", samples, "--out", directory, "--name", "prm_easy", "--balance",
                            "--seed", str(seed)], os.path.join(directory, "data_prep.log"))
    rows = os.path.join(directory, "prm_easy.jsonl")
    steps = max(1, min(e.verifier_max_steps, math.ceil(len(read_jsonl(rows)) * e.verifier_epochs / 16)))
    study.train(rows, os.path.dirname(verifier_path(study, seed)), seed, easy_policy(study, seed), TrainSettings(
        max_steps=steps, epochs=e.verifier_epochs, lr=e.verifier_lr, batch_size=16, extra=("--objective", "prm")))
    progress.add(job_cost)
    progress.log(f"done   Q7 seed {seed}: the easy-only PRM in {time.time() - start:.0f} s")


def reward_flags(study, seed: int, reward: str) -> list[str]:
    return ["--reward", reward] + (["--reward-model", verifier_path(study, seed)] if reward == "prm" else [])


def train_grpo(study, seed: int, run_dir: str, tasks: str, reward: str, start: str) -> str:
    """train.py --objective grpo from the seed's `start` run (the machinery check's for control_steps);
    returns the final model's folder."""
    e = sizes_for(study)
    steps = e.control_steps if start == WARM_START else e.grpo_steps
    epochs = max(1, math.ceil(steps * e.prompts_per_step / e.rl_tasks))
    extra = ("--objective", "grpo", *reward_flags(study, seed, reward), "--group-size", str(e.group_size),
             "--kl-coef", str(e.kl_coef), "--rollout-temperature", str(ROLLOUT_TEMPERATURE),
             "--rollout-max-new-tokens", str(study.sizes.max_new_tokens))
    init = os.path.join(study.run_dir(start, seed), "final")
    return study.train(task_path(study, tasks), run_dir, seed, init, TrainSettings(
        max_steps=steps, epochs=epochs, lr=e.lr, batch_size=e.prompts_per_step, extra=extra))


# ---------------------------------------------------------------------------------------------
# ReST-EM: sample, keep what the reward accepts, fine-tune, repeat


def accepted(rows: list[dict], scores: list[list[float]] | None) -> list[dict]:
    """Samples rows cut to the samples the reward accepts (score >= ACCEPT, or the grader's verdict when
    `scores` is None) that stopped on their own; tasks left with none are dropped."""
    kept = []
    for row, row_scores in zip(rows, scores or [None] * len(rows)):
        keep = [i for i, reason in enumerate(row["finish_reasons"]) if reason == "stop" and
                (row["correct"][i] if row_scores is None else row_scores[i] >= ACCEPT)]
        if keep:
            kept.append({**row, **{key: [row[key][i] for i in keep] for key in ("samples", "finish_reasons",
                                                                                 "correct")}})
    return kept


def rest_em(study, seed: int, run_dir: str, tasks: str, reward: str) -> str:
    """ReST-EM (Singh et al. 2023) over the project's commands: each round the current model samples
    rest_samples solutions of each task, the reward scores them (evaluate.py --samples --verifier; the
    grader for the answer reward), and the base model (as Singh et al.: every round restarts from it, which
    overfits less) is fine-tuned on the accepted ones. Returns the last round's model."""
    e, base = sizes_for(study), easy_policy(study, seed)
    model = base
    for round_ in range(e.rest_rounds):
        directory = os.path.join(run_dir, f"round{round_}")
        if os.path.exists(os.path.join(directory, "final", "config.json")):
            model = os.path.join(directory, "final")
            continue
        samples = study.sample(model, task_path(study, tasks), os.path.join(directory, "samples.jsonl"),
                               e.rest_samples, ROLLOUT_TEMPERATURE, seed, os.path.join(directory, "sample.log"))
        scores = None
        if reward != "answer":
            scored = os.path.join(directory, "scored")
            study.run("evaluate", ["--bench", task_path(study, tasks), "--samples", samples, "--out", scored,
                                   "--batch-size", "256", "--verifier", WORLD if reward == "world" else
                                   verifier_path(study, seed), "--verifier-agg", "min", "--quiet"],
                      scored + ".log")
            scores = [r["scores"] for r in read_jsonl(os.path.join(scored, f"{tasks}.jsonl"))]
        rows = read_jsonl(samples)
        kept = accepted(rows, scores)
        write_round_stats(directory, rows, kept)
        if not kept:  # the reward accepted nothing: this round's model is the last one
            continue
        _write_jsonl(os.path.join(directory, "kept.jsonl"), kept)
        study.run("data_prep", ["from-samples", os.path.join(directory, "kept.jsonl"), "--out", directory, "--name",
                                "rest", "--tokenizer", os.path.join(base, "tokenizer.json")],
                  os.path.join(directory, "data_prep.log"))
        examples = sum(len(r["samples"]) for r in kept)
        steps = max(1, min(e.rest_max_steps, math.ceil(2 * examples / study.sizes.batch_size)))
        model = study.train(os.path.join(directory, "rest.jsonl"), directory, seed, base,
                            TrainSettings(max_steps=steps, epochs=2))
    return model


def write_round_stats(directory: str, rows: list[dict], kept: list[dict]) -> None:
    """One ReST-EM round in metrics.jsonl's terms: reward (the share of samples accepted) and accuracy (the
    grader's share right of all samples), and how right the accepted ones are."""
    total = sum(len(r["samples"]) for r in rows)
    right = sum(sum(r["correct"]) for r in rows)
    kept_total = sum(len(r["samples"]) for r in kept)
    stats = {"reward": kept_total / total, "accuracy": right / total, "kept": kept_total,
             "kept_right": sum(sum(r["correct"]) for r in kept) / kept_total if kept_total else None}
    with open(os.path.join(directory, "round.json"), "w") as f:
        json.dump(stats, f)


# ---------------------------------------------------------------------------------------------
# Evaluating a model, and the row


def run_condition(study, name: str, seed: int, progress, job_cost: float) -> None:
    """Make the condition's model (train it, for RL), evaluate it on the test subset, record the row."""
    path = results_path(study)
    if os.path.exists(path) and any((r["condition"], r["seed"]) == (name, seed) for r in read_jsonl(path)):
        progress.add(job_cost, skipped=True)
        return
    start, how, run_dir = time.time(), CONDITIONS[name][1], os.path.join(seed_dir(study, seed), name)
    progress.log(f"start  Q7 {name} seed {seed}")
    if how[0] == "study":
        model = os.path.join(study.run_dir(how[1], seed), "final")
    elif how[0] == "grpo":
        model = train_grpo(study, seed, run_dir, *how[1:])
    else:
        model = rest_em(study, seed, run_dir, how[1], how[2])  # from the easy policy
    evaluate_model(study, model, run_dir, seed)
    record(study, name, seed, run_dir, time.time() - start)
    progress.add(job_cost)
    progress.log(f"done   Q7 {name} seed {seed} in {time.time() - start:.0f} s")


def evaluate_model(study, model: str, run_dir: str, seed: int) -> None:
    """Greedy on the test subset (run_dir/greedy), K samples of each problem, and those scored by the PRM
    (run_dir/eval: maj@K, pass@K, each sample's score); each summary.json marks its part done."""
    e, test = sizes_for(study), task_path(study, BENCH)
    greedy = os.path.join(run_dir, "greedy")
    if not os.path.exists(os.path.join(greedy, "summary.json")):
        study.run("evaluate", ["--model", model, "--bench", test, "--out", greedy, "--batch-size", "256",
                               "--max-new-tokens", str(study.sizes.max_new_tokens), "--quiet"], greedy + ".log")
    scored = os.path.join(run_dir, "eval")
    if not os.path.exists(os.path.join(scored, "summary.json")):
        samples = study.sample(model, test, os.path.join(run_dir, "samples_test.jsonl"), e.k, 0.7, seed,
                               os.path.join(run_dir, "sample_test.log"))
        study.run("evaluate", ["--bench", test, "--samples", samples, "--out", scored, "--batch-size", "256",
                               "--verifier", verifier_path(study, seed), "--verifier-agg", "min", "--quiet"],
                  scored + ".log")


def training_curve(run_dir: str) -> dict[str, list[float]] | None:
    """reward and accuracy per step (GRPO's metrics.jsonl) or per round (ReST-EM's round.json); None for
    a model the study trained."""
    if os.path.exists(os.path.join(run_dir, "metrics.jsonl")):
        rows = read_jsonl(os.path.join(run_dir, "metrics.jsonl"))
        return {"reward": [r["reward"] for r in rows], "accuracy": [r["accuracy"] for r in rows]}
    rounds = sorted(d for d in os.listdir(run_dir) if d.startswith("round")) if os.path.isdir(run_dir) else []
    if not rounds:
        return None
    stats = []
    for d in rounds:
        with open(os.path.join(run_dir, d, "round.json")) as f:
            stats.append(json.load(f))
    return {"reward": [s["reward"] for s in stats], "accuracy": [s["accuracy"] for s in stats]}


def record(study, name: str, seed: int, run_dir: str, seconds: float) -> None:
    """Append the (condition, seed) row, once: per-problem outcomes (greedy, maj, pass; greedy and pass with
    every step right by the world's checker), the PRM's outcome
    AUC on the policy's test samples, and the training curve."""
    path = results_path(study)
    greedy = read_jsonl(os.path.join(run_dir, "greedy", f"{BENCH}.jsonl"))
    rows = read_jsonl(os.path.join(run_dir, "eval", f"{BENCH}.jsonl"))
    scores = [s for r in rows for s in r["scores"]]
    prm_auc = auc(scores, [c for r in rows for c in r["correct"]])
    row = {"condition": name, "seed": seed, "k": len(rows[0]["responses"]), "problems": len(rows),
           "seconds": round(seconds, 1),
           "outcomes": {"greedy": [int(r["verdict"]) for r in greedy], "maj": [int(r["verdict"]) for r in rows],
                        "pass": [int(any(r["correct"])) for r in rows],
                        # the world's exact checker: a right answer reached through a skipped or wrong step is luck
                        "greedy_exact": [int(world_rewards(r["problem"], r["responses"])[0]) for r in greedy],
                        "pass_exact": [int(any(world_rewards(r["problem"], r["responses"]))) for r in rows]},
           "prm_auc": None if prm_auc != prm_auc else prm_auc, "curve": training_curve(run_dir)}
    with study.lock:
        if os.path.exists(path) and any((r["condition"], r["seed"]) == (name, seed) for r in read_jsonl(path)):
            return
        with open(path, "a") as f:
            f.write(json.dumps(row) + "\n")


# ---------------------------------------------------------------------------------------------
# The report


def trend(values: list[float]) -> float | None:
    """The last quarter's mean minus the first quarter's (at least one value each); None under two values."""
    if len(values) < 2:
        return None
    n = max(1, len(values) // 4)
    return sum(values[-n:]) / n - sum(values[:n]) / n


def gamed(curve: dict | None) -> bool | None:
    """Did the policy game its reward: the reward rising (by GAMING_MARGIN) while the accuracy falls (at all: a
    policy that starts near 0% cannot fall by much)?"""
    if not curve:
        return None
    reward, accuracy = trend(curve["reward"]), trend(curve["accuracy"])
    if reward is None or accuracy is None:
        return None
    return reward > GAMING_MARGIN and accuracy < 0


def runs(rows: list[dict], condition: str, measure: str) -> dict[int, list[int]]:
    return {r["seed"]: r["outcomes"][measure] for r in rows if r["condition"] == condition}


def cell(iv) -> str:
    return "not run" if iv is None else f"{iv.mean * 100:.1f} ± {iv.half * 100:.1f}"


def mean_of(values: list) -> str:
    values = [v for v in values if v is not None]
    return f"{sum(values) / len(values):+.3f}" if values else "n/a"


def table_lines(rows: list[dict], k: int) -> list[str]:
    """One line per condition: greedy, maj@K, pass@K (95% intervals), the PRM's AUC on its test samples,
    the training curve's trends and how many seeds gamed the reward."""
    lines = [f"| condition | greedy | greedy, every step right | maj@{k} | pass@{k} | pass@{k}, every step right "
             "| PRM outcome AUC on its samples | reward trend | accuracy trend | seeds gaming the reward |",
             "|---|" + "---:|" * 9]
    for name, (what, _) in CONDITIONS.items():
        mine = [r for r in rows if r["condition"] == name]
        if not mine:
            lines.append(f"| {what} (`{name}`) | not run |" + " |" * 8)
            continue
        cells = [cell(outcomes_interval(runs(rows, name, m))) for m in ("greedy", "greedy_exact", "maj", "pass",
                                                                      "pass_exact")]
        aucs = [r["prm_auc"] for r in mine if r["prm_auc"] is not None]
        cells.append(f"{sum(aucs) / len(aucs):.3f}" if aucs else "n/a")
        curves = [r["curve"] for r in mine if r["curve"]]
        if curves:
            flags = [f for f in map(gamed, curves) if f is not None]  # None: too short a curve to tell
            cells += [mean_of([trend(c["reward"]) for c in curves]), mean_of([trend(c["accuracy"]) for c in curves]),
                      f"{sum(flags)} of {len(flags)}" if flags else "n/a"]
        else:
            cells += ["", "", ""]
        lines.append(f"| {what} (`{name}`) | " + " | ".join(cells) + " |")
    return lines


def claims(rows: list[dict]) -> list[str]:
    """The seed's claims (and the machinery's checks), each a paired difference of greedy accuracy with its
    interval and decide()'s word against the seed's direction."""
    lines = ["Claims (greedy hard-test accuracy, paired by seed and by problem; 95% intervals over seeds plus the "
             "test set's term; the verdict word is against the seed's direction):"]
    for a, b, what in (("grpo_prm", "sft_easy", "PRM-rewarded GRPO beats easy-only SFT"),
                       ("rest_prm", "sft_easy", "PRM-rewarded ReST-EM beats easy-only SFT"),
                       ("grpo_prm", "sft_all", "PRM-rewarded GRPO reaches the all-levels SFT baseline "
                                               "(reproduced: above it; no clear difference: reached within the noise)"),
                       ("rest_prm", "sft_all", "PRM-rewarded ReST-EM reaches the all-levels SFT baseline"),
                       ("grpo_prm", "grpo_easy_answer", "the easy-trained PRM on hard problems beats the gold answer "
                                                        "reward on easy problems"),
                       ("grpo_world", "sft_easy", "the oracle reward teaches the easy policy hard problems"),
                       ("grpo_gold", "sft_easy", "the gold-answer reward teaches the easy policy hard problems"),
                       ("weak_grpo_world", "weak_start", "machinery check: the oracle reward improves a policy that "
                                                          "already writes some right hard solutions")):
        iv = outcomes_difference(runs(rows, a, "greedy"), runs(rows, b, "greedy"))
        word = decide(iv, 1)
        if b == "sft_all" and word == "no clear difference":
            word = "reproduced (reached within the noise)"
        lines.append(f"- {what} (`{a}` - `{b}`): {iv.text() if iv else 'not measured'}: {word}")
    return lines


def report_lines(study, figure_dir: str) -> list[str]:
    """Q7's section of RESULTS.md (and its figure, easy_to_hard_rl.png in figure_dir), from easy_to_hard_rl.jsonl."""
    path = results_path(study)
    rows = read_jsonl(path) if os.path.exists(path) else []
    e = sizes_for(study)
    lines = ["", "## Q7. Does RL from a verifier trained on easy problems teach hard ones?", "",
             "Sun et al. (2024): a policy SFT-trained on easy problems, then trained by RL with a reward model that "
             "saw only easy problems, beats the SFT policy on hard ones and reaches a policy SFT-trained on all "
             "levels.", "",
             f"Setup (`experiments/easy_to_hard_rl.py`): the easy-only policy is each seed's `{EASY_POLICY}` model "
             f"(1-2 step problems); the all-levels baseline its `{ALL_LEVELS}` run. The PRM is that easy policy "
             f"fine-tuned on its own {e.samples_easy} samples of {e.easy_tasks} easy problems, every step labelled "
             "by the world's exact checker and balanced. GRPO starts from the easy policy: "
             f"{e.grpo_steps} steps ({e.control_steps} for the machinery check) of {e.prompts_per_step} prompts x "
             f"{e.group_size} rollouts (temperature "
             f"{ROLLOUT_TEMPERATURE:g}), lr {e.lr:g}, KL {e.kl_coef:g}, on {e.rl_tasks} hard training tasks (or easy "
             f"ones); a PRM scores a rollout by its weakest step. ReST-EM: {e.rest_rounds} rounds of "
             f"{e.rest_samples} samples of {e.rest_tasks} hard tasks, those the PRM scores at least {ACCEPT:g} kept, "
             "the easy policy fine-tuned on them. Test: the first "
             f"{e.test_problems} problems of `{BENCH}` (3-4 steps): greedy, and {e.k} samples at temperature 0.7 "
             "for maj/pass and the PRM's AUC. Trends: the last quarter of training's reward or accuracy minus the "
             f"first quarter's (ReST-EM: per round); a seed games its reward when the reward rises by more than "
             f"{GAMING_MARGIN * 100:.0f} points while the accuracy falls. Cells: mean ± the 95% interval's "
             "half-width.", ""]
    if not rows:
        return lines + ["(not run yet)"]
    seeds = sorted({r["seed"] for r in rows})
    k = max(r["k"] for r in rows)
    lines += [f"Seeds: {', '.join(map(str, seeds))}. Raw rows: `{os.path.relpath(path, study.out)}` in the study's "
              "work directory.", ""]
    lines += table_lines(rows, k) + ["", *claims(rows), ""]
    easy_exact = outcomes_interval(runs(rows, "sft_easy", "pass_exact"))
    if easy_exact:
        lines += [f"RL can only reinforce what the policy samples: the easy policy writes a solution with every step "
                  f"right for {cell(easy_exact)}% of the hard test problems within {k} samples (pass@{k} by the "
                  "world's checker), which bounds what any reward can teach it here.", ""]
    figure = write_figure(rows, os.path.join(figure_dir, "easy_to_hard_rl.png"))
    if figure:
        lines += [f"![easy to hard RL]({os.path.basename(figure)})", ""]
    return lines


def write_figure(rows: list[dict], path: str) -> str | None:
    """Left: greedy accuracy per condition (mean ± SE over seeds, each seed a dot). Right: each RL
    condition's reward (solid) and accuracy (dashed) over training, mean over seeds."""
    plt = pyplot()
    if plt is None:
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    names = [n for n in CONDITIONS if any(r["condition"] == n for r in rows)]
    for i, name in enumerate(names):
        values = [sum(r["outcomes"]["greedy"]) / len(r["outcomes"]["greedy"]) * 100 for r in rows
                  if r["condition"] == name]
        stats = mean_and_spread(values)
        left.bar(i, stats["mean"], yerr=stats["se"] if stats["n"] > 1 else 0, capsize=3, color="tab:blue")
        left.scatter([i] * len(values), values, color="black", s=8, zorder=3)
    left.set_xticks(range(len(names)), names, rotation=30, fontsize=8)
    left.set(ylabel=f"greedy accuracy % ({BENCH})", title="hard test")
    colors = ("tab:red", "tab:green", "tab:purple", "tab:orange", "tab:brown", "tab:gray")
    for name, color in zip([n for n in names if CONDITIONS[n][1][0] == "grpo"], colors):
        curves = [r["curve"] for r in rows if r["condition"] == name and r["curve"]]
        length = min(len(c["reward"]) for c in curves)
        for key, style in (("reward", "-"), ("accuracy", "--")):
            mean = [sum(c[key][i] for c in curves) / len(curves) for i in range(length)]
            right.plot(range(1, length + 1), mean, color=color, linestyle=style, label=f"{name} {key}")
    right.set(xlabel="GRPO step", ylabel="rollouts' mean", title="training: reward (solid), accuracy (dashed)")
    right.legend(fontsize=7)
    right.grid(alpha=0.3)
    return save_figure(plt, fig, path)


if __name__ == "__main__":
    not_a_script(__doc__, __file__)
