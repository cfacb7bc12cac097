"""Teacher generations: tasks JSONL in, samples JSONL out.

    python sample.py --model PATH_OR_HUB_ID --tasks TASKS.jsonl --out SAMPLES.jsonl --n 4 \\
        --temperature 0.7 --top-p 0.9 --max-new-tokens 1024 --batch-size 32 --seed 42
    torchrun --nproc_per_node 8 sample.py ... --num-samples 4   (data-parallel; torchrun would take --n for its own)

Tasks are {"id", "problem", "answer"?, ...}. Each output row is the task (all its fields) plus
"samples": [n completions] and, when the task has an answer, "correct": [n grader verdicts]; the run
ends by printing the teacher's outcome error rate (the share of wrong samples).

Resuming: rows are appended and flushed as soon as all samples of a task are done. Rerunning with
the same --out skips the tasks already there. Sample k of task t is drawn with its own seed, made
from (--seed, t's id, k), so it does not depend on the batch it lands in, the number of processes
or an interruption: a resumed run's file equals an uninterrupted one's. At the end the file is
rewritten in task order (under torchrun, rank r appends to OUT.rank<r> and rank 0 merges them).
The settings that decide the samples (model, tokenizer, n, temperature, top-p, top-k, max-new-tokens,
seed, template, dtype) are kept in OUT.settings.json; resuming with others fails before the model loads.

This file also holds what evaluate.py shares with it: task loading, prompts, resumable JSONL
output, the sampling loop and the progress line.
"""
import argparse
import glob
import hashlib
import json
import os
import sys
import time
from typing import Iterator

import torch

from w2s.data import read_rows_with_unique_ids, user_message
from w2s.model import Llama
from w2s.sampler import generate
from w2s.tokenizer import Tokenizer, chat_template_text

TEMPLATES = ("chat", "plain")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


# ---------------------------------------------------------------------------------------------
# Tasks and prompts


def load_tasks(path: str) -> list[dict]:
    """Read and check a tasks JSONL file: {"id": str, "problem": str, "answer": str (optional), ...}.

    Other fields are kept as they are. A numeric answer is turned into its string. Any bad row fails
    naming the file, the line and the field; ids must be unique.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such tasks file")
    return read_rows_with_unique_ids(path, check_task_row, "tasks")


def check_task_row(row: object, where: str) -> None:
    """One task row; `where` is "file:line". A numeric answer is turned into its string, in place."""
    if not isinstance(row, dict):
        raise ValueError(f"{where}: a task must be a JSON object, got {type(row).__name__}")
    if not isinstance(row.get("id"), str) or not row["id"]:
        raise ValueError(f"{where}: field 'id' must be a non-empty string, got {row.get('id')!r}")
    if not isinstance(row.get("problem"), str) or not row["problem"].strip():
        raise ValueError(f"{where}: field 'problem' must be a non-empty string, got {row.get('problem')!r}"[:300])
    if "answer" in row:
        answer = row["answer"]
        if isinstance(answer, (int, float)) and not isinstance(answer, bool):
            row["answer"] = str(answer)
        elif not isinstance(answer, str) or not answer.strip():
            raise ValueError(f"{where}: field 'answer' must be a non-empty string, got {answer!r}"[:300])


def build_prompt(tokenizer: Tokenizer, problem: str, template: str = "chat") -> tuple[str, list[int]]:
    """The prompt as text (what output rows record) and as token ids (what the model reads).

    chat: one user turn, the problem plus the project's step-by-step / \\boxed{} instruction, under the
    Llama-3 Instruct template, ending with the assistant header. plain (for base models): the same
    user message as "Question: ...\\nAnswer:".
    """
    if template == "chat":
        messages = [{"role": "user", "content": user_message(problem)}]
        return chat_template_text(messages)[0], tokenizer.encode_chat(messages)
    if template == "plain":
        text = f"Question: {user_message(problem)}\nAnswer:"
        return text, tokenizer.encode(text, bos=True)
    raise ValueError(f"unknown template {template!r}; choose from {', '.join(TEMPLATES)}")


def finish_completion(text: str, template: str) -> str:
    """A base model under the plain template goes on to invent the next "Question:": cut it there."""
    return text.split("\nQuestion:")[0].rstrip() if template == "plain" else text


def sample_seed(seed: int, task_id: str, k: int) -> int:
    """The seed of sample k of a task: stable across batches, processes and resumed runs."""
    return int.from_bytes(hashlib.sha256(f"{seed}/{task_id}/{k}".encode()).digest()[:8], "big")


# ---------------------------------------------------------------------------------------------
# Resumable JSON Lines output


def read_output_rows(path: str) -> list[tuple[int, dict]]:
    """(line number, row) of every complete row of an output file being appended to.

    A last line without its newline is what a killed run leaves behind: it is cut off the file
    (and reported), so appending can go on from a clean end. A bad line anywhere else is an error.
    """
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        data = f.read()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        print(f"{path}: dropped an incomplete last line ({len(data) - end} bytes, from an interrupted run)",
              file=sys.stderr)
        with open(path, "r+b") as f:
            f.truncate(end)
    rows = []
    for line_no, line in enumerate(data[:end].decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{line_no}: bad JSON: {e.msg} (column {e.colno})") from None
        if not isinstance(row, dict) or not isinstance(row.get("id"), str):
            raise ValueError(f"{path}:{line_no}: field 'id': expected an object with a string id")
        rows.append((line_no, row))
    return rows


def check_output_row(row: dict, where: str, task_ids: set, n: int, list_field: str) -> None:
    """A row already in an output file must belong to these tasks and settings, or resuming would mix runs."""
    if row["id"] not in task_ids:
        raise ValueError(f"{where}: field 'id': {row['id']!r} is not among the tasks; is this output from another run?")
    if not isinstance(row.get(list_field), list) or len(row[list_field]) != n:
        got = len(row[list_field]) if isinstance(row.get(list_field), list) else row.get(list_field)
        raise ValueError(f"{where}: field {list_field!r} has {got} entries but --n is {n}; "
                         "use the --n of the run that wrote this file, or another --out")


def append_row(f, row: dict) -> None:
    """One row, one write, flushed: a killed run loses at most the row being written."""
    f.write(json.dumps(row, ensure_ascii=False) + "\n")
    f.flush()


def write_rows(path: str, rows: list[dict]) -> None:
    """Replace `path` with `rows`, atomically."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# Progress


class Progress:
    """One status line: items done, items/s, new tokens/s, ETA. Redrawn in place on a terminal;
    in a log file, one line every `log_every` seconds."""

    def __init__(self, total: int, unit: str = "tasks", enabled: bool = True, log_every: float = 30.0):
        self.total, self.unit, self.enabled, self.log_every = total, unit, enabled, log_every
        self.done = self.tokens = 0
        self.start = self.last_log = time.perf_counter()
        self.tty = sys.stderr.isatty()

    def update(self, done: int = 0, tokens: int = 0) -> None:
        self.done += done
        self.tokens += tokens
        now = time.perf_counter()
        if self.enabled and (self.tty or now - self.last_log >= self.log_every or self.done >= self.total):
            self.last_log = now
            print(("\r" if self.tty else "") + self.line(), end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def line(self) -> str:
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else float("nan")
        eta_text = f"{int(eta // 3600)}:{int(eta % 3600 // 60):02d}:{int(eta % 60):02d}" if eta == eta else "?"
        return (f"{self.unit} {self.done}/{self.total} | {rate:.2f} {self.unit}/s | "
                f"{self.tokens / elapsed:.0f} tok/s | ETA {eta_text}")

    def close(self) -> None:
        if self.enabled and self.tty:
            print(file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# The sampling loop


DEFAULT_MAX_NEW_TOKENS = 1024


def fit_max_new_tokens(model: Llama, tokenizer: Tokenizer, tasks: list[dict], template: str,
                       requested: int | None) -> int:
    """--max-new-tokens when given. Otherwise DEFAULT_MAX_NEW_TOKENS, capped to what the model's context
    leaves after the longest prompt of *all* the tasks (not just those left to do, so that a resumed run
    gets the same number): a small model's 512-token context takes no 1024-token answers."""
    if requested is not None:
        return requested
    if not tasks:
        return DEFAULT_MAX_NEW_TOKENS
    longest = max(len(build_prompt(tokenizer, task["problem"], template)[1]) for task in tasks)
    room = model.args.max_seq_len - longest
    if room < 1:
        raise ValueError(f"the longest prompt ({longest} tokens) leaves no room in the model's "
                         f"{model.args.max_seq_len}-token context for an answer")
    if room < DEFAULT_MAX_NEW_TOKENS:
        print(f"max new tokens: {room} (the model's {model.args.max_seq_len}-token context minus the longest "
              f"prompt, {longest} tokens)", file=sys.stderr)
    return min(DEFAULT_MAX_NEW_TOKENS, room)


def sample_tasks(model: Llama, tokenizer: Tokenizer, tasks: list[dict], *, n: int, max_new_tokens: int,
                 temperature: float = 0.0, top_p: float = 1.0, top_k: int = 0, batch_size: int = 32,
                 seed: int = 0, template: str = "chat", compile: bool = False,
                 progress: Progress | None = None) -> Iterator[tuple[dict, str, list[str], list[int]]]:
    """Yield (task, prompt text, n completions, their token counts) for each task, in task order, as
    soon as all its samples are done. Batches hold up to `batch_size` sequences; the n samples of a
    task may span batches, since each sample has its own seed."""
    if n < 1 or batch_size < 1:
        raise ValueError(f"n and batch_size must be >= 1, got n={n}, batch_size={batch_size}")
    prompts = [build_prompt(tokenizer, task["problem"], template) for task in tasks]
    for task, (_, ids) in zip(tasks, prompts):
        if len(ids) + max_new_tokens > model.args.max_seq_len:
            raise ValueError(f"task {task['id']!r}: its prompt ({len(ids)} tokens) + max_new_tokens ({max_new_tokens}) "
                             f"exceeds the model's maximum length of {model.args.max_seq_len}")
    jobs = [(t, k) for t in range(len(tasks)) for k in range(n)]
    texts: list[list[str | None]] = [[None] * n for _ in tasks]
    counts: list[list[int]] = [[0] * n for _ in tasks]
    next_task = 0
    for start in range(0, len(jobs), batch_size):
        batch = jobs[start:start + batch_size]
        outputs = generate(model, [prompts[t][1] for t, _ in batch], max_new_tokens=max_new_tokens,
                           temperature=temperature, top_p=top_p, top_k=top_k, stop_ids=tokenizer.stop_ids,
                           seed=[sample_seed(seed, tasks[t]["id"], k) for t, k in batch], compile=compile)
        for (t, k), ids in zip(batch, outputs):
            texts[t][k] = finish_completion(tokenizer.decode(ids), template)
            counts[t][k] = len(ids)
        finished_before = next_task
        while next_task < len(tasks) and all(text is not None for text in texts[next_task]):
            yield tasks[next_task], prompts[next_task][0], texts[next_task], counts[next_task]
            next_task += 1
        if progress is not None:
            progress.update(done=next_task - finished_before, tokens=sum(len(ids) for ids in outputs))


# ---------------------------------------------------------------------------------------------
# Model, devices, processes


def default_device() -> str:
    return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu"


def resolve_dtype(dtype: str, device: str) -> str:
    """auto: bf16 on a GPU, fp32 on a CPU."""
    if dtype == "auto":
        dtype = "bf16" if device.startswith("cuda") else "fp32"
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose from auto, {', '.join(DTYPES)}")
    return dtype


def load_model_and_tokenizer(model_path: str, tokenizer_path: str | None = None, dtype: str = "auto",
                             device: str | None = None) -> tuple[Llama, Tokenizer]:
    """A checkpoint (directory or Hub id) and its tokenizer (from the same place unless given).
    dtype auto: bf16 on a GPU, fp32 on a CPU."""
    device = device or default_device()
    model = Llama.from_pretrained(model_path, dtype=DTYPES[resolve_dtype(dtype, device)], device=device).eval()
    try:
        tokenizer = Tokenizer.from_pretrained(tokenizer_path or model_path)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"{e} (pass --tokenizer for a checkpoint saved without one)") from None
    if tokenizer.vocab_size > model.args.vocab_size:
        raise ValueError(f"tokenizer {tokenizer.source} has {tokenizer.vocab_size} tokens but the model's vocabulary "
                         f"is {model.args.vocab_size}: they do not belong together")
    return model, tokenizer


def rank_and_world() -> tuple[int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def barrier(world: int) -> None:
    if world > 1:
        torch.distributed.barrier()


# ---------------------------------------------------------------------------------------------
# sample.py


def rank_files(out: str) -> list[str]:
    return sorted(glob.glob(glob.escape(out) + ".rank*"))


def sample_settings(args: argparse.Namespace) -> dict:
    """What decides the samples. Batch size, device, compile and the number of processes do not: each
    sample has its own seed (sample_seed)."""
    return {"model": args.model, "tokenizer": args.tokenizer, "n": args.n, "temperature": args.temperature,
            "top_p": args.top_p, "top_k": args.top_k, "max_new_tokens": args.max_new_tokens, "seed": args.seed,
            "template": args.template, "dtype": resolve_dtype(args.dtype, args.device or default_device())}


def check_settings(out: str, settings: dict) -> None:
    """An output already begun (OUT or its rank files) must be resumed with the settings recorded in
    OUT.settings.json when it began, or one file would mix samples from two distributions."""
    path = out + ".settings.json"
    if not any(os.path.getsize(p) for p in [out, *rank_files(out)] if os.path.exists(p)):
        return
    if not os.path.exists(path):
        print(f"{out}: no {path} (written by an older sample.py): cannot check that this run's settings "
              "match the ones its rows were sampled with", file=sys.stderr)
        return
    with open(path, encoding="utf-8") as f:
        recorded = json.load(f)
    differ = [f"{key}: recorded {json.dumps(recorded.get(key))}, now {json.dumps(value)}"
              for key, value in settings.items() if recorded.get(key) != value]
    if differ:
        raise ValueError(f"{path}: {out} was sampled with other settings ({'; '.join(differ)}); "
                         "rerun with the recorded values to resume, or use another --out")


def write_settings(out: str, settings: dict) -> None:
    tmp = out + ".settings.json.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(settings, indent=1) + "\n")
    os.replace(tmp, out + ".settings.json")


def merge_outputs(out: str, tasks: list[dict], n: int) -> list[dict]:
    """Gather the rows of `out` and of any rank files OUT.rank<r> (a torchrun run, finished or not),
    check them, and rewrite `out` alone, in task order. Returns the rows."""
    task_ids = {task["id"] for task in tasks}
    found, duplicates = {}, 0
    parts = rank_files(out)
    for path in [out] + parts:
        for line_no, row in read_output_rows(path):
            check_output_row(row, f"{path}:{line_no}", task_ids, n, "samples")
            if row["id"] in found:
                duplicates += 1  # merged before, but killed before the rank file was removed: same row
                continue
            found[row["id"]] = row
    rows = [found[task["id"]] for task in tasks if task["id"] in found]
    if parts or duplicates or os.path.exists(out):
        write_rows(out, rows)
    for path in parts:
        os.remove(path)
    return rows


def sample_rows(model, tokenizer, tasks, args, progress) -> Iterator[dict]:
    """Output rows for `tasks`: the task, its samples and (with an answer) the grader's verdicts."""
    from w2s.grader import grade

    for task, _, samples, _ in sample_tasks(
            model, tokenizer, tasks, n=args.n, max_new_tokens=args.max_new_tokens, temperature=args.temperature,
            top_p=args.top_p, top_k=args.top_k, batch_size=args.batch_size, seed=args.seed,
            template=args.template, compile=args.compile, progress=progress):
        row = {**task, "samples": samples}
        if "answer" in task:
            row["correct"] = [grade(sample, task["answer"]) for sample in samples]
        yield row


def report(rows: list[dict], total_tasks: int) -> None:
    verdicts = [v for row in rows for v in row.get("correct", [])]
    print(f"{len(rows)}/{total_tasks} tasks sampled", file=sys.stderr)
    if verdicts:
        wrong = verdicts.count(False)
        print(f"outcome error rate: {wrong / len(verdicts):.1%} ({wrong} of {len(verdicts)} samples wrong, "
              f"{sum(1 for row in rows if 'correct' in row)} tasks with answers)")


def add_generation_args(parser: argparse.ArgumentParser, *, temperature: float, top_p: float, seed: int) -> None:
    """The generation flags sample.py and evaluate.py share; the defaults that differ (a teacher samples,
    an evaluation decodes greedily) are the caller's."""
    parser.add_argument("--temperature", type=float, default=temperature, help="0: greedy")
    parser.add_argument("--top-p", type=float, default=top_p)
    parser.add_argument("--top-k", type=int, default=0)
    parser.add_argument("--max-new-tokens", type=int, help=f"default: {DEFAULT_MAX_NEW_TOKENS}, or less when "
                        "the model's context cannot hold that after the longest prompt")
    parser.add_argument("--batch-size", type=int, default=32, help="sequences per generate call")
    parser.add_argument("--seed", type=int, default=seed)
    parser.add_argument("--template", choices=TEMPLATES, default="chat",
                        help="chat: Llama-3 Instruct template; plain: 'Question: ...\\nAnswer:' for base models")
    parser.add_argument("--dtype", default="auto", help="auto (bf16 on GPU, fp32 on CPU), fp32, bf16, fp16")
    parser.add_argument("--device", help="default: cuda:LOCAL_RANK if a GPU is present, else cpu")
    parser.add_argument("--compile", action="store_true", help="torch.compile the decode step (GPU)")
    parser.add_argument("--quiet", action="store_true", help="no progress line")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Sample teacher solutions for math tasks (resumable, torchrun-able).")
    parser.add_argument("--model", required=True, help="checkpoint directory or Hugging Face Hub id")
    parser.add_argument("--tokenizer", help="tokenizer.json or its directory (default: the model's)")
    parser.add_argument("--tasks", required=True, help='JSONL of {"id", "problem", "answer"?}')
    parser.add_argument("--out", required=True, help="samples JSONL (appended to; rerun to resume)")
    parser.add_argument("--n", "--num-samples", dest="n", type=int, default=4,
                        help="samples per task (under torchrun write --num-samples: torchrun reads --n as its own)")
    add_generation_args(parser, temperature=0.7, top_p=0.9, seed=42)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    tasks = load_tasks(args.tasks)
    rank, world = rank_and_world()
    if world > 1:
        torch.distributed.init_process_group("gloo")  # only barriers: gloo works with or without GPUs
    try:
        # Rank 0 alone checks the settings (before touching any file), folds whatever an earlier run
        # left (OUT, rank files) into OUT and records the settings; then every rank reads the same
        # finished ids, and takes every world-th of the remaining tasks.
        if rank == 0:
            os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
            settings = sample_settings(args)
            check_settings(args.out, settings)
            merge_outputs(args.out, tasks, args.n)
            write_settings(args.out, settings)  # after merge_outputs checked the rows of an older output
        barrier(world)
        finished = {row["id"] for _, row in read_output_rows(args.out)}
        remaining = [task for task in tasks if task["id"] not in finished]
        mine = remaining[rank::world]
        if mine:
            model, tokenizer = load_model_and_tokenizer(args.model, args.tokenizer, args.dtype, args.device)
            args.max_new_tokens = fit_max_new_tokens(model, tokenizer, tasks, args.template, args.max_new_tokens)
            progress = Progress(len(mine), "tasks", enabled=not args.quiet and rank == 0)
            with open(args.out if world == 1 else f"{args.out}.rank{rank}", "a", encoding="utf-8") as f:
                for row in sample_rows(model, tokenizer, mine, args, progress):
                    append_row(f, row)
            progress.close()
        barrier(world)
        if rank == 0:
            report(merge_outputs(args.out, tasks, args.n), len(tasks))
    finally:
        if world > 1:
            torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
