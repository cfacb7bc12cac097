"""Supervision datasets: prompts, the paper's formats, error-rate mixtures, SFT batches.

Reading order: the prompt; reading and validating JSON Lines; the supervision pool (one format
for the built-in world and the paper's data) and the training sets mixed from it at a chosen
outcome error rate; the paper's released files read into that pool; chat rows turned into token
ids with assistant-only labels; batching (random or length-grouped global batches, a deterministic split
of each across ranks, padding). data_prep.py is the command line that writes it all to disk.
"""
import json
import os
import random
import re
from collections import Counter
from dataclasses import dataclass, field

import torch

# One instruction for every prompt the project makes (SFT data, sampling, evaluation), so a
# model trained on our data is asked questions exactly the way it was taught.
INSTRUCTION = "Solve the problem step by step. Put the final answer in \\boxed{}."

IGNORE_INDEX = -100  # label of a position the loss skips (PyTorch cross_entropy's default ignore_index)
ROLES = ("system", "user", "assistant")


def user_message(problem: str) -> str:
    """The user turn for a math problem: the problem, then the step-by-step / \\boxed{} instruction."""
    return f"{problem.strip()}\n{INSTRUCTION}"


def problem_from_user_message(content: str) -> str:
    """Inverse of `user_message`: the problem text without the instruction line."""
    suffix = "\n" + INSTRUCTION
    return content[: -len(suffix)].strip() if content.endswith(suffix) else content.strip()


# ---------------------------------------------------------------------------------------------
# JSON Lines


def read_jsonl(path: str) -> list[dict]:
    """Rows of a JSON Lines file. Blank lines are allowed; bad JSON fails naming the file and line."""
    return [row for _, row in read_jsonl_numbered(path)]


def read_jsonl_numbered(path: str) -> list[tuple[int, object]]:
    """(line number, parsed row) pairs, so that validation errors can name the line."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                out.append((line_no, json.loads(line)))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{line_no}: bad JSON: {e.msg} (column {e.colno})") from None
    return out


def write_jsonl(path: str, rows: list[dict], cache: dict | None = None) -> None:
    """Write rows as JSON Lines, atomically (a killed run never leaves half a file behind).

    `cache` saves serializing the same row objects again for another file. It is keyed by id(row)
    and keeps the row itself, so a freed row's id, reused by a new row, never hits a stale line.
    """
    tmp = path + ".tmp"
    cache = {} if cache is None else cache
    with open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            cached = cache.get(id(row))
            if cached is None or cached[0] is not row:
                cached = cache[id(row)] = (row, json.dumps(row, ensure_ascii=False) + "\n")
            f.write(cached[1])
    os.replace(tmp, path)


def validate_sft_row(row: object, where: str) -> dict:
    """Check one SFT row {"id", "messages": [{"role", "content"}, ...], "meta"}; `where` is "file:line"."""
    if not isinstance(row, dict):
        raise ValueError(f"{where}: a row must be a JSON object, got {type(row).__name__}")
    if not isinstance(row.get("id"), str) or not row["id"]:
        raise ValueError(f"{where}: field 'id' must be a non-empty string, got {row.get('id')!r}")
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError(f"{where}: field 'messages' must be a non-empty list, got {messages!r}"[:300])
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ValueError(f"{where}: field 'messages[{i}]' must be an object")
        if message.get("role") not in ROLES:
            raise ValueError(f"{where}: field 'messages[{i}].role' must be one of {ROLES}, got {message.get('role')!r}")
        if not isinstance(message.get("content"), str):
            raise ValueError(f"{where}: field 'messages[{i}].content' must be a string")
    if not any(m["role"] == "assistant" for m in messages):
        raise ValueError(f"{where}: field 'messages' has no assistant turn: nothing to train on")
    if not isinstance(row.get("meta", {}), dict):
        raise ValueError(f"{where}: field 'meta' must be an object")
    return row


def read_rows_with_unique_ids(path: str, check_row, what: str) -> list[dict]:
    """The rows of a JSONL file, each passed to `check_row(row, "file:line")` (which raises on a bad row);
    ids must be unique, and the file must hold at least one row (`what` names them: "tasks", "examples")."""
    rows, first_line = [], {}
    for line_no, row in read_jsonl_numbered(path):
        where = f"{path}:{line_no}"
        check_row(row, where)
        if row["id"] in first_line:
            raise ValueError(f"{where}: field 'id': duplicate id {row['id']!r} (first on line {first_line[row['id']]})")
        first_line[row["id"]] = line_no
        rows.append(row)
    if not rows:
        raise ValueError(f"{path}: no {what}")
    return rows


def load_sft_examples(path: str) -> list[dict]:
    """Read and validate a chat SFT JSONL file. Any bad row fails with file, line and field; ids must be unique."""
    return read_rows_with_unique_ids(path, validate_sft_row, "examples")


# ---------------------------------------------------------------------------------------------
# The supervision pool: one format for the built-in world and the paper's data


@dataclass
class Solution:
    text: str
    correct: bool
    step_error_rate: float | None = None  # wrong steps / all steps, when it is known
    meta: dict = field(default_factory=dict)


@dataclass
class PoolItem:
    """A task with its gold answer, correct and incorrect solutions, sub-tasks and paraphrases (both PoolItems)."""
    id: str
    problem: str
    answer: str
    correct: list[Solution]
    incorrect: list[Solution] = field(default_factory=list)
    subtasks: list["PoolItem"] = field(default_factory=list)
    paraphrases: list["PoolItem"] = field(default_factory=list)
    meta: dict = field(default_factory=dict)


def choose_incorrect(ids: list[str], error_rate: float, seed: int, key: str, eligible: list[bool] | None = None) -> set[int]:
    """Indices of the examples that get an incorrect solution: exactly round(error_rate * n) of them.

    The choice walks one seeded random order of the examples and takes the first eligible ones,
    so the incorrect examples at a lower rate are a subset of those at a higher rate: conditions
    differ only in the examples the rate adds, not in which tasks happened to be drawn.
    """
    if not 0.0 <= error_rate <= 1.0:
        raise ValueError(f"error rate must be in [0, 1], got {error_rate}")
    wanted = int(error_rate * len(ids) + 0.5)
    order = sorted(range(len(ids)), key=lambda i: ids[i])  # a fixed start, whatever the input order
    random.Random(f"choose_incorrect/{seed}/{key}").shuffle(order)
    if eligible is not None:
        order = [i for i in order if eligible[i]]
    if len(order) < wanted:
        raise ValueError(f"{key}: outcome error rate {error_rate} needs {wanted} incorrect solutions, "
                         f"but only {len(order)} of {len(ids)} tasks have one")
    return set(order[:wanted])


def sft_row(row_id: str, item: PoolItem, solution: Solution, kind: str, **meta) -> dict:
    """A chat SFT example: user = problem + instruction, assistant = the solution; meta says what it is."""
    return {
        "id": row_id,
        "messages": [{"role": "user", "content": user_message(item.problem)}, {"role": "assistant", "content": solution.text}],
        "meta": {"task_id": item.id, "kind": kind, "answer": item.answer, "correct": solution.correct,
                 "step_error_rate": solution.step_error_rate, **item.meta, **solution.meta, **meta},
    }


def mixture(items: list[PoolItem], error_rate: float, seed: int, key: str, kind: str) -> tuple[list[dict], set[int]]:
    """One SFT row per item: a seeded error_rate share of them with an incorrect solution, the rest correct."""
    wrong = choose_incorrect([it.id for it in items], error_rate, seed, key, [bool(it.incorrect) for it in items])
    rows = [sft_row(it.id, it, it.incorrect[0] if i in wrong else it.correct[0], kind) for i, it in enumerate(items)]
    return rows, wrong


def build_sets(pool: list[PoolItem], hard_error: float, sub_error: float, seed: int) -> tuple[dict[str, list[dict]], dict]:
    """The study's training sets from a pool, and a report of anything left out.

    hard_full            one example per task (hard_error of them incorrect)
    easy_sub             one example per sub-task (sub_error of them incorrect)
    hard_full+easy_sub   both
    hard_full+paraphrase hard_full plus each task's paraphrases (the paper's "merge rephrased"
                         baseline); a paraphrase takes the same side (correct or incorrect) as its
                         task, so it adds wording, not new supervision
    hard_full_x2         hard_full twice (the paper's "4 epochs" baseline)
    """
    report = {"tasks_without_correct_solution": 0, "paraphrases_kept_correct_for_lack_of_incorrect": 0}
    hard_items = [it for it in pool if it.correct]
    report["tasks_without_correct_solution"] = len(pool) - len(hard_items)
    hard, wrong = mixture(hard_items, hard_error, seed, "hard_full", "hard_full")
    subs = [sub for it in hard_items for sub in it.subtasks if sub.correct]
    easy, _ = mixture(subs, sub_error, seed, "easy_sub", "easy_sub")
    paraphrases = []
    for i, it in enumerate(hard_items):
        for para in it.paraphrases:
            use_incorrect = i in wrong and bool(para.incorrect)
            report["paraphrases_kept_correct_for_lack_of_incorrect"] += i in wrong and not para.incorrect
            if para.correct or use_incorrect:
                paraphrases.append(sft_row(para.id, para, para.incorrect[0] if use_incorrect else para.correct[0], "paraphrase"))
    twice = [dict(row, id=row["id"] + "/x2") for row in hard]
    sets = {
        "hard_full": hard,
        "easy_sub": easy,
        "hard_full+easy_sub": hard + easy,
        "hard_full+paraphrase": hard + paraphrases,
        "hard_full_x2": hard + twice,
    }
    if not subs:
        del sets["easy_sub"], sets["hard_full+easy_sub"]
    if not paraphrases:
        del sets["hard_full+paraphrase"]
    return sets, report


# ---------------------------------------------------------------------------------------------
# The paper's released data (hexuan21/weak-to-strong) as a pool, weaker-teacher sets and benchmarks
#
# The release stores JSON lists (JSON Lines accepted too). Every row is validated and a bad one
# fails naming the file, the line of its opening brace and the field; whatever is skipped on
# purpose is counted in the report.

HF_REPO = "hexuan21/weak-to-strong"
HF_TESTS = {  # released file name (without .json) -> benchmark name
    "MATH_test500": "math500",
    "olympic_arena": "olympic_arena",
    "converted_jee_bench": "jee_bench",
    "converted_agi_eval_sat-math": "sat_math",
    "agi_eval_gaokao-mathcloze": "gaokao_mathcloze",
}


def load_release_file(path: str) -> list[tuple[int, dict]]:
    """(line number, object) pairs of a released file: a JSON list of objects, or JSON Lines."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    decoder, rows = json.JSONDecoder(), []
    start = len(text) - len(text.lstrip())
    if text[start:start + 1] == "[":  # a JSON list: decode element by element to know each one's line
        pos = start + 1
        while True:
            while pos < len(text) and text[pos] in " \t\r\n,":
                pos += 1
            if pos >= len(text):
                raise ValueError(f"{path}: unterminated JSON list")
            if text[pos] == "]":
                break
            try:
                obj, end = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{e.lineno}: bad JSON: {e.msg}") from None
            rows.append((text.count("\n", 0, pos) + 1, obj))
            pos = end
    else:
        for line_no, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append((line_no, json.loads(line)))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{line_no}: bad JSON: {e.msg}") from None
    for line_no, obj in rows:
        if not isinstance(obj, dict):
            raise ValueError(f"{path}:{line_no}: expected a JSON object, got {type(obj).__name__}")
    return rows


def string_field(obj: dict, name: str, where: str, allow_empty: bool = False) -> str:
    """A string field of a released row; fails naming file, line and field."""
    value = obj
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            raise ValueError(f"{where}: missing field '{name}'")
        value = value[part]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise ValueError(f"{where}: field '{name}' must be a non-empty string, got {value!r}"[:300])
    return value


def _gold(solution: str, where: str, field_name: str) -> str:
    from w2s.grader import extract_answer

    answer = extract_answer(solution)
    if answer is None:
        raise ValueError(f"{where}: field '{field_name}' has no final answer to extract (no \\boxed{{}})")
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
    return PoolItem(item_id, problem, answer, [Solution(pos, True)], [Solution(neg, False)] if neg.strip() else [], meta=meta)


def read_task_sol_pairs(root: str, subset: str | None, report: Counter) -> list[PoolItem]:
    """task_sol_pairs/<subset>/*.json: {"ori_id", "original": {task, pos_ans, neg_ans}, "subtask_<k>": {...}}."""
    pool, seen = [], set()
    files = _release_files(root, "task_sol_pairs")
    if not files:
        raise SystemExit(f"{root}: no task_sol_pairs/ files (is this the {HF_REPO} dataset?)")
    for path in files:
        name = _subset(root, "task_sol_pairs", path)
        if subset and name != subset:
            continue
        for line_no, row in load_release_file(path):
            where = f"{path}:{line_no}"
            item_id = f"{name}/{string_field(row, 'ori_id', where)}"
            if item_id in seen:
                raise ValueError(f"{where}: field 'ori_id': duplicate {row['ori_id']!r} in subset {name}")
            seen.add(item_id)
            task = string_field(row, "original.task", where)
            pos, neg = _solutions(row, "original.", where)
            item = _item(item_id, task, _gold(pos, where, "original.pos_ans"), pos, neg, source=f"hf/{name}")
            report["tasks"] += 1
            report["tasks without neg_ans"] += not item.incorrect
            for key in sorted((k for k in row if re.fullmatch(r"subtask_\d+", k)), key=lambda k: int(k.split("_")[1])):
                sub_task = string_field(row, f"{key}.task", where)
                sub_pos, sub_neg = _solutions(row, f"{key}.", where)
                item.subtasks.append(_item(f"{item_id}/{key}", sub_task, _gold(sub_pos, where, f"{key}.pos_ans"), sub_pos,
                                           sub_neg, source=f"hf/{name}", parent_id=item_id))
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
        for line_no, row in load_release_file(path):
            where = f"{path}:{line_no}"
            parent = by_id.get(f"{name}/{string_field(row, 'ori_id', where)}")
            if parent is None:
                report["paraphrases without a task (skipped)"] += 1
                continue
            pos, neg = _solutions(row, "", where)
            parent.paraphrases.append(_item(f"{parent.id}/para{len(parent.paraphrases) + 1}", string_field(row, "task", where),
                                            parent.answer, pos, neg, source=parent.meta["source"], parent_id=parent.id))
            report["paraphrases"] += 1


def read_weaker_sampling(root: str, report: Counter) -> dict[str, list[dict]]:
    """weaker_sampling/<teacher>/*.json: {"ori_id", "task", "ground_truth", "sample<k>", "judge<k>"} -> weak_<teacher> sets.

    Every sampled solution becomes an example; its correctness is the release's judge field
    (1 right, 0 wrong), or the grader against the ground truth where a judge field is missing.
    """
    from w2s.grader import extract_answer, grade

    sets = {}
    for path in _release_files(root, "weaker_sampling"):
        teacher = _subset(root, "weaker_sampling", path)
        file_stem = os.path.basename(path).rsplit(".", 1)[0]
        rows = sets.setdefault(f"weak_{teacher}", [])
        for line_no, row in load_release_file(path):
            where = f"{path}:{line_no}"
            ori_id, problem, truth = string_field(row, "ori_id", where), string_field(row, "task", where), string_field(row, "ground_truth", where)
            gold = extract_answer(truth) or truth.strip()
            samples = sorted((k for k in row if re.fullmatch(r"sample\d+", k)), key=lambda k: int(k[6:]))
            if not samples:
                raise ValueError(f"{where}: missing field 'sample1' (no sampled solutions)")
            item = PoolItem(f"{teacher}/{ori_id}", problem, gold, [], meta={"source": "hf/weaker_sampling", "teacher": teacher})
            for key in samples:
                text, judge = row[key], row.get("judge" + key[6:])
                if not isinstance(text, str) or not text.strip():
                    report["empty samples (skipped)"] += 1
                    continue
                if judge not in (0, 1, None, "0", "1"):  # True/False compare equal to 1/0
                    raise ValueError(f"{where}: field 'judge{key[6:]}' must be 1 or 0, got {judge!r}")
                correct = grade(text, gold) if judge is None else bool(int(judge))
                report["samples graded (no judge field)"] += judge is None
                rows.append(sft_row(f"{teacher}/{file_stem}/{ori_id}/{key}", item, Solution(text, correct), "weak_teacher",
                                    correct_by="grader" if judge is None else "judge"))
                report[f"weak_{teacher} samples"] += 1
    return sets


def read_tests(root: str, report: Counter) -> dict[str, list[dict]]:
    """test_data/*.json: {"question", "ground_truth", ...} -> benchmark rows {"id", "problem", "answer", ...extra kept}."""
    from w2s.grader import extract_answer

    tests = {}
    top_level = sorted(os.path.join(root, f) for f in os.listdir(root) if f.endswith((".json", ".jsonl")))
    for path in _release_files(root, "test_data") + top_level:
        stem = os.path.basename(path).rsplit(".", 1)[0]
        if stem not in HF_TESTS:
            report[f"unrecognized test file {os.path.relpath(path, root)} (skipped)"] += 1
            continue
        bench, rows = HF_TESTS[stem], []
        for line_no, row in load_release_file(path):
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


def read_release(root: str, subset: str | None = None) -> tuple[list[PoolItem], dict[str, list[dict]], dict[str, list[dict]], dict]:
    """The released dataset at `root`: a pool (task_sol_pairs + paraphrase), weak_<teacher> sets, benchmarks, a report."""
    report = Counter()
    pool = read_task_sol_pairs(root, subset, report)
    attach_paraphrases(root, subset, pool, report)
    weak_sets = read_weaker_sampling(root, report)
    tests = read_tests(root, report)
    # The release's own split; we cannot redraw it, but we can say whether a test problem is trained on.
    train_problems = {_norm(it.problem) for item in pool for it in [item] + item.subtasks + item.paraphrases}
    for bench, rows in tests.items():
        report[f"{bench}: test problems also in training data"] = sum(_norm(r["problem"]) in train_problems for r in rows)
    return pool, weak_sets, tests, dict(report)


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


# ---------------------------------------------------------------------------------------------
# Tokenization: token ids through the chat template, labels only on assistant tokens


@dataclass
class TokenizedExample:
    input_ids: list[int]
    # Same length as input_ids: labels[t] = input_ids[t] where token t is an assistant token
    # (content and its closing <|eot_id|>), else IGNORE_INDEX. The loss predicts labels[t] from
    # position t-1, so the shift happens in the loss, not here.
    labels: list[int]

    @property
    def num_targets(self) -> int:
        """Tokens this example contributes to the loss (for token-weighted means across micro-batches)."""
        return sum(label != IGNORE_INDEX for label in self.labels[1:])


def tokenize_sft(rows: list[dict], tokenizer, max_seq_len: int, overflow: str = "truncate") -> tuple[list[TokenizedExample], dict]:
    """Chat rows -> token ids and assistant-only labels.

    Examples longer than `max_seq_len` are cut at the end ("truncate") or left out ("drop"); both
    are counted in the returned report. A truncated example that keeps no assistant token is left
    out too (it would add nothing to the loss) and counted under "dropped".
    Report keys: examples (rows in), kept, truncated, dropped, tokens, assistant_tokens.
    """
    if overflow not in ("truncate", "drop"):
        raise ValueError(f"overflow must be 'truncate' or 'drop', got {overflow!r}")
    if max_seq_len < 2:
        raise ValueError(f"max_seq_len must be at least 2, got {max_seq_len}")
    out, report = [], {"examples": len(rows), "kept": 0, "truncated": 0, "dropped": 0, "tokens": 0, "assistant_tokens": 0}
    for row in rows:
        ids, mask = tokenizer.encode_chat_for_training(row["messages"])
        if len(ids) > max_seq_len:
            if overflow == "drop":
                report["dropped"] += 1
                continue
            ids, mask = ids[:max_seq_len], mask[:max_seq_len]
            if not any(mask[1:]):
                report["dropped"] += 1
                continue
            report["truncated"] += 1
        labels = [token if keep else IGNORE_INDEX for token, keep in zip(ids, mask)]
        example = TokenizedExample(input_ids=list(ids), labels=labels)
        out.append(example)
        report["tokens"] += len(ids)
        report["assistant_tokens"] += example.num_targets
    report["kept"] = len(out)
    return out, report


# ---------------------------------------------------------------------------------------------
# Batching
#
# Global batches are drawn uniformly at random by default. Length grouping (sorting windows of
# batches by length) saves padding, but it makes each batch one kind of example: in the built-in
# world 91% of a grouped batch shared one step count (39% at random), so the gradient swung from
# one kind of task to the next, and the tiny model learned 5% of the test answers where random
# batches reached 15% (the same steps; see experiments/RESULTS.md). It stays an explicit choice
# (train.py --group-by-length) for long-tailed real data on GPUs, where padding is the cost.
# Either way each row stays one conversation (no packing), so plain causal attention is right as
# is, and "one example = one row" keeps the loss bookkeeping and the rank split easy to read.

GROUP_BATCHES = 32  # with grouping: global batches per length-sorted window (bigger = less padding, less randomness)


def global_batches(lengths: list[int], global_batch_size: int, seed: int, epoch: int,
                   group_by_length: bool = False) -> list[list[int]]:
    """Example indices of each optimizer step's global batch, for one epoch.

    Shuffle all examples with a generator seeded by (seed, epoch) and cut the order into global
    batches. With `group_by_length`, cut it instead into windows of GROUP_BATCHES global batches,
    sort each window by length, cut it into batches and shuffle the batch order. Depends only on
    (lengths, global_batch_size, seed, epoch, group_by_length), never on the number of processes,
    so 1 and N processes train on the same global batches. The last partial batch is kept (it
    comes last), so every example is seen once per epoch.
    """
    if global_batch_size < 1:
        raise ValueError(f"global_batch_size must be >= 1, got {global_batch_size}")
    rng = random.Random(f"global_batches/{seed}/{epoch}")
    order = list(range(len(lengths)))
    rng.shuffle(order)
    num_full = len(order) // global_batch_size
    full, rest = order[: num_full * global_batch_size], order[num_full * global_batch_size:]
    if not group_by_length:
        batches = [full[j:j + global_batch_size] for j in range(0, len(full), global_batch_size)]
        return batches + ([rest] if rest else [])
    batches = []
    window = GROUP_BATCHES * global_batch_size
    for start in range(0, len(full), window):
        chunk = sorted(full[start:start + window], key=lambda i: (lengths[i], i))
        batches += [chunk[j:j + global_batch_size] for j in range(0, len(chunk), global_batch_size)]
    rng.shuffle(batches)  # otherwise every window would run from short to long
    if rest:
        batches.append(sorted(rest, key=lambda i: (lengths[i], i)))
    return batches


def split_global_batch(batch: list[int], lengths: list[int], world_size: int, rank: int, micro_batch_size: int) -> list[list[int]]:
    """This rank's micro-batches of one global batch.

    The batch is sorted by length (longest first) and dealt in micro-steps of world_size *
    micro_batch_size examples; within a micro-step the examples go round-robin to the ranks, so
    at each micro-step every rank gets examples of about the same length (little padding, and
    ranks wait little for each other). Deterministic, disjoint, and together the ranks cover
    the batch exactly. A rank may get fewer micro-batches (or none) when the batch does not
    divide evenly; rank 0 always has the most, so under FSDP every rank can agree on the number
    of micro-steps as len(split_global_batch(batch, lengths, world_size, 0, micro_batch_size))
    and run a zero-weight step where it has nothing.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside world_size {world_size}")
    if micro_batch_size < 1:
        raise ValueError(f"micro_batch_size must be >= 1, got {micro_batch_size}")
    ordered = sorted(batch, key=lambda i: (-lengths[i], i))
    per_step = world_size * micro_batch_size
    micro_batches = []
    for start in range(0, len(ordered), per_step):
        mine = ordered[start:start + per_step][rank::world_size]
        if mine:
            micro_batches.append(mine)
    return micro_batches


def collate(examples: list[TokenizedExample], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to the longest example: input_ids [B, T] (pad_id) and labels [B, T] (IGNORE_INDEX on padding)."""
    if not examples:
        raise ValueError("collate needs at least one example")
    width = max(len(e.input_ids) for e in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example.input_ids)
        input_ids[row, :n] = torch.tensor(example.input_ids, dtype=torch.long)
        labels[row, :n] = torch.tensor(example.labels, dtype=torch.long)
    return input_ids, labels
