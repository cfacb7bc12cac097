"""Tasks in, generations out: the prompts and the sampling loop sample.py and evaluate.py share.

Reading order: the sampling settings; prompts (chat or plain, with few-shot examples before the task);
how a completion ends and why (finish reasons); per-sample seeds; how many new tokens fit; the sampling
loop. Neighbours: w2s/data/tasks.py reads the task rows and few-shot examples, w2s/sampler.py generates,
w2s/cli.py holds the generation flags (and builds a `Sampling` from them) and the progress line.
"""
import hashlib
import sys
from dataclasses import dataclass
from typing import Iterator

from w2s.data.rows import user_message
from w2s.data.tasks import shots_for
from w2s.errors import UserError
from w2s.model import Llama
from w2s.sampler import compile_decoding, generate
from w2s.tokenizer import Tokenizer

TEMPLATES = ("chat", "plain")
DEFAULT_MAX_NEW_TOKENS = 1024


@dataclass(frozen=True)
class Sampling:
    """How completions are drawn, the settings sample.py and evaluate.py share: `n` samples per task, each
    from `template`'s prompt, up to `max_new_tokens` (None: see `fit_max_new_tokens`), at `temperature`
    (0: greedy) with `top_p` / `top_k`, seeded from `seed` (see `sample_seed`). `batch_size` and `compile`
    (torch.compile the decode step) change only the speed, never a sample."""
    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int | None = None
    seed: int = 0
    template: str = "chat"
    batch_size: int = 32
    compile: bool = False

    def recorded(self) -> dict:
        """The settings that decide the samples, in the order output files record them."""
        return {"n": self.n, "temperature": self.temperature, "top_p": self.top_p, "top_k": self.top_k,
                "max_new_tokens": self.max_new_tokens, "seed": self.seed, "template": self.template}


# ---------------------------------------------------------------------------------------------
# Prompts


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
        text = "".join(f"Question: {user_message(shot['problem'])}\nAnswer: {shot['solution'].strip()}\n\n"
                       for shot in shots)
        text += f"Question: {user_message(problem)}\nAnswer:"
        return text, tokenizer.encode(text, bos=True)
    raise ValueError(f"unknown template {template!r}; choose from {', '.join(TEMPLATES)}")


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
    lengths = [len(build_prompt(tokenizer, task["problem"], template, shots_for(task, few_shot, shots))[1])
               for task in tasks]
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


def sample_tasks(model: Llama, tokenizer: Tokenizer, tasks: list[dict], sampling: Sampling, *, progress=None,
                 few_shot: list[dict] = (), shots: int = 0) -> Iterator[tuple[dict, str, list[str], list[str]]]:
    """Yield (task, prompt text, n completions, their finish reasons) for each task, in task order, as
    soon as all its samples are done. Batches hold up to `sampling.batch_size` sequences; the n samples
    of a task may span batches, since each sample has its own seed. `sampling.max_new_tokens` must be a
    number: see `fit_max_new_tokens` (generate refuses a prompt that does not fit). `few_shot`:
    choose_shots's examples, `shots` of them shown before each task. `progress` (a w2s.cli.Progress)
    hears of each batch's finished tasks and tokens."""
    n, batch_size, template = sampling.n, sampling.batch_size, sampling.template
    if n < 1 or batch_size < 1:
        raise UserError(f"--n and --batch-size must be >= 1, got n={n}, batch_size={batch_size}")
    if sampling.compile:
        compile_decoding(model)
    prompts = [build_prompt(tokenizer, task["problem"], template, shots_for(task, few_shot, shots)) for task in tasks]
    jobs = [(t, k) for t in range(len(tasks)) for k in range(n)]
    texts: list[list[str | None]] = [[None] * n for _ in tasks]
    reasons: list[list[str]] = [[""] * n for _ in tasks]
    next_task = 0
    for start in range(0, len(jobs), batch_size):
        batch = jobs[start:start + batch_size]
        outputs = generate(model, [prompts[t][1] for t, _ in batch], max_new_tokens=sampling.max_new_tokens,
                           temperature=sampling.temperature, top_p=sampling.top_p, top_k=sampling.top_k,
                           stop_ids=tokenizer.stop_ids,
                           seed=[sample_seed(sampling.seed, tasks[t]["id"], k) for t, k in batch])
        for (t, k), ids in zip(batch, outputs):
            text = tokenizer.decode(ids)
            texts[t][k] = finish_completion(text, template)
            reasons[t][k] = finish_reason(ids, text, sampling.max_new_tokens, template)
        finished_before = next_task
        while next_task < len(tasks) and all(text is not None for text in texts[next_task]):
            yield tasks[next_task], prompts[next_task][0], texts[next_task], reasons[next_task]
            next_task += 1
        if progress is not None:
            progress.update(done=next_task - finished_before, tokens=sum(len(ids) for ids in outputs))
