"""Q5 of the miniature: does the strong student surpass its weak teacher without gold labels?
(Yang, Ma, Liu 2024, "Weak-to-Strong Reasoning": agreement-selected SFT, then DPO on confidence pairs.)

Not a script of its own: experiments/mini_study.py calls `add_jobs(study, jobs, progress)` to put
Q5's jobs into its pool (they reuse the study's models) and `report_lines(study)` for its section of
RESULTS.md. Everything the section says is computed from results.jsonl and the files the jobs write.

The cast, all in the study's built-in world:
- Weak teacher: the study's weak teacher (stage 1 of seed 0 + teacher_steps steps on correct hard
  tasks: a small model fine-tuned on a little gold, below the learning threshold). Its greedy answers
  on the unlabelled pool are the weak-SFT labels.
- Strong student: each seed's stage-1 model. Given the study's budget of gold hard tasks (16000
  examples) it reaches the study's `hard_full` accuracy, far above the teacher: latent ability that weak
  labels can unlock or spoil, the paper's premise. It costs no extra stage 1.
- Weak-ICL, a stand-in. In the paper the strong model, prompted with a few solved examples, is the
  second source. A 0.5M model does not learn in context (measured: with 2 of the teacher's solved
  examples in the prompt, its answers agreed with the teacher's on 0-8 of 600 tasks), so a second weak
  model stands in: stage 1 of seed 1 plus teacher_steps steps on the same kind of little gold as the
  teacher (the study's correct hard tasks, its own draw). As weak as the teacher, with mistakes of its
  own; one for all seeds, as the teacher is (sampling the pool once per seed would not fit the hour).
- Unlabelled pool: `pool` hard tasks of the same world drawn after the study's (data_prep.py draws
  hard tasks as one stream, so a larger --num-hard extends it): neither source trained on them, and
  none shares a task with the test. Their gold answers are read only to measure label quality.

Every student gets the same budget as the study's stage 2 (stage2_epochs x num_hard examples, at its
batch size), whatever its set's size, so that label quality, not the number of examples seen, is what
differs (stage 2 has a sharp threshold in examples seen):
  q5_naive    SFT on every weak label of the pool
  q5_stage1   stage I: `data_prep.py agree` keeps the tasks where the teacher's and the stand-in's
              answers agree (one hybrid set), and the student learns both responses
  q5_dpo      stage II: the stage-I model samples strong_samples solutions per task at temperature 1
              on the first pair_tasks tasks of the pool; `data_prep.py pairs` (confidence 0.6 / 0.8,
              1 pair a task); train.py --objective dpo from the stage-I model (also the reference)
  ceiling     the study's `hard_full` run: the same student on gold hard tasks, same budget
The teacher is the study's `weak_teacher` run. All are evaluated on the study's full test sets.
PGR = (student - teacher) / (ceiling - teacher) (Burns et al. 2023), per seed.
"""
import json
import math
import os
import time
from dataclasses import dataclass

from runner import accuracy_bars, mean_and_spread, pct, pyplot, summarize  # noqa: E402  (experiments/ is on sys.path: mini_study)
from w2s.data.jsonl import read_jsonl, write_jsonl

BENCHES = ("miniworld", "miniworld_long")
TEACHER = "weak_teacher"  # the study's runs, reused
CEILING = "hard_full"
BASE = "stage1"
ICL = "q5_icl"  # the weak-ICL stand-in: a second weak model
STUDENTS = ("q5_naive", "q5_stage1", "q5_dpo")
HYBRID = "q5_hybrid"  # stage I's set: the tasks where the two sources agree
CONDITIONS = (TEACHER, ICL, BASE, *STUDENTS, CEILING)
LABELS = {TEACHER: "weak teacher (a little gold)", ICL: "weak-ICL stand-in (a second weak model)",
          BASE: "strong student before weak supervision (stage 1)",
          "q5_naive": "(a) naive SFT on all weak labels", "q5_stage1": "(b) stage I: agreement-selected hybrid SFT",
          "q5_dpo": "(c) stage I + stage II DPO", CEILING: "ceiling: the student on gold"}
SHORT = {TEACHER: "weak teacher", ICL: "second weak\nmodel (weak-ICL)", BASE: "student\nbefore (stage 1)",
         "q5_naive": "(a) naive SFT", "q5_stage1": "(b) stage I", "q5_dpo": "(c) stage I + DPO", CEILING: "ceiling (gold)"}


@dataclass(frozen=True)
class Sizes:
    pool: int  # unlabelled hard tasks that both sources label
    pair_tasks: int  # stage II: tasks of the pool the stage-I model samples
    strong_samples: int  # stage II: samples per task
    dpo_lr: float
    dpo_beta: float
    dpo_epochs: int
    label_temperature: float = 0.0  # both sources' labels: greedy (smoke: 1, as untrained models answer
    # nothing greedily; at toy size no task may agree, and stages I and II are then skipped)


# Sampling is the cost that grows with the pool: pool labels from each source, pair_tasks x
# strong_samples per seed from the stage-I model. 12000 keeps the study in its hour with room: a pool
# of 16000 (2147 agreed tasks, stage I 38.4% against 36.7% now) took about a minute more of it.
FULL = Sizes(pool=12000, pair_tasks=500, strong_samples=10, dpo_lr=3e-4, dpo_beta=0.1, dpo_epochs=2)
SMOKE = Sizes(pool=24, pair_tasks=8, strong_samples=4, dpo_lr=3e-4, dpo_beta=0.1, dpo_epochs=1, label_temperature=1.0)


def sizes_of(study) -> Sizes:
    return SMOKE if study.sizes.max_steps else FULL


def budget_steps(study) -> int:
    """The study's stage-2 budget in optimizer steps: every Q5 student trains this long."""
    s = study.sizes
    return s.max_steps or math.ceil(s.stage2_epochs * s.num_hard / s.batch_size)


def q5_dir(study, *parts: str) -> str:
    return os.path.join(study.out, "q5", *parts)


# ---------------------------------------------------------------------------------------------
# Inputs: the unlabelled pool


def prepare_pool(study) -> None:
    """q5/tasks.jsonl (the pool) and q5/pair_tasks.jsonl (its first pair_tasks), drawn by data_prep.py
    as the continuation of the study's hard tasks; checked to extend them and to share its tests."""
    size, s = sizes_of(study), study.sizes
    if os.path.exists(q5_dir(study, "pair_tasks.jsonl")):
        return
    world = q5_dir(study, "world")
    study.run("data_prep", ["world", "--out", world, "--num-hard", str(s.num_hard + size.pool), "--num-foundation", "0",
                            "--num-test", str(s.num_test), "--num-long-test", str(s.num_long_test),
                            "--hard-steps", s.hard_steps, "--long-steps", s.long_steps, "--sets", "hard_full"],
              q5_dir(study, "data_prep.log"))
    tasks = read_jsonl(os.path.join(world, "tasks", "hard_full.jsonl"))
    study_tasks = read_jsonl(os.path.join(study.data_dir, "tasks", "hard_full.jsonl"))
    if [t["problem"] for t in tasks[:len(study_tasks)]] != [t["problem"] for t in study_tasks]:
        raise RuntimeError(f"{world}: the larger world does not begin with the study's hard tasks")
    for bench in BENCHES:
        if read_jsonl(os.path.join(world, "test", f"{bench}.jsonl")) != read_jsonl(os.path.join(study.data_dir, "test", f"{bench}.jsonl")):
            raise RuntimeError(f"{world}: its {bench} test differs from the study's")
    pool = tasks[len(study_tasks):]
    write_jsonl(q5_dir(study, "tasks.jsonl"), pool)
    write_jsonl(q5_dir(study, "pair_tasks.jsonl"), pool[:size.pair_tasks])


# ---------------------------------------------------------------------------------------------
# Stages


def sample(study, model: str, tasks: str, out: str, n: int, temperature: float) -> str:
    """The study's sample.py, seed 0; OUT.done marks a finished file for a rerun."""
    if not os.path.exists(out + ".done"):
        study.sample(model, tasks, out, n, temperature, 0, out + ".log")
        open(out + ".done", "w").close()
    return out


def data_prep(study, command: str, *argv: str) -> None:
    study.run("data_prep", [command, "--out", q5_dir(study, "data"), *argv], q5_dir(study, "data_prep.log"))


def count_rows(path: str) -> int:
    with open(path) as f:
        return sum(1 for line in f if line.strip())


def set_path(study, name: str) -> str:
    return q5_dir(study, "data", f"{name}.jsonl")


def train(study, data: str, out: str, seed: int, init: str, steps: int, *extra: str, lr: float | None = None) -> str:
    """The study's train.py for exactly `steps` optimizer steps at its batch size: as many epochs over
    `data` as that takes (the schedule spans the steps)."""
    epochs = max(1, math.ceil(steps * study.sizes.batch_size / max(count_rows(data), 1)))
    return study.train(data, out, seed, init, steps, epochs=epochs, lr=lr, extra=extra)


def run_dir(study, condition: str, seed: int | None) -> str:
    return q5_dir(study, "runs", condition if seed is None else f"{condition}/seed{seed}")


def evaluate(study, condition: str, seed: int | None, started: float) -> None:
    """The study's evaluation (its full test sets) and results row."""
    path = run_dir(study, condition, seed)
    study.record(condition, seed, path, study.evaluate(path), time.time() - started)


def teacher_job(study, progress, cost: float) -> None:
    """The pool, and the weak teacher's labels on it (the naive set)."""
    if os.path.exists(set_path(study, "q5_weak_all")):
        progress.add(cost, skipped=True)
        return
    progress.log("start  Q5 pool and the teacher's labels")
    prepare_pool(study)
    weak = sample(study, os.path.join(study.run_dir(TEACHER, None), "final"), q5_dir(study, "tasks.jsonl"),
                  q5_dir(study, "weak.jsonl"), 1, sizes_of(study).label_temperature)
    data_prep(study, "from-samples", weak, "--name", "q5_weak_all")
    progress.add(cost)


def icl_job(study, progress, cost: float) -> None:
    """The weak-ICL stand-in (a second weak model): trained, evaluated, its labels on the pool, and the
    tasks where they agree with the teacher's (the hybrid set every seed's stage I learns)."""
    if os.path.exists(set_path(study, HYBRID)):
        progress.add(cost, skipped=True)
        return
    started = time.time()
    progress.log("start  Q5 weak-ICL stand-in")
    base = os.path.join(study.run_dir("stage1", min(1, study.sizes.seeds - 1)), "final")
    model = train(study, study.set_path("hard_full"), run_dir(study, ICL, None), 1000, base, study.sizes.teacher_steps)
    evaluate(study, ICL, None, started)
    icl = sample(study, model, q5_dir(study, "tasks.jsonl"), q5_dir(study, "icl.jsonl"), 1, sizes_of(study).label_temperature)
    data_prep(study, "agree", q5_dir(study, "weak.jsonl"), icl, "--name", HYBRID)
    progress.add(cost)
    progress.log(f"done   Q5 weak-ICL stand-in in {time.time() - started:.0f} s")


def seed_job(study, seed: int, progress, cost: float) -> None:
    size, steps = sizes_of(study), budget_steps(study)
    done_marker = q5_dir(study, f"seed{seed}.done")  # a finished seed is skipped by a rerun
    if os.path.exists(done_marker):
        progress.add(cost, skipped=True)
        return
    started = time.time()
    progress.log(f"start  Q5 seed {seed}")
    student = os.path.join(study.run_dir("stage1", seed), "final")
    weak = q5_dir(study, "weak.jsonl")
    # (a) every weak label
    t0 = time.time()
    train(study, set_path(study, "q5_weak_all"), run_dir(study, "q5_naive", seed), seed, student, steps)
    evaluate(study, "q5_naive", seed, t0)
    # (b) stage I: the tasks where the two sources agree, both responses
    t0 = time.time()
    if not count_rows(set_path(study, HYBRID)):
        open(done_marker, "w").close()
        progress.add(cost)
        progress.log(f"Q5 seed {seed}: no task's weak-ICL and weak-SFT answers agree; no stage I or II run")
        return
    stage1 = train(study, set_path(study, HYBRID), run_dir(study, "q5_stage1", seed), seed, student, steps)
    evaluate(study, "q5_stage1", seed, t0)
    # (c) stage II: the stage-I model's samples, confidence pairs against the weak labels, DPO
    t0 = time.time()
    strong = sample(study, stage1, q5_dir(study, "pair_tasks.jsonl"), q5_dir(study, f"strong_seed{seed}.jsonl"),
                    size.strong_samples, 1.0)
    pairs = f"q5_pairs_seed{seed}"
    if not os.path.exists(set_path(study, pairs)):
        data_prep(study, "pairs", strong, "--weak", weak, "--name", pairs, "--seed", str(seed))
    rows = count_rows(set_path(study, pairs))
    if rows:
        dpo_steps = max(1, math.ceil(size.dpo_epochs * rows / study.sizes.batch_size))  # the study caps it (smoke)
        train(study, set_path(study, pairs), run_dir(study, "q5_dpo", seed), seed, stage1, dpo_steps,
              "--objective", "dpo", "--beta", str(size.dpo_beta), lr=size.dpo_lr)
        evaluate(study, "q5_dpo", seed, t0)
    else:
        progress.log(f"Q5 seed {seed}: no confidence pair was selected; no DPO run")
    open(done_marker, "w").close()
    progress.add(cost)
    progress.log(f"done   Q5 seed {seed} in {time.time() - started:.0f} s")


def costs(study) -> tuple[float, float, float]:
    """Q5's shares of the study's ETA in its units (examples trained on; a sample counts 1/4): the
    teacher's labels, the stand-in, each seed."""
    size, s = sizes_of(study), study.sizes
    return (size.pool / 4, s.teacher_steps * s.batch_size + size.pool / 4,
            2 * budget_steps(study) * s.batch_size + size.pair_tasks * size.strong_samples / 4)


def add_jobs(study, jobs, progress) -> None:
    """Q5's jobs in the study's pool: the pool and the teacher's labels after the weak teacher, the
    stand-in after them and stage 1 of seed 1, then one chain per seed after that seed's stage 1."""
    teacher, icl, per_seed = costs(study)
    progress.total_cost += teacher + icl + per_seed * study.sizes.seeds
    second = min(1, study.sizes.seeds - 1)
    jobs.add("q5/teacher", lambda: teacher_job(study, progress, teacher), after=("data", TEACHER))
    jobs.add("q5/icl", lambda: icl_job(study, progress, icl), after=("q5/teacher", f"stage1/{second}"))
    for seed in range(study.sizes.seeds):
        jobs.add(f"q5/{seed}", lambda seed=seed: seed_job(study, seed, progress, per_seed),
                 after=("q5/icl", f"stage1/{seed}"))


# ---------------------------------------------------------------------------------------------
# The report


def label_quality(study) -> dict[str, dict]:
    """The share of right labels: the teacher's on the pool, the hybrid set (tasks kept, right among
    them, and the stand-in's), and each seed's pairs (chosen right, rejected wrong), read from the files
    data_prep.py wrote."""
    out = {}
    weak_path = set_path(study, "q5_weak_all")
    if os.path.exists(weak_path):
        verdicts = [r["meta"]["correct"] for r in read_jsonl(weak_path)]
        out["weak"] = {"examples": len(verdicts), "right": sum(verdicts) / len(verdicts) if verdicts else None}
    hybrid = q5_dir(study, "data", f"{HYBRID}.report.json")
    if os.path.exists(hybrid):
        with open(hybrid) as f:
            out["hybrid"] = json.load(f)
    for seed in range(study.sizes.seeds):
        path = q5_dir(study, "data", f"q5_pairs_seed{seed}.report.json")
        if os.path.exists(path):
            with open(path) as f:
                out.setdefault("pairs", []).append(json.load(f))
    return out


def pgr(summary: dict, student: str, seeds: list, bench: str = "miniworld", steps: bool = False) -> dict | None:
    """Performance gap recovered per seed, (student - teacher) / (ceiling - teacher), its mean and SE."""
    if student not in summary or CEILING not in summary or TEACHER not in summary:
        return None
    pick = (lambda s: s["step"]["values"]) if steps else (lambda s: s["values"])  # noqa: E731
    teacher = pick(summary[TEACHER][bench])[0]
    by_seed_student = dict(zip(summary[student][bench]["seeds"], pick(summary[student][bench])))
    by_seed_ceiling = dict(zip(summary[CEILING][bench]["seeds"], pick(summary[CEILING][bench])))
    values = [(by_seed_student[s] - teacher) / (by_seed_ceiling[s] - teacher)
              for s in seeds if s in by_seed_student and s in by_seed_ceiling and by_seed_ceiling[s] != teacher]
    return mean_and_spread(values) if values else None


def _gap(g: dict | None) -> str:
    if g is None:
        return "n/a"
    return f"{g['mean']:+.2f} ± {g['se']:.2f}" if g["n"] > 1 else f"{g['mean']:+.2f}"


def report_lines(study, figure_dir: str) -> list[str]:
    """Q5's section of RESULTS.md: accuracies, label quality, PGR, all computed from the results; the
    figure goes to FIGURE_DIR/weak_to_strong.png (beside the report)."""
    results = [r for r in read_jsonl(study.results_path) if r["condition"] in CONDITIONS] if os.path.exists(study.results_path) else []
    summary = summarize(results)
    size = sizes_of(study)
    lines = ["", "## Q5. Does the strong student surpass its weak teacher without gold labels?", "",
             "Yang, Ma, Liu (2024), *Weak-to-Strong Reasoning*: a strong student learns from a weaker teacher's labels "
             "through agreement-selected SFT (stage I) and DPO on confidence-selected pairs (stage II), and beats naive "
             f"SFT on the weak labels. Here: the weak teacher is the study's `{TEACHER}` run; the strong student is each "
             f"seed's stage-1 model; weak-ICL is stood in for by a second weak model (stage 1 of seed 1 plus the teacher's "
             f"kind of little gold: a 0.5M model does not learn in context); the two label {size.pool} unlabelled hard tasks; every student gets "
             f"the study's stage-2 budget ({budget_steps(study)} steps at batch {study.sizes.batch_size}); the ceiling is the "
             f"study's `{CEILING}` run (see experiments/weak_to_strong.py).",
             "", "| model | test acc % (mean ± SE) | seeds | test steps right % | long test acc % | PGR (final answers) | PGR (steps) |",
             "|---|---:|---|---:|---:|---:|---:|"]
    seeds = list(range(study.sizes.seeds))
    for condition in CONDITIONS:
        if condition not in summary:
            lines.append(f"| {LABELS[condition]} | not run | | | | | |")
            continue
        main, long = summary[condition]["miniworld"], summary[condition]["miniworld_long"]
        gaps = ["", ""]
        if condition in (BASE, *STUDENTS):
            gaps = [_gap(pgr(summary, condition, seeds, steps=steps)) for steps in (False, True)]
        lines.append(f"| {LABELS[condition]} (`{condition}`) | {pct(main['mean'])} ± {pct(main['se'])} | "
                     f"{', '.join(pct(v) for v in main['values'])} | {pct(main['step']['mean'])} ± {pct(main['step']['se'])} | "
                     f"{pct(long['mean'])} ± {pct(long['se'])} | {gaps[0]} | {gaps[1]} |")
    quality = label_quality(study)
    lines += ["", "Label quality (gold read only to measure it; selection never reads it):", ""]
    if "weak" in quality:
        lines.append(f"- weak labels (the teacher's answers on the {quality['weak']['examples']} tasks): "
                     f"{pct(quality['weak']['right'])}% right")
    if "hybrid" in quality:
        report = quality["hybrid"]
        accuracy = report.get("first_sample_accuracy") or {}
        lines.append(f"- stage I: the two sources agree on {report.get('agree', 0)} of {report['tasks']} tasks (the stand-in's "
                     f"answers right: {pct(accuracy.get('icl'))}%, the teacher's: {pct(accuracy.get('weak'))}%); "
                     f"{report['examples']} hybrid rows; labels of the kept tasks right: {pct(report.get('label_accuracy'))}%")
    for report in quality.get("pairs", []):
        rules = ", ".join(f"{k.split('/')[1]} {v}" for k, v in report.items() if k.startswith("pairs/"))
        lines.append(f"- stage II pairs (seed {report['seed']}): {report['pairs']} ({rules or 'none'}); chosen right "
                     f"{pct(report.get('chosen_right'))}%, rejected wrong {pct(report.get('rejected_wrong'))}%")
    dpo = []
    for seed in seeds:
        metrics_path = os.path.join(run_dir(study, "q5_dpo", seed), "metrics.jsonl")
        if os.path.exists(metrics_path) and (metrics := read_jsonl(metrics_path)):
            dpo.append(f"seed {seed}: loss {metrics[0]['loss']:.3f} -> {metrics[-1]['loss']:.3f}, "
                       f"rewards/accuracies {metrics[-1]['rewards/accuracies']:.2f}")
    if dpo:
        lines.append("- DPO training (first -> last step): " + "; ".join(dpo))
    figure = write_figure(summary, os.path.join(figure_dir, "weak_to_strong.png"))
    if figure:
        lines += ["", f"![Q5]({os.path.basename(figure)})"]
    return lines


def write_figure(summary: dict, path: str) -> str | None:
    """Test accuracy (final answers, steps right) of every Q5 model, mean ± SE over seeds, each seed a dot."""
    plt = pyplot()
    if plt is None:
        return None
    names = [c for c in CONDITIONS if c in summary]
    if not names:
        return None
    fig, ax = plt.subplots(figsize=(11, 4.5))
    accuracy_bars(ax, summary, names, [SHORT[c] for c in names], fontsize=8)
    ax.set_ylabel("test set %")
    ax.set_title("Q5: weak-to-strong reasoning in miniature", fontsize=10)
    ax.legend(fontsize=8)
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
