"""The quality of a training set: how many examples and tokens, and how wrong its supervision is.

Reading order: a solution's step errors (the exact checker, for built-in world problems); `measure`,
a set's outcome and step-wise error rates; `token_lengths`, fast token counts under the chat
template; `set_report`, everything `data_prep.py stats` says about a file; the grader checked
against the world's exact check on every solution written.

Outcome error rate: the share of examples whose solution is wrong (meta.correct, or the grader
against meta.answer). Step-wise error rate: wrong steps / all steps, by the step checker where the
problem is of the built-in world, else from meta.step_error_rate and meta.steps where a set records them.
"""
import os
import re
from collections import Counter

from w2s.data.rows import load_sft_examples, problem_from_user_message
from w2s.data.world import miniworld
from w2s.data.world.sets import PoolItem
from w2s.grader import grade
from w2s.tokenizer import Tokenizer


def solution_step_errors(row: dict) -> list[bool] | None:
    """Step errors of a row's solution by the exact checker, when its problem is of the built-in world."""
    problem = problem_from_user_message(next(m["content"] for m in row["messages"] if m["role"] == "user"))
    try:
        task = miniworld.parse_problem(problem)
    except ValueError:
        return None
    return miniworld.step_errors(row["messages"][-1]["content"], task)


def measure(rows: list[dict], token_lengths: list[int] | None = None, recheck_steps: bool = False) -> dict:
    """Examples, tokens, outcome error rate, step-wise error rate (wrong steps / all steps)."""
    known = [r["meta"]["correct"] for r in rows if isinstance(r.get("meta", {}).get("correct"), bool)]
    wrong_steps = all_steps = 0
    unknown_steps = 0
    for row in rows:
        errors = solution_step_errors(row) if recheck_steps else None
        if errors is not None:
            wrong_steps, all_steps = wrong_steps + sum(errors), all_steps + len(errors)
            continue
        meta = row.get("meta", {})
        if meta.get("step_error_rate") is not None and meta.get("steps"):
            wrong_steps += round(meta["step_error_rate"] * meta["steps"])
            all_steps += meta["steps"]
        else:
            unknown_steps += 1
    return {
        "examples": len(rows),
        "tokens": sum(token_lengths) if token_lengths is not None else None,
        "outcome_error": 1 - sum(known) / len(known) if known else None,
        "step_error": wrong_steps / all_steps if all_steps else None,
        "unknown_correctness": len(rows) - len(known),
        "unknown_step_error": unknown_steps,
    }


# ---------------------------------------------------------------------------------------------
# Token counts


def token_lengths(rows: list[dict], tokenizer, cache: dict | None = None, verify: int = 50) -> list[int]:
    """Tokens of each row under the chat template.

    Tokenizing 300k rows whole takes minutes; but the pre-tokenizer never merges across a newline
    or across ". " / "? ", so a text's count is the sum of its lines' and sentences' counts, and
    those repeat a lot (cached). The first `verify` rows are also tokenized whole, as a check.
    """
    cache = {} if cache is None else cache

    def count(text: str) -> int:
        if text in cache:
            return cache[text]
        total = 0
        for chunk in _CHUNK.split(text):
            if chunk not in cache:
                cache[chunk] = len(tokenizer.raw.encode(chunk, add_special_tokens=False).ids)
            total += cache[chunk]
        cache[text] = total
        return total

    # The template around the turns: tokens of the rendered text minus those of the contents.
    def overhead(messages: list[dict]) -> int:
        key = ("<template>",) + tuple(m["role"] for m in messages)
        if key not in cache:
            empty = [dict(m, content="") for m in messages]
            cache[key] = len(tokenizer.encode_chat_for_training(empty)[0])
        return cache[key]

    def exact(row: dict) -> int:
        return len(tokenizer.encode_chat(row["messages"], add_generation_prompt=False))

    lengths = [overhead(r["messages"]) + sum(count(m["content"].strip()) for m in r["messages"]) for r in rows]
    if any(exact(row) != length for row, length in zip(rows[:verify], lengths)):
        return [exact(row) for row in rows]  # some other tokenizer or text: count the slow way
    return lengths


_CHUNK = re.compile(r"(?<=\n)(?!\n)|(?<=[.?])(?= )")


def find_tokenizer(path: str, tokenizer_path: str | None = None):
    """`tokenizer_path`'s tokenizer, else the tokenizer.json beside `path` (a data file), else None."""
    candidate = tokenizer_path or os.path.join(os.path.dirname(os.path.abspath(path)), "tokenizer.json")
    return Tokenizer.from_pretrained(candidate) if tokenizer_path or os.path.exists(candidate) else None


# ---------------------------------------------------------------------------------------------
# A whole file's report (`data_prep.py stats`)


def histogram(values: list[int], bins: int = 10) -> list[tuple[int, int, int]]:
    """(low, high, count) for equal-width bins over the values."""
    low, high = min(values), max(values)
    width = max(1, -(-(high - low + 1) // bins))
    counts = Counter((v - low) // width for v in values)
    return [(low + b * width, low + (b + 1) * width - 1, counts.get(b, 0))
            for b in range(-(-(high - low + 1) // width))]


def set_report(path: str, tokenizer_path: str | None = None) -> tuple[dict, list[int], str]:
    """(stats, lengths, unit) of an SFT file: `measure` with the steps rechecked, the outcome by the grader
    against meta.answer next to what the rows claim, the kinds of rows, and each row's length in
    tokens (a tokenizer beside the file or given) or else in characters (`unit` says which)."""
    rows = load_sft_examples(path)
    tokenizer = find_tokenizer(path, tokenizer_path)
    lengths = (token_lengths(rows, tokenizer) if tokenizer
               else [sum(len(m["content"]) for m in r["messages"]) for r in rows])
    stats = measure(rows, lengths if tokenizer else None, recheck_steps=True)
    graded = [(grade(r["messages"][-1]["content"], str(r["meta"]["answer"])), r["meta"].get("correct"))
              for r in rows if r.get("meta", {}).get("answer") not in (None, "")]
    stats["graded"] = len(graded)
    stats["outcome_error_by_grader"] = 1 - sum(g for g, _ in graded) / len(graded) if graded else None
    stats["grader_disagrees_with_meta"] = sum(isinstance(c, bool) and g != c for g, c in graded)
    stats["kinds"] = dict(Counter(r.get("meta", {}).get("kind", "?") for r in rows))
    return stats, lengths, "tokens" if tokenizer else "characters"


# ---------------------------------------------------------------------------------------------
# A guard on the grader and the world's exact check


def check_outcomes_with_grader(pool: list[PoolItem]) -> int:
    """The grader must agree with the world's exact check on every solution (a guard on both). Returns the count."""
    checked, seen = 0, set()
    for item in pool:
        for it in [item] + item.subtasks + item.prefixes + item.paraphrases:
            for sol in it.correct + it.incorrect:
                if (sol.text, it.answer) in seen:
                    continue
                seen.add((sol.text, it.answer))
                if grade(sol.text, it.answer) != sol.correct:
                    raise RuntimeError(f"{it.id}: the grader says correct={not sol.correct} but the exact check says "
                                       f"{sol.correct} for answer {it.answer!r}:\n{sol.text}")
                checked += 1
    return checked
