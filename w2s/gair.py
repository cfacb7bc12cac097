"""The release of "Weak-to-Strong Reasoning" (Yang, Ma, Liu 2024; GitHub GAIR-NLP/weak-to-strong-reasoning)
converted to this project's formats.

Reading order: where the files are; one benchmark row flattened; the raw sets (train_1: the weak
model's gold, train_2: the strong model's questions); the LLaMA-Factory sets (SFT, and pairs in the
`*_paired` ones); `read_gair`, which does all of it and reports what it found.

The release, as its README describes it (a downloaded copy of the repository, or its data/ folder):
    data/test/gsm8k.jsonl, data/test/math.jsonl   {source, question, solution, answer, tag: {level, subject, unique_id}}
    data/raw/<set>/train_1.jsonl                   the weak model's gold (question, solution, answer)
    data/raw/<set>/train_2.jsonl                   the strong model's questions (answers: reporting only)
    data/llama_factory/<name>.json[l]             {instruction, input, output}; `*_paired`: output = [chosen, rejected]
Files may be JSON Lines or a JSON list (w2s.release reads both with line numbers). Keys are checked,
and a missing one fails naming the file, line and field.

What it becomes: test/gsm8k.jsonl and test/math500.jsonl ({id, problem, answer, level, subject}: the
tag flattened, so evaluate.py groups by level and subject); gair_<set>_gold (SFT rows from train_1);
tasks/gair_<set>.jsonl (train_2 as tasks); gair_lf_<name> (SFT rows, or pair rows for `*_paired`).
Every prompt is the project's (w2s.data.user_message): the question, then the step-by-step / \\boxed{}
instruction, so that a model trained on the conversion is asked the way it was taught. A
LLaMA-Factory row's question is its instruction and its input, joined by a blank line.
"""
import os
from collections import Counter

from w2s.data import user_message
from w2s.dpo import pair_row
from w2s.errors import MissingFileError, UserError
from w2s.jsonl import file_stem
from w2s.release import load_release_file, string_field

TESTS = {"gsm8k": "gsm8k", "math": "math500"}  # data/test/<file> -> test/<bench>


def data_root(directory: str) -> str:
    """The release's data/ folder: DIR/data, or DIR itself when it is that folder."""
    for candidate in (os.path.join(directory, "data"), directory):
        if any(os.path.isdir(os.path.join(candidate, sub)) for sub in ("test", "raw", "llama_factory")):
            return candidate
    raise MissingFileError(f"{directory}: no data/test, data/raw or data/llama_factory (not a copy of "
                           "GAIR-NLP/weak-to-strong-reasoning?)")


def _files(folder: str) -> list[str]:
    if not os.path.isdir(folder):
        return []
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.endswith((".json", ".jsonl")))


# ---------------------------------------------------------------------------------------------
# Benchmarks and raw sets


def benchmark_row(row: dict, where: str, bench: str, index: int) -> dict:
    """{id, problem, answer, level?, subject?, source?}: the tag flattened (unique_id is the id)."""
    tag = row.get("tag") if isinstance(row.get("tag"), dict) else {}
    out = {"id": str(tag.get("unique_id") or row.get("id") or f"{bench}-{index}"),
           "problem": string_field(row, "question", where), "answer": string_field(row, "answer", where)}
    for key in ("level", "subject"):
        if tag.get(key) not in (None, ""):
            out[key] = tag[key]
    if isinstance(row.get("source"), str):
        out["source"] = row["source"]
    return out


def read_tests(root: str, report: Counter) -> dict[str, list[dict]]:
    tests = {}
    for stem, bench in TESTS.items():
        for path in _files(os.path.join(root, "test")):
            if file_stem(path) == stem:
                tests[bench] = [benchmark_row(row, f"{path}:{line}", bench, i)
                                for i, (line, row) in enumerate(load_release_file(path))]
                report[f"test/{bench}"] = len(tests[bench])
    return tests


def read_raw(root: str, report: Counter) -> tuple[dict[str, list[dict]], dict[str, list[dict]]]:
    """(SFT sets gair_<set>_gold from train_1, task lists gair_<set> from train_2)."""
    gold_sets, task_sets = {}, {}
    raw = os.path.join(root, "raw")
    for name in sorted(os.listdir(raw)) if os.path.isdir(raw) else []:
        for path in _files(os.path.join(raw, name)):
            rows = load_release_file(path)
            if file_stem(path) == "train_1":
                gold_sets[f"gair_{name}_gold"] = [
                    {"id": f"{name}/train_1/{i}",
                     "messages": [{"role": "user", "content": user_message(string_field(row, "question", f"{path}:{line}"))},
                                  {"role": "assistant", "content": string_field(row, "solution", f"{path}:{line}")}],
                     "meta": {"kind": "gold", "source": f"gair/{name}", "answer": string_field(row, "answer", f"{path}:{line}"),
                              "correct": True}}
                    for i, (line, row) in enumerate(rows)]
                report[f"raw/{name}/train_1"] = len(rows)
            elif file_stem(path) == "train_2":
                task_sets[f"gair_{name}"] = [
                    {"id": f"{name}/train_2/{i}", "problem": string_field(row, "question", f"{path}:{line}"),
                     **({"answer": string_field(row, "answer", f"{path}:{line}")} if "answer" in row else {})}
                    for i, (line, row) in enumerate(rows)]
                report[f"raw/{name}/train_2"] = len(rows)
            else:
                report["raw files not converted"] += 1
    return gold_sets, task_sets


# ---------------------------------------------------------------------------------------------
# LLaMA-Factory sets


def _question(row: dict, where: str) -> str:
    instruction = string_field(row, "instruction", where)
    extra = row.get("input") or ""
    if not isinstance(extra, str):
        raise UserError(f"{where}: field 'input' must be a string, got {extra!r}"[:300])
    return f"{instruction.strip()}\n\n{extra.strip()}" if extra.strip() else instruction.strip()


def read_llama_factory(root: str, report: Counter) -> tuple[dict[str, list[dict]], dict[str, list[dict]]]:
    """(SFT sets, pair sets), each named gair_lf_<file stem>."""
    sft_sets, pair_sets = {}, {}
    for path in _files(os.path.join(root, "llama_factory")):
        stem = file_stem(path)
        if stem == "dataset_info":  # LLaMA-Factory's registry of the sets, not a set
            continue
        name, paired, rows = f"gair_lf_{stem}", stem.endswith("_paired"), []
        for i, (line, row) in enumerate(load_release_file(path)):
            where = f"{path}:{line}"
            question, output = _question(row, where), row.get("output")
            if paired:
                if not (isinstance(output, list) and len(output) == 2 and all(isinstance(o, str) and o.strip() for o in output)):
                    raise UserError(f"{where}: field 'output' must be [chosen, rejected], two non-empty strings")
                rows.append(pair_row(f"{stem}/{i}", user_message(question), output[0], output[1], source=f"gair/{stem}"))
            else:
                text = string_field(row, "output", where)
                rows.append({"id": f"{stem}/{i}", "messages": [{"role": "user", "content": user_message(question)},
                                                               {"role": "assistant", "content": text}],
                             "meta": {"kind": "gair_lf", "source": f"gair/{stem}"}})
        (pair_sets if paired else sft_sets)[name] = rows
        report[f"llama_factory/{stem}"] = len(rows)
    return sft_sets, pair_sets


def read_gair(directory: str) -> tuple[dict, dict, dict, dict, dict]:
    """(tests, SFT sets, pair sets, task sets, report) of a downloaded copy of the release."""
    root, report = data_root(directory), Counter()
    tests = read_tests(root, report)
    gold_sets, task_sets = read_raw(root, report)
    lf_sets, pair_sets = read_llama_factory(root, report)
    return tests, {**gold_sets, **lf_sets}, pair_sets, task_sets, dict(report)
