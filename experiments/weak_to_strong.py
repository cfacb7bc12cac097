"""Q5 of the miniature: does the strong student surpass its weak teacher without gold labels?
(Yang, Ma, Liu 2024, "Weak-to-Strong Reasoning": agreement-selected SFT, then DPO on confidence pairs.)

Not a script of its own: experiments/mini_study.py calls `add_jobs(study, jobs, progress)` to put
Q5's jobs into its pool and `report_lines(study, figure_dir)` for its section of RESULTS.md. Everything
the section says is computed from results.jsonl and the files the jobs write.

The cast, all in the study's built-in world, every model seeded (seed s = 0..seeds-1):
- Weak teacher (`q5_teacher`, seed s): a `micro` model (dim 64, 1 layer, half the student's width)
  trained from scratch on the study's foundation set, then teacher_steps steps on the first half of
  the study's gold hard tasks (`gold_a`). Trained long enough, micro passes the student's ceiling, so
  the teacher is weak by its size *and* its budget; `q5_teacher_long` (seed 0 only, 2 x teacher_steps)
  shows in every run how far its budget holds it back.
- Weak-ICL stand-in (`q5_icl`, seed s): a model this small does not learn in context, so a second
  micro model stands in, made to err independently: another seed's micro stage 1 (seed s+1), its own
  training seed (1000+s), and the other half of the gold (`gold_b`, disjoint from the teacher's).
- Strong student: each seed's tiny stage-1 model (dim 128, 2 layers), the study's `stage1/seed s`. Its
  ceiling is the study's `hard_full/seed s` (the same student on the gold hard tasks, same budget).
- Latent-skill student (`q5_latent`, seed s): the same stage-1 model plus latent_steps steps on gold hard
  tasks of other operations (only latent_operations, "+-": no multiplication in a chain; drawn by
  data_prep.py into q5/latent_world, any pool, test or validation problem left out), a stage 1 the teacher
  never gets. It solves the 3-4 step tasks in part (gold of other lengths does not transfer: RESULTS.md's
  trials), so its own greedy answers can be stage I's second opinion, as the strong model's in-context
  answers are in GAIR's paper. Its ceiling is `q5_latent_ceiling` (the same student on the gold hard tasks,
  same budget); the micro stand-in's conditions stay as the control.
- Unlabelled pool: `pool` hard tasks drawn after the study's (data_prep.py draws hard tasks as one
  stream, so a larger --num-hard extends it): no model trains on them, none is a test problem, none is
  in the study's validation split (`data/validation.jsonl`, drawn further on; checked). Gold answers are
  read only to measure label quality, for the gold-chosen control and for the validation choice of DPO's
  settings.

Every SFT student gets the study's stage-2 budget (budget_steps) whatever its set's size, so that label
quality, not the number of examples seen, is what differs:
  q5_naive      SFT on every teacher label of the pool
  q5_stage1     stage I: `data_prep.py agree` keeps the tasks where the teacher's and the stand-in's
                answers agree; the student learns both responses (the hybrid set)
  q5_random     control: as many tasks as stage I kept, drawn at random, both responses (does the
                agreement select, or is a smaller set enough?)
  q5_stage1_r2  stage I's second round (rounds = 2), as GAIR's iter2 (below): the q5_stage1 model relabels the
                pool greedily, `data_prep.py agree` of its labels and the stand-in's (round 1's, reused) selects
                again, and the seed's stage-1 student (not the q5_stage1 model) trains on that hybrid set
  q5_dpo        stage II as GAIR's release builds it (w2s/data/selection/samples.py says how): the stage-I
                model samples strong_samples (10) solutions per pool task at temperature 1; `data_prep.py
                pairs` (confidence 0.6 / 0.8, up to max_pairs (3) pairs a task, as on the release's MATH)
                on the first pair_tasks tasks; DPO from the stage-I model (also the reference), dpo_epochs
                over the pairs
  q5_dpo_pool   control: stage II over the whole pool's pairs
  q5_dpo_gold   upper bound of stage II: on the same tasks and samples, chosen a gold-right response,
                rejected a wrong one (`gold_pairs`)
  q5_latent_naive   SFT on every teacher label of the pool, from the latent-skill student
  q5_latent_stage1  stage I with the latent-skill student's own greedy answers as the second opinion:
                    `data_prep.py agree` of the teacher's labels and the student's, both responses

GAIR's second round, as the release builds it (GAIR-NLP/weak-to-strong-reasoning, data/llama_factory/gsm8k; no
script in the release writes iter2, so this is read from its files): iter2's "weak" half is the round-1 stage-I
model's own zero-shot response (the same "Question: ... Answer:" prompt; the run scripts sample at temperature 0):
only 613 of its 4022 rows (llama2-7b weak model) equal the weak model's, against all 2683 of iter1's. Its second
opinion is the weak-ICL source again (the strong base model with the weak model's demonstrations): 1577 of the 2415
responses of tasks in both rounds are byte-identical to iter1's, the rest differ in wording. The rule is
construct_weak_icl_data's (answers agree, both responses). The release has no training script; its models are LoRA
adapters for the base Llama2-70b, iter2's as a single adapter (`ayyyq/llama2_70b_gsm8k_<weak>_iter2_hybrid`), which
reads as the second SFT starting from the original strong model (an adapter trained on the round-1 model would need
that model's adapter merged under it); so here it starts from the seed's stage-1 student. On GSM8K the release's
stage-II pairs (`iter2_hybrid_paired`) follow round 2 (here q5_dpo still follows round 1). The release's rounds,
counted from its full files with gold from data/raw/gsm8k/train_2.jsonl (RELEASE_ROUNDS): llama2-7b weak model,
iter1 2683 tasks (5,366 hybrid rows) with 90.0% of their labels right, iter2 4022 (8,044) with 87.0%: the second
round keeps 50% more tasks (268 of iter1's drop out) at labels 3 points less often right.

DPO's learning rate and beta are chosen on the study's validation split, on seed 0, from `grid`, and used for
every seed. PGR = (student - teacher) / (ceiling - teacher) per seed (Burns et al. 2023; each student against
its own ceiling); every mean and difference comes with runner.interval (seeds and the test set's sampling, the
teacher's included) and its values seed by seed. The calibration behind these sizes, and what they cost, are in
experiments/RESULTS.md ("Instruments under test", the trials, "Notes from the study scripts").
"""
import json
import math
import os
import random
import time
from dataclasses import dataclass, replace
from functools import partial

# experiments/ is on sys.path: mini_study imports this module
from runner import (TrainSettings, accuracy_bars, count_rows, decide, interval, marked_job,  # noqa: E402
                    not_a_script, outcomes_difference, outcomes_interval, pct, per_problem_test_variance, pyplot,
                    save_figure, seed_runs, summarize)
from w2s.data.jsonl import read_jsonl, write_jsonl
from w2s.data.rows import pair_row, user_message
from w2s.data.selection.samples import hybrid_row, stated_answers
from w2s.grader import grade

TESTS = ("miniworld", "miniworld_long")  # the test files the larger world must share with the study's
TEACHER = "q5_teacher"
TEACHER_LONG = "q5_teacher_long"  # the plateau check: seed 0 only
ICL = "q5_icl"
BASE = "stage1"  # the study's runs, reused
CEILING = "hard_full"
NAIVE, STAGE1, RANDOM = "q5_naive", "q5_stage1", "q5_random"
STAGE1_R2 = "q5_stage1_r2"
ROUNDS = (STAGE1, STAGE1_R2)  # stage I's model after each round (Sizes.rounds of them)
# The release's GSM8K hybrid sets, llama2-7b weak model (rows, share of their labels right against gold): the
# module docstring says how they were counted.
RELEASE_ROUNDS = ((5366, 0.900), (8044, 0.870))
DPO, DPO_POOL, DPO_GOLD = "q5_dpo", "q5_dpo_pool", "q5_dpo_gold"
STUDENTS = (NAIVE, RANDOM, STAGE1, STAGE1_R2, DPO, DPO_POOL, DPO_GOLD)
LATENT, LATENT_NAIVE = "q5_latent", "q5_latent_naive"  # the latent-skill student and its students
LATENT_STAGE1, LATENT_CEILING = "q5_latent_stage1", "q5_latent_ceiling"
LATENT_STUDENTS = (LATENT_NAIVE, LATENT_STAGE1)
CONDITIONS = (TEACHER, TEACHER_LONG, ICL, BASE, *STUDENTS, CEILING, LATENT, *LATENT_STUDENTS, LATENT_CEILING)
CEILING_OF = {**{c: CEILING for c in (BASE, *STUDENTS)}, **{c: LATENT_CEILING for c in (LATENT, *LATENT_STUDENTS)}}
LABELS = {TEACHER: "weak teacher (micro, half the gold)", TEACHER_LONG: "weak teacher at 2x its budget (seed 0)",
          ICL: "weak-ICL stand-in (micro, other half, other seed)",
          BASE: "strong student before weak supervision (stage 1)",
          NAIVE: "(a) naive SFT on all weak labels", RANDOM: "control: random subset, stage I's size",
          STAGE1: "(b) stage I: agreement-selected hybrid SFT",
          STAGE1_R2: "(b2) stage I, round 2: the stage-I model relabels, agreement again",
          DPO: "(c) stage I + stage II DPO", DPO_POOL: "control: stage II over the whole pool",
          DPO_GOLD: "upper bound: DPO, gold-right chosen",
          CEILING: "ceiling: the student on gold",
          LATENT: "latent-skill student: stage 1 + gold with + and - only", LATENT_NAIVE: "(a') its naive SFT",
          LATENT_STAGE1: "(b') its stage I: teacher and its own answers agree",
          LATENT_CEILING: "its ceiling: the latent-skill student on gold"}
SHORT = {TEACHER: "weak teacher", TEACHER_LONG: "teacher 2x", ICL: "stand-in", BASE: "stage 1",
         NAIVE: "(a) naive", RANDOM: "random", STAGE1: "(b) stage I", STAGE1_R2: "(b2) round 2", DPO: "(c) +DPO",
         DPO_POOL: "DPO pool", DPO_GOLD: "DPO gold", CEILING: "ceiling", LATENT: "latent", LATENT_NAIVE: "(a') naive",
         LATENT_STAGE1: "(b') stage I", LATENT_CEILING: "latent ceiling"}
# (a - b, the paper's expected sign): every comparison the section decides.
COMPARISONS = ((STAGE1, NAIVE, 1), (STAGE1, RANDOM, 1), (STAGE1_R2, STAGE1, 1), (DPO, STAGE1, 1),
               (DPO, DPO_GOLD, -1), (DPO_POOL, DPO, 1), (DPO, TEACHER, 1),
               (LATENT_STAGE1, LATENT_NAIVE, 1), (LATENT_STAGE1, TEACHER, 1), (LATENT_NAIVE, TEACHER, 1))


@dataclass(frozen=True)
class Sizes:
    pool: int  # unlabelled hard tasks that both sources label
    pair_tasks: int  # stage II: the first pair_tasks of the pool (the whole pool for q5_dpo_pool)
    strong_samples: int  # stage II: the stage-I model's samples per pool task
    teacher_steps: int  # each weak source: gold steps after its micro stage 1
    grid: tuple  # DPO's (lr, beta) settings tried on seed 0
    dpo_epochs: int
    latent_steps: int  # the latent-skill student: gold steps on hard tasks of latent_operations after stage 1
    latent_tasks: int  # such gold tasks drawn for it
    latent_operations: str = "+-"  # their operations (the study's tasks also multiply)
    max_pairs: int = 3  # stage II's pairs per task at most (the release's MATH and OlympicArena)
    micro_lr: float = 3e-3  # micro's stage 1 and gold steps
    control_seeds: int | None = None  # the controls (random subset, whole pool, gold-chosen) on the first
    # this many seeds only (None: every seed); the comparisons pair whatever seeds both sides have
    label_temperature: float = 0.0  # both sources' labels: greedy (smoke: 1, as untrained models answer
    # nothing greedily; at toy size no task may agree, and stages I and II are then skipped)
    rounds: int = 2  # stage I's rounds, 1 or 2 (len(ROUNDS)): GAIR's release has iter1 and iter2


# pool 6000 and 10 samples a task: the stage-I model's pairs run at about 0.6 a task (RESULTS.md, "Instruments
# under test"), so stage II has thousands. dpo_epochs 2: two passes over them. The grid spans lr 1e-5..3e-4
# (1/300..1/10 of stage 2's 3e-3): gold-chosen DPO is harmless only at the low end (RESULTS.md, the sanity gate).
FULL = Sizes(pool=6000, pair_tasks=3000, strong_samples=10, teacher_steps=1000,
             grid=((1e-5, 0.1), (3e-5, 0.1), (1e-4, 0.1), (3e-4, 0.1), (3e-5, 1.0), (1e-4, 1.0)),
             dpo_epochs=2, latent_steps=150, latent_tasks=4000)
SMOKE = Sizes(pool=24, pair_tasks=12, strong_samples=4, teacher_steps=2, grid=((3e-4, 0.1), (1e-3, 0.1)),
              dpo_epochs=1, latent_steps=2, latent_tasks=16, label_temperature=1.0)


def sizes_of(study) -> Sizes:
    return SMOKE if study.sizes.max_steps else FULL


def budget_steps(study) -> int:
    """The study's stage-2 budget in optimizer steps: every Q5 SFT student trains this long, as long as
    the ceiling (hard_full) did."""
    s = study.sizes
    return s.max_steps or s.stage2_steps


def q5_dir(study, *parts: str) -> str:
    return os.path.join(study.out, "q5", *parts)


# ---------------------------------------------------------------------------------------------
# Pure selections (tested in tests/test_weak_to_strong.py)


def random_hybrid(rows_a: list[dict], rows_b: dict[str, dict], k: int, seed: int, source_a: str,
                  source_b: str) -> list[dict]:
    """The random-subset control of stage I: k tasks drawn at random (by seed) among those where both
    sources state an answer (as agreement needs), both responses, each labelled with its own answer."""
    answered = [(row, rows_b[row["id"]]) for row in rows_a
                if stated_answers(row)[0] is not None and stated_answers(rows_b[row["id"]])[0] is not None]
    chosen = random.Random(f"random_hybrid/{seed}").sample(answered, min(k, len(answered)))
    out = []
    for a, b in chosen:
        out += [hybrid_row(a, a["samples"][0], source_a, stated_answers(a)[0]),
                hybrid_row(a, b["samples"][0], source_b, stated_answers(b)[0])]
    return out


def gold_pairs(strong: list[dict], weak: dict[str, dict], seed: int) -> list[dict]:
    """Stage II's upper bound: per task, chosen a gold-right response and rejected a wrong one (a sample
    whose answer is wrong or missing), both drawn by (seed, task id) from the strong samples and the
    weak response; a task with no right or no wrong response gives no pair. Reads gold: a control."""
    out = []
    for row in strong:
        if "answer" not in row:
            continue
        texts = [t for t in [weak[row["id"]]["samples"][0], *row["samples"]] if t.strip()]
        texts = list(dict.fromkeys(texts))  # a repeated text would make a repeated pair
        right = [t for t in texts if grade(t, row["answer"])]
        wrong = [t for t in texts if not grade(t, row["answer"])]
        if right and wrong:
            rng = random.Random(f"gold_pairs/{seed}/{row['id']}")
            out.append(pair_row(f"{row['id']}/g0", user_message(row["problem"]), rng.choice(right), rng.choice(wrong),
                                task_id=row["id"], rule="gold_chosen"))
    return out


def pgr_outcomes(student: list[int], teacher: list[int], ceiling: list[int]) -> list[float]:
    """One seed's per-problem terms of PGR, linearized (delta method) around its accuracies S, T, C:
    d/dS = 1/(C-T), d/dT = (S-C)/(C-T)^2, d/dC = -(S-T)/(C-T)^2. Their test-set variance
    (runner.per_problem_test_variance) is PGR's, the teacher's test error included."""
    n = len(student)
    s, t, c = sum(student) / n, sum(teacher) / n, sum(ceiling) / n
    gap = c - t
    return [x / gap + y * (s - c) / gap ** 2 - z * (s - t) / gap ** 2 for x, y, z in zip(student, teacher, ceiling)]


# ---------------------------------------------------------------------------------------------
# Inputs: the pool, the validation bench, the two halves of the gold


def prepare_pool(study) -> None:
    """q5/tasks.jsonl (the pool), q5/pair_tasks.jsonl (its first pair_tasks) and q5/gold_a|gold_b.jsonl
    (the study's gold hard tasks in two disjoint halves). The pool is drawn by data_prep.py as the
    continuation of the study's hard tasks; checked to extend them, to share its tests and to share no
    problem with the validation split."""
    size, s = sizes_of(study), study.sizes
    if os.path.exists(q5_dir(study, "gold_b.jsonl")) and os.path.exists(latent_gold_path(study)):
        return
    world = q5_dir(study, "world")
    study.run("data_prep", ["world", "--out", world, "--num-hard", str(s.num_hard + size.pool),
                            "--num-foundation", "0", "--num-test", str(s.num_test),
                            "--num-long-test", str(s.num_long_test), "--hard-steps", s.hard_steps,
                            "--long-steps", s.long_steps, "--sets", "hard_full"],
              q5_dir(study, "data_prep.log"))
    tasks = read_jsonl(os.path.join(world, "tasks", "hard_full.jsonl"))
    study_tasks = read_jsonl(os.path.join(study.data_dir, "tasks", "hard_full.jsonl"))
    if [t["problem"] for t in tasks[:len(study_tasks)]] != [t["problem"] for t in study_tasks]:
        raise RuntimeError(f"{world}: the larger world does not begin with the study's hard tasks")
    for bench in TESTS:
        ours, theirs = (os.path.join(d, "test", f"{bench}.jsonl") for d in (world, study.data_dir))
        if read_jsonl(ours) != read_jsonl(theirs):
            raise RuntimeError(f"{world}: its {bench} test differs from the study's")
    pool = tasks[len(study_tasks):]
    validation = {t["problem"] for t in read_jsonl(study.validation_path)}
    if any(t["problem"] in validation for t in pool):
        raise RuntimeError(f"{world}: the pool reaches into the validation split; draw a smaller pool")
    write_jsonl(q5_dir(study, "tasks.jsonl"), pool)
    write_jsonl(q5_dir(study, "pair_tasks.jsonl"), pool[:size.pair_tasks])
    gold = read_jsonl(study.set_path("hard_full"))
    write_jsonl(q5_dir(study, "gold_a.jsonl"), gold[:len(gold) // 2])
    write_jsonl(q5_dir(study, "gold_b.jsonl"), gold[len(gold) // 2:])
    prepare_latent_gold(study, {t["problem"] for t in study_tasks + pool} | validation)


def latent_gold_path(study) -> str:
    return q5_dir(study, "latent_gold.jsonl")


def prepare_latent_gold(study, seen: set[str]) -> None:
    """The latent-skill student's gold: latent_tasks solved hard tasks that use only latent_operations, in a
    world of its own, less any problem in `seen` (the study's hard tasks, the pool, the validation split) or
    its test (q5/latent_gold.json says how many were left out)."""
    size, s, world = sizes_of(study), study.sizes, q5_dir(study, "latent_world")
    study.run("data_prep", ["world", "--out", world, "--num-hard", str(size.latent_tasks), "--num-foundation", "0",
                            "--num-test", "1", "--num-long-test", "1", "--hard-steps", s.hard_steps,
                            "--long-steps", s.long_steps, "--operations", size.latent_operations,
                            "--sets", "hard_full"],
              q5_dir(study, "data_prep.log"))
    seen = seen | {t["problem"] for t in read_jsonl(os.path.join(study.data_dir, "test", f"{TESTS[0]}.jsonl"))}
    problems = {t["id"]: t["problem"] for t in read_jsonl(os.path.join(world, "tasks", "hard_full.jsonl"))}
    rows = read_jsonl(os.path.join(world, "hard_full.jsonl"))
    kept = [r for r in rows if problems[r["meta"]["task_id"]] not in seen]
    write_jsonl(latent_gold_path(study), kept)
    with open(q5_dir(study, "latent_gold.json"), "w") as f:
        json.dump({"tasks": len(rows), "left_out": len(rows) - len(kept), "operations": size.latent_operations}, f)


# ---------------------------------------------------------------------------------------------
# Commands


def sample(study, model: str, tasks: str, out: str, n: int, temperature: float, seed: int) -> str:
    """The study's sample.py; OUT.done marks a finished file for a rerun."""
    if not os.path.exists(out + ".done"):
        study.sample(model, tasks, out, n, temperature, seed, out + ".log")
        open(out + ".done", "w").close()
    return out


def data_prep(study, command: str, *argv: str) -> None:
    study.run("data_prep", [command, "--out", q5_dir(study, "data"), *argv], q5_dir(study, "data_prep.log"))


def set_path(study, name: str) -> str:
    return q5_dir(study, "data", f"{name}.jsonl")


def train(study, data: str, out: str, seed: int, init: str, steps: int,
          settings: TrainSettings = TrainSettings()) -> str:
    """The study's train.py for exactly `steps` optimizer steps at its batch size: as many epochs over
    `data` as that takes (the schedule spans the steps)."""
    batch_size = study.sizes.batch_size
    epochs = max(1, math.ceil(steps * batch_size / max(count_rows(data), 1)))
    return study.train(data, out, seed, init, replace(settings, max_steps=steps, epochs=epochs, batch_size=batch_size))


def micro(study) -> TrainSettings:
    """The weak sources' model: the micro preset at its own learning rate."""
    return TrainSettings(lr=sizes_of(study).micro_lr, model="micro")


def run_dir(study, condition: str, seed: int | None) -> str:
    return q5_dir(study, "runs", condition if seed is None else f"{condition}/seed{seed}")


def evaluate(study, condition: str, seed: int | None, started: float) -> None:
    """The study's evaluation (its full test sets) and results row."""
    path = run_dir(study, condition, seed)
    study.record(condition, seed, path, study.evaluate(path), time.time() - started)


def evaluate_val(study, model_dir: str) -> float:
    """Accuracy on the study's validation split (greedy, its token limit), kept in MODEL_DIR/val/."""
    out = os.path.join(model_dir, "val")
    summary = os.path.join(out, "summary.json")
    if not os.path.exists(summary):
        study.run("evaluate", ["--model", os.path.join(model_dir, "final"), "--bench", study.validation_path,
                               "--out", out, "--batch-size", "256", "--max-new-tokens", str(study.sizes.max_new_tokens),
                               "--quiet"], os.path.join(model_dir, "val.log"))
    with open(summary) as f:
        return json.load(f)[os.path.splitext(os.path.basename(study.validation_path))[0]]["accuracy"]


def dpo(study, pairs: str, out: str, seed: int, init: str, lr: float, beta: float) -> bool:
    """train.py --objective dpo from INIT (also the reference), dpo_epochs over the pairs; False when
    there is no pair."""
    rows = count_rows(pairs)
    if not rows:
        return False
    steps = max(1, math.ceil(sizes_of(study).dpo_epochs * rows / study.sizes.batch_size))
    train(study, pairs, out, seed, init, steps, TrainSettings(lr=lr, extra=("--objective", "dpo", "--beta", str(beta))))
    return True


# ---------------------------------------------------------------------------------------------
# Jobs


def has_controls(study, seed: int) -> bool:
    n = sizes_of(study).control_seeds
    return n is None or seed < n


def micro_stage1(study, seed: int) -> str:
    """A micro model from scratch on the study's foundation set (stage 1's epochs and batch)."""
    return study.train(study.set_path("foundation"), q5_dir(study, "runs", "micro_stage1", f"seed{seed}"), seed, None,
                       micro(study))


def weak_sources(study, seed: int) -> str:
    """Seed s's two weak sources: trained, evaluated, their labels on the pool; the naive set, stage
    I's hybrid set and its random-size control. Returns a note for the job's done line."""
    size, n = sizes_of(study), study.sizes.seeds
    tasks = q5_dir(study, "tasks.jsonl")
    labels = {}
    sources = ((TEACHER, "gold_a", seed, seed), (ICL, "gold_b", (seed + 1) % n, 1000 + seed))
    for condition, gold, init_seed, train_seed in sources:
        t0 = time.time()
        model = train(study, q5_dir(study, f"{gold}.jsonl"), run_dir(study, condition, seed), train_seed,
                      micro_stage1(study, init_seed), size.teacher_steps, micro(study))
        evaluate(study, condition, seed, t0)
        labels[condition] = sample(study, model, tasks, q5_dir(study, "labels", f"{condition}_seed{seed}.jsonl"), 1,
                                   size.label_temperature, seed)
    data_prep(study, "from-samples", labels[TEACHER], "--name", f"{NAIVE}_seed{seed}")
    data_prep(study, "agree", labels[TEACHER], labels[ICL], "--name", f"{STAGE1}_seed{seed}")
    with open(q5_dir(study, "data", f"{STAGE1}_seed{seed}.report.json")) as f:
        agreed = json.load(f).get("agree", 0)
    teacher_rows = read_jsonl(labels[TEACHER])
    rows = random_hybrid(teacher_rows, {r["id"]: r for r in read_jsonl(labels[ICL])}, agreed, seed, "teacher", "icl")
    write_jsonl(set_path(study, f"{RANDOM}_seed{seed}"), rows)
    gold = {r["id"]: r["answer"] for r in teacher_rows}
    right = [grade(r["messages"][-1]["content"], gold[r["meta"]["task_id"]])
             for r in rows if r["meta"]["source"] == "teacher"]
    with open(q5_dir(study, "data", f"{RANDOM}_seed{seed}.report.json"), "w") as f:
        json.dump({"tasks": len(right), "label_accuracy": sum(right) / len(right) if right else None}, f)
    return f" ({agreed} tasks agree)"


def students(study, seed: int) -> None:
    """Seed s's SFT students (naive, stage I, random control), then the stage-I model's samples of the
    pool and the three pair sets of stage II."""
    size, steps = sizes_of(study), budget_steps(study)
    student = os.path.join(study.run_dir(BASE, seed), "final")
    for condition in (NAIVE, STAGE1, RANDOM) if has_controls(study, seed) else (NAIVE, STAGE1):
        data = set_path(study, f"{condition}_seed{seed}")
        if count_rows(data):  # stage I and its control need agreeing answers (none at toy size)
            t0 = time.time()
            train(study, data, run_dir(study, condition, seed), seed, student, steps)
            evaluate(study, condition, seed, t0)
    stage1 = os.path.join(run_dir(study, STAGE1, seed), "final")
    if os.path.exists(stage1):
        # the whole pool only for a seed with controls (q5_dpo_pool's pairs)
        tasks = q5_dir(study, "tasks.jsonl" if has_controls(study, seed) else "pair_tasks.jsonl")
        strong = sample(study, stage1, tasks, q5_dir(study, "labels", f"strong_seed{seed}.jsonl"), size.strong_samples,
                        1.0, seed)
        weak = q5_dir(study, "labels", f"{TEACHER}_seed{seed}.jsonl")
        rows = read_jsonl(strong)
        first = q5_dir(study, "labels", f"strong_seed{seed}_first.jsonl")
        write_jsonl(first, rows[:size.pair_tasks])
        pairs = ("--weak", weak, "--seed", str(seed), "--max-pairs", str(size.max_pairs))
        data_prep(study, "pairs", first, *pairs, "--name", f"{DPO}_seed{seed}")
        if has_controls(study, seed):
            data_prep(study, "pairs", strong, *pairs, "--name", f"{DPO_POOL}_seed{seed}")
            pairs = gold_pairs(rows[:size.pair_tasks], {r["id"]: r for r in read_jsonl(weak)}, seed)
            write_jsonl(set_path(study, f"{DPO_GOLD}_seed{seed}"), pairs)


def latent_student(study, seed: int) -> None:
    """Seed s's latent-skill student (its stage 1 + gold of other lengths), evaluated, and its own greedy
    answers on the pool: stage I's second opinion."""
    size, t0 = sizes_of(study), time.time()
    model = train(study, latent_gold_path(study), run_dir(study, LATENT, seed), seed,
                  os.path.join(study.run_dir(BASE, seed), "final"), size.latent_steps)
    evaluate(study, LATENT, seed, t0)
    sample(study, model, q5_dir(study, "tasks.jsonl"), q5_dir(study, "labels", f"{LATENT}_seed{seed}.jsonl"), 1,
           size.label_temperature, seed)


def latent_students(study, seed: int) -> None:
    """Seed s's SFT students from the latent-skill student, each at the study's budget: naive SFT on the
    teacher's labels, stage I with its own answers as the second opinion, and its ceiling on gold."""
    teacher = q5_dir(study, "labels", f"{TEACHER}_seed{seed}.jsonl")
    own = q5_dir(study, "labels", f"{LATENT}_seed{seed}.jsonl")
    data_prep(study, "agree", teacher, own, "--name", f"{LATENT_STAGE1}_seed{seed}")
    student = os.path.join(run_dir(study, LATENT, seed), "final")
    for condition, data in ((LATENT_NAIVE, set_path(study, f"{NAIVE}_seed{seed}")),
                            (LATENT_STAGE1, set_path(study, f"{LATENT_STAGE1}_seed{seed}")),
                            (LATENT_CEILING, study.set_path(CEILING))):
        if count_rows(data):  # stage I needs agreeing answers (none at toy size)
            t0 = time.time()
            train(study, data, run_dir(study, condition, seed), seed, student, budget_steps(study))
            evaluate(study, condition, seed, t0)


def later_rounds(study, seed: int) -> str:
    """Seed s's stage I after round 1, as GAIR's iter2: the previous round's model relabels the pool (one greedy
    answer a task, as the release's run scripts sample), `data_prep.py agree` of its labels and the stand-in's
    (round 1's, reused) selects, and the seed's stage-1 student trains on that hybrid set at the study's budget.
    Returns a note for the job's done line."""
    size = sizes_of(study)
    if not 1 <= size.rounds <= len(ROUNDS):
        raise ValueError(f"Q5: rounds must be 1 to {len(ROUNDS)}, got {size.rounds}")
    stand_in = q5_dir(study, "labels", f"{ICL}_seed{seed}.jsonl")
    student = os.path.join(study.run_dir(BASE, seed), "final")
    agreed = []
    for previous, condition in zip(ROUNDS, ROUNDS[1:size.rounds]):
        model = os.path.join(run_dir(study, previous, seed), "final")
        if not os.path.exists(model):  # the previous round had no agreeing task (toy size)
            break
        labels = sample(study, model, q5_dir(study, "tasks.jsonl"),
                        q5_dir(study, "labels", f"{previous}_seed{seed}.jsonl"), 1, size.label_temperature, seed)
        data_prep(study, "agree", labels, stand_in, "--name", f"{condition}_seed{seed}")
        data = set_path(study, f"{condition}_seed{seed}")
        agreed.append(str(count_rows(data) // 2))  # two rows a task: both responses
        if count_rows(data):
            t0 = time.time()
            train(study, data, run_dir(study, condition, seed), seed, student, budget_steps(study))
            evaluate(study, condition, seed, t0)
    return f" ({', '.join(agreed)} tasks agree)" if agreed else " (no stage-I model to relabel)"


def grid_job(study, progress, cost: float) -> None:
    """DPO's (lr, beta) by validation accuracy: each setting on seed 0's stage-II pairs, from seed 0's
    stage-I model; q5/grid.json keeps every number and the choice (the first of the grid when seed 0
    has no stage-I model or no pair)."""
    size, path = sizes_of(study), q5_dir(study, "grid.json")
    if os.path.exists(path):
        progress.add(cost, skipped=True)
        return
    started = time.time()
    progress.log("start  Q5 DPO grid (seed 0, validation split)")
    result = {"settings": [], "chosen": list(size.grid[0]), "stage1_val": None}
    stage1 = run_dir(study, STAGE1, 0)
    if os.path.exists(os.path.join(stage1, "final")) and count_rows(set_path(study, f"{DPO}_seed0")):
        result["stage1_val"] = evaluate_val(study, stage1)
        for lr, beta in size.grid:
            out = q5_dir(study, "runs", "grid", f"lr{lr}_beta{beta}")
            dpo(study, set_path(study, f"{DPO}_seed0"), out, 0, os.path.join(stage1, "final"), lr, beta)
            result["settings"].append({"lr": lr, "beta": beta, "val": evaluate_val(study, out)})
        best = max(result["settings"], key=lambda r: r["val"])  # the first of equals
        result["chosen"] = [best["lr"], best["beta"]]
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
    progress.add(cost)
    progress.log(f"done   Q5 DPO grid in {time.time() - started:.0f} s: "
                 f"lr {result['chosen'][0]}, beta {result['chosen'][1]}")


def stage_two(study, seed: int) -> None:
    """Seed s's stage II, its whole-pool control and its gold-chosen upper bound, at the grid's choice."""
    with open(q5_dir(study, "grid.json")) as f:
        lr, beta = json.load(f)["chosen"]
    stage1 = os.path.join(run_dir(study, STAGE1, seed), "final")
    if os.path.exists(stage1):
        for condition in (DPO, DPO_POOL, DPO_GOLD) if has_controls(study, seed) else (DPO,):
            t0 = time.time()
            pairs = set_path(study, f"{condition}_seed{seed}")
            if dpo(study, pairs, run_dir(study, condition, seed), seed, stage1, lr, beta):
                evaluate(study, condition, seed, t0)


def plateau_job(study, progress, cost: float) -> None:
    """The plateau check: seed 0's teacher again at twice its budget (from the same micro stage 1, on the
    same gold half). Close to the teacher: its size limits it; well above: its budget does."""
    if os.path.exists(os.path.join(run_dir(study, TEACHER_LONG, 0), "eval", "summary.json")):
        progress.add(cost, skipped=True)
        return
    started, size = time.time(), sizes_of(study)
    train(study, q5_dir(study, "gold_a.jsonl"), run_dir(study, TEACHER_LONG, 0), 0, micro_stage1(study, 0),
          2 * size.teacher_steps, micro(study))
    evaluate(study, TEACHER_LONG, 0, started)
    progress.add(cost)
    progress.log(f"done   Q5 plateau check (teacher at 2x its budget) in {time.time() - started:.0f} s")


def micro_job(study, seed: int, progress, cost: float) -> None:
    if os.path.exists(os.path.join(q5_dir(study, "runs", "micro_stage1", f"seed{seed}"), "final", "config.json")):
        progress.add(cost, skipped=True)
        return
    started = time.time()
    micro_stage1(study, seed)
    progress.add(cost)
    progress.log(f"done   Q5 micro stage 1, seed {seed} in {time.time() - started:.0f} s")


def costs(study) -> dict[str, float]:
    """Q5's shares of the study's ETA in its units (tiny examples trained on; a sample counts 1/4,
    a micro example 1/4 of a tiny one)."""
    size, s = sizes_of(study), study.sizes
    micro = s.num_foundation * 0.6 / 4
    weak = 2 * size.teacher_steps * s.batch_size / 4 + 2 * size.pool / 16
    sft = 3 * budget_steps(study) * s.batch_size + size.pool * size.strong_samples / 4
    dpo_cost = 3 * size.dpo_epochs * size.pair_tasks * 2  # the pool's pairs: about twice the first's
    latent = size.latent_steps * s.batch_size + size.pool / 16
    rounds = (size.rounds - 1) * (budget_steps(study) * s.batch_size + size.pool / 16)
    return {"micro": micro, "weak": weak, "sft": sft, "grid": len(size.grid) * dpo_cost / 3, "dpo": dpo_cost,
            "latent": latent, "latent_sft": 3 * budget_steps(study) * s.batch_size, "rounds": rounds}


def add_jobs(study, jobs, progress) -> None:
    """Q5's jobs in the study's pool: the pool and each seed's micro stage 1 after the data; each seed's weak sources
    (its own and the next seed's micro stage 1); its SFT students after its stage 1; the grid after seed
    0's students; each seed's stage II after the grid; each seed's latent-skill student after its stage 1 and
    its students after the teacher's labels; each seed's later rounds of stage I after its students; the plateau
    check last."""
    c, n = costs(study), study.sizes.seeds
    progress.total_cost += n * (c["micro"] + c["weak"] + c["sft"] + c["dpo"] + c["latent"] + c["latent_sft"]
                                + c["rounds"])
    progress.total_cost += c["grid"] + c["weak"]
    jobs.add("q5/pool", lambda: prepare_pool(study), after=("data",))  # once: the weak jobs run side by side
    for seed in range(n):
        jobs.add(f"q5/micro/{seed}", lambda seed=seed: micro_job(study, seed, progress, c["micro"]), after=("data",))
    for seed in range(n):  # a job's marker file says it is done
        jobs.add(f"q5/weak/{seed}", partial(marked_job, progress, c["weak"],
                                            set_path(study, f"{RANDOM}_seed{seed}") + ".done",
                                            f"Q5 weak sources, seed {seed}", partial(weak_sources, study, seed)),
                 after=("q5/pool", f"q5/micro/{seed}", f"q5/micro/{(seed + 1) % n}"))
        jobs.add(f"q5/sft/{seed}", partial(marked_job, progress, c["sft"], q5_dir(study, f"sft_seed{seed}.done"),
                                           f"Q5 students, seed {seed}", partial(students, study, seed)),
                 after=(f"q5/weak/{seed}", f"stage1/{seed}"))
        jobs.add(f"q5/latent/{seed}", partial(marked_job, progress, c["latent"],
                                              q5_dir(study, f"latent_seed{seed}.done"),
                                              f"Q5 latent-skill student, seed {seed}",
                                              partial(latent_student, study, seed)),
                 after=("q5/pool", f"stage1/{seed}"))
        jobs.add(f"q5/latent_sft/{seed}", partial(marked_job, progress, c["latent_sft"],
                                                  q5_dir(study, f"latent_sft_seed{seed}.done"),
                                                  f"Q5 latent-skill students, seed {seed}",
                                                  partial(latent_students, study, seed)),
                 after=(f"q5/latent/{seed}", f"q5/weak/{seed}"))
        if sizes_of(study).rounds > 1:
            jobs.add(f"q5/rounds/{seed}", partial(marked_job, progress, c["rounds"],
                                                  q5_dir(study, f"rounds_seed{seed}.done"),
                                                  f"Q5 stage I's later rounds, seed {seed}",
                                                  partial(later_rounds, study, seed)),
                     after=(f"q5/sft/{seed}",))
    jobs.add("q5/grid", lambda: grid_job(study, progress, c["grid"]), after=("q5/sft/0",))
    for seed in range(n):
        jobs.add(f"q5/dpo/{seed}", partial(marked_job, progress, c["dpo"], q5_dir(study, f"dpo_seed{seed}.done"),
                                           f"Q5 stage II, seed {seed}", partial(stage_two, study, seed)),
                 after=(f"q5/sft/{seed}", "q5/grid"))
    # last: it fills a gap
    jobs.add("q5/plateau", lambda: plateau_job(study, progress, c["weak"]), after=("q5/pool", "q5/micro/0"))


# ---------------------------------------------------------------------------------------------
# The report


def runs_by_seed(results: list[dict], condition: str, bench: str = "miniworld") -> dict[int, list[int]]:
    """seed -> per-problem outcomes of the condition's runs (the study's rows carry them)."""
    return {s: run["outcomes"] for s, run in seed_runs(results, condition, bench).items() if s is not None}


def pgr_values(student: dict, teacher: dict, ceiling: dict) -> dict[int, float]:
    """seed -> PGR, (S - T) / (C - T), over the seeds all three have and whose ceiling differs from the teacher."""
    seeds = [s for s in sorted(set(student) & set(teacher) & set(ceiling)) if sum(ceiling[s]) != sum(teacher[s])]
    acc = lambda runs, s: sum(runs[s]) / len(runs[s])  # noqa: E731
    return {s: (acc(student, s) - acc(teacher, s)) / (acc(ceiling, s) - acc(teacher, s)) for s in seeds}


def pgr_interval(student: dict, teacher: dict, ceiling: dict):
    """PGR per seed, (S - T) / (C - T), with its interval (seeds, and the test-set error of all three)."""
    values = pgr_values(student, teacher, ceiling)
    if not values:
        return None
    terms = [pgr_outcomes(student[s], teacher[s], ceiling[s]) for s in values]
    return interval(list(values.values()), per_problem_test_variance(terms))


def _acc(iv) -> str:
    if iv is None:
        return "not run"
    return f"{pct(iv.mean)} ({' to '.join(pct(x) for x in iv.accuracy_bounds())})"


def _report(study, name: str) -> dict | None:
    path = q5_dir(study, "data", f"{name}.report.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def label_quality_lines(study) -> list[str]:
    """Per seed: the teacher's labels right, agreement (count, agreed labels right), the random control's
    labels right, each pair set's chosen right / rejected wrong; from the files the jobs wrote."""
    lines = []
    for seed in range(study.sizes.seeds):
        parts = []
        for condition, who in ((TEACHER, "teacher"), (ICL, "stand-in"),
                               (STAGE1, "stage-I model (round 2's relabeller)"), (LATENT, "latent-skill student")):
            labels = q5_dir(study, "labels", f"{condition}_seed{seed}.jsonl")
            if os.path.exists(labels + ".done"):
                verdicts = [r["correct"][0] for r in read_jsonl(labels)]  # sample.py's grader verdicts
                parts.append(f"{who}'s labels right {pct(sum(verdicts) / len(verdicts))}% of {len(verdicts)}")
        if (hybrid := _report(study, f"{STAGE1}_seed{seed}")) is not None:
            parts.append(f"agree on {hybrid.get('agree', 0)} tasks, "
                         f"agreed labels right {pct(hybrid.get('label_accuracy'))}%")
        if (own := _report(study, f"{LATENT_STAGE1}_seed{seed}")) is not None:
            parts.append(f"teacher and latent-skill student agree on {own.get('agree', 0)} tasks, "
                         f"agreed labels right {pct(own.get('label_accuracy'))}%")
        if (control := _report(study, f"{RANDOM}_seed{seed}")) is not None:
            parts.append(f"random subset's teacher labels right {pct(control.get('label_accuracy'))}%")
        for name, what in ((DPO, "stage II pairs"), (DPO_POOL, "whole-pool pairs")):
            if (pairs := _report(study, f"{name}_seed{seed}")) is not None:
                parts.append(f"{what} {pairs['pairs']} (chosen right {pct(pairs.get('chosen_right'))}%, "
                             f"rejected wrong {pct(pairs.get('rejected_wrong'))}%)")
        gold = set_path(study, f"{DPO_GOLD}_seed{seed}")
        if os.path.exists(gold):
            parts.append(f"gold-chosen pairs {count_rows(gold)}")
        if parts:
            lines.append(f"- seed {seed}: " + "; ".join(parts))
    return lines


def rounds_table(reports: list[dict[int, dict]], runs: list[dict[int, list[int]]]) -> list[str]:
    """Stage I round by round, beside the release's GSM8K rounds (RELEASE_ROUNDS): who labelled the pool, the
    tasks agreed and the hybrid rows, the agreed labels' share right against gold (measured, never used to
    select), and the student's test accuracy; means and seed by seed. reports[r]: round r+1's `data_prep.py
    agree` reports by seed; runs[r]: its student's test outcomes by seed."""
    lines = ["| round | pool relabelled by | tasks agreed (by seed) | hybrid rows, mean | agreed labels right % "
             "(by seed) | student test acc % (by seed) | release, GSM8K: hybrid rows, labels right % |",
             "|---|---|---|---:|---|---|---|"]
    by_whom = ("weak teacher", "the round-1 stage-I model")
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    for r, (by_seed, outcomes) in enumerate(zip(reports, runs)):
        seeds = sorted(by_seed)
        agreed = [by_seed[s].get("agree", 0) for s in seeds]
        rows = [by_seed[s].get("examples", 0) for s in seeds]  # both responses of each agreed task
        right = [by_seed[s]["label_accuracy"] for s in seeds if by_seed[s].get("label_accuracy") is not None]
        accs = [mean(o) for _, o in sorted(outcomes.items())]
        release = f"{RELEASE_ROUNDS[r][0]:,}, {pct(RELEASE_ROUNDS[r][1])}" if r < len(RELEASE_ROUNDS) else ""
        cells = [f"{mean(agreed):.0f} ({', '.join(map(str, agreed))})" if agreed else "not run",
                 f"{mean(rows):.0f}" if rows else "",
                 f"{pct(mean(right))} ({', '.join(pct(x) for x in right)})" if right else "not measured",
                 f"{pct(mean(accs))} ({', '.join(pct(x) for x in accs)})" if accs else "not run"]
        lines.append(f"| {r + 1} | {by_whom[r]} | " + " | ".join(cells) + f" | {release} |")
    return lines


def intro_lines(study) -> list[str]:
    """The section's title and what it runs, at the study's sizes."""
    size = sizes_of(study)
    return ["", "## Q5. Does the strong student surpass its weak teacher without gold labels?", "",
            "Yang, Ma, Liu (2024), *Weak-to-Strong Reasoning*: a strong student learns from a weaker teacher's "
            "labels through agreement-selected SFT (stage I) and DPO on confidence-selected pairs (stage II). Here, "
            "per seed: the weak teacher is a micro model (dim 64, 1 layer) trained on half the gold hard tasks "
            f"({size.teacher_steps} steps); the weak-ICL stand-in is another micro model (another seed's stage 1, its "
            "own seed, the other half of the gold); the student is the seed's tiny stage-1 model (dim 128, 2 layers); "
            f"the two label {size.pool} unlabelled hard tasks; every SFT student gets the study's stage-2 budget "
            f"({budget_steps(study)} steps at batch {study.sizes.batch_size}); the ceiling is the study's `{CEILING}` "
            f"run. Stage II as GAIR's release: {size.strong_samples} samples a task at temperature 1, confidence "
            f"0.6 / 0.8, up to {size.max_pairs} pairs a task, on the first {size.pair_tasks} tasks. The latent-skill "
            f"student is the same stage-1 model after {size.latent_steps} steps on gold hard tasks with only "
            f"'{size.latent_operations}' (which the teacher never sees); its own greedy answers are its stage I's "
            f"second opinion, and its PGR is against its own ceiling (`{LATENT_CEILING}`). Stage I runs {size.rounds} "
            "round(s): in round 2, as GAIR's iter2, the stage-I model relabels the pool greedily, agreement with the "
            "stand-in's labels selects again, and the stage-1 student trains on that set (`q5_stage1_r2`). See "
            "experiments/weak_to_strong.py. Intervals: 95%, over seeds and the test set's sampling.", ""]


def models_table(runs: dict) -> list[str]:
    """Every Q5 model's test accuracy with its interval and per seed; PGR for stage 1 and the students."""
    lines = ["| model | test acc % (95% CI) | seeds | PGR (95% CI) | PGR by seed |", "|---|---:|---|---:|---|"]
    for condition in CONDITIONS:
        iv = outcomes_interval(runs[condition])
        if iv is None:
            lines.append(f"| {LABELS[condition]} (`{condition}`) | not run | | | |")
            continue
        values = ", ".join(pct(sum(o) / len(o)) for _, o in sorted(runs[condition].items()))
        gap = by_seed = ""
        if condition in CEILING_OF:  # each student against its own ceiling
            ceiling = runs[CEILING_OF[condition]]
            g = pgr_interval(runs[condition], runs[TEACHER], ceiling)
            gap = f"{g.mean:+.2f} ({g.lo:+.2f} to {g.hi:+.2f})" if g else "n/a"
            by_seed = ", ".join(f"{v:+.2f}" for v in pgr_values(runs[condition], runs[TEACHER], ceiling).values())
        lines.append(f"| {LABELS[condition]} (`{condition}`) | {_acc(iv)} | {values} | {gap} | {by_seed} |")
    return lines


def grid_lines(study) -> list[str]:
    """DPO's settings tried on the validation split and the one chosen (nothing before the grid ran)."""
    grid_path = q5_dir(study, "grid.json")
    if not os.path.exists(grid_path):
        return []
    with open(grid_path) as f:
        grid = json.load(f)
    tried = ", ".join(f"lr {g['lr']} beta {g['beta']}: {pct(g['val'])}%" for g in grid["settings"]) or "not run"
    return ["", f"DPO's settings on the validation split (`{os.path.relpath(study.validation_path, study.out)}`, "
                f"seed 0; the stage-I model {pct(grid['stage1_val'])}%): {tried}; chosen lr {grid['chosen'][0]}, "
                f"beta {grid['chosen'][1]}."]


def report_lines(study, figure_dir: str) -> list[str]:
    """Q5's section of RESULTS.md: the models with intervals, label quality, the DPO grid, PGR and the
    comparisons with their verdicts; the figure goes to FIGURE_DIR/weak_to_strong.png."""
    results = read_jsonl(study.results_path) if os.path.exists(study.results_path) else []
    results = [r for r in results if r["condition"] in CONDITIONS]
    size = sizes_of(study)
    runs = {c: runs_by_seed(results, c) for c in CONDITIONS}
    lines = intro_lines(study) + models_table(runs)
    teacher0, longer = runs[TEACHER].get(0), runs[TEACHER_LONG].get(0)
    if teacher0 and longer:
        lines += ["", f"Plateau check (seed 0): the teacher {pct(sum(teacher0) / len(teacher0))}% after "
                      f"{size.teacher_steps} gold steps, {pct(sum(longer) / len(longer))}% after "
                      f"{2 * size.teacher_steps} (close: limited by its size; well above: by its budget)."]
    lines += ["", "Label quality (gold read only to measure it; selection never reads it):", ""]
    lines += label_quality_lines(study) or ["- not measured"]
    reports = [{seed: r for seed in range(study.sizes.seeds) if (r := _report(study, f"{c}_seed{seed}")) is not None}
               for c in ROUNDS[:size.rounds]]
    lines += ["", "Stage I round by round (the release's rounds: its llama2-7b weak model on GSM8K):", ""]
    lines += rounds_table(reports, [runs[c] for c in ROUNDS[:size.rounds]])
    lines += grid_lines(study)
    lines += ["", "| comparison (a - b) | difference (95% CI) | by seed (points) | paper's direction | verdict |",
              "|---|---:|---|---|---|"]
    for a, b, sign in COMPARISONS:
        iv = outcomes_difference(runs[a], runs[b])
        cell = iv.text(per_seed=False) if iv else 'not run'  # the per-seed column beside it says the spread
        lines.append(f"| `{a}` - `{b}` | {cell} | {iv.seed_values() if iv else ''} | "
                     f"{'a > b' if sign > 0 else 'a < b'} | {decide(iv, sign)} |")
    figure = write_figure(summarize(results), os.path.join(figure_dir, "weak_to_strong.png"))
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
    return save_figure(plt, fig, path)


if __name__ == "__main__":
    not_a_script(__doc__, __file__)
