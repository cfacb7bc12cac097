"""Tasks in, generations out: what sample.py and evaluate.py share.

Reading order: task rows (read and checked); prompts; per-sample seeds; how many new tokens fit;
the sampling loop; output files over tasks (rows checked against the tasks, torchrun's rank files
merged); the progress line; the generation flags both commands take.
"""
import argparse
import glob
import hashlib
import os
import random
import sys
import time
from typing import Iterator

from w2s.data.rows import problem_from_user_message, user_message
from w2s.errors import MissingFileError, UserError
from w2s.data.jsonl import read_jsonl_numbered, read_output_rows, read_rows_with_unique_ids, write_jsonl
from w2s.model import Llama
from w2s.sampler import generate
from w2s.tokenizer import Tokenizer

TEMPLATES = ("chat", "plain")
DEFAULT_MAX_NEW_TOKENS = 1024


# ---------------------------------------------------------------------------------------------
# Tasks and prompts


def load_tasks(path: str) -> list[dict]:
    """Read and check a tasks JSONL file: {"id": str, "problem": str, "answer": str (optional), ...}.

    Other fields are kept as they are. A numeric answer is turned into its string. Any bad row fails
    naming the file, the line and the field; ids must be unique.
    """
    if not os.path.isfile(path):
        raise MissingFileError(f"{path}: no such tasks file")
    return read_rows_with_unique_ids(path, check_task_row, "tasks")


def check_task_row(row: object, where: str) -> None:
    """One task row; `where` is "file:line". A numeric answer is turned into its string, in place."""
    if not isinstance(row, dict):
        raise UserError(f"{where}: a task must be a JSON object, got {type(row).__name__}")
    if not isinstance(row.get("id"), str) or not row["id"]:
        raise UserError(f"{where}: field 'id' must be a non-empty string, got {row.get('id')!r}")
    if not isinstance(row.get("problem"), str) or not row["problem"].strip():
        raise UserError(f"{where}: field 'problem' must be a non-empty string, got {row.get('problem')!r}"[:300])
    if "answer" in row:
        answer = row["answer"]
        if isinstance(answer, (int, float)) and not isinstance(answer, bool):
            row["answer"] = str(answer)
        elif not isinstance(answer, str) or not answer.strip():
            raise UserError(f"{where}: field 'answer' must be a non-empty string, got {answer!r}"[:300])


def build_prompt(tokenizer: Tokenizer, problem: str, template: str = "chat",
                 shots: list[dict] = ()) -> tuple[str, list[int]]:
    """The prompt as text (what output rows record) and as token ids (what the model reads).

    chat: one user turn, the problem plus the project's step-by-step / \\boxed{} instruction, under the
    checkpoint's own chat template, ending with its generation prompt. plain (for base models): the same
    user message as "Question: ...\\nAnswer:". `shots` ({"problem", "solution"}) come first, as
    earlier user / assistant turns (chat) or answered questions (plain).
    """
    if template == "chat":
        messages = [m for shot in shots for m in ({"role": "user", "content": user_message(shot["problem"])},
                                                   {"role": "assistant", "content": shot["solution"]})]
        messages.append({"role": "user", "content": user_message(problem)})
        text = tokenizer.render_chat(messages)
        return text, tokenizer.encode(text)
    if template == "plain":
        text = "".join(f"Question: {user_message(shot['problem'])}\nAnswer: {shot['solution'].strip()}\n\n" for shot in shots)
        text += f"Question: {user_message(problem)}\nAnswer:"
        return text, tokenizer.encode(text, bos=True)
    raise ValueError(f"unknown template {template!r}; choose from {', '.join(TEMPLATES)}")


# ---------------------------------------------------------------------------------------------
# Few-shot examples (weak-ICL: the strong model shown a few of the weak model's solved examples)


def load_few_shot(path: str) -> list[dict]:
    """Solved examples as {"id", "problem", "solution"}, from an SFT set ({"messages"}: the user turn's
    problem, the last assistant turn), a sample.py output ({"problem", "samples"}: the first sample)
    or rows {"problem", "solution"}. A row without an id is named by its line. A sample.py row whose
    first sample is empty (a model that answered nothing) is skipped, and counted on stderr."""
    if not os.path.isfile(path):
        raise MissingFileError(f"{path}: no such few-shot file")
    out, empty = [], 0
    for line_no, row in read_jsonl_numbered(path):
        where = f"{path}:{line_no}"
        if not isinstance(row, dict):
            raise UserError(f"{where}: a row must be a JSON object")
        row_id = str(row.get("id", f"line{line_no}"))
        if isinstance(row.get("messages"), list):
            turns = {m.get("role"): m.get("content") for m in row["messages"] if isinstance(m, dict)}
            problem, solution = problem_from_user_message(str(turns.get("user", ""))), turns.get("assistant")
        elif isinstance(row.get("samples"), list) and row["samples"]:
            problem, solution = row.get("problem"), row["samples"][0]
            if isinstance(solution, str) and not solution.strip():
                empty += 1
                continue
        else:
            problem, solution = row.get("problem"), row.get("solution")
        for field, value in (("problem", problem), ("solution", solution)):
            if not isinstance(value, str) or not value.strip():
                raise UserError(f"{where}: field '{field}' (or messages / samples giving it) must be a non-empty string")
        out.append({"id": row_id, "problem": problem, "solution": solution})
    if empty:
        print(f"{path}: {empty} rows skipped as few-shot examples (their first sample is empty)", file=sys.stderr)
    if not out:
        raise UserError(f"{path}: no few-shot examples")
    return out


def choose_shots(examples: list[dict], shots: int, seed: int) -> list[dict]:
    """shots + 1 examples drawn by `seed` (the same whatever the file's order): a task gets the first
    `shots` of them that are not the task itself (`shots_for`), so every task sees the same ones
    except a task that is among them."""
    if shots < 0:
        raise UserError(f"--shots must be >= 0, got {shots}")
    if shots and len(examples) < shots + 1:
        raise UserError(f"--shots {shots} needs at least {shots + 1} few-shot examples (one spare, for a task "
                        f"that is itself among them); the file has {len(examples)}")
    ordered = sorted(examples, key=lambda e: (e["id"], e["problem"]))
    return random.Random(f"few_shot/{seed}").sample(ordered, shots + 1) if shots else []


def shots_for(task: dict, chosen: list[dict], shots: int) -> list[dict]:
    """The shots a task's prompt shows: never the task itself (same id or same problem)."""
    return [e for e in chosen if e["id"] != task["id"] and e["problem"].strip() != task["problem"].strip()][:shots]


def finish_completion(text: str, template: str) -> str:
    """A base model under the plain template goes on to invent the next "Question:": cut it there."""
    return text.split("\nQuestion:")[0].rstrip() if template == "plain" else text


FINISH_REASONS = ("stop", "length")


def finish_reason(ids: list[int], text: str, max_new_tokens: int, template: str) -> str:
    """"stop": the reply ended (a stop token, or under the plain template the next invented "Question:");
    "length": it was cut off at max_new_tokens. generate returns completions without their stop
    token, so a completion of exactly max_new_tokens tokens never stopped. A cut-off reply states no answer."""
    if len(ids) < max_new_tokens:
        return "stop"
    return "stop" if template == "plain" and "\nQuestion:" in text else "length"


def sample_seed(seed: int, task_id: str, k: int) -> int:
    """The seed of sample k of a task: stable across batches, processes and resumed runs."""
    return int.from_bytes(hashlib.sha256(f"{seed}/{task_id}/{k}".encode()).digest()[:8], "big")


# ---------------------------------------------------------------------------------------------
# The sampling loop


def fit_max_new_tokens(model: Llama, tokenizer: Tokenizer, tasks: list[dict], template: str,
                       requested: int | None, few_shot: list[dict] = (), shots: int = 0) -> int:
    """The new-token budget, checked once against the model's context (the one place prompts' lengths
    are checked before generating).

    Given, it must fit after every prompt: the first that leaves too little room is named. Not given:
    DEFAULT_MAX_NEW_TOKENS, capped to what the context leaves after the longest prompt of *all* the
    tasks (not just those left to do, so that a resumed run gets the same number): a small model's
    512-token context takes no 1024-token answers."""
    if not tasks:
        return requested or DEFAULT_MAX_NEW_TOKENS
    context = model.args.max_seq_len
    lengths = [len(build_prompt(tokenizer, task["problem"], template, shots_for(task, few_shot, shots))[1]) for task in tasks]
    longest = max(lengths)
    if requested is not None:
        for task, length in zip(tasks, lengths):
            if length + requested > context:
                raise UserError(f"task {task['id']!r}: its prompt ({length} tokens) + --max-new-tokens ({requested}) "
                                f"exceeds the model's maximum length of {context}")
        return requested
    room = context - longest
    if room < 1:
        raise UserError(f"the longest prompt ({longest} tokens) leaves no room in the model's "
                        f"{context}-token context for an answer")
    if room < DEFAULT_MAX_NEW_TOKENS:
        print(f"max new tokens: {room} (the model's {context}-token context minus the longest "
              f"prompt, {longest} tokens)", file=sys.stderr)
    return min(DEFAULT_MAX_NEW_TOKENS, room)


def sample_tasks(model: Llama, tokenizer: Tokenizer, tasks: list[dict], *, n: int, max_new_tokens: int,
                 temperature: float = 0.0, top_p: float = 1.0, top_k: int = 0, batch_size: int = 32,
                 seed: int = 0, template: str = "chat", compile: bool = False,
                 progress: "Progress | None" = None, few_shot: list[dict] = (),
                 shots: int = 0) -> Iterator[tuple[dict, str, list[str], list[str]]]:
    """Yield (task, prompt text, n completions, their finish reasons) for each task, in task order, as
    soon as all its samples are done. Batches hold up to `batch_size` sequences; the n samples of a
    task may span batches, since each sample has its own seed. Lengths: see `fit_max_new_tokens`
    (generate refuses a prompt that does not fit). `few_shot`: choose_shots's examples, `shots` of them
    shown before each task."""
    if n < 1 or batch_size < 1:
        raise UserError(f"--n and --batch-size must be >= 1, got n={n}, batch_size={batch_size}")
    prompts = [build_prompt(tokenizer, task["problem"], template, shots_for(task, few_shot, shots)) for task in tasks]
    jobs = [(t, k) for t in range(len(tasks)) for k in range(n)]
    texts: list[list[str | None]] = [[None] * n for _ in tasks]
    reasons: list[list[str]] = [[""] * n for _ in tasks]
    next_task = 0
    for start in range(0, len(jobs), batch_size):
        batch = jobs[start:start + batch_size]
        outputs = generate(model, [prompts[t][1] for t, _ in batch], max_new_tokens=max_new_tokens,
                           temperature=temperature, top_p=top_p, top_k=top_k, stop_ids=tokenizer.stop_ids,
                           seed=[sample_seed(seed, tasks[t]["id"], k) for t, k in batch], compile=compile)
        for (t, k), ids in zip(batch, outputs):
            text = tokenizer.decode(ids)
            texts[t][k] = finish_completion(text, template)
            reasons[t][k] = finish_reason(ids, text, max_new_tokens, template)
        finished_before = next_task
        while next_task < len(tasks) and all(text is not None for text in texts[next_task]):
            yield tasks[next_task], prompts[next_task][0], texts[next_task], reasons[next_task]
            next_task += 1
        if progress is not None:
            progress.update(done=next_task - finished_before, tokens=sum(len(ids) for ids in outputs))


# ---------------------------------------------------------------------------------------------
# Output files over tasks


def check_output_row(row: dict, where: str, task_ids: set, n: int, list_field: str) -> None:
    """A row already in an output file must belong to these tasks and settings, or resuming would mix runs."""
    if row["id"] not in task_ids:
        raise UserError(f"{where}: field 'id': {row['id']!r} is not among the tasks; is this output from another run?")
    if not isinstance(row.get(list_field), list) or len(row[list_field]) != n:
        got = len(row[list_field]) if isinstance(row.get(list_field), list) else row.get(list_field)
        raise UserError(f"{where}: field {list_field!r} has {got} entries but --n is {n}; "
                        "use the --n of the run that wrote this file, or another --out")


def rank_files(out: str) -> list[str]:
    """OUT.rank<r>: what each process of a torchrun run appends to."""
    return sorted(glob.glob(glob.escape(out) + ".rank*"))


def merge_outputs(out: str, tasks: list[dict], n: int, list_field: str = "samples") -> list[dict]:
    """Gather the rows of `out` and of any rank files OUT.rank<r> (a torchrun run, finished or not),
    check them, and rewrite `out` alone, in task order. Returns the rows."""
    task_ids = {task["id"] for task in tasks}
    found, duplicates = {}, 0
    parts = rank_files(out)
    for path in [out] + parts:
        for line_no, row in read_output_rows(path):
            check_output_row(row, f"{path}:{line_no}", task_ids, n, list_field)
            if row["id"] in found:
                duplicates += 1  # merged before, but killed before the rank file was removed: same row
                continue
            found[row["id"]] = row
    rows = [found[task["id"]] for task in tasks if task["id"] in found]
    if parts or duplicates or os.path.exists(out):
        write_jsonl(out, rows)
    for path in parts:
        os.remove(path)
    return rows


# ---------------------------------------------------------------------------------------------
# Progress


def format_duration(seconds: float) -> str:
    """1h02m, 3m05s."""
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


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
        eta = format_duration((self.total - self.done) / rate) if rate > 0 else "?"
        return f"{self.unit} {self.done}/{self.total} | {rate:.2f} {self.unit}/s | {self.tokens / elapsed:.0f} tok/s | ETA {eta}"

    def close(self) -> None:
        if self.enabled and self.tty:
            print(file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# The generation flags sample.py and evaluate.py share


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """--help with each flag's default, where it has one worth showing (not None, not an off switch)."""

    def _get_help_string(self, action):
        # `is`, not `in (None, False)`: 0 == False, and a default of 0 (--top-k, --seed) is worth showing.
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)



def add_generation_args(parser: argparse.ArgumentParser, *, temperature: float, top_p: float, seed: int) -> None:
    """The defaults that differ (a teacher samples, an evaluation decodes greedily) are the caller's."""
    parser.add_argument("--temperature", type=float, default=temperature, help="sampling temperature; 0: greedy")
    parser.add_argument("--top-p", type=float, default=top_p, help="nucleus sampling: keep the tokens that make up this mass")
    parser.add_argument("--top-k", type=int, default=0, help="keep the k most likely tokens; 0: all")
    parser.add_argument("--max-new-tokens", type=int, help=f"tokens per answer (default: {DEFAULT_MAX_NEW_TOKENS}, "
                        "or less when the model's context cannot hold that after the longest prompt)")
    parser.add_argument("--batch-size", type=int, default=32, help="sequences per generate call")
    parser.add_argument("--seed", type=int, default=seed, help="each sample's seed is made from it, the task id and k")
    parser.add_argument("--template", choices=TEMPLATES, default="chat",
                        help="chat: Llama-3 Instruct template; plain: 'Question: ...\\nAnswer:' for base models")
    parser.add_argument("--dtype", default="auto", help="auto (bf16 on GPU, fp32 on CPU), fp32, bf16, fp16")
    parser.add_argument("--device", help="default: cuda:LOCAL_RANK if a GPU is present, else cpu")
    parser.add_argument("--compile", action="store_true", help="torch.compile the decode step (GPU)")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.add_argument("--overwrite", action="store_true",
                        help="discard what --out holds from an earlier run (rows and settings) and start fresh")


def check_generation_args(args: argparse.Namespace) -> None:
    """The generation flags, checked before anything heavy happens (a model load takes minutes on an
    8B model): one line naming the flag."""
    if not args.temperature >= 0:
        raise UserError(f"--temperature must be >= 0 (0: greedy), got {args.temperature}")
    if not 0 < args.top_p <= 1:
        raise UserError(f"--top-p must be in (0, 1], got {args.top_p}")
    if args.top_k < 0:
        raise UserError(f"--top-k must be >= 0 (0: all tokens), got {args.top_k}")
    if args.max_new_tokens is not None and args.max_new_tokens < 1:
        raise UserError(f"--max-new-tokens must be >= 1, got {args.max_new_tokens}")
    if args.n < 1 or args.batch_size < 1:
        raise UserError(f"--n and --batch-size must be >= 1, got n={args.n}, batch_size={args.batch_size}")
    if args.device is not None:
        import torch

        try:
            torch.device(args.device)
        except RuntimeError:
            raise UserError(f"--device {args.device}: not a device (cpu, cuda, cuda:1, ...)") from None
        if args.device.startswith("cuda") and not torch.cuda.is_available():
            raise UserError(f"--device {args.device}, but torch sees no GPU (torch.cuda.is_available() is False)")
