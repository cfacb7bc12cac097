"""Why does best-of-k fall as k grows with a verifier trained on easy problems? (Q6's diagnostics, one seed)

A merely noisy verifier leaves best-of-k flat; a falling curve means the top scores go to one
systematic kind of wrong sample. This script measures which, on one policy's samples of the built-in
world, through the project's commands (sample.py, data_prep.py, train.py, evaluate.py):

1. The policy samples easy (1-2 step, foundation) problems: a training set and a held-out set; and
   the first problems of the 3-4 step test, K times each.
2. Two PRMs are trained from the policy on the balanced exact-label rows of the easy training samples,
   as experiments/easy_to_hard.py trains prm_easy (lr 1e-3, 3 epochs, at most 200 steps of 16), and one
   three times as long: undertraining shows as a low AUC on held-out EASY samples, a failure to
   generalise as a good easy AUC beside a poor hard one.
3. Every test sample is scored once per verifier; the aggregations (min, mean, prod, last) are applied
   here to the saved step scores. Beside them: the world's exact step checker as an oracle
   (evaluate.py --verifier world) and the policy's mean token log-prob of each response.
4. A no-signal baseline: a random score per distinct response text (duplicates share it, as they
   share any verifier's score), and AUCs within each problem (what best-of-k depends on).
5. Each wrong sample gets an error type from the world's step checker (its first error); the types of
   the wrong samples a verifier ranks first are set beside the types of all wrong samples.

    python experiments/verifier_check.py --policy runs/start/final --data data --out /tmp/vcheck

Writes OUT/tables.md (and prints it); the samples, verifiers and scored rows stay in OUT (a rerun reuses
them).
"""
import argparse
import math
import os
import random
import subprocess
import sys
import time
from collections import Counter

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from w2s.data.jsonl import read_jsonl, write_jsonl  # noqa: E402
from w2s.data.rows import problem_from_user_message, split_steps  # noqa: E402
from w2s.data.selection.verifier_rows import world_step_labels  # noqa: E402
from w2s.data.world import miniworld  # noqa: E402
from w2s.generation import build_prompt  # noqa: E402
from w2s.runtime import load_model_and_tokenizer  # noqa: E402
from w2s.verifier import AGGREGATIONS, aggregate, auc, pad_batch, rerank_curves  # noqa: E402
from easy_to_hard import (ERROR_TYPES, error_type, outcome_auc, step_position,  # noqa: E402  (this folder)
                          within_problem_auc)

EASY_TRAIN, EASY_HELD, EASY_N = 400, 150, 8  # foundation problems [0, 400) to train on, the next 150 held out
HARD, HARD_N = 200, 16  # the first problems of the 3-4 step test, samples each
TEMPERATURE, MAX_NEW_TOKENS = 0.7, 96
LR, EPOCHS, MAX_STEPS, BATCH = 1e-3, 3, 200, 16  # easy_to_hard.py's prm_easy
LONGER = 3  # the longer verifier: this many times the steps (and epochs)
KS = (1, 2, 4, 8, 16)
NOISE_DRAWS = 20  # draws of the no-signal baseline, averaged


def run(script: str, argv: list[str], log: str) -> None:
    """`python <script>.py <argv>` from the repository root, one thread (the machine is shared)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(log, "a") as f:
        f.write(f"\n$ python {script}.py {' '.join(argv)}\n")
        f.flush()
        subprocess.run([sys.executable, f"{script}.py", *argv], cwd=REPO, env=env, stdout=f, stderr=f, check=True)


def write_tasks(data: str, easy_data: str, out: str) -> dict[str, str]:
    """Task files: easy training and held-out problems (EASY_DATA's foundation rows, none of them a test
    problem), and the hard test subset (DATA's)."""
    paths = {name: os.path.join(out, "tasks", f"{name}.jsonl") for name in ("easy_train", "easy_held", "hard")}
    if all(os.path.exists(p) for p in paths.values()):
        return paths
    os.makedirs(os.path.join(out, "tasks"), exist_ok=True)
    hard = read_jsonl(os.path.join(data, "test", "miniworld.jsonl"))[:HARD]
    tests = {r["problem"] for r in hard}
    easy = [{"id": r["id"], "problem": problem_from_user_message(r["messages"][0]["content"]),
             "answer": str(r["meta"]["answer"])} for r in read_jsonl(os.path.join(easy_data, "foundation.jsonl"))]
    easy = [t for t in easy if t["problem"] not in tests][:EASY_TRAIN + EASY_HELD]
    write_jsonl(paths["easy_train"], easy[:EASY_TRAIN])
    write_jsonl(paths["easy_held"], easy[EASY_TRAIN:])
    write_jsonl(paths["hard"], [{k: r[k] for k in ("id", "problem", "answer")} for r in hard])
    return paths


def draw(policy: str, tasks: str, out: str, n: int) -> str:
    """The policy's n samples of each task (sample.py, resumable)."""
    if not os.path.exists(out) or len(read_jsonl(out)) < len(read_jsonl(tasks)):
        run("sample", ["--model", policy, "--tasks", tasks, "--out", out, "--n", str(n), "--temperature",
                       str(TEMPERATURE), "--top-p", "1.0", "--seed", "0", "--max-new-tokens", str(MAX_NEW_TOKENS),
                       "--batch-size", "256", "--quiet"], os.path.join(os.path.dirname(out), "sample.log"))
    return out


def train_verifiers(policy: str, samples: str, out: str) -> dict[str, str]:
    """Balanced exact-label rows of the easy samples, and two PRMs trained on them from the policy: as
    easy_to_hard.py does, and LONGER times as long."""
    rows = os.path.join(out, "prm_easy.jsonl")
    if not os.path.exists(rows):
        run("data_prep", ["verifier", samples, "--out", out, "--name", "prm_easy", "--balance", "--seed", "0"],
            os.path.join(out, "data_prep.log"))
    steps = min(MAX_STEPS, math.ceil(len(read_jsonl(rows)) * EPOCHS / BATCH))
    finals = {}
    for name, times in (("prm", 1), (f"prm_x{LONGER}", LONGER)):
        run_dir = os.path.join(out, name)
        if not os.path.exists(os.path.join(run_dir, "final", "config.json")):
            run("train", ["--objective", "prm", "--data", rows, "--init", policy, "--out", run_dir, "--seed", "0",
                          "--epochs", str(EPOCHS * times), "--max-steps", str(steps * times), "--batch-size",
                          str(BATCH), "--lr", str(LR), "--save-every", "1000"], os.path.join(out, "train.log"))
        finals[name] = os.path.join(run_dir, "final")
    print(f"verifier rows: {len(read_jsonl(rows))} (balanced); steps {steps} and {steps * LONGER}", flush=True)
    return finals


def score(verifier: str, bench: str, samples: str, out: str) -> list[dict]:
    """evaluate.py --samples --verifier: every sample's step scores (aggregations are applied later)."""
    name = os.path.splitext(os.path.basename(bench))[0]
    if not os.path.exists(os.path.join(out, "summary.json")):
        run("evaluate", ["--bench", bench, "--samples", samples, "--verifier", verifier, "--verifier-agg", "min",
                         "--out", out, "--batch-size", "256", "--quiet"], out + ".log")
    return read_jsonl(os.path.join(out, f"{name}.jsonl"))


@torch.no_grad()
def logprob_scores(policy: str, rows: list[dict]) -> list[list[float]]:
    """The policy's mean token log-prob of each response (its own confidence, length-normalised)."""
    model, tokenizer = load_model_and_tokenizer(policy, None, "fp32", "cpu")
    scores = []
    for row in rows:
        _, prompt = build_prompt(tokenizer, row["problem"])
        sequences = [prompt + tokenizer.encode(r) for r in row["responses"]]
        logp = model(pad_batch(sequences, tokenizer.pad_id)).float().log_softmax(-1)
        row_scores = []
        for b, ids in enumerate(sequences):
            targets = torch.tensor(ids[len(prompt):], dtype=torch.long)
            if len(targets) == 0:
                row_scores.append(-1e9)
                continue
            picked = logp[b, len(prompt) - 1:len(ids) - 1].gather(-1, targets[:, None])
            row_scores.append(picked.mean().item())
        scores.append(row_scores)
    return scores


def with_scores(rows: list[dict], scores: list[list[float]]) -> list[dict]:
    return [{**row, "scores": s} for row, s in zip(rows, scores)]


def aggregated(rows: list[dict], how: str) -> list[list[float]]:
    return [[aggregate(steps, how) for steps in row["step_scores"]] for row in rows]


def text_noise_scores(rows: list[dict], salt: int) -> list[list[float]]:
    """A verifier without signal that is still a function of the text: a random score per distinct
    response, so duplicates share it (right samples of a problem are mostly one text, wrong ones many)."""
    return [[random.Random(f"{salt}/{text}").random() for text in row["responses"]] for row in rows]


def duplicates(rows: list[dict]) -> str:
    """Distinct texts per problem among its right and its wrong samples."""
    def per_problem(right: bool) -> float:
        counts = [len({t for t, c in zip(row["responses"], row["correct"]) if c == right}) for row in rows]
        return sum(counts) / max(sum(n > 0 for n in counts), 1)
    right = sum(sum(row["correct"]) for row in rows) / max(sum(any(row["correct"]) for row in rows), 1)
    return (f"per problem with any: {right:.1f} right samples in {per_problem(True):.2f} distinct texts; "
            f"{per_problem(False):.2f} distinct wrong texts")


def step_aucs_by_position(rows: list[dict]) -> dict[str, tuple[float, float, int, float]]:
    """position -> (AUC of the step scores against the exact labels, their mean, steps, share labelled good)."""
    scores, labels = {}, {}
    for row in rows:
        task = miniworld.parse_problem(row["problem"])
        for response, correct, step_scores in zip(row["responses"], row["correct"], row["step_scores"]):
            steps = split_steps(response)
            index = 0
            for step, label, s in zip(steps, world_step_labels(steps, task, correct), step_scores):
                index += bool(miniworld.STEP_LINE.match(step))
                where = step_position(step, index)
                scores.setdefault(where, []).append(s)
                labels.setdefault(where, []).append(label)
    return {where: (auc(scores[where], labels[where]), sum(scores[where]) / len(scores[where]), len(labels[where]),
                    sum(labels[where]) / len(labels[where])) for where in sorted(scores)}


def wrong_types(rows: list[dict], pick=None) -> Counter:
    """Error types of every wrong sample, or with `pick` (row index -> sample index) of the picked ones."""
    counts = Counter()
    for r, row in enumerate(rows):
        task = miniworld.parse_problem(row["problem"])
        chosen = range(len(row["responses"])) if pick is None else [pick(r)]
        for i in chosen:
            if not row["correct"][i]:
                counts[error_type(row["responses"][i], task, row["finish_reasons"][i])] += 1
    return counts


def top_pick(scores: list[list[float]], k: int):
    """Best-of-k's choice (the highest score among the first k; ties: the first), by row."""
    return lambda r: max(range(k), key=lambda i: (scores[r][i], -i))


def best_of_curve(rows: list[dict], scores: list[list[float]]) -> dict[int, float]:
    curves = rerank_curves(with_scores(rows, scores), list(KS))
    return {k: curves[str(k)][f"best_of@{k}"] for k in KS}


def table(header: list[str], lines: list[list]) -> list[str]:
    cell = lambda v: "nan" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)  # noqa: E731
    return ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1),
            *["| " + " | ".join(map(cell, line)) + " |" for line in lines], ""]


def auc_tables(easy: dict[str, list[dict]], hard: dict[str, list[dict]], logprob: dict[str, list]) -> list[str]:
    """Outcome AUC on held-out easy and on hard samples per verifier and aggregation; step AUC by position."""
    lines = [[f"{name} {how}", outcome_auc(easy[name], aggregated(easy[name], how)),
              outcome_auc(hard[name], aggregated(hard[name], how)),
              within_problem_auc(hard[name], aggregated(hard[name], how))] for name in hard for how in AGGREGATIONS]
    lines.append(["policy mean log-prob", outcome_auc(easy["prm"], logprob["easy"]),
                  outcome_auc(hard["prm"], logprob["hard"]), within_problem_auc(hard["prm"], logprob["hard"])])
    out = ["## Outcome AUC (sample score vs correct)", ""]
    out += table(["verifier / agg", "easy held-out", "hard", "hard, within problem"], lines)
    for name in hard:
        for label, rows in (("easy held-out", easy[name]), ("hard", hard[name])):
            by = step_aucs_by_position(rows)
            out += [f"## Step AUC by position, {name}, {label} samples (exact step labels)", ""]
            out += table(["position", "AUC", "mean P(good)", "steps", "share good"], [[w, *v] for w, v in by.items()])
    return out


def curve_table(hard: dict[str, list[dict]], oracle: list[dict], logprob: list[list[float]]) -> list[str]:
    """Best-of-k for k in KS: maj and pass, the oracle, the log-prob baseline, each verifier x aggregation."""
    base = hard["prm"]
    curves = rerank_curves(base, list(KS))
    lines = [[measure] + [curves[str(k)][f"{measure}@{k}"] for k in KS] for measure in ("maj", "pass")]
    lines.append(["oracle (--verifier world)"] + list(best_of_curve(oracle, [r["scores"] for r in oracle]).values()))
    lines.append(["policy mean log-prob"] + list(best_of_curve(base, logprob).values()))
    noise = [best_of_curve(base, text_noise_scores(base, salt)) for salt in range(NOISE_DRAWS)]
    lines.append([f"random score per distinct text (mean of {NOISE_DRAWS})"] +
                 [sum(c[k] for c in noise) / NOISE_DRAWS for k in KS])
    for name, rows in hard.items():
        for how in AGGREGATIONS:
            lines.append([f"{name} {how}"] + list(best_of_curve(rows, aggregated(rows, how)).values()))
    return ["## Best-of-k on hard samples (first k of 16)", "", duplicates(base), ""] + \
        table(["scorer"] + [f"k={k}" for k in KS], lines)


def error_table(hard: dict[str, list[dict]], easy_rows: list[dict], logprob: list[list[float]]) -> list[str]:
    """Error types of all wrong hard (and held-out easy) samples beside those of the wrong top picks at k=16."""
    base = hard["prm"]
    columns = {"all wrong hard": wrong_types(base), "all wrong easy": wrong_types(easy_rows)}
    for name, rows in hard.items():
        for how in AGGREGATIONS:
            columns[f"top {name} {how}"] = wrong_types(rows, top_pick(aggregated(rows, how), HARD_N))
    columns["top log-prob"] = wrong_types(base, top_pick(logprob, HARD_N))
    lines = [[t] + [f"{c[t] / max(sum(c.values()), 1):.0%}" for c in columns.values()] for t in ERROR_TYPES]
    lines.append(["wrong (count)"] + [sum(c.values()) for c in columns.values()])
    return ["## Error types: all wrong samples vs the wrong samples ranked first (k=16)", ""] + \
        table(["error type"] + list(columns), lines)


def premature_scores(hard: dict[str, list[dict]]) -> list[str]:
    """Mean verifier score of premature answers vs right samples, per aggregation (hypothesis a)."""
    lines = []
    for name, rows in hard.items():
        for how in AGGREGATIONS:
            kinds = {"right": [], "premature": [], "other wrong": []}
            for row, scores in zip(rows, aggregated(rows, how)):
                task = miniworld.parse_problem(row["problem"])
                for i, s in enumerate(scores):
                    kind = "right" if row["correct"][i] else error_type(row["responses"][i], task,
                                                                         row["finish_reasons"][i])
                    kinds[kind if kind in kinds else ("premature" if kind.startswith("premature") else "other wrong")] \
                        .append(s)
            lines.append([f"{name} {how}"] + [sum(v) / max(len(v), 1) for v in kinds.values()])
    return ["## Mean score by kind of hard sample", ""] + table(["verifier / agg", "right", "premature", "other wrong"],
                                                                 lines)


def main(argv=None) -> None:
    global EASY_TRAIN, MAX_STEPS  # the sizes above, for this one invocation
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", required=True, help="the policy checkpoint (DIR/final)")
    parser.add_argument("--data", required=True, help="the built-in world's data dir (foundation.jsonl, test/)")
    parser.add_argument("--easy-data", help="where the easy problems come from: a world dir whose foundation.jsonl "
                        "holds them (default --data: its 1-2 step foundation problems)")
    parser.add_argument("--easy-tasks", type=int, default=EASY_TRAIN, help=f"easy problems to train on ({EASY_TRAIN})")
    parser.add_argument("--max-steps", type=int, default=MAX_STEPS, help=f"the verifier's steps at most ({MAX_STEPS})")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    EASY_TRAIN, MAX_STEPS = args.easy_tasks, args.max_steps
    while not os.path.exists(os.path.join(args.policy, "config.json")):  # another job may still be training it
        time.sleep(30)
    os.makedirs(args.out, exist_ok=True)
    tasks = write_tasks(args.data, args.easy_data or args.data, args.out)
    samples = {name: draw(args.policy, path, os.path.join(args.out, f"samples_{name}.jsonl"),
                          HARD_N if name == "hard" else EASY_N) for name, path in tasks.items()}
    finals = train_verifiers(args.policy, samples["easy_train"], args.out)
    hard = {name: score(final, tasks["hard"], samples["hard"], os.path.join(args.out, f"eval_hard_{name}"))
            for name, final in finals.items()}
    easy = {name: score(final, tasks["easy_held"], samples["easy_held"], os.path.join(args.out, f"eval_easy_{name}"))
            for name, final in finals.items()}
    oracle = score("world", tasks["hard"], samples["hard"], os.path.join(args.out, "eval_hard_world"))
    logprob = {"hard": logprob_scores(args.policy, hard["prm"]), "easy": logprob_scores(args.policy, easy["prm"])}
    report = ["# Verifier check (one seed)", "", f"policy {args.policy}; sample accuracy hard "
              f"{sum(map(sum, (r['correct'] for r in hard['prm']))) / (HARD * HARD_N):.3f}, easy held-out "
              f"{sum(map(sum, (r['correct'] for r in easy['prm']))) / (EASY_HELD * EASY_N):.3f}", ""]
    report += auc_tables(easy, hard, logprob) + curve_table(hard, oracle, logprob["hard"])
    report += error_table(hard, easy["prm"], logprob["hard"]) + premature_scores(hard)
    with open(os.path.join(args.out, "tables.md"), "w") as f:
        f.write("\n".join(report))
    print("\n".join(report))


if __name__ == "__main__":
    main()
