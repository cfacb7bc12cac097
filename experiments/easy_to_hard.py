"""Q6 of the miniature: does a verifier trained on easy problems re-rank hard ones? (Sun et al. 2024,
"Easy-to-Hard Generalization: Scalable Alignment Beyond Human Supervision")

Not a script of its own: experiments/mini_study.py calls `add_jobs` to put Q6's jobs in its pool (they
need its data and each seed's policy model) and `report_lines` for its section of RESULTS.md and its
figure. Everything runs through the project's commands, in the study's worker processes:

1. Per seed, the policy is that seed's `hard_full+easy_sub` model (stage 1, then correct 3-4 step tasks
   with their 2-step sub-tasks): it must solve easy problems too, or the easy verifier data are all bad
   steps (the `hard_full` model, never shown a short problem after stage 1, wrote three steps for a
   two-step problem and got 17-20% of easy-problem steps right: its verifiers learned "bad" for
   everything and best-of-16 fell 20 points below majority voting). It
   solves EASY_TASKS easy problems (1-2 steps: stage 1's foundation problems) SAMPLES_EASY times each,
   and, for the upper bound only, HARD_TASKS hard training tasks SAMPLES_HARD times each (sample.py,
   temperature 0.7).
2. `data_prep.py verifier` turns them into step rows: exact step labels from the world's
   step checker (`prm_easy`), the outcome at every step (`orm_easy`, with --outcome), and easy + hard
   samples with exact labels (`prm_all`, the upper bound: a verifier that has seen hard problems).
3. train.py --objective prm --init <policy> trains each verifier (VERIFIER_EPOCHS over its rows).
4. evaluate.py --n K --temperature 0.7 --verifier <it> on the first TEST_PROBLEMS problems of each test
   set (same-distribution 3-4 steps, and the longer 5-6 steps): maj@K, pass@K, best-of-K and weighted
   majority, and the curves over k = 1, 2, 4, ... K from the same K samples. A PRM's score is its weakest
   step (min), an ORM's its last verdict. Each sample has its own seed, so the three evaluations of a seed
   see the same K samples. Greedy comes from the policy run's own evaluation of those problems.

Cost (the full study; our estimate from the study's measured speeds on 2 cores, not a timed run): per
seed, 2400 + 1200 samples of at most 96 tokens, 3 verifier trainings of one epoch (150-225 steps of 16),
and 3 x 2 x 200 x 16 = 19200 sampled test solutions, scored in batches; about 3-4 minutes of one worker
per seed, so 10-12 worker-minutes (5-6 minutes of the two workers) for 3 seeds.

Results: OUT/easy_to_hard.jsonl, one row per (verifier, seed), written as each finishes; the report and
figure are computed from those rows alone.
"""
import json
import os
import sys
import time
from dataclasses import asdict, dataclass

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from runner import mean_and_spread, pct, pyplot, verdict  # noqa: E402
from w2s.data.jsonl import read_jsonl  # noqa: E402
from w2s.data.rows import problem_from_user_message  # noqa: E402
from w2s.data.selection.verifier_rows import world_step_labels  # noqa: E402
from w2s.data.world import miniworld  # noqa: E402
from w2s.verifier import split_steps  # noqa: E402


@dataclass(frozen=True)
class E2HSizes:
    easy_tasks: int  # easy (1-2 step) problems the policy solves for the verifiers' data
    samples_easy: int
    hard_tasks: int  # hard training tasks, for the upper bound's data only
    samples_hard: int
    verifier_epochs: int
    lr: float  # fine-tuning the policy into a verifier: below the study's stage-2 3e-3
    k: int  # samples per test problem
    test_problems: int  # the first N problems of each test set


FULL = E2HSizes(easy_tasks=300, samples_easy=8, hard_tasks=300, samples_hard=4, verifier_epochs=1, lr=1e-3, k=16,
                test_problems=200)
SMOKE = E2HSizes(easy_tasks=6, samples_easy=2, hard_tasks=4, samples_hard=2, verifier_epochs=1, lr=1e-3, k=4,
                 test_problems=3)

POLICY = "hard_full+easy_sub"  # the condition whose model is the policy (see 1. above for why not hard_full)
VERIFIERS = {  # name -> (what it is, step rows, aggregation)
    "prm_easy": ("PRM trained on easy problems", "easy", "min"),
    "orm_easy": ("ORM trained on easy problems", "easy", "last"),
    "prm_all": ("PRM trained on easy + hard problems (upper bound)", "all", "min"),
}
BENCHES = ["miniworld", "miniworld_long"]


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
    """ETA weight, in the study's unit (examples trained on): samples and evaluations counted as examples."""
    e = sizes_for(study)
    per_seed = e.easy_tasks * e.samples_easy * 2 + e.hard_tasks * e.samples_hard + len(VERIFIERS) * (
        e.easy_tasks * e.samples_easy + len(BENCHES) * e.test_problems * e.k * 0.3)
    return study.sizes.seeds * per_seed


def add_jobs(study, jobs, progress) -> None:
    """Q6's jobs in the study's pool: the task files once, then per seed the samples and the three verifiers."""
    e = sizes_for(study)
    per_seed = cost(study) / study.sizes.seeds
    jobs.add("e2h/data", lambda: write_task_files(study), after=("data",))
    for seed in range(study.sizes.seeds):
        jobs.add(f"e2h/samples/{seed}", lambda seed=seed: make_step_rows(study, seed, progress, per_seed * 0.4),
                 after=("e2h/data", f"{POLICY}/{seed}"))
        for name in VERIFIERS:
            jobs.add(f"e2h/{name}/{seed}", lambda name=name, seed=seed: train_and_rerank(
                study, name, seed, progress, per_seed * 0.2), after=(f"e2h/samples/{seed}",))
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
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    os.replace(path + ".tmp", path)


def write_task_files(study) -> None:
    """Easy tasks (the first foundation problems), hard tasks, and the test subsets, as task JSONL files."""
    e, out = sizes_for(study), work_dir(study)
    if os.path.exists(os.path.join(out, "test", BENCHES[-1] + ".jsonl")):
        return
    easy = []
    for row in read_jsonl(study.set_path("foundation"))[:e.easy_tasks]:
        problem = problem_from_user_message(row["messages"][0]["content"])
        easy.append({"id": row["id"], "problem": problem, "answer": str(row["meta"]["answer"]),
                     "steps": len(miniworld.parse_problem(problem).steps)})
    _write_jsonl(os.path.join(out, "tasks", "easy.jsonl"), easy)
    hard = read_jsonl(os.path.join(study.data_dir, "tasks", "hard_full.jsonl"))[:e.hard_tasks]
    _write_jsonl(os.path.join(out, "tasks", "hard.jsonl"), hard)
    for bench in BENCHES:
        rows = read_jsonl(os.path.join(study.data_dir, "test", f"{bench}.jsonl"))[:e.test_problems]
        _write_jsonl(os.path.join(out, "test", f"{bench}.jsonl"), rows)


def seed_dir(study, seed: int) -> str:
    return os.path.join(work_dir(study), f"seed{seed}")


def policy(study, seed: int) -> str:
    return os.path.join(study.run_dir(POLICY, seed), "final")


def make_step_rows(study, seed: int, progress, job_cost: float) -> None:
    """The policy's samples of easy (and hard) problems, and the three step-row sets made from them."""
    e, directory = sizes_for(study), seed_dir(study, seed)
    sets = {name: os.path.join(directory, f"{name}.jsonl") for name in VERIFIERS}
    if all(os.path.exists(p) for p in sets.values()):
        progress.add(job_cost, skipped=True)
        return
    start = time.time()
    progress.log(f"start  Q6 seed {seed}: the policy samples easy and hard problems")
    samples = {}
    for kind, n in (("easy", e.samples_easy), ("hard", e.samples_hard)):
        samples[kind] = study.sample(policy(study, seed), os.path.join(work_dir(study), "tasks", f"{kind}.jsonl"),
                                     os.path.join(directory, f"samples_{kind}.jsonl"), n, 0.7, seed,
                                     os.path.join(directory, "sample.log"))
    both = os.path.join(directory, "samples_all.jsonl")  # easy and hard samples in one file (their ids differ)
    _write_jsonl(both, read_jsonl(samples["easy"]) + read_jsonl(samples["hard"]))
    log = os.path.join(directory, "data_prep.log")
    for name, (_, source, agg) in VERIFIERS.items():
        argv = ["verifier", both if source == "all" else samples["easy"], "--out", directory, "--name", name]
        study.run("data_prep", argv + (["--outcome"] if agg == "last" else []), log)
    progress.add(job_cost)
    progress.log(f"done   Q6 seed {seed}: step rows in {time.time() - start:.0f} s")


def train_and_rerank(study, name: str, seed: int, progress, job_cost: float) -> None:
    """Train one verifier from the policy, re-rank K test samples with it, and record the row."""
    e, directory = sizes_for(study), seed_dir(study, seed)
    run_dir = os.path.join(directory, name)
    eval_dir = os.path.join(run_dir, "eval")
    finished = os.path.exists(os.path.join(eval_dir, "summary.json"))
    start = time.time()
    if not finished:
        progress.log(f"start  Q6 {name} seed {seed}")
        study.train(os.path.join(directory, f"{name}.jsonl"), run_dir, seed, policy(study, seed),
                    epochs=e.verifier_epochs, lr=e.lr, extra=("--objective", "prm"))
        study.run("evaluate", ["--model", policy(study, seed), "--bench", *BENCHES, "--data-dir", work_dir(study),
                               "--out", eval_dir, "--n", str(e.k), "--temperature", "0.7", "--seed", str(seed),
                               "--batch-size", "256", "--max-new-tokens", str(study.sizes.max_new_tokens),
                               "--verifier", os.path.join(run_dir, "final"), "--verifier-agg", VERIFIERS[name][2],
                               "--quiet"], os.path.join(run_dir, "eval.log"))
    record(study, name, seed, eval_dir, time.time() - start)
    progress.add(job_cost, skipped=finished)
    if not finished:
        progress.log(f"done   Q6 {name} seed {seed} in {time.time() - start:.0f} s")


def greedy_accuracy(study, seed: int, bench: str, ids: set) -> float:
    """The policy's greedy accuracy on the test subset, from its own evaluation's rows (no new run)."""
    rows = [r for r in read_jsonl(os.path.join(study.run_dir(POLICY, seed), "eval", f"{bench}.jsonl")) if r["id"] in ids]
    return sum(r["verdict"] for r in rows) / len(rows)


def step_agreement(rows: list[dict]) -> float:
    """How often the verifier's step verdict (P(good) > 0.5) matches the world's exact label, over every
    step of every sampled test solution."""
    agree = total = 0
    for row in rows:
        task = miniworld.parse_problem(row["problem"])
        for response, correct, scores in zip(row["responses"], row["correct"], row["step_scores"]):
            labels = world_step_labels(split_steps(response), task, correct)
            agree += sum((s > 0.5) == label for s, label in zip(scores, labels))
            total += len(labels)
    return agree / total if total else float("nan")


def record(study, name: str, seed: int, eval_dir: str, seconds: float) -> None:
    """Append the (verifier, seed) row to easy_to_hard.jsonl, once."""
    path = results_path(study)
    with study.lock:
        if os.path.exists(path) and any((r["verifier"], r["seed"]) == (name, seed) for r in read_jsonl(path)):
            return
        with open(os.path.join(eval_dir, "summary.json")) as f:
            summary = json.load(f)
        benches = {}
        for bench in BENCHES:
            rows = read_jsonl(os.path.join(eval_dir, f"{bench}.jsonl"))
            benches[bench] = {"problems": len(rows), "greedy": greedy_accuracy(study, seed, bench, {r["id"] for r in rows}),
                              "curves": summary[bench]["curves"], "step_agreement": step_agreement(rows)}
        row = {"verifier": name, "seed": seed, "agg": summary[BENCHES[0]]["verifier_agg"], "k": summary[BENCHES[0]]["n"],
               "seconds": round(seconds, 1), "benches": benches}
        with open(path, "a") as f:
            f.write(json.dumps(row) + "\n")


# ---------------------------------------------------------------------------------------------
# The report


def statistics(rows: list[dict]) -> dict:
    """bench -> measure -> k -> mean/SE over seeds. Measures: greedy, maj, pass (the policy's, averaged
    over every verifier's evaluation: the same samples), best_of/<verifier>, weighted_maj/<verifier>."""
    values: dict = {}
    for row in sorted(rows, key=lambda r: (r["verifier"], r["seed"])):
        for bench, b in row["benches"].items():
            per = values.setdefault(bench, {})
            per.setdefault("greedy", {}).setdefault("1", {})[row["seed"]] = b["greedy"]
            per.setdefault(f"step_agreement/{row['verifier']}", {}).setdefault("1", {})[row["seed"]] = b["step_agreement"]
            for k, curve in b["curves"].items():
                for measure in ("maj", "pass"):
                    per.setdefault(measure, {}).setdefault(k, {})[row["seed"]] = curve[f"{measure}@{k}"]
                for measure in ("best_of", "weighted_maj"):
                    per.setdefault(f"{measure}/{row['verifier']}", {}).setdefault(k, {})[row["seed"]] = curve[f"{measure}@{k}"]
    return {bench: {m: {k: {**mean_and_spread([by_seed[s] for s in sorted(by_seed)]), "seeds": sorted(by_seed)}
                        for k, by_seed in ks.items()} for m, ks in measures.items()}
            for bench, measures in values.items()}


def paired(stats: dict, bench: str, a: str, b: str, k: str) -> tuple[float, float] | None:
    """Mean per-seed difference a - b at k, and its standard error (both ran the same seeds' samples)."""
    sa, sb = stats[bench].get(a, {}).get(k), stats[bench].get(b, {}).get(k)
    if not sa or not sb or sa["seeds"] != sb["seeds"]:
        return None
    diffs = [x - y for x, y in zip(sa["values"], sb["values"])]
    m = mean_and_spread(diffs)
    return m["mean"], m["se"] if len(diffs) > 1 else float("nan")


def cell(s: dict | None) -> str:
    if not s:
        return "not run"
    return f"{pct(s['mean'])} ± {pct(s['se'])}" if s["n"] > 1 else pct(s["mean"])


def report_lines(study, figure_dir: str) -> list[str]:
    """Q6's section of RESULTS.md (and its figure, easy_to_hard.png in figure_dir), from easy_to_hard.jsonl."""
    path = results_path(study)
    rows = read_jsonl(path) if os.path.exists(path) else []
    e = sizes_for(study)
    lines = ["", "## Q6. Does a verifier trained on easy problems re-rank hard ones?", "",
             "Sun et al. (2024): a reward model trained only on easy problems still judges solutions to hard ones well "
             "enough that re-ranking many samples (best-of-N, weighted voting) beats majority voting; process "
             "reward models (PRM) more so than outcome reward models (ORM).", "",
             f"Setup (`experiments/easy_to_hard.py`): the policy is each seed's `{POLICY}` model. It solves {e.easy_tasks} "
             f"easy (1-2 step) problems {e.samples_easy} times each at temperature 0.7; the world's step checker labels "
             "every step of those samples (PRM), or every step gets its solution's outcome (ORM). Each verifier is "
             f"the policy fine-tuned ({e.verifier_epochs} epoch, lr {e.lr:g}) to write `+`/`-` after each step. "
             f"The upper bound adds {e.hard_tasks} hard training tasks x {e.samples_hard} samples to the PRM's data. "
             f"Test: the first {e.test_problems} problems of each test set, {e.k} samples each (temperature 0.7); "
             "a PRM scores a solution by its weakest step (min), an ORM by its last verdict. Greedy: the policy's own "
             "greedy evaluation of those problems. mean ± SE over seeds.", ""]
    if not rows:
        return lines + ["(not run yet)"]
    stats = statistics(rows)
    k = str(max(r["k"] for r in rows))
    seeds = sorted({r["seed"] for r in rows})
    lines.append(f"Seeds: {', '.join(map(str, seeds))}. Raw rows: `{os.path.relpath(path, study.out)}` in the study's "
                 "work directory.")
    columns = [("greedy", "greedy", "1"), (f"maj@{k}", "maj", k), (f"pass@{k}", "pass", k)]
    for name in VERIFIERS:
        columns.append((f"best-of-{k} {name}", f"best_of/{name}", k))
    for name in VERIFIERS:
        columns.append((f"weighted maj@{k} {name}", f"weighted_maj/{name}", k))
    lines += ["", "| test set | " + " | ".join(c[0] for c in columns) + " |", "|---|" + "---:|" * len(columns)]
    for bench in BENCHES:
        if bench in stats:
            lines.append(f"| `{bench}` | " + " | ".join(cell(stats[bench].get(m, {}).get(kk)) for _, m, kk in columns) + " |")
    lines += ["", "Step verdicts that match the world's exact labels (P(good) > 0.5), over every step of every sampled "
                  "test solution: " + "; ".join(
                      f"`{bench}` " + ", ".join(f"{name} {cell(stats[bench].get(f'step_agreement/{name}', {}).get('1'))}"
                                                for name in VERIFIERS) for bench in BENCHES if bench in stats) + ".", ""]
    for bench in BENCHES:
        if bench not in stats:
            continue
        lines.append(f"Paired by seed, `{bench}`, K = {k}:")
        for a, b, what in [("best_of/prm_easy", "maj", "best-of-K with the easy PRM vs majority voting"),
                           ("weighted_maj/prm_easy", "maj", "weighted majority with the easy PRM vs majority voting"),
                           ("best_of/prm_easy", "best_of/orm_easy", "best-of-K: easy PRM vs easy ORM"),
                           ("weighted_maj/prm_easy", "weighted_maj/orm_easy", "weighted majority: easy PRM vs easy ORM"),
                           ("best_of/prm_all", "best_of/prm_easy", "best-of-K: PRM that saw hard problems vs easy PRM")]:
            lines.append(f"- {what}: {verdict(paired(stats, bench, a, b, k))}")
        lines.append("")
    figure = write_figure(stats, os.path.join(figure_dir, "easy_to_hard.png"))
    if figure:
        lines += [f"![easy to hard]({os.path.basename(figure)})", ""]
    return lines


def write_figure(stats: dict, path: str) -> str | None:
    """Accuracy over the first k samples (k = 1, 2, 4, ... K), one panel per test set."""
    plt = pyplot()
    if plt is None:
        return None
    fig, axes = plt.subplots(1, len(stats), figsize=(6 * len(stats), 4.5), squeeze=False)
    styles = {"pass": ("pass@k", "gray", ":"), "maj": ("maj@k", "black", "-"),
              "best_of/prm_easy": ("best-of-k, easy PRM", "tab:blue", "-"),
              "weighted_maj/prm_easy": ("weighted maj@k, easy PRM", "tab:blue", "--"),
              "best_of/orm_easy": ("best-of-k, easy ORM", "tab:orange", "-"),
              "weighted_maj/orm_easy": ("weighted maj@k, easy ORM", "tab:orange", "--"),
              "best_of/prm_all": ("best-of-k, PRM easy + hard", "tab:green", "-")}
    for ax, (bench, measures) in zip(axes[0], stats.items()):
        for measure, (label, color, style) in styles.items():
            if measure not in measures:
                continue
            ks = sorted(measures[measure], key=int)
            means = [measures[measure][k]["mean"] * 100 for k in ks]
            errors = [measures[measure][k]["se"] * 100 if measures[measure][k]["n"] > 1 else 0 for k in ks]
            ax.errorbar([int(k) for k in ks], means, yerr=errors, label=label, color=color, linestyle=style, capsize=2)
        if "greedy" in measures:
            ax.axhline(measures["greedy"]["1"]["mean"] * 100, color="gray", linewidth=1, label="greedy")
        ax.set_xscale("log", base=2)
        ax.set(xlabel="samples per problem (k)", ylabel="test accuracy %", title=f"{bench}: re-ranking k samples")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


if __name__ == "__main__":  # not a script of its own: --help says so and what runs it
    import argparse

    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                            epilog="Run it through the study: python experiments/mini_study.py "
                                   "(--help lists its options).").parse_args()
    raise SystemExit(f"{__file__}: not a script of its own; run python experiments/mini_study.py")
