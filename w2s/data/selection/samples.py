"""Selecting weak supervision without gold answers (Yang, Ma, Liu 2024, "Weak-to-Strong Reasoning").

Reading order: sample files (sample.py output) read and checked; every sample as an SFT example
(the naive set, no selection); final answers grouped by equivalence; stage I, agreement (keep the
tasks where two sources' first answers agree, train on both responses: the "hybrid" set); stage II,
confidence pairs for DPO; the diagnosis, which alone reads gold answers.

Answers are compared with the grader's `is_equiv`, never as strings ("1/2" and "0.5" agree). A
sample cut off at the length limit (finish reason "length") states no answer, whatever its text holds.
A sample with no extractable answer votes for nothing (it still counts in a confidence's denominator:
a model that often fails to answer is not confident). Selection never reads a task's gold answer:
`agreement_set` and `confidence_pairs` look at samples only; when the tasks carry answers, the
diagnosis functions measure what was selected (the right-label share), for the report and the rows'
meta (where `data_prep.py stats` finds it), never for the choice.
"""
import random
from collections import Counter

from w2s.data.jsonl import file_stem, read_jsonl_numbered, read_rows_with_unique_ids
from w2s.data.rows import pair_row, string_field, user_message
from w2s.data.world.quality import solution_step_errors
from w2s.data.world.sets import PoolItem, Solution, sft_row
from w2s.errors import UserError
from w2s.grader import answer_groups, extract_answer, grade, is_equiv

# ---------------------------------------------------------------------------------------------
# Sample files: {"id", "problem", "answer"?, "samples": [str, ...], "finish_reasons"?, "correct"?}


def finish_reasons(row: dict, where: str) -> list[str]:
    """The row's finish reasons, checked ("stop" or "length", one per sample); a file written before
    they were recorded reads as all "stop"."""
    reasons = row.get("finish_reasons")
    if reasons is None:
        return ["stop"] * len(row["samples"])
    if (not isinstance(reasons, list) or len(reasons) != len(row["samples"])
            or not all(r in ("stop", "length") for r in reasons)):
        raise UserError(f"{where}: field 'finish_reasons' must be a list of \"stop\" / \"length\", one per sample")
    return reasons


def stated_answer(text: str, reason: str) -> str | None:
    """A sample's final answer: none when it was cut off at the length limit (it never stated one)."""
    return extract_answer(text) if reason == "stop" else None


def stated_answers(row: dict) -> list[str | None]:
    """Each sample's final answer (rows checked by check_samples_row)."""
    return [stated_answer(text, reason) for text, reason in zip(row["samples"], finish_reasons(row, row["id"]))]


def check_samples_row(row: object, where: str) -> None:
    if not isinstance(row, dict):
        raise UserError(f"{where}: a row must be a JSON object, got {type(row).__name__}")
    for field in ("id", "problem"):
        if not isinstance(row.get(field), str) or not row[field].strip():
            raise UserError(f"{where}: field '{field}' must be a non-empty string, got {row.get(field)!r}"[:300])
    samples = row.get("samples")
    if not isinstance(samples, list) or not samples or not all(isinstance(s, str) for s in samples):
        raise UserError(f"{where}: field 'samples' must be a non-empty list of strings (sample.py output)")
    finish_reasons(row, where)


def load_samples(path: str) -> list[dict]:
    """Rows of a sample.py output file, checked; ids unique."""
    return read_rows_with_unique_ids(path, check_samples_row, "sampled tasks")


def same_tasks(rows_a: list[dict], path_a: str, rows_b: list[dict], path_b: str) -> dict[str, dict]:
    """`rows_b` by id, after checking it covers every task of `rows_a` with the same problem."""
    by_id = {row["id"]: row for row in rows_b}
    for row in rows_a:
        other = by_id.get(row["id"])
        if other is None:
            raise UserError(f"{path_b}: field 'id': no row for task {row['id']!r} of {path_a} "
                            "(sample both over the same tasks)")
        if other["problem"].strip() != row["problem"].strip():
            raise UserError(f"{path_b}: field 'problem' of task {row['id']!r} differs from {path_a}'s")
    return by_id


# ---------------------------------------------------------------------------------------------
# The naive set: every sample, right or wrong


def sft_from_samples(path: str, teacher: str) -> tuple[list[dict], Counter]:
    """Rows {"id", "problem", "answer", "samples": [...], "correct": [...]?} -> one SFT example per sample.

    Correctness is sample.py's grader verdict (or the grader's, where the row has none); the
    step-wise error rate is measured by the step checker when the problem is of the built-in world.
    Empty samples and samples cut off at the length limit (an unfinished reply states no answer and
    would teach the model to stop mid-way) are skipped and counted.
    """
    rows, report = [], Counter()
    for line_no, row in read_jsonl_numbered(path):
        where = f"{path}:{line_no}"
        if not isinstance(row, dict):
            raise UserError(f"{where}: a row must be a JSON object")
        task_id, problem, answer = (string_field(row, "id", where), string_field(row, "problem", where),
                                    string_field(row, "answer", where))
        samples, verdicts = row.get("samples"), row.get("correct")
        if not isinstance(samples, list) or not all(isinstance(x, str) for x in samples):
            raise UserError(f"{where}: field 'samples' must be a list of strings")
        if verdicts is not None and (not isinstance(verdicts, list) or len(verdicts) != len(samples)
                                     or not all(isinstance(v, bool) for v in verdicts)):
            raise UserError(f"{where}: field 'correct' must be a list of booleans, one per sample")
        reasons = finish_reasons(row, where)
        item = PoolItem(task_id, problem, answer, [], meta={"source": f"samples/{teacher}", "teacher": teacher})
        for k, text in enumerate(samples):
            if not text.strip():
                report["empty samples (skipped)"] += 1
                continue
            if reasons[k] == "length":
                report["cut-off samples (skipped)"] += 1
                continue
            correct = verdicts[k] if verdicts is not None else grade(text, answer)
            row_out = sft_row(f"{task_id}/s{k}", item, Solution(text, correct), "weak_teacher")
            errors = solution_step_errors(row_out)
            if errors is not None:
                row_out["meta"].update(step_error_rate=sum(errors) / len(errors), steps=len(errors))
            rows.append(row_out)
            report["samples"] += 1
    if not rows:
        raise UserError(f"{path}: no samples to train on")
    return rows, report


# ---------------------------------------------------------------------------------------------
# Answers grouped by equivalence


def same_answer(a: str | None, b: str | None) -> bool:
    """Two extracted answers mean the same (either way round: is_equiv takes its second as gold)."""
    return a is not None and b is not None and (is_equiv(a, b) or is_equiv(b, a))


def groups_by_size(answers: list[str | None]) -> list[list[int]]:
    """Indices of equivalent answers (w2s.grader.answer_groups), each group led by its first member; None
    votes for nothing. Groups come largest first, ties in order of first appearance."""
    members: dict[int, list[int]] = {}
    for i, group in enumerate(answer_groups(answers)):
        if group is not None:
            members.setdefault(group, []).append(i)
    return sorted(members.values(), key=lambda m: (-len(m), m[0]))


# ---------------------------------------------------------------------------------------------
# Stage I: agreement


def hybrid_row(task: dict, response: str, source: str, label: str) -> dict:
    return {"id": f"{task['id']}/{source}",
            "messages": [{"role": "user", "content": user_message(task["problem"])},
                         {"role": "assistant", "content": response}],
            "meta": {"task_id": task["id"], "kind": "hybrid", "source": source, "label": label}}


def agreement_set(rows_a: list[dict], rows_b: dict[str, dict], source_a: str,
                  source_b: str) -> tuple[list[dict], Counter]:
    """The hybrid SFT set: for each task of `rows_a` (in order) whose first sample's final answer
    agrees with `rows_b`'s first sample's, both responses. Report: tasks, agree, disagree,
    no_answer (either first sample has none)."""
    out, report = [], Counter(tasks=len(rows_a))
    for row in rows_a:
        other = rows_b[row["id"]]
        text_a, text_b = row["samples"][0], other["samples"][0]
        answer_a, answer_b = stated_answers(row)[0], stated_answers(other)[0]
        if answer_a is None or answer_b is None:
            report["no_answer"] += 1
        elif same_answer(answer_a, answer_b):
            report["agree"] += 1
            out += [hybrid_row(row, text_a, source_a, answer_a), hybrid_row(row, text_b, source_b, answer_a)]
        else:
            report["disagree"] += 1
    return out, report


# ---------------------------------------------------------------------------------------------
# Stage II: confidence pairs, as the release builds them
#
# GAIR-NLP/weak-to-strong-reasoning (src/construct_training_data.py, run_gsm8k.sh / run_math.sh): the
# stage-I model samples each task 10 times at temperature 1.0 (seeds 0-9); confidence is the share of the
# 10 in the most common answer. Below 0.6 a task is skipped. If the weak model's answer is the majority's,
# its response is chosen against a non-majority sample (none: skipped, "too easy"); otherwise, at
# confidence 0.8 or above, a majority sample is chosen against the weak response. GSM8K makes 1 pair a
# task; MATH and OlympicArena (the harder sets) up to 3: up to 3 non-majority samples in the first case,
# up to 3 majority samples in the second. Here a repeated text is drawn once (the release may repeat a
# pair), and a tie for largest is skipped (at a 0.6 threshold the release never meets one).

RULES = ("weak_is_majority", "confident_flip")
SKIPS = ("no_answer", "tie", "low_confidence", "unanimous", "weak_in_minority_below_flip", "weak_empty")


def majority_share(answers: list[str | None]) -> float:
    """The share of the samples in the largest answer group (a tie counts once; 0 with no answer)."""
    groups = groups_by_size(answers)
    return len(groups[0]) / len(answers) if groups else 0.0


def confidence_histogram(answer_lists: list[list[str | None]]) -> dict[str, int]:
    """Tasks by their majority share, as "0.70": count, in increasing order: how many tasks each
    threshold keeps (with 4 samples a share can only be 0.25, 0.5, 0.75 or 1)."""
    counts = Counter(f"{majority_share(answers):.2f}" for answers in answer_lists)
    return dict(sorted(counts.items()))


def confidence_rule(answers: list[str | None], weak_answer: str | None, min_confidence: float,
                    flip_confidence: float) -> tuple[str, list[int], float]:
    """One task's decision from its strong samples' answers and the weak answer: (a rule of RULES, or
    "skip/<reason>"), the majority's indices and the confidence (0 where there is none)."""
    groups = groups_by_size(answers)
    if not groups:
        return "skip/no_answer", [], 0.0
    if len(groups) > 1 and len(groups[1]) == len(groups[0]):
        return "skip/tie", [], 0.0
    majority = groups[0]
    confidence = len(majority) / len(answers)
    if confidence < min_confidence:
        return "skip/low_confidence", majority, confidence
    if same_answer(weak_answer, answers[majority[0]]):
        return "weak_is_majority", majority, confidence
    if confidence >= flip_confidence:
        return "confident_flip", majority, confidence
    return "skip/weak_in_minority_below_flip", majority, confidence


def pair_sides(rule: str, majority: list[int], samples: list[str], weak_text: str, max_pairs: int,
               rng: random.Random, student_only: bool = False) -> list[tuple[str, str]]:
    """(chosen, rejected) texts of one selected task, up to max_pairs on distinct texts. The release's
    sides put the weak response on one: chosen when it is the majority's, rejected in a flip. With
    `student_only`, both sides are strong samples (a majority one over a non-majority one), so a pair
    does not set the teacher's style against the student's sampling noise."""
    others = _distinct([i for i in range(len(samples)) if i not in majority], samples)
    winners = _distinct(majority, samples)
    if student_only:
        return [(samples[rng.choice(winners)], samples[i]) for i in rng.sample(others, min(max_pairs, len(others)))]
    if rule == "weak_is_majority":
        return [(weak_text, samples[i]) for i in rng.sample(others, min(max_pairs, len(others)))]
    return [(samples[i], weak_text) for i in rng.sample(winners, min(max_pairs, len(winners)))]


def confidence_pairs(strong: list[dict], weak: dict[str, dict], *, min_confidence: float = 0.6,
                     flip_confidence: float = 0.8, max_pairs: int = 1, seed: int = 0,
                     student_only: bool = False) -> tuple[list[dict], Counter]:
    """Pair rows from the strong model's samples and the weak model's response (its first sample).

    Confidence is the share of the strong samples in the largest answer group (a tie for largest:
    skipped, no majority). Below `min_confidence`: skipped. If the weak answer is the majority's:
    chosen = the weak response, rejected = a non-majority sample (one with another answer or none).
    Otherwise, at confidence >= `flip_confidence`: chosen = a majority sample, rejected = the weak
    response. Up to `max_pairs` pairs a task, on distinct texts, drawn by (seed, task id), so the
    output depends only on the inputs and the seed (`pair_sides`; `student_only`: the same tasks, both
    sides strong samples). A task with no pair is skipped as "unanimous". Report: a count per rule
    (pairs and tasks) and per reason to skip.
    """
    out, report = [], Counter(tasks=len(strong))
    for row in strong:
        weak_row = weak[row["id"]]
        weak_text = weak_row["samples"][0]
        if not weak_text.strip():
            report["skip/weak_empty"] += 1
            continue
        answers = stated_answers(row)
        rule, majority, confidence = confidence_rule(answers, stated_answers(weak_row)[0], min_confidence,
                                                     flip_confidence)
        if rule.startswith("skip/"):
            report[rule] += 1
            continue
        rng = random.Random(f"confidence_pairs/{seed}/{row['id']}")
        sides = pair_sides(rule, majority, row["samples"], weak_text, max_pairs, rng, student_only)
        if not sides:
            report["skip/unanimous"] += 1
            continue
        report[f"tasks/{rule}"] += 1
        report[f"pairs/{rule}"] += len(sides)
        for k, (chosen, rejected) in enumerate(sides):
            out.append(pair_row(f"{row['id']}/p{k}", user_message(row["problem"]), chosen, rejected,
                                task_id=row["id"], rule=rule, confidence=confidence, label=answers[majority[0]]))
    return out, report


def _distinct(indices: list[int], samples: list[str]) -> list[int]:
    """The first index of each distinct non-empty text (a repeated text would make a repeated pair)."""
    seen, out = set(), []
    for i in indices:
        if samples[i].strip() and samples[i] not in seen:
            seen.add(samples[i])
            out.append(i)
    return out


# ---------------------------------------------------------------------------------------------
# Diagnosis: the only place gold answers are read


def diagnose_hybrid(rows: list[dict], tasks: dict[str, dict]) -> dict | None:
    """Adds meta.answer and meta.correct (the response graded against gold) to each hybrid row whose
    task has an answer; returns the right-label share of the selected tasks and of the responses."""
    graded = [r for r in rows if "answer" in tasks[r["meta"]["task_id"]]]
    for r in graded:
        gold = tasks[r["meta"]["task_id"]]["answer"]
        r["meta"].update(answer=gold, correct=grade(r["messages"][-1]["content"], gold))
    if not graded:
        return None
    labels = {r["meta"]["task_id"]: is_equiv(r["meta"]["label"], r["meta"]["answer"]) for r in graded}
    return {"label_accuracy": sum(labels.values()) / len(labels),
            "response_accuracy": sum(r["meta"]["correct"] for r in graded) / len(graded), "graded_tasks": len(labels)}


def first_sample_accuracy(rows: list[dict]) -> float | None:
    """Share of tasks whose first sample is right, where the tasks carry answers (a source's quality)."""
    graded = [stated_answers(r)[0] is not None and grade(r["samples"][0], r["answer"]) for r in rows if "answer" in r]
    return sum(graded) / len(graded) if graded else None


def diagnose_pairs(rows: list[dict], tasks: dict[str, dict]) -> dict | None:
    """Adds meta.answer, chosen_correct and rejected_correct to each pair whose task has an answer;
    returns the shares of pairs whose chosen is right, whose rejected is wrong, and both."""
    graded = [r for r in rows if "answer" in tasks[r["meta"]["task_id"]]]
    for r in graded:
        gold = tasks[r["meta"]["task_id"]]["answer"]
        r["meta"].update(answer=gold, chosen_correct=grade(r["chosen"][0]["content"], gold),
                         rejected_correct=grade(r["rejected"][0]["content"], gold))
    if not graded:
        return None
    n = len(graded)
    return {"chosen_right": sum(r["meta"]["chosen_correct"] for r in graded) / n,
            "rejected_wrong": sum(not r["meta"]["rejected_correct"] for r in graded) / n,
            "chosen_right_and_rejected_wrong": sum(r["meta"]["chosen_correct"] and not r["meta"]["rejected_correct"]
                                                   for r in graded) / n, "graded_pairs": n}


# ---------------------------------------------------------------------------------------------
# From files to a selection and its report (`data_prep.py agree` / `pairs`)


def agreement_from_files(path_a: str, path_b: str) -> tuple[list[dict], dict]:
    """The hybrid set of two sample files over the same tasks, and its report (counts; with gold
    answers in the tasks, the diagnosis and each source's first-sample accuracy)."""
    rows_a, rows_b = load_samples(path_a), load_samples(path_b)
    by_id = same_tasks(rows_a, path_a, rows_b, path_b)
    source_a, source_b = ((file_stem(path_a), file_stem(path_b)) if file_stem(path_a) != file_stem(path_b)
                          else ("a", "b"))
    rows, counts = agreement_set(rows_a, by_id, source_a, source_b)
    report = {"sources": {source_a: path_a, source_b: path_b}, **counts, "examples": len(rows)}
    quality = diagnose_hybrid(rows, {r["id"]: r for r in rows_a})  # gold, for the report only
    if quality is not None:
        report.update(quality, first_sample_accuracy={source_a: first_sample_accuracy(rows_a),
                                                      source_b: first_sample_accuracy(list(by_id.values()))})
    return rows, report


def pairs_from_files(strong_path: str, weak_path: str, *, min_confidence: float, flip_confidence: float,
                     max_pairs: int, seed: int, student_only: bool = False) -> tuple[list[dict], dict]:
    """DPO pairs from the strong model's samples and the weak model's, and their report (the
    settings, counts per rule and skip, and with gold answers the diagnosis)."""
    strong = load_samples(strong_path)
    weak = same_tasks(strong, strong_path, load_samples(weak_path), weak_path)
    rows, counts = confidence_pairs(strong, weak, min_confidence=min_confidence, flip_confidence=flip_confidence,
                                    max_pairs=max_pairs, seed=seed, student_only=student_only)
    report = {"strong": strong_path, "weak": weak_path, "min_confidence": min_confidence,
              "flip_confidence": flip_confidence, "max_pairs": max_pairs, "seed": seed, "student_only": student_only,
              **dict(sorted(counts.items())), "pairs": len(rows),
              "tasks_by_confidence": confidence_histogram([stated_answers(row) for row in strong])}
    quality = diagnose_pairs(rows, {r["id"]: r for r in strong})  # gold, for the report only
    if quality is not None:
        report.update(quality)
    return rows, report
