"""Q5 of the miniature: does the strong student surpass its weak teacher without gold labels?
(Yang, Ma, Liu 2024, "Weak-to-Strong Reasoning": agreement-selected SFT, then DPO on confidence pairs.)

Not a script of its own: experiments/mini_study.py calls `add_jobs(study, jobs, progress)` to put
Q5's jobs into its pool (they reuse the study's models) and `report_lines(study)` for its section of
RESULTS.md. Everything the section says is computed from results.jsonl and the files the jobs write.

The cast, all on the study's built-in world:
- Weak teacher: the study's weak teacher (stage 1 of seed 0 + a few steps on correct hard tasks: a
  small model fine-tuned on a little gold). It labels Q5's tasks (greedy, one answer each): the
  weak-SFT source.
- Strong student: the study's `easy_sub` model of each seed (stage 1 + one epoch of correct easy
  sub-tasks). Why this one: a larger preset would need its own stage 1 per seed (the study's largest
  cost), while the `easy_sub` model already knows every step of a hard task and has never seen a
  hard task solved: latent ability that weak labels can unlock or spoil, which is the paper's premise
  (a strong base model, a weak model with task-specific fine-tuning). It costs nothing extra here.
- Q5's tasks: hard training tasks the weak teacher never trained on (its batches are replayed to
  know which), whose gold answers are read only to measure label quality.

Conditions per seed, each evaluated on a test subset (the teacher too, on the same subset):
  q5_naive    the student, SFT on every weak label
  q5_stage1   stage I: the student prompted with 2 of the weak teacher's solved examples (weak-ICL,
              sample.py --few-shot) labels the tasks; data_prep.py --agree keeps the tasks where its
              answer and the teacher's agree, and the student is trained on both responses (hybrid)
  q5_dpo      stage II: the stage-I model samples 10 solutions per task at temperature 1;
              data_prep.py --pairs (confidence 0.6 / 0.8, 1 pair a task); train.py --objective dpo
              from the stage-I model
  q5_ceiling  the student, SFT on the same tasks' gold solutions
PGR = (student - teacher) / (ceiling - teacher) (Burns et al. 2023), per seed.

Compute (the full study's sizes below; about 10 minutes of the 2 cores for 3 seeds, estimated from
the study's measured rates, not yet run): per seed 3 SFT runs of 2 epochs over at most 1200 rows
(<= 150 steps each at batch 16, ~0.25 s a step), one DPO run (<= 75 steps, two sequences and a
reference pre-pass per pair), 600 few-shot samples, 6000 stage-II samples and 5 evaluations on a
300 + 150 problem test subset. Not tuned: the DPO learning rate and beta are guesses for a 0.5M model.
"""
import json
import os
import time
from dataclasses import dataclass

from runner import accuracy_bars, mean_and_spread, pct, pyplot, summarize  # noqa: E402  (experiments/ is on sys.path: mini_study)
from w2s.jsonl import read_jsonl

BENCHES = ("miniworld", "miniworld_long")
TEACHER = "q5_teacher"  # the study's weak teacher, evaluated on Q5's test subset
BASE = "q5_student_base"  # the strong student before any weak supervision
STUDENTS = ("q5_naive", "q5_stage1", "q5_dpo")
CEILING = "q5_ceiling"
CONDITIONS = (TEACHER, BASE, *STUDENTS, CEILING)
LABELS = {TEACHER: "weak teacher (a little gold)", BASE: "strong student before weak supervision",
          "q5_naive": "(a) naive SFT on all weak labels", "q5_stage1": "(b) stage I: agreement-selected hybrid SFT",
          "q5_dpo": "(c) stage I + stage II DPO", CEILING: "ceiling: the student on gold"}


@dataclass(frozen=True)
class Sizes:
    tasks: int  # hard tasks the weak teacher labels
    test: int  # problems of each test subset (the long one gets half)
    epochs: int  # SFT epochs over Q5's sets
    strong_samples: int  # stage II: samples per task from the stage-I model
    shots: int  # weak-ICL: solved examples before each task
    dpo_lr: float
    dpo_beta: float
    dpo_epochs: int
    max_steps: int | None = None  # a cap on every run (smoke only)
    label_temperature: float = 0.0  # the teacher's and weak-ICL's labels: greedy (smoke: 1, as untrained
    # models answer nothing greedily; at toy size no task may agree, and stages I and II are then skipped)


FULL = Sizes(tasks=600, test=300, epochs=2, strong_samples=10, shots=2, dpo_lr=3e-4, dpo_beta=0.1, dpo_epochs=2)
SMOKE = Sizes(tasks=12, test=8, epochs=1, strong_samples=4, shots=2, dpo_lr=3e-4, dpo_beta=0.1, dpo_epochs=1, max_steps=2,
              label_temperature=1.0)


def sizes_of(study) -> Sizes:
    return SMOKE if study.sizes.max_steps else FULL


def q5_dir(study, *parts: str) -> str:
    return os.path.join(study.out, "q5", *parts)


# ---------------------------------------------------------------------------------------------
# Inputs: Q5's tasks (unseen by the teacher) and test subsets


def teacher_seen_ids(study) -> set[str]:
    """Ids of the hard_full rows the weak teacher trained on: its global batches, replayed as train.py
    drew them (seed 0, epoch 0, the study's batch size, the first teacher_steps of them)."""
    from w2s.batches import global_batches
    from w2s.sft import load_sft_data
    from w2s.tokenizer import Tokenizer

    path = study.set_path("hard_full")
    tokenizer = Tokenizer.from_pretrained(os.path.join(study.data_dir, "tokenizer.json"))
    examples, _ = load_sft_data(path, tokenizer, 512, write_cache=False)  # the tiny preset's length
    batches = global_batches([e.length for e in examples], study.sizes.batch_size, 0, 0)[:study.sizes.teacher_steps]
    rows = read_jsonl(path)
    return {rows[i]["id"] for batch in batches for i in batch}


def prepare_inputs(study) -> None:
    """q5/tasks.jsonl, q5/data/test/<bench>.jsonl (subsets) and q5/data/q5_gold.jsonl (the ceiling's set)."""
    size = sizes_of(study)
    if os.path.exists(q5_dir(study, "data", "q5_gold.jsonl")):
        return
    from w2s.jsonl import write_jsonl

    seen = teacher_seen_ids(study)
    tasks = [t for t in read_jsonl(os.path.join(study.data_dir, "tasks", "hard_full.jsonl")) if t["id"] not in seen][:size.tasks]
    ids = {t["id"] for t in tasks}
    gold = [row for row in read_jsonl(study.set_path("hard_full")) if row["meta"]["task_id"] in ids]
    os.makedirs(q5_dir(study, "data", "test"), exist_ok=True)
    write_jsonl(q5_dir(study, "tasks.jsonl"), tasks)
    for bench, count in zip(BENCHES, (size.test, max(1, size.test // 2))):
        write_jsonl(q5_dir(study, "data", "test", f"{bench}.jsonl"),
                    read_jsonl(os.path.join(study.data_dir, "test", f"{bench}.jsonl"))[:count])
    write_jsonl(q5_dir(study, "data", "q5_gold.jsonl"), gold)


# ---------------------------------------------------------------------------------------------
# Stages


def sample(study, model: str, out: str, n: int, temperature: float, *extra: str) -> str:
    if not os.path.exists(out + ".done"):
        study.run("sample", ["--model", model, "--tasks", q5_dir(study, "tasks.jsonl"), "--out", out, "--n", str(n),
                             "--temperature", str(temperature), "--top-p", "1.0", "--batch-size", "256", "--seed", "0",
                             "--max-new-tokens", str(study.sizes.max_new_tokens), "--quiet", *extra],
                  out + ".log")
        open(out + ".done", "w").close()
    return out


def data_prep(study, *argv: str) -> None:
    study.run("data_prep", ["--out", q5_dir(study, "data"), *argv], q5_dir(study, "data_prep.log"))


def train(study, data: str, out: str, seed: int, init: str, *extra: str) -> str:
    size = sizes_of(study)
    if not os.path.exists(os.path.join(out, "final", "config.json")):
        argv = ["--model", "tiny", "--data", data, "--out", out, "--seed", str(seed), "--init", init,
                "--batch-size", str(study.sizes.batch_size), "--save-every", "200", "--keep-checkpoints", "1", "--resume"]
        argv += ["--max-steps", str(size.max_steps)] if size.max_steps else []
        study.run("train", [*argv, *extra], os.path.join(out, "train.log"))
    return os.path.join(out, "final")


def evaluate(study, condition: str, seed: int | None, run_dir: str, model: str, started: float) -> None:
    summary_path = os.path.join(run_dir, "eval", "summary.json")
    if not os.path.exists(summary_path):
        study.run("evaluate", ["--model", model, "--bench", *BENCHES, "--data-dir", q5_dir(study, "data"),
                               "--out", os.path.join(run_dir, "eval"), "--batch-size", "256", "--max-new-tokens",
                               str(study.sizes.max_new_tokens), "--group-by", "steps", "--quiet"],
                  os.path.join(run_dir, "eval.log"))
    with open(summary_path) as f:
        summary = json.load(f)
    _record(study, condition, seed, run_dir, summary, time.time() - started)


def _record(study, condition: str, seed: int | None, run_dir: str, summary: dict, seconds: float) -> None:
    """A results.jsonl row like the study's (its record() expects a training run in run_dir)."""
    from runner import step_accuracy

    with study.lock:
        path = study.results_path
        if os.path.exists(path) and any((r["condition"], r["seed"]) == (condition, seed) for r in read_jsonl(path)):
            return
        metrics_path = os.path.join(run_dir, "metrics.jsonl")
        metrics = read_jsonl(metrics_path) if os.path.exists(metrics_path) else []
        row = {"condition": condition, "seed": seed, "run_dir": os.path.relpath(run_dir, study.out), "steps": len(metrics),
               "final_loss": metrics[-1]["loss"] if metrics else None, "seconds": round(seconds, 1),
               "benches": {b: {"correct": round(summary[b]["accuracy"] * summary[b]["problems"]),
                               "problems": summary[b]["problems"], "accuracy": summary[b]["accuracy"],
                               "step_accuracy": step_accuracy(os.path.join(run_dir, "eval", f"{b}.jsonl"))}
                           for b in BENCHES}}
        if metrics and "rewards/accuracies" in metrics[-1]:
            row["dpo"] = {k: metrics[-1][k] for k in ("rewards/accuracies", "rewards/margins")}
            row["dpo"]["first_loss"], row["dpo"]["last_loss"] = metrics[0]["loss"], metrics[-1]["loss"]
        with open(path, "a") as f:
            f.write(json.dumps(row) + "\n")


def teacher_job(study, teacher_run: str) -> None:
    """The teacher's labels on Q5's tasks (greedy) and its accuracy on Q5's test subset."""
    started = time.time()
    prepare_inputs(study)
    model = os.path.join(teacher_run, "final")
    weak = sample(study, model, q5_dir(study, "weak.jsonl"), 1, sizes_of(study).label_temperature)
    if not os.path.exists(q5_dir(study, "data", "q5_weak_all.jsonl")):
        data_prep(study, "--from-samples", weak, "--name", "q5_weak_all")
    evaluate(study, TEACHER, None, q5_dir(study, "runs", "teacher"), model, started)


def seed_job(study, seed: int, progress, cost: float) -> None:
    size = sizes_of(study)
    done_marker = q5_dir(study, f"seed{seed}.done")  # a finished seed is skipped by a rerun
    if os.path.exists(done_marker):
        progress.add(cost, skipped=True)
        return
    started = time.time()
    progress.log(f"start  Q5 seed {seed}")
    base = os.path.join(study.run_dir("easy_sub", seed), "final")
    runs = lambda name: q5_dir(study, "runs", f"{name}/seed{seed}")  # noqa: E731
    weak, sets = q5_dir(study, "weak.jsonl"), q5_dir(study, "data")
    evaluate(study, BASE, seed, runs(BASE), base, started)
    sft = ["--epochs", str(size.epochs)]
    # (a) every weak label; the ceiling: gold on the same tasks
    for condition, data in (("q5_naive", "q5_weak_all"), (CEILING, "q5_gold")):
        t0 = time.time()
        final = train(study, os.path.join(sets, f"{data}.jsonl"), runs(condition), seed, base, *sft)
        evaluate(study, condition, seed, runs(condition), final, t0)
    # (b) stage I: weak-ICL labels, agreement with the teacher's, the hybrid set
    t0 = time.time()
    icl = sample(study, base, q5_dir(study, f"icl_seed{seed}.jsonl"), 1, size.label_temperature, "--few-shot", weak,
                 "--shots", str(size.shots))
    hybrid = f"q5_hybrid_seed{seed}"
    if not os.path.exists(os.path.join(sets, f"{hybrid}.jsonl")):
        data_prep(study, "--agree", weak, icl, "--name", hybrid)
    if not read_jsonl(os.path.join(sets, f"{hybrid}.jsonl")):
        open(done_marker, "w").close()
        progress.add(cost)
        progress.log(f"Q5 seed {seed}: no task's weak-ICL and weak-SFT answers agree; no stage I or II run")
        return
    stage1 = train(study, os.path.join(sets, f"{hybrid}.jsonl"), runs("q5_stage1"), seed, base, *sft)
    evaluate(study, "q5_stage1", seed, runs("q5_stage1"), stage1, t0)
    # (c) stage II: the stage-I model's samples, confidence pairs against the weak labels, DPO
    t0 = time.time()
    strong = sample(study, stage1, q5_dir(study, f"strong_seed{seed}.jsonl"), size.strong_samples, 1.0)
    pairs = f"q5_pairs_seed{seed}"
    if not os.path.exists(os.path.join(sets, f"{pairs}.jsonl")):
        data_prep(study, "--pairs", strong, "--weak", weak, "--name", pairs, "--seed", str(seed))
    if read_jsonl(os.path.join(sets, f"{pairs}.jsonl")):
        final = train(study, os.path.join(sets, f"{pairs}.jsonl"), runs("q5_dpo"), seed, stage1, "--objective", "dpo",
                      "--lr", str(size.dpo_lr), "--beta", str(size.dpo_beta), "--epochs", str(size.dpo_epochs))
        evaluate(study, "q5_dpo", seed, runs("q5_dpo"), final, t0)
    else:
        progress.log(f"Q5 seed {seed}: no confidence pair was selected; no DPO run")
    open(done_marker, "w").close()
    progress.add(cost)
    progress.log(f"done   Q5 seed {seed} in {time.time() - started:.0f} s")


def add_jobs(study, jobs, progress) -> None:
    """Q5's jobs in the study's pool: the teacher's labels after the weak teacher, then one chain per
    seed after that seed's `easy_sub` run (the strong student)."""
    teacher_run = study.run_dir("weak_teacher", None)
    jobs.add("q5/teacher", lambda: teacher_job(study, teacher_run), after=("weak_teacher",))
    size = sizes_of(study)
    cost = size.tasks * (size.epochs * 4 + size.strong_samples / 4)  # roughly, in the study's units (examples)
    progress.total_cost += cost * study.sizes.seeds
    for seed in range(study.sizes.seeds):
        jobs.add(f"q5/{seed}", lambda seed=seed: seed_job(study, seed, progress, cost),
                 after=("q5/teacher", f"easy_sub/{seed}"))


# ---------------------------------------------------------------------------------------------
# The report


def label_quality(study) -> dict[str, dict]:
    """The share of right labels: in the weak set, each seed's hybrid set (tasks kept, and right among
    them), and each seed's pairs (chosen right, rejected wrong), read from the files data_prep wrote."""
    out = {}
    weak_path = q5_dir(study, "data", "q5_weak_all.jsonl")
    if os.path.exists(weak_path):
        verdicts = [r["meta"]["correct"] for r in read_jsonl(weak_path)]
        out["weak"] = {"examples": len(verdicts), "right": sum(verdicts) / len(verdicts) if verdicts else None}
    for seed in range(study.sizes.seeds):
        for kind in ("hybrid", "pairs"):
            path = q5_dir(study, "data", f"q5_{kind}_seed{seed}.report.json")
            if os.path.exists(path):
                with open(path) as f:
                    out.setdefault(kind, []).append(json.load(f))
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


def report_lines(study, figure_dir: str) -> list[str]:
    """Q5's section of RESULTS.md: accuracies, label quality, PGR, all computed from the results; the
    figure goes to FIGURE_DIR/weak_to_strong.png (beside the report)."""
    results = [r for r in read_jsonl(study.results_path) if r["condition"] in CONDITIONS] if os.path.exists(study.results_path) else []
    summary = summarize(results)
    size = sizes_of(study)
    lines = ["", "## Q5. Does the strong student surpass its weak teacher without gold labels?", "",
             "Yang, Ma, Liu (2024), *Weak-to-Strong Reasoning*: a strong student learns from a weaker teacher's labels "
             "through agreement-selected SFT (stage I) and DPO on confidence-selected pairs (stage II), and beats naive "
             "SFT on the weak labels. Here: the weak teacher is the study's weak teacher; the strong student is each "
             f"seed's `easy_sub` model; {size.tasks} hard tasks the teacher never trained on are labelled; tests are the first "
             f"{size.test} / {max(1, size.test // 2)} problems of `miniworld` / `miniworld_long` (see experiments/weak_to_strong.py).",
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
            gaps = [(lambda g: "n/a" if g is None else f"{g['mean']:+.2f} ± {g['se']:.2f}" if g["n"] > 1 else f"{g['mean']:+.2f}")(
                pgr(summary, condition, seeds, steps=steps)) for steps in (False, True)]
        lines.append(f"| {LABELS[condition]} (`{condition}`) | {pct(main['mean'])} ± {pct(main['se'])} | "
                     f"{', '.join(pct(v) for v in main['values'])} | {pct(main['step']['mean'])} ± {pct(main['step']['se'])} | "
                     f"{pct(long['mean'])} ± {pct(long['se'])} | {gaps[0]} | {gaps[1]} |")
    quality = label_quality(study)
    lines += ["", "Label quality (gold read only to measure it; selection never reads it):", ""]
    if "weak" in quality:
        lines.append(f"- weak labels (the teacher's answers on the {quality['weak']['examples']} tasks): "
                     f"{pct(quality['weak']['right'])}% right")
    for report in quality.get("hybrid", []):
        icl = next((k for k in report["sources"] if k.startswith("icl")), None)
        lines.append(f"- stage I (`{icl}`): {report.get('agree', 0)} of {report['tasks']} tasks agree (weak-ICL answers "
                     f"right: {pct((report.get('first_sample_accuracy') or {}).get(icl))}%); labels of the kept tasks right: "
                     f"{pct(report.get('label_accuracy'))}%")
    for report in quality.get("pairs", []):
        rules = ", ".join(f"{k.split('/')[1]} {v}" for k, v in report.items() if k.startswith("pairs/"))
        lines.append(f"- stage II pairs (seed {report['seed']}): {report['pairs']} ({rules or 'none'}); chosen right "
                     f"{pct(report.get('chosen_right'))}%, rejected wrong {pct(report.get('rejected_wrong'))}%")
    figure = write_figure(summary, os.path.join(figure_dir, "weak_to_strong.png"))
    if figure:
        lines += ["", f"![Q5]({os.path.basename(figure)})"]
    dpo_rows = [r for r in results if r["condition"] == "q5_dpo" and "dpo" in r]
    if dpo_rows:
        lines.append("- DPO training: loss " + "; ".join(f"{r['dpo']['first_loss']:.3f} -> {r['dpo']['last_loss']:.3f}, "
                                                           f"rewards/accuracies {r['dpo']['rewards/accuracies']:.2f}" for r in dpo_rows))
    return lines


def write_figure(summary: dict, path: str) -> str | None:
    """Test accuracy (final answers, steps right) of every Q5 model, mean ± SE over seeds, each seed a dot."""
    plt = pyplot()
    if plt is None:
        return None
    names = [c for c in CONDITIONS if c in summary]
    if not names:
        return None
    fig, ax = plt.subplots(figsize=(10, 4.5))
    accuracy_bars(ax, summary, names, [LABELS[c].replace(": ", ":\n") for c in names], fontsize=7)
    ax.set_ylabel("test set %")
    ax.set_title("Q5: weak-to-strong reasoning in miniature", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
