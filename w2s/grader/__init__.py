"""Answer checking: pull the final answer out of a reply, then decide if it equals the gold.

Every number the project reports goes through `grade`, so it has to be right, fast and impossible
to hang. `grade` is below; the work is in four modules, read in this order:

1. `extraction.py`: `extract_answer` finds the final answer in a model's text (`\\boxed{}` first).
2. `normalization.py`: `normalize` cleans an answer into a canonical string (formatting that never
   changes the value goes), plus the few patterns the other modules share.
3. `equivalence.py`: `is_equiv` compares two answers: structures, labels, relations, numbers and
   the numeric tolerance policy, then sympy for what is left.
4. `sympy_check.py`: sympy equivalence, run in helper processes that can be killed when a check
   runs out of time.

Imports go one way, down this list: extraction -> equivalence -> normalization, equivalence ->
sympy_check (extraction asks `is_equiv` whether a final statement agrees with the box; nothing
below asks anything above). tests/test_grader_layers.py checks it.
"""
import re

from w2s.grader.equivalence import DEFAULT_TIMEOUT, answer_groups, clear_caches, is_equiv
from w2s.grader.extraction import extract_answer
from w2s.grader.normalization import PROSE_WORD, as_text, normalize
from w2s.grader.sympy_check import GraderSetupError, stop_helpers

__all__ = ["extract_answer", "normalize", "is_equiv", "grade", "answer_groups", "clear_caches", "stop_helpers",
           "GraderSetupError"]


def _gold_answer(gold: str) -> str | None:
    """The answer in a gold: its box, the final answer of a full solution, or the gold itself."""
    if "\\boxed" in gold or "\\fbox" in gold:
        return extract_answer(gold, strict=True)
    prose = PROSE_WORD.findall(re.sub(r"\\[a-zA-Z]+(?:\s*\{[^{}]*\})?|\$[^$]*\$", " ", gold))
    if len(prose) >= 4:  # a written solution ("... so the total is $12$."), not a bare answer
        return extract_answer(gold) or gold
    return gold


def grade(response: str, gold: str, *, timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Is the final answer of `response` equal to `gold` (a bare answer, or a solution with a box or a final answer)?"""
    response, gold = as_text(response), as_text(gold)
    if not response or not gold:
        return False
    return is_equiv(extract_answer(response), _gold_answer(gold), timeout=timeout)
