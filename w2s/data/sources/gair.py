"""The release of "Weak-to-Strong Reasoning" (Yang, Ma, Liu 2024; GitHub GAIR-NLP/weak-to-strong-reasoning),
read as released and converted to this project's formats.

Reading order: the release's layout; rows read one by one with their line numbers; the one prompt and the
one way a target states its answer; each kind of row turned into ours (or skipped, with a reason); the
sets (benchmarks, raw sets, LLaMA-Factory sets through dataset_info.json); `convert_gair`, which yields
the sets one at a time and reports what it read, skipped, missed and left alone.

The release's data/ tree (commit 596a0b6):
    test/<name>.jsonl          {source, question, solution, answer, tag: {level?, subject?, unique_id?}}
    raw/<set>/train_1.jsonl    the weak model's gold: {id, question, answer "... #### N"} (GSM8K, with
                               `<<48/2=24>>` calculator notes) or {question, solution, answer} (MATH)
    raw/<set>/train_2.jsonl    the strong model's questions, same shapes (answers: for reporting only)
    raw/<set>/test.jsonl       the benchmark in its source's own shape (MATH: {problem, ..., unique_id})
    llama_factory/dataset_info.json   LLaMA-Factory's registry: name -> {file_name, columns, ranking?}
    llama_factory/<set>/*.json SFT rows {id, content: "Question: ...\\nAnswer:", output, gold?, pred?, result?};
                               pair rows (ranking) {id, instruction, input, output: [chosen, rejected]}

What it becomes: test/<name> benchmarks ({id, problem, answer, level?, subject?, source}; math -> math500),
gair_<set>_gold SFT rows (train_1), tasks/gair_<set> (train_2), and one set per dataset_info.json entry,
gair_<entry> (SFT rows, or pair rows for a ranking entry). The release's ids stay: in each row's id
(`<file stem>/<release id>`, `#k` on the k-th repeat of one id) and as meta["gair_id"].

One prompt. GAIR's scaffold "Question: X\\nAnswer:" is stripped, and X goes into the project's own prompt
(w2s.data.rows.user_message: the problem, then the step-by-step / \\boxed{} instruction), the prompt sample.py,
evaluate.py and the few-shot layouts use for every benchmark: a model trained on these sets is asked at
test time as it was taught. A prompt with other text around it (OlympicArena's own instructions) keeps
that text, less its closing "Answer:".

One final answer. A target ends with its answer in \\boxed{}, as the prompt asks. A response without a
box has its closing statement rewritten: GSM8K's `#### N` and MATH's "The answer is: X" both become
"The answer is: \\boxed{X}"; meta keeps the replaced text ("release_ending", per response), so the
release's response is the target with that one ending put back. Every other character is the release's.
The raw GSM8K gold loses its calculator notes (`<<48/2=24>>`), as GAIR's own LLaMA-Factory copy of the
same rows (gsm8k_train_1.json) does. The grader reads `#### N` and "The answer is:" as well as boxes.

Bad rows are skipped and counted (a missing, empty or non-string question or response, an empty chosen
or rejected answer, a row that is not an object), with the first few file:line places. Files are read
one at a time and rows one by one (line numbers counted as the reader goes), so the full release, 100x
the copy in ../shared, converts in time linear in its size with one file's rows in memory.
"""
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterator

from w2s.data.jsonl import file_stem
from w2s.data.rows import pair_row, user_message
from w2s.data.sources.reader import read_rows, refuse_lfs_pointer
from w2s.errors import MissingFileError, UserError

TESTS = {"math": "math500"}  # data/test/<stem> -> test/<bench> where the names differ
SHOWN_PLACES = 3  # file:line places shown per set for its skipped rows

# ---------------------------------------------------------------------------------------------
# The layout


def data_root(directory: str) -> str:
    """The release's data/ folder: DIR/data, or DIR itself when it is that folder."""
    for candidate in (os.path.normpath(os.path.join(directory, "data")), os.path.normpath(directory)):
        if any(os.path.isdir(os.path.join(candidate, sub)) for sub in ("test", "raw", "llama_factory")):
            return candidate
    raise MissingFileError(f"{directory}: no data/test, data/raw or data/llama_factory (not a copy of "
                           "GAIR-NLP/weak-to-strong-reasoning?)")


def _files(folder: str) -> list[str]:
    if not os.path.isdir(folder):
        return []
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.endswith((".json", ".jsonl")))


# ---------------------------------------------------------------------------------------------
# Rows, one at a time


@dataclass
class SetReport:
    """What one file gave: rows converted, rows skipped, and where the first skips are."""
    file: str
    rows: int = 0
    skipped: int = 0
    places: list[str] = field(default_factory=list)

    def skip(self, where: str, reason: str) -> None:
        self.skipped += 1
        if len(self.places) < SHOWN_PLACES:
            self.places.append(f"{where} ({reason})")

    def line(self, name: str) -> str:
        text = f"{name}: {self.rows} rows from {self.file}"
        if self.skipped:
            text += (f", {self.skipped} skipped: " + "; ".join(self.places)
                     + (" ..." if self.skipped > len(self.places) else ""))
        return text


class BadRow(ValueError):
    """A row a converter cannot use: skipped and counted, never fatal."""


def iter_rows(path: str, report: SetReport) -> Iterator[tuple[str, dict]]:
    """("file:line", object) for each row of a JSON list (as LLaMA-Factory's files are) or of JSON Lines;
    a row that is not an object, or a JSON Lines line that is not JSON, is skipped and counted."""
    for line_no, row in read_rows(path, skip=report.skip):
        yield f"{path}:{line_no}", row


def _text(row: dict, name: str, number: bool = False) -> str:
    """A non-empty string field (or, with `number`, a number: a benchmark's answer); else BadRow naming the field."""
    value = row.get(name)
    if number and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if value is None:
        raise BadRow(f"no field {name!r}")
    if not isinstance(value, str):
        raise BadRow(f"field {name!r} is a {type(value).__name__}, not a string")
    if not value.strip():
        raise BadRow(f"field {name!r} is empty")
    return value


def _release_id(row: dict, fallback: str) -> str:
    value = row.get("id")
    return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value) else fallback


class Ids:
    """Row ids `<stem>/<release id>`, with `#k` on the k-th repeat (MATH's pair files hold 3 pairs per question)."""

    def __init__(self, stem: str):
        self.stem, self.seen = stem, Counter()

    def __call__(self, release_id: str) -> str:
        k = self.seen[release_id]
        self.seen[release_id] += 1
        return f"{self.stem}/{release_id}" + (f"#{k}" if k else "")


# ---------------------------------------------------------------------------------------------
# The one prompt and the one final answer

_SCAFFOLD = re.compile(r"\s*Question:\s*(.*?)\s*\n\s*Answer:\s*", re.S)
_TRAILING_ANSWER = re.compile(r"\s*\n\s*Answer:\s*$")
_CALCULATOR_NOTE = re.compile(r"<<[^<>\n]*>>")
_GSM8K_ENDING = re.compile(r"####\s*(\S.*?)\s*$")
_STATED_ENDING = re.compile(r"The answer is:\s*(\S.*?)\s*$")


def question_of(prompt: str) -> str:
    """GAIR's prompt without its scaffold: "Question: X\\nAnswer:" is X; other text loses its closing "Answer:"."""
    scaffold = _SCAFFOLD.fullmatch(prompt)
    if scaffold and "\nAnswer:" not in scaffold.group(1):
        return scaffold.group(1)
    return _TRAILING_ANSWER.sub("", prompt).strip()


def target_of(response: str) -> tuple[str, str | None]:
    """(the target, the release's ending it replaced or None): see "One final answer" above."""
    if "\\boxed" in response:
        return response, None
    stripped = response.rstrip()
    line_start = stripped.rfind("\n") + 1  # the ending is on the last line: "#### 5", "... pages. #### 140"
    ending = _GSM8K_ENDING.search(stripped, line_start) or _STATED_ENDING.search(stripped, line_start)
    if not ending:
        return response, None
    return response[:ending.start()] + f"The answer is: \\boxed{{{ending.group(1)}}}", response[ending.start():]


def gsm8k_answer(solution: str) -> str | None:
    """The N of a GSM8K solution's `#### N`."""
    ending = _GSM8K_ENDING.search(solution.rstrip().rsplit("\n", 1)[-1])
    return ending.group(1).replace(",", "") if ending else None


# ---------------------------------------------------------------------------------------------
# Rows of each kind


def benchmark_row(row: dict, bench: str, index: int) -> dict:
    """{id, problem, answer, level?, subject?, source?}; the tag flattened (its unique_id is the id).
    MATH's raw shape ({problem, ..., level, subject, unique_id} at the top) reads the same."""
    tag = row.get("tag") if isinstance(row.get("tag"), dict) else row
    problem = _text(row, "question" if "question" in row else "problem")
    out = {"id": str(tag.get("unique_id") or row.get("id") or f"{bench}-{index}"), "problem": problem,
           "answer": _text(row, "answer", number=True)}
    for key in ("level", "subject"):
        if tag.get(key) not in (None, ""):
            out[key] = tag[key]
    if isinstance(row.get("source"), str):
        out["source"] = row["source"]
    return out


def _solution_and_answer(row: dict) -> tuple[str, str]:
    """(solution, final answer) of a raw row: {question, solution, answer} or GSM8K's
    {question, answer "... #### N"}."""
    if "solution" in row:
        return _text(row, "solution"), _text(row, "answer", number=True)
    solution = _text(row, "answer")
    answer = gsm8k_answer(solution)
    if answer is None:
        raise BadRow("field 'answer' has no closing '#### N' (and there is no 'solution')")
    return solution, answer


def gold_row(row: dict, row_id: str, release_id: str, source: str) -> dict:
    """A raw train_1 row as an SFT row: the gold solution, calculator notes dropped, its answer boxed."""
    solution, answer = _solution_and_answer(row)
    target, ending = target_of(_CALCULATOR_NOTE.sub("", solution))
    meta = {"kind": "gold", "source": source, "gair_id": release_id, "answer": answer, "correct": True}
    if ending is not None:
        meta["release_ending"] = ending
    return {"id": row_id, "messages": [{"role": "user", "content": user_message(_text(row, "question"))},
                                       {"role": "assistant", "content": target}], "meta": meta}


def task_row(row: dict, row_id: str) -> dict:
    """A raw train_2 row as a task for sample.py."""
    return {"id": row_id, "problem": _text(row, "question"), "answer": _solution_and_answer(row)[1]}


def _prompt(row: dict, columns: dict) -> str:
    """LLaMA-Factory's prompt: its prompt column, then its query column on a new line when there is one."""
    prompt = _text(row, columns.get("prompt", "instruction"))
    query = row.get(columns.get("query", "input"))
    if query is not None and not isinstance(query, str):
        raise BadRow(f"field {columns.get('query', 'input')!r} is a {type(query).__name__}, not a string")
    return f"{prompt}\n{query}" if query else prompt


def sft_row(row: dict, columns: dict, row_id: str, release_id: str, source: str) -> dict:
    target, ending = target_of(_text(row, columns.get("response", "output")))
    meta = {"kind": "gair_lf", "source": source, "gair_id": release_id}
    if ending is not None:
        meta["release_ending"] = ending
    if "gold" in row:  # MATH's weak sets: the gold answer, the weak model's answer and its verdict
        meta["answer"] = str(row["gold"])
    if isinstance(row.get("pred"), str):
        meta["pred"] = row["pred"]
    if isinstance(row.get("result"), bool):
        meta["correct"] = row["result"]
    return {"id": row_id, "messages": [{"role": "user", "content": user_message(question_of(_prompt(row, columns)))},
                                       {"role": "assistant", "content": target}], "meta": meta}


def ranking_row(row: dict, columns: dict, row_id: str, release_id: str, source: str) -> dict:
    """A pair: output = [chosen, rejected], two non-empty strings."""
    name = columns.get("response", "output")
    output = row.get(name)
    if not isinstance(output, list) or len(output) != 2:
        raise BadRow(f"field {name!r} is not [chosen, rejected]")
    for label, text in zip(("chosen", "rejected"), output):
        if not isinstance(text, str) or not text.strip():
            raise BadRow(f"the {label} answer is {'empty' if isinstance(text, str) else 'not a string'}")
    (chosen, chosen_end), (rejected, rejected_end) = target_of(output[0]), target_of(output[1])
    meta = {"kind": "gair_pair", "source": source, "gair_id": release_id}
    if chosen_end is not None or rejected_end is not None:
        meta["release_endings"] = [chosen_end, rejected_end]
    return pair_row(row_id, user_message(question_of(_prompt(row, columns))), chosen, rejected, **meta)


# ---------------------------------------------------------------------------------------------
# The sets


@dataclass
class GairSet:
    kind: str  # "test", "tasks", "sft" or "pairs"
    name: str
    rows: list[dict]
    report: SetReport


def _convert(path: str, make, report_name: str) -> tuple[list[dict], SetReport]:
    """`make(row, index)` over every row of `path`; a BadRow is skipped and counted."""
    report, rows = SetReport(report_name), []
    for index, (where, row) in enumerate(iter_rows(path, report)):
        try:
            rows.append(make(row, index))
        except BadRow as e:
            report.skip(where, str(e))
    report.rows = len(rows)
    return rows, report


@dataclass
class GairReport:
    """The sets read (each with its skips), files dataset_info.json names but the folder lacks, files left alone."""
    sets: list[tuple[str, str, SetReport]] = field(default_factory=list)  # (kind, name, report)
    missing: list[str] = field(default_factory=list)
    not_read: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"  {kind} {report.line(name)}" for kind, name, report in self.sets]
        out += [f"  note: {note}" for note in self.notes]
        skipped = sum(r.skipped for _, _, r in self.sets)
        out.append(f"  rows skipped: {skipped}" + (" (see above)" if skipped else ""))
        out.append(f"  named in llama_factory/dataset_info.json but absent ({len(self.missing)}): "
                   + (", ".join(self.missing) or "none"))
        out.append(f"  files no reader took ({len(self.not_read)}): " + (", ".join(self.not_read) or "none"))
        return out


def _relative(root: str, path: str) -> str:
    return os.path.relpath(path, os.path.dirname(root))


def convert_gair(directory: str, report: GairReport) -> Iterator[GairSet]:
    """Every set of the release at `directory`, one at a time (the caller writes each before the next is read)."""
    root = data_root(directory)
    taken = {os.path.normpath(os.path.join(root, "llama_factory", "dataset_info.json"))}
    tests: dict[str, set[str]] = {}  # bench -> its problems, to check raw/<set>/test.jsonl against
    for path in _files(os.path.join(root, "test")):
        bench = TESTS.get(file_stem(path), file_stem(path))
        rows, set_report = _convert(path, lambda row, i, b=bench: benchmark_row(row, b, i), _relative(root, path))
        tests[bench] = {" ".join(r["problem"].split()) for r in rows}
        taken.add(os.path.normpath(path))
        yield GairSet("test", bench, rows, set_report)
    raw = os.path.join(root, "raw")
    for name in sorted(os.listdir(raw)) if os.path.isdir(raw) else []:
        for path in _files(os.path.join(raw, name)):
            stem, source, ids = file_stem(path), f"gair/{name}", Ids(f"{name}/{file_stem(path)}")

            def gold(row, i, ids=ids, source=source):
                release_id = _release_id(row, str(i))
                return gold_row(row, ids(release_id), release_id, source)

            if stem == "train_1":
                rows, set_report = _convert(path, gold, _relative(root, path))
                yield GairSet("sft", f"gair_{name}_gold", rows, set_report)
            elif stem == "train_2":
                rows, set_report = _convert(path, lambda row, i, ids=ids: task_row(row, ids(_release_id(row, str(i)))),
                                            _relative(root, path))
                yield GairSet("tasks", f"gair_{name}", rows, set_report)
            elif stem == "test":  # the benchmark again, in its source's shape: checked, not written twice
                bench = TESTS.get(name, name)
                rows, set_report = _convert(path, lambda row, i, b=bench: benchmark_row(row, b, i),
                                            _relative(root, path))
                known = tests.get(bench, set())
                found = sum(" ".join(r["problem"].split()) in known for r in rows)
                report.sets.append(("check", f"raw/{name}/test", set_report))
                report.notes.append(f"{_relative(root, path)}: {found} of {len(rows)} problems also in test/{bench} "
                                    "(the same benchmark in its source's shape; not written again)")
            else:
                continue
            taken.add(os.path.normpath(path))
    yield from _llama_factory(root, report, taken)
    for dirpath, _, names in os.walk(root):
        report.not_read += sorted(_relative(root, os.path.join(dirpath, n)) for n in names
                                  if os.path.normpath(os.path.join(dirpath, n)) not in taken)


def _lf_files(root: str) -> list[str]:
    """Every .json file under llama_factory/ (its subfolders included), dataset_info.json aside."""
    found = []
    for dirpath, _, names in os.walk(os.path.join(root, "llama_factory")):
        found += [os.path.normpath(os.path.join(dirpath, n)) for n in names if n.endswith((".json", ".jsonl"))]
    return sorted(p for p in found if os.path.basename(p) != "dataset_info.json")


def _entries(root: str, report: GairReport) -> Iterator[tuple[str, str, dict, bool]]:
    """(set name, path, columns, ranking) of each LLaMA-Factory set: first those dataset_info.json names,
    then any file it leaves out, its columns read off its first row (LLaMA-Factory itself would not load it)."""
    info_path = os.path.join(root, "llama_factory", "dataset_info.json")
    present, named = _lf_files(root), set()
    info = {}
    if os.path.isfile(info_path):
        refuse_lfs_pointer(info_path)
        try:
            with open(info_path, encoding="utf-8") as f:
                info = json.load(f)
        except json.JSONDecodeError as e:
            raise UserError(f"{info_path}:{e.lineno}: bad JSON: {e.msg}") from None
        if not isinstance(info, dict):
            raise UserError(f"{info_path}: expected an object of name -> {{file_name, columns}}, "
                            f"got {type(info).__name__}")
    for name, entry in info.items():
        file_name = entry.get("file_name") if isinstance(entry, dict) else None
        if not isinstance(file_name, str) or not file_name:
            raise UserError(f"{info_path}: entry {name!r}: field 'file_name' must be a non-empty string")
        columns = entry.get("columns") or {}
        if not isinstance(columns, dict) or not all(isinstance(v, str) for v in columns.values()):
            raise UserError(f"{info_path}: entry {name!r}: field 'columns' must map column roles to field names")
        # Paths are the repository's (data/llama_factory/...); LLaMA-Factory also takes them relative
        # to its dataset_dir.
        candidates = [os.path.join(os.path.dirname(root), file_name), os.path.join(root, "llama_factory", file_name)]
        path = next((os.path.normpath(p) for p in candidates if os.path.isfile(p)), None)
        if path is None:  # the release names some files in the wrong subfolder (math pairs under gsm8k/)
            elsewhere = [p for p in present if os.path.basename(p) == os.path.basename(file_name)]
            if len(elsewhere) != 1:
                report.missing.append(file_name)
                continue
            path = elsewhere[0]
            report.notes.append(f"{name}: dataset_info.json names {file_name}, found at {_relative(root, path)}")
        unknown = sorted(set(columns) - {"prompt", "query", "response"})
        if unknown:
            report.notes.append(f"{name}: columns {unknown} not read (prompt, query and response are)")
        named.add(path)
        yield name, path, columns, bool(entry.get("ranking"))
    for path in present:
        if path in named:
            continue
        first = next((row for _, row in iter_rows(path, SetReport(path))), None)
        if first is None:
            continue  # nothing to read: left for "files no reader took"
        name = re.sub(r"^train_", "", file_stem(path)).replace("-", "_")
        ranking = isinstance(first.get("output"), list)
        columns = {"prompt": "content", "response": "output"} if "content" in first else \
            {"prompt": "instruction", "query": "input", "response": "output"}
        report.notes.append(f"{name}: {_relative(root, path)} is not in dataset_info.json; read by its fields "
                            f"{sorted(first)} as {'pairs' if ranking else 'SFT rows'}")
        yield name, path, columns, ranking


def _llama_factory(root: str, report: GairReport, taken: set[str]) -> Iterator[GairSet]:
    """The LLaMA-Factory sets, each read through its column mapping, as LLaMA-Factory does."""
    for name, path, columns, ranking in _entries(root, report):
        source, ids, convert_row = f"gair/{name}", Ids(file_stem(path)), ranking_row if ranking else sft_row

        def make(row: dict, index: int) -> dict:
            release_id = _release_id(row, str(index))
            return convert_row(row, columns, ids(release_id), release_id, source)

        rows, set_report = _convert(path, make, _relative(root, path))
        taken.add(path)
        yield GairSet("pairs" if ranking else "sft", f"gair_{name}", rows, set_report)
