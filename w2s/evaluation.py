"""Benchmark accuracy: per-problem rows, majority votes, and summaries by group.

Reading order: benchmark names; scoring one problem (the grader's verdict per response, a vote
over equivalent answers); summaries (overall and by each grouping field the rows carry);
`evaluate`, which samples, scores and appends rows to a resumable file (`evaluate_saved`: the same on
responses drawn before); summaries as markdown.
"""
import os
import re
from collections import Counter, defaultdict
from dataclasses import replace

from w2s.cli import Progress
from w2s.data.jsonl import append_row, read_output_rows, write_jsonl
from w2s.data.jsonl import check_output_row, read_jsonl_numbered
from w2s.errors import MissingFileError, UserError
from w2s.generation import Sampling, fit_max_new_tokens, sample_tasks
from w2s.grader import answer_groups, extract_answer, grade
from w2s.verifier import curve_ks, rerank_curves

# Fields that are never grouping fields: the task itself and what evaluation adds to it.
NOT_GROUPS = {"id", "problem", "answer", "solution", "prompt", "responses", "extracted", "correct", "majority",
              "verdict", "finish_reasons",
              # a verifier's re-ranking (w2s/verifier.py)
              "scores", "step_scores", "answer_groups", "best_of", "weighted_majority", "weighted_verdict"}
MAX_GROUP_VALUES = 50


def resolve_bench(name_or_path: str, data_dir: str = "data") -> tuple[str, str]:
    """(bench name, JSONL path) for a file path or a benchmark name under data_dir/test/."""
    if name_or_path.endswith(".jsonl") or os.path.sep in name_or_path:
        if not os.path.exists(name_or_path):
            raise MissingFileError(f"{name_or_path}: no such benchmark file")
        return os.path.splitext(os.path.basename(name_or_path))[0], name_or_path
    path = os.path.join(data_dir, "test", f"{name_or_path}.jsonl")
    if not os.path.exists(path):
        test_dir = os.path.join(data_dir, "test")
        known = sorted(f[:-6] for f in os.listdir(test_dir) if f.endswith(".jsonl")) if os.path.isdir(test_dir) else []
        raise MissingFileError(f"{path}: no benchmark {name_or_path!r}; known in {test_dir}: "
                                f"{', '.join(known) or 'none (run data_prep.py first)'}")
    return name_or_path, path


def majority_vote(answers: list[str | None]) -> int | None:
    """Index of the first response of the largest group of equivalent answers (ties: the group seen
    first); None when no response has an answer. Equivalence is the grader's, so 1/2 and 0.5 vote together."""
    groups = answer_groups(answers)
    votes = Counter(g for g in groups if g is not None)
    return groups.index(max(votes, key=lambda g: (votes[g], -g))) if votes else None


def score_row(task: dict, prompt: str, responses: list[str], finish_reasons: list[str] | None = None) -> dict:
    """A per-problem output row: the task, the responses, their finish reasons, answers and verdicts,
    the vote. A response cut off at the length limit ("length") states no answer: nothing is
    extracted from it, its verdict is False and it casts no vote."""
    finish_reasons = finish_reasons or ["stop"] * len(responses)
    stated = [reason == "stop" for reason in finish_reasons]
    extracted = [extract_answer(r) if ok else None for r, ok in zip(responses, stated)]
    correct = [ok and grade(r, task["answer"]) for r, ok in zip(responses, stated)]
    voted = majority_vote(extracted)
    return {**task, "prompt": prompt, "responses": responses, "finish_reasons": finish_reasons,
            "extracted": extracted, "correct": correct,
            "majority": extracted[voted] if voted is not None else None,
            "verdict": correct[voted] if voted is not None else False}


def grouping_fields(rows: list[dict]) -> list[str]:
    """Fields that split the rows into groups: scalar values, more than one and at most
    MAX_GROUP_VALUES distinct ones, and fewer than the rows (an id-like field groups nothing)."""
    fields = []
    for field in dict.fromkeys(k for row in rows for k in row if k not in NOT_GROUPS):
        values = [row.get(field) for row in rows]
        if not all(isinstance(v, (str, int, float, bool)) or v is None for v in values):
            continue
        if any(isinstance(v, str) and len(v) > 64 for v in values):
            continue
        distinct = set(map(str, values))
        if 1 < len(distinct) <= MAX_GROUP_VALUES and len(distinct) < len(rows):
            fields.append(field)
    return fields


def _scores(rows: list[dict], n: int) -> dict:
    """Accuracy of a set of rows: the voted verdict (greedy: the response's); with n > 1 also maj@n,
    pass@n (any response right) and the mean accuracy of single responses."""
    problems = len(rows)
    scores = {"problems": problems, "accuracy": sum(r["verdict"] for r in rows) / problems}
    if n > 1:
        scores[f"maj@{n}"] = scores["accuracy"]
        scores[f"pass@{n}"] = sum(any(r["correct"]) for r in rows) / problems
        scores["sample_accuracy"] = sum(sum(r["correct"]) for r in rows) / (problems * n)
    if all("scores" in r for r in rows):  # re-ranked by a verifier
        scores[f"best_of@{n}"] = sum(r["best_of"] for r in rows) / problems
        scores[f"weighted_maj@{n}"] = sum(r["weighted_verdict"] for r in rows) / problems
    scores["no_answer"] = sum(a is None for r in rows for a in r["extracted"]) / (problems * n)
    # Replies cut off at --max-new-tokens (rows written before finish reasons were recorded count as none).
    scores["responses"] = problems * n
    scores["cut_off"] = sum(reason == "length" for r in rows for reason in r.get("finish_reasons", []))
    scores["cut_off_share"] = scores["cut_off"] / (problems * n)
    return scores


def summarize(rows: list[dict], n: int, group_by: list[str] | None = None) -> dict:
    """Overall scores plus scores by each grouping field (given, or found in the rows)."""
    summary = _scores(rows, n)
    by = {}
    for field in (group_by if group_by is not None else grouping_fields(rows)):
        groups = defaultdict(list)
        for row in rows:
            groups[str(row.get(field))].append(row)
        by[field] = {value: _scores(groups[value], n) for value in sorted(groups, key=_natural_key)}
    summary["by"] = by
    return summary


def _natural_key(value: str):
    """Sort "Level 2" before "Level 10" and numbers as numbers."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", value)]


def read_saved_responses(path: str, tasks: list[dict]) -> tuple[dict[str, dict], int]:
    """Responses already drawn for `tasks`: a sample.py output ("samples") or an evaluate.py rows file
    ("responses"), one row per task of the benchmark, each with the same problem and answer and the same
    number of responses. Returns ({task id: {"prompt", "responses", "finish_reasons"}}, responses per task).
    Verdicts are not read: they are graded again against the benchmark's answers."""
    by_id = {task["id"]: task for task in tasks}
    saved, n = {}, None
    for line_no, row in read_jsonl_numbered(path):
        where = f"{path}:{line_no}"
        if not isinstance(row, dict) or row.get("id") not in by_id:
            raise UserError(f"{where}: field 'id': {row.get('id') if isinstance(row, dict) else row!r} is not a "
                            "problem of the benchmark; --samples must hold that benchmark's problems")
        task = by_id[row["id"]]
        for field in ("problem", "answer"):
            if str(row.get(field)) != str(task.get(field)):
                raise UserError(f"{where}: field {field!r} differs from the benchmark's problem {row['id']!r}; "
                                "these samples were drawn for another benchmark")
        if row["id"] in saved:
            raise UserError(f"{where}: problem {row['id']!r} appears twice")
        responses = row.get("samples", row.get("responses"))
        if not isinstance(responses, list) or not responses or not all(isinstance(r, str) for r in responses):
            raise UserError(f"{where}: field 'samples' (or 'responses') must be a non-empty list of strings")
        if n is None:
            n = len(responses)
        elif len(responses) != n:
            raise UserError(f"{where}: {len(responses)} responses, but the file's first row has {n}")
        reasons = row.get("finish_reasons", ["stop"] * n)
        if not isinstance(reasons, list) or len(reasons) != n or not all(r in ("stop", "length") for r in reasons):
            raise UserError(f"{where}: field 'finish_reasons' must list 'stop' or 'length' once per response")
        saved[row["id"]] = {"prompt": row.get("prompt", ""), "responses": responses, "finish_reasons": reasons}
    missing = [task["id"] for task in tasks if task["id"] not in saved]
    if missing:
        raise UserError(f"{path}: no responses for {len(missing)} of the benchmark's {len(tasks)} problems "
                        f"(first: {missing[0]!r})")
    return saved, n


def check_answers(tasks: list[dict]) -> None:
    """Evaluation needs every task's gold answer."""
    for i, task in enumerate(tasks):
        if "answer" not in task:
            raise UserError(f"task {task.get('id', i)!r}: field 'answer' is missing; evaluation needs gold answers")


def evaluate(model, tokenizer, tasks: list[dict], sampling: Sampling = Sampling(), *, out_path: str | None = None,
             group_by: list[str] | None = None, verifier=None, progress: bool = True) -> dict:
    """Evaluate `model` on `tasks` (rows with "answer"), drawing `sampling.n` responses per problem; returns
    the summary (see `summarize`).

    With `out_path`, per-problem rows are appended there as they are produced and problems already
    in it are not redone; at the end it is rewritten in task order. sampling.max_new_tokens None: see
    `w2s.generation.fit_max_new_tokens`. With a `verifier` (w2s.verifier.Verifier) every row also gets each
    response's score and the re-ranked verdicts, and the summary best_of@n, weighted_maj@n and "curves"
    (every measure over the first k = 1, 2, 4, ... n responses).
    """
    n = sampling.n
    if n < 1:
        raise UserError(f"--n must be >= 1, got {n}")
    if n > 1 and sampling.temperature == 0:
        raise UserError(f"--n {n}: {n} samples at temperature 0 would be {n} copies of the greedy answer; "
                        "set a temperature > 0 for maj@K / pass@K")
    check_answers(tasks)
    sampling = replace(sampling, max_new_tokens=fit_max_new_tokens(model, tokenizer, tasks, sampling.template,
                                                                   sampling.max_new_tokens))

    def draw(remaining: list[dict], bar: Progress):
        return sample_tasks(model, tokenizer, remaining, sampling=sampling, progress=bar)

    return _evaluate_rows(tasks, draw, sampling, out_path, group_by, verifier, progress)


def evaluate_saved(tasks: list[dict], saved: dict[str, dict], sampling: Sampling, *, out_path: str | None = None,
                   group_by: list[str] | None = None, verifier=None, progress: bool = True) -> dict:
    """`evaluate` on responses drawn before (see `read_saved_responses`) instead of generating: they are
    graded and scored, so several verifiers can rank the same samples. `sampling` describes how they were
    drawn (its n, temperature and template go into the summary)."""
    if sampling.n < 1:
        raise UserError(f"--n must be >= 1, got {sampling.n}")
    check_answers(tasks)

    def draw(remaining: list[dict], bar: Progress):
        return _saved_in_order(remaining, saved, bar)

    return _evaluate_rows(tasks, draw, sampling, out_path, group_by, verifier, progress)


def _done_rows(out_path: str | None, tasks: list[dict], n: int, verifier) -> dict[str, dict]:
    """The rows an earlier run left in `out_path`, by task id, each checked to belong to this evaluation."""
    task_ids = {task["id"] for task in tasks}
    done = {}
    if out_path:
        for line_no, row in read_output_rows(out_path):
            check_output_row(row, f"{out_path}:{line_no}", task_ids, n, "responses")
            if verifier is not None:
                check_output_row(row, f"{out_path}:{line_no}", task_ids, n, "scores")
            done.setdefault(row["id"], row)
    return done


def _evaluate_rows(tasks: list[dict], draw, sampling: Sampling, out_path: str | None, group_by: list[str] | None,
                   verifier, progress: bool) -> dict:
    """Score what `draw(remaining tasks, progress bar)` yields for the problems not in `out_path` yet,
    appending each row as it is scored; then the summary of every row."""
    n = sampling.n
    done = _done_rows(out_path, tasks, n, verifier)
    remaining = [task for task in tasks if task["id"] not in done]
    bar = Progress(len(remaining), "problems", enabled=progress)
    if remaining:
        out = open(out_path, "a", encoding="utf-8") if out_path else None
        try:
            for task, prompt, responses, reasons in draw(remaining, bar):
                row = score_row(task, prompt, responses, reasons)
                if verifier is not None:
                    row.update(verifier.rerank(task["problem"], row))
                done[task["id"]] = row
                if out:
                    append_row(out, row)
        finally:
            if out:
                out.close()
    bar.close()
    rows = [done[task["id"]] for task in tasks]
    if out_path:
        write_jsonl(out_path, rows)
    summary = summarize(rows, n, group_by)
    summary.update(n=n, temperature=sampling.temperature if n > 1 else 0.0, template=sampling.template)
    if verifier is not None:
        summary.update(verifier=verifier.path, verifier_agg=verifier.agg, verifier_split=verifier.split,
                       curves=rerank_curves(rows, curve_ks(n)))
    return summary


def _saved_in_order(tasks: list[dict], saved: dict[str, dict], bar):
    """Saved responses in the shape sample_tasks yields, counting each problem on the progress bar."""
    for task in tasks:
        row = saved[task["id"]]
        yield task, row["prompt"], row["responses"], row["finish_reasons"]
        bar.update(1)


def markdown(summaries: dict[str, dict]) -> str:
    """summary.json as tables: one line per benchmark, then one table per benchmark's groups."""
    def cells(s: dict) -> str:
        n = s.get("n", 1)
        extra = f" {s[f'pass@{n}']:.1%} | {s['sample_accuracy']:.1%} |" if n > 1 else ""
        if f"best_of@{n}" in s:
            extra += f" {s[f'best_of@{n}']:.1%} | {s[f'weighted_maj@{n}']:.1%} |"
        cut = f" {s['cut_off_share']:.1%} |" if "cut_off_share" in s else " n/a |"
        return f" {s['problems']} | {s['accuracy']:.1%} |{extra}{cut}"

    def header(first: str, n: int, reranked: bool) -> list[str]:
        cols = ["problems", "accuracy" if n == 1 else f"maj@{n}"] + ([f"pass@{n}", "sample accuracy"] if n > 1 else [])
        cols += [f"best_of@{n}", f"weighted_maj@{n}"] if reranked else []
        cols.append("cut off")
        return [f"| {first} | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]

    lines = []
    for name, s in summaries.items():
        n = s.get("n", 1)
        mode = "greedy" if n == 1 else f"{n} samples at temperature {s.get('temperature')}"
        reranked = f"best_of@{n}" in s
        if reranked:
            mode += f", re-ranked by {s.get('verifier')} ({s.get('verifier_agg')})"
        lines += [f"## {name} ({mode}, model {s.get('model', '?')})", ""] + header("benchmark", n, reranked)
        lines.append(f"| {name} |" + cells(s))
        for field, groups in s.get("by", {}).items():
            lines += ["", *header(field, n, reranked)]
            lines += [f"| {value} |" + cells({**g, "n": n}) for value, g in groups.items()]
        lines.append("")
    return "\n".join(lines)
