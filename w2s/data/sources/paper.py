"""The paper's released data (hexuan21/weak-to-strong) read into a supervision pool, weaker-teacher
sets and benchmarks.

Reading order: file names; task_sol_pairs into a pool; paraphrases attached; weaker_sampling into
weak_<teacher> SFT sets; test files into benchmark rows (each file read by w2s/data/sources/reader.py);
`read_release`, which does all of it and reports what it found.
"""
import os
import re
from collections import Counter

from w2s.data.jsonl import file_stem
from w2s.data.rows import string_field
from w2s.data.sources.reader import read_rows
from w2s.data.world.sets import PoolItem, Solution, sft_row
from w2s.errors import UserError
from w2s.grader import extract_answer, grade

HF_REPO = "hexuan21/weak-to-strong"
HF_TESTS = {  # released file name (without .json) -> benchmark name
    "MATH_test500": "math500",
    "olympic_arena": "olympic_arena",
    "converted_jee_bench": "jee_bench",
    "converted_agi_eval_sat-math": "sat_math",
    "agi_eval_gaokao-mathcloze": "gaokao_mathcloze",
}


def _gold(solution: str, where: str, field_name: str) -> str:
    answer = extract_answer(solution)
    if answer is None:
        raise UserError(f"{where}: field '{field_name}' has no final answer to extract (no \\boxed{{}})")
    return answer


def _release_files(root: str, folder: str) -> list[str]:
    base = os.path.join(root, folder)
    found = []
    for dirpath, _, files in os.walk(base):
        found += [os.path.join(dirpath, f) for f in files if f.endswith((".json", ".jsonl"))]
    return sorted(found)


def _subset(root: str, folder: str, path: str) -> str:
    parts = os.path.relpath(path, os.path.join(root, folder)).split(os.sep)
    return parts[0] if len(parts) > 1 else "default"


def _solutions(row: dict, prefix: str, where: str) -> tuple[str, str]:
    """(pos_ans, neg_ans) of a released task entry; neg_ans may be missing or empty (no incorrect solution)."""
    pos = string_field(row, f"{prefix}pos_ans", where)
    entry = row[prefix[:-1]] if prefix else row
    neg = string_field(row, f"{prefix}neg_ans", where, allow_empty=True) if "neg_ans" in entry else ""
    return pos, neg


def _item(item_id: str, problem: str, answer: str, pos: str, neg: str, **meta) -> PoolItem:
    return PoolItem(item_id, problem, answer, [Solution(pos, True)], [Solution(neg, False)] if neg.strip() else [],
                    meta=meta)


def read_task_sol_pairs(root: str, subset: str | None, report: Counter) -> list[PoolItem]:
    """task_sol_pairs/<subset>/*.json: {"ori_id", "original": {task, pos_ans, neg_ans}, "subtask_<k>": {...}}."""
    pool, seen = [], set()
    files = _release_files(root, "task_sol_pairs")
    if not files:
        raise UserError(f"{root}: no task_sol_pairs/ files (is this the {HF_REPO} dataset?)")
    for path in files:
        name = _subset(root, "task_sol_pairs", path)
        if subset and name != subset:
            continue
        for line_no, row in read_rows(path):
            where = f"{path}:{line_no}"
            item_id = f"{name}/{string_field(row, 'ori_id', where)}"
            if item_id in seen:
                raise UserError(f"{where}: field 'ori_id': duplicate {row['ori_id']!r} in subset {name}")
            seen.add(item_id)
            task = string_field(row, "original.task", where)
            pos, neg = _solutions(row, "original.", where)
            item = _item(item_id, task, _gold(pos, where, "original.pos_ans"), pos, neg, source=f"hf/{name}")
            report["tasks"] += 1
            report["tasks without neg_ans"] += not item.incorrect
            for key in sorted((k for k in row if re.fullmatch(r"subtask_\d+", k)), key=lambda k: int(k.split("_")[1])):
                sub_task = string_field(row, f"{key}.task", where)
                sub_pos, sub_neg = _solutions(row, f"{key}.", where)
                item.subtasks.append(_item(f"{item_id}/{key}", sub_task, _gold(sub_pos, where, f"{key}.pos_ans"),
                                           sub_pos, sub_neg, source=f"hf/{name}", parent_id=item_id))
                report["subtasks"] += 1
                report["subtasks without neg_ans"] += not item.subtasks[-1].incorrect
            pool.append(item)
    return pool


def attach_paraphrases(root: str, subset: str | None, pool: list[PoolItem], report: Counter) -> None:
    """paraphrase/<subset>/full_<i>.json: {"ori_id", "task", "pos_ans", "neg_ans"}, attached to their task."""
    by_id = {item.id: item for item in pool}
    for path in _release_files(root, "paraphrase"):
        name = _subset(root, "paraphrase", path)
        if subset and name != subset:
            continue
        for line_no, row in read_rows(path):
            where = f"{path}:{line_no}"
            parent = by_id.get(f"{name}/{string_field(row, 'ori_id', where)}")
            if parent is None:
                report["paraphrases without a task (skipped)"] += 1
                continue
            pos, neg = _solutions(row, "", where)
            parent.paraphrases.append(_item(f"{parent.id}/para{len(parent.paraphrases) + 1}",
                                            string_field(row, "task", where), parent.answer, pos, neg,
                                            source=parent.meta["source"], parent_id=parent.id))
            report["paraphrases"] += 1


def read_weaker_sampling(root: str, report: Counter) -> dict[str, list[dict]]:
    """weaker_sampling/<teacher>/*.json: {"ori_id", "task", "ground_truth", "sample<k>", "judge<k>"}
    -> weak_<teacher> sets.

    Every sampled solution becomes an example; its correctness is the release's judge field
    (1 right, 0 wrong), or the grader against the ground truth where a judge field is missing.
    """
    sets = {}
    for path in _release_files(root, "weaker_sampling"):
        teacher = _subset(root, "weaker_sampling", path)
        stem = file_stem(path)
        rows = sets.setdefault(f"weak_{teacher}", [])
        for line_no, row in read_rows(path):
            where = f"{path}:{line_no}"
            ori_id, problem, truth = (string_field(row, "ori_id", where), string_field(row, "task", where),
                                      string_field(row, "ground_truth", where))
            gold = extract_answer(truth) or truth.strip()
            samples = sorted((k for k in row if re.fullmatch(r"sample\d+", k)), key=lambda k: int(k[6:]))
            if not samples:
                raise UserError(f"{where}: missing field 'sample1' (no sampled solutions)")
            item = PoolItem(f"{teacher}/{ori_id}", problem, gold, [],
                            meta={"source": "hf/weaker_sampling", "teacher": teacher})
            for key in samples:
                text, judge = row[key], row.get("judge" + key[6:])
                if not isinstance(text, str) or not text.strip():
                    report["empty samples (skipped)"] += 1
                    continue
                if judge not in (0, 1, None, "0", "1"):  # True/False compare equal to 1/0
                    raise UserError(f"{where}: field 'judge{key[6:]}' must be 1 or 0, got {judge!r}")
                correct = grade(text, gold) if judge is None else bool(int(judge))
                report["samples graded (no judge field)"] += judge is None
                rows.append(sft_row(f"{teacher}/{stem}/{ori_id}/{key}", item, Solution(text, correct), "weak_teacher",
                                    correct_by="grader" if judge is None else "judge"))
                report[f"weak_{teacher} samples"] += 1
    return sets


def read_tests(root: str, report: Counter) -> dict[str, list[dict]]:
    """test_data/*.json: {"question", "ground_truth", ...} -> benchmark rows
    {"id", "problem", "answer", ...extra kept}."""
    tests = {}
    top_level = sorted(os.path.join(root, f) for f in os.listdir(root) if f.endswith((".json", ".jsonl")))
    for path in _release_files(root, "test_data") + top_level:
        stem = file_stem(path)
        if stem not in HF_TESTS:
            report[f"unrecognized test file {os.path.relpath(path, root)} (skipped)"] += 1
            continue
        bench, rows = HF_TESTS[stem], []
        for line_no, row in read_rows(path):
            where = f"{path}:{line_no}"
            question, truth = string_field(row, "question", where), string_field(row, "ground_truth", where)
            if bench == "math500":  # MATH's ground truth is a whole solution: the answer is its \boxed{} part
                answer, extra = _gold(truth, where, "ground_truth"), {"solution": truth}
            else:
                answer, extra = (extract_answer(truth) if "\\boxed" in truth else None) or truth.strip(), {}
            kept = {k: v for k, v in row.items() if k not in ("question", "ground_truth", "id", "problem", "answer")}
            rows.append({"id": f"{bench}-{len(rows):04d}", "problem": question, "answer": answer, **kept, **extra})
        tests[bench] = rows
    return tests


def read_release(
    root: str, subset: str | None = None,
) -> tuple[list[PoolItem], dict[str, list[dict]], dict[str, list[dict]], dict]:
    """The released dataset at `root`: a pool (task_sol_pairs + paraphrase), weak_<teacher> sets,
    benchmarks, a report."""
    report = Counter()
    pool = read_task_sol_pairs(root, subset, report)
    attach_paraphrases(root, subset, pool, report)
    weak_sets = read_weaker_sampling(root, report)
    tests = read_tests(root, report)
    # The release's own split; we cannot redraw it, but we can say whether a test problem is trained on.
    train_problems = {_norm(it.problem) for item in pool for it in [item] + item.subtasks + item.paraphrases}
    for bench, rows in tests.items():
        report[f"{bench}: test problems also in training data"] = sum(_norm(r["problem"]) in train_problems
                                                                        for r in rows)
    return pool, weak_sets, tests, dict(report)


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()
