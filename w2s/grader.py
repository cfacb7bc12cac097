"""Answer checking: pull the final answer out of a solution, then decide if it equals the gold.

Every number the project reports goes through `grade`, so it has to be right, fast and
impossible to hang. Reading order:

1. `extract_answer`: find the final answer in a model's text (`\\boxed{}` first, then fallbacks).
2. `normalize`: plain string clean-up (`$`, `\\left`, `\\dfrac`, units, `\\%`, `x =`, choice letters...).
3. Structures: tuples, intervals, sets, lists, matrices and `\\pm` are split into parts in this
   process (string work only) and compared part by part with the right rule (ordered or not).
4. Scalars: exact string, then plain numbers (no sympy, exact fractions; a relative tolerance
   only when a side is written as a decimal), then sympy.
5. Sympy runs in persistent helper processes. Sympy can take forever (simplifying
   `10^{10^{10^{10}}}` builds the integer), and the only time limit that works from any thread,
   inside daemonic worker processes and around C-level big-integer loops is to run the work in
   another process and kill it when time is up. `signal.alarm` only works in the main thread and cannot
   interrupt a long C call. The helpers are started with `subprocess` (not `multiprocessing`), so
   a grader called inside a multiprocessing pool worker (a daemon, which may not have
   multiprocessing children) still works.

LaTeX is parsed by sympy's own parser, ANTLR backend, in strict mode: it needs exactly
`antlr4-python3-runtime==4.11.0`. Strict matters: the lenient default silently drops what it
cannot read (`2\\sqrt2` -> 2, `1,-2` -> 1, `1+` -> 1), turning wrong answers into right ones.
The Lark backend was measured too: equally strict but 3-5x slower (an Earley parser: 30-50 ms per
expression), it evaluates while parsing and it has no `\\pi`.
"""
import atexit
import json
import os
import queue
import re
import select
import subprocess
import sys
import threading
import time
from fractions import Fraction
from functools import lru_cache

DEFAULT_TIMEOUT = 3.0  # seconds of sympy work for one check; a check that runs out is False
MAX_SYMPY_CHARS = 400  # longer expressions are compared as strings only: no real answer is this long
MAX_ANSWER_CHARS = 2000  # longer answers skip structure matching (quadratic in the worst case)
MAX_ITEMS = 50  # longer lists are matched as sorted strings, not item by item
NUMBER_REL_TOL = 1e-6  # for decimals: 0.3333333 is 1/3, 0.333 is not
MAX_HELPERS = int(os.environ.get("W2S_GRADER_HELPERS", "0")) or min(4, os.cpu_count() or 1)  # sympy processes

# --------------------------------------------------------------------------- extraction

_ANSWER_IS = re.compile(r"(?:final answer|the answer)\s*(?:is|:)\s*:?\s*(.+)", re.I)
_GSM8K = re.compile(r"####\s*(.+)")
_MATH_SPAN = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", re.S)
_NUMBER_IN_TEXT = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?(?:/\d+)?")
_PROSE_WORD = re.compile(r"(?<![\\a-zA-Z])[a-zA-Z]{3,}")


def _braced(text: str, start: int) -> tuple[str, int] | None:
    """The contents of the `{...}` group that opens at text[start], and the index after it."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "\\":
            continue
        if text[i] == "{" and text[i - 1] != "\\":
            depth += 1
        elif text[i] == "}" and text[i - 1] != "\\":
            depth -= 1
            if depth == 0:
                return text[start + 1:i], i + 1
    return None


def _last_boxed(text: str) -> str | None:
    """Contents of the last `\\boxed{...}` / `\\boxed x` / `\\fbox{...}`; None if unclosed."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    rest = start + (6 if text.startswith("\\boxed", start) else 5)
    while rest < len(text) and text[rest] == " ":
        rest += 1
    if rest < len(text) and text[rest] == "{":
        group = _braced(text, rest)
        return group[0].strip() if group else None
    # `\boxed 5`: TeX takes the next token as the argument; we take the word after it.
    match = re.match(r"[^\s$]+", text[rest:])
    return match.group(0) if match else None


def _clean_sentence_answer(answer: str) -> str:
    answer = answer.strip().splitlines()[0] if answer.strip() else ""
    span = _MATH_SPAN.search(answer)
    if span:
        return next(g for g in span.groups() if g is not None).strip()
    answer = re.split(r"\.\s", answer)[0]  # stop at the end of the sentence
    return answer.strip().rstrip(".").strip()


def extract_answer(text: str, strict: bool = False) -> str | None:
    """The final answer in `text`, or None.

    Tried in this order; the first that matches wins:
    1. the last `\\boxed{...}` (nested braces), `\\boxed x` or `\\fbox{...}`: what we ask every
       model for. If the last one is unclosed (a generation cut off by the token limit) the
       answer is None: the model never finished, so no fallback may guess for it.
    2. "The answer is X" / "final answer is X": how instruction-tuned models often end when
       they forget the box (also the paper's teachers' style).
    3. GSM8K's `#### X`: the reference format of GSM8K-style data.
    4. the last math span (`$...$`, `$$...$$`, `\\(...\\)`, `\\[...\\]`), then a short line
       with no prose words taken whole, then the last number: so that a bare answer (`0.5`,
       `$\\frac12$`, `\\frac{1}{2}`) or a short GSM8K-style reply is its own answer.
    With `strict=True` only step 1 is used (for reference solutions that must carry a box).
    """
    if not text:
        return None
    if "\\boxed" in text or "\\fbox" in text:
        answer = _last_boxed(text)
        return answer or None
    if strict:
        return None
    matches = _ANSWER_IS.findall(text)
    if matches and _clean_sentence_answer(matches[-1]):
        return _clean_sentence_answer(matches[-1])
    matches = _GSM8K.findall(text)
    if matches and matches[-1].strip():
        return matches[-1].strip()
    spans = _MATH_SPAN.findall(text)
    if spans:
        return next(g for g in spans[-1] if g).strip()
    stripped = text.strip()
    if "\n" not in stripped and len(stripped) <= 80 and not _PROSE_WORD.search(stripped):
        return stripped.rstrip(".").strip() or None
    numbers = _NUMBER_IN_TEXT.findall(text)
    return numbers[-1] if numbers else None


# --------------------------------------------------------------------------- normalization

_UNIT_WORDS = (
    "units?|square units|sq units|cm|centimeters?|mm|millimeters?|meters?|km|kilometers?|inch(?:es)?|"
    "feet|foot|ft|yards?|miles?|mph|grams?|kg|kilograms?|pounds?|lbs?|ounces?|oz|liters?|ml|"
    "seconds?|sec|minutes?|min|hours?|hrs?|days?|weeks?|months?|years?|degrees?|radians?|"
    "dollars?|cents?|percent|people|students|cups?|pages|points|ways|mm\\^2|cm\\^2|m\\^2|"
    "square (?:feet|inches|meters|centimeters|units)|cubic (?:feet|inches|meters|centimeters|units)"
)
_TRAILING_UNIT = re.compile(rf"(?<=[\d}}\s])\s*\b(?:{_UNIT_WORDS})(?:\s*\^\s*\{{?\d\}}?)?\s*$", re.I)
_TEXT_COMMANDS = re.compile(r"\\(?:text|textbf|textit|mathrm|mathbf|mathit|mbox|operatorname|boldsymbol)\s*\{")
_CHOICE = re.compile(r"^\(?([A-E](?:\s*,?\s*[A-E])*)\)?[.:]?$")  # (C), B., multi-answer ABD
_CHOICE_PREFIX = re.compile(r"^\(([A-E])\)|^([A-E])[.)]\s")  # "(C) 12" or "C. 12": the letter is the answer
_VARIABLE_PREFIX = re.compile(r"^(?:[a-zA-Z]|\\[a-z]+)(?:_\{?[a-zA-Z0-9]+\}?)?'?(?:\([a-z]\))?\s*(?:=|\\in)\s*(?=\S)")


def _unwrap_text_commands(s: str) -> str:
    """`\\text{cm}` -> ` cm `: the words stay (units are then removed), the command goes."""
    while True:
        match = _TEXT_COMMANDS.search(s)
        if not match:
            return s
        group = _braced(s, match.end() - 1)
        if group is None:
            return s[:match.start()] + s[match.end():]
        inner, end = group
        s = s[:match.start()] + f" {inner} " + s[end:]


def normalize(answer: str) -> str:
    """A canonical string for an answer: formatting that never changes the value is removed."""
    s = answer.strip()
    s = re.sub(r"\\\$|\\%|%|\$|\\\(|\\\)|\\\[|\\\]", "", s)  # math delimiters, dollars, percent
    s = s.replace("\\displaystyle", "").replace("\\!", "").replace("{,}", "").replace("\\,", " ")
    s = re.sub(r"\\[;:]|\\q?quad|~", " ", s)
    s = re.sub(r"\\(?:left|right|big|Big|bigg|Bigg)(?![a-zA-Z])", "", s)
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("\\dbinom", "\\binom")
    # \text{ or } between answers is a list separator, not a unit.
    s = re.sub(r"\\text\s*\{\s*(?:or|and|,)\s*\}", ",", s)
    # A \text{...} of words after the value is a unit or a remark ("4 \text{ m}", "\text{ of the pie}").
    s = re.sub(r"(?<=\S)\s*\\(?:text|mbox)\s*\{\s*[a-zA-Z][a-zA-Z .]*\}\s*(?:\^\s*\{?\d\}?)?\s*\.?$", "", s)
    s = _unwrap_text_commands(s)
    s = re.sub(r"\s+(?:or|and)\s+", ",", s)
    s = re.sub(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|\\degree|°", "", s)
    s = s.replace("\\infinity", "\\infty").replace("+\\infty", "\\infty")
    s = re.sub(r"\\le(?![a-zA-Z])", r"\\leq", s)
    s = re.sub(r"\\ge(?![a-zA-Z])", r"\\geq", s)
    s = re.sub(r"\\(?:varnothing|emptyset)", r"\\emptyset", s)
    s = re.sub(r"\\sqrt\s*([0-9a-zA-Z])", r"\\sqrt{\1}", s)  # \sqrt2 -> \sqrt{2}
    s = re.sub(r"\\frac\s*([0-9a-zA-Z])\s*([0-9a-zA-Z])", r"\\frac{\1}{\2}", s)  # \frac12
    s = re.sub(r"\\frac\s*([0-9a-zA-Z])\s*(?=\{)", r"\\frac{\1}", s)
    s = re.sub(r"\s+", " ", s).strip()
    for _ in range(3):  # units and punctuation can be stacked: "5 cm."
        s = s.rstrip(".;,").strip()
        s = _TRAILING_UNIT.sub("", s).strip()
    if re.fullmatch(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?", s.replace(" ", "")):
        s = s.replace(",", "").replace(" ", "")  # thousands separators
    s = re.sub(r"(?<![\d.])\.(\d)", r"0.\1", s)  # .5 -> 0.5
    choice = _CHOICE.match(s)
    if choice:
        s = "".join(sorted(set(re.sub(r"[^A-E]", "", choice.group(1)))))
    return s


# --------------------------------------------------------------------------- structures

_OPENERS, _CLOSERS = "([{", ")]}"


def _split_top_level(s: str, separator: str) -> list[str]:
    """Split on `separator` outside any (), [], {}, \\{ \\}."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(s):
        if s[i] in _OPENERS:
            depth += 1
        elif s[i] in _CLOSERS:
            depth -= 1
        elif depth == 0 and s.startswith(separator, i):
            parts.append(s[start:i])
            start = i + len(separator)
            i = start
            continue
        i += 1
    parts.append(s[start:])
    return [p.strip() for p in parts]


def _encloses(s: str) -> bool:
    """True when s[0] and s[-1] are the matching outer brackets of the whole string."""
    depth = 0
    for i, ch in enumerate(s):
        if ch in _OPENERS:
            depth += 1
        elif ch in _CLOSERS:
            depth -= 1
            if depth == 0 and i != len(s) - 1:
                return False
    return depth == 0


def _matrix_rows(s: str) -> list[list[str]] | None:
    match = re.fullmatch(r"\\begin\{([pbvBV]?matrix|array)\}(?:\{[^}]*\})?(.*)\\end\{\1\}", s, re.S)
    if not match:
        return None
    rows = [r for r in (row.strip() for row in match.group(2).split("\\\\")) if r]
    return [[cell.strip() for cell in row.split("&")] for row in rows]


def _expand_pm(s: str) -> list[str] | None:
    r"""`a \pm b` -> [`a+b`, `a-b`] (every \pm takes the same sign, \mp the other)."""
    if "\\pm" not in s and "\\mp" not in s:
        return None
    plus = s.replace("\\pm", "+").replace("\\mp", "-")
    minus = s.replace("\\pm", "-").replace("\\mp", "+")
    return [plus.lstrip("+").strip(), minus.strip()]


def _structure(s: str):
    """Classify a normalized answer: ("matrix", rows) | ("union", parts) | ("set", items) |
    ("tuple", open, close, items) | ("list", items) | ("scalar", s)."""
    rows = _matrix_rows(s)
    if rows is not None:
        return ("matrix", rows)
    unions = _split_top_level(s, "\\cup")
    if len(unions) > 1:
        return ("union", unions)
    if s.startswith("\\{") and s.endswith("\\}"):
        inner = s[2:-2].strip()
        return ("set", _split_top_level(inner, ",") if inner else [])
    if len(s) >= 2 and s[0] in "([" and s[-1] in ")]" and _encloses(s):
        items = _split_top_level(s[1:-1], ",")
        if len(items) > 1:
            return ("tuple", s[0], s[-1], items)
    items = _split_top_level(s, ",")
    if len(items) > 1:
        return ("list", [item for item in items if item])
    expanded = _expand_pm(s)
    if expanded is not None:
        return ("list", expanded)
    return ("scalar", s)


def _vector_items(structure) -> list[str] | None:
    """A row/column matrix or a parenthesized tuple, as an ordered list of entries."""
    if structure[0] == "matrix" and (len(structure[1]) == 1 or all(len(r) == 1 for r in structure[1])):
        return [cell for row in structure[1] for cell in row]
    if structure[0] == "tuple" and structure[1] == "(" and structure[2] == ")":
        return structure[3]
    return None


def _all_pairwise(preds: list[str], golds: list[str], deadline: float) -> bool:
    if len(golds) > MAX_ITEMS:
        return preds == golds
    return len(preds) == len(golds) and all(_equiv(p, g, deadline) for p, g in zip(preds, golds))


def _same_multiset(preds: list[str], golds: list[str], deadline: float) -> bool:
    """Order-free match: every gold item paired with a distinct equal pred item."""
    if len(preds) != len(golds):
        return False
    if len(golds) > MAX_ITEMS:
        return sorted(preds) == sorted(golds)
    unused = list(preds)
    for gold in golds:
        match = next((i for i, pred in enumerate(unused) if _equiv(pred, gold, deadline)), None)
        if match is None:
            return False
        unused.pop(match)
    return True


def _drop_variable_prefixes(pred: str, gold: str) -> tuple[str, str]:
    r"""`x \in [1, 4]` is `[1, 4]`; `x = 5` is `5` unless both sides are equations."""
    pred_is_equation, gold_is_equation = "=" in pred, "=" in gold
    if not (pred_is_equation and gold_is_equation):
        pred, gold = _strip_variable(pred), _strip_variable(gold)
    return pred, gold


def _equiv(pred: str, gold: str, deadline: float) -> bool:
    """Equivalence of two normalized answers, structure first, then scalars."""
    if pred.replace(" ", "") == gold.replace(" ", ""):
        return True
    pred, gold = _drop_variable_prefixes(pred, gold)
    pred_structure, gold_structure = _structure(pred), _structure(gold)
    pred_kind, gold_kind = pred_structure[0], gold_structure[0]
    if pred_kind == "scalar" and gold_kind in ("tuple", "union") and _inequality_as_interval(pred):
        return _equiv(_inequality_as_interval(pred), gold, deadline)  # `x < 3` answers `(-\infty, 3)`
    if gold_kind == "scalar" and pred_kind in ("tuple", "union") and _inequality_as_interval(gold):
        return _equiv(pred, _inequality_as_interval(gold), deadline)
    if pred_kind == gold_kind == "scalar":
        return _scalar_equiv(pred, gold, deadline)
    pred_vector, gold_vector = _vector_items(pred_structure), _vector_items(gold_structure)
    if pred_vector is not None and gold_vector is not None and {pred_kind, gold_kind} == {"matrix", "tuple"}:
        return _all_pairwise(pred_vector, gold_vector, deadline)
    if pred_kind == gold_kind == "matrix":
        pred_rows, gold_rows = pred_structure[1], gold_structure[1]
        return len(pred_rows) == len(gold_rows) and all(
            _all_pairwise(p, g, deadline) for p, g in zip(pred_rows, gold_rows))
    if pred_kind == gold_kind == "tuple":
        # Ordered, and the brackets count: (1, 2] is not [1, 2].
        return pred_structure[1:3] == gold_structure[1:3] and _all_pairwise(
            pred_structure[3], gold_structure[3], deadline)
    if pred_kind == gold_kind == "union":
        return _same_multiset(pred_structure[1], gold_structure[1], deadline)
    if {pred_kind, gold_kind} <= {"set", "list"}:
        # Several answers ("1, -2", "\{1, -2\}", "x = \pm 3"): order-free.
        pred_items = [_strip_variable(p) for p in pred_structure[1]]
        gold_items = [_strip_variable(g) for g in gold_structure[1]]
        if pred_kind == "set" or gold_kind == "set":
            pred_items, gold_items = list(dict.fromkeys(pred_items)), list(dict.fromkeys(gold_items))
        return _same_multiset(pred_items, gold_items, deadline)
    if {pred_kind, gold_kind} in ({"scalar", "set"}, {"scalar", "list"}):
        # One answer against a collection: only a collection of exactly that one answer.
        items = (gold_structure if pred_kind == "scalar" else pred_structure)[1]
        scalar = pred if pred_kind == "scalar" else gold
        return len(set(items)) == 1 and _equiv(scalar, items[0], deadline)
    return False  # different shapes: a tuple is not a list, an interval is not a number


_LESS = r"(<|\\leq)"
_INEQUALITY_PATTERNS = [  # (pattern, how its groups become an interval)
    (re.compile(rf"^(?P<low>[^<>=]+?)\s*{_LESS}\s*[a-zA-Z]\s*{_LESS}\s*(?P<high>[^<>=]+)$"),
     lambda m: ("(" if m.group(2) == "<" else "[") + f"{m['low']}, {m['high']}" + (")" if m.group(3) == "<" else "]")),
    (re.compile(rf"^[a-zA-Z]\s*{_LESS}\s*(?P<high>[^<>=]+)$"),
     lambda m: f"(-\\infty, {m['high']}" + (")" if m.group(1) == "<" else "]")),
    (re.compile(r"^[a-zA-Z]\s*(>|\\geq)\s*(?P<low>[^<>=]+)$"),
     lambda m: ("(" if m.group(1) == ">" else "[") + f"{m['low']}, \\infty)"),
]


def _inequality_as_interval(s: str) -> str | None:
    """`x < 3` -> `(-\\infty, 3)`, `x \\geq 1` -> `[1, \\infty)`, `-2 < x \\leq 5` -> `(-2, 5]`."""
    for pattern, to_interval in _INEQUALITY_PATTERNS:
        match = pattern.match(s)
        if match:
            return to_interval(match)
    return None


def _strip_variable(s: str) -> str:
    return _VARIABLE_PREFIX.sub("", s).strip()


# --------------------------------------------------------------------------- scalars

_NUMBER = re.compile(
    r"(?P<sign>[-+]?)\s*(?:"
    r"(?P<mixed>(?P<whole>\d+)\s*\\frac\{\s*(?P<mnum>\d+)\s*\}\{\s*(?P<mden>\d+)\s*\})|"
    r"(?P<frac>\\frac\{\s*(?P<num>\d+)\s*\}\{\s*(?P<den>\d+)\s*\})|"
    r"(?P<ratio>(?P<rnum>\d+)\s*/\s*(?P<rden>\d+))|"
    r"(?P<repeating>(?P<int>\d*)\.(?P<fixed>\d*)\\overline\{(?P<period>\d+)\})|"
    r"(?P<decimal>\d+(?:\.\d*)?|\.\d+)(?:\s*(?:[eE]|\\times\s*10\s*\^|\\cdot\s*10\s*\^)\s*\{?\s*(?P<exp>[-+]?\d{1,3})\s*\}?)?"
    r")"
)


def _as_number(s: str) -> tuple[Fraction, bool] | None:
    """A plain number as an exact Fraction, and whether it was written inexactly (a decimal).

    Integers, decimals, a/b, \\frac{a}{b}, mixed numbers 2\\frac{1}{2}, repeating decimals
    0.\\overline{3}, 1.5e3 and 1.5 \\times 10^{3}; anything else is None.
    Exponents are limited to 3 digits so that this never builds a giant integer.
    """
    match = _NUMBER.fullmatch(s.strip())
    if not match or len(s) > 200:
        return None
    sign = -1 if match.group("sign") == "-" else 1
    if match.group("mixed"):
        if int(match.group("mden")) == 0:
            return None
        fraction = Fraction(int(match.group("mnum")), int(match.group("mden")))
        return sign * (int(match.group("whole")) + fraction), False
    if match.group("frac"):
        if int(match.group("den")) == 0:
            return None
        return sign * Fraction(int(match.group("num")), int(match.group("den"))), False
    if match.group("repeating"):  # 0.1\overline{6} = 1/6
        fixed, period = match.group("fixed"), match.group("period")
        repeating = Fraction(int(fixed or "0")) + Fraction(int(period), 10 ** len(period) - 1)
        return sign * (int(match.group("int") or "0") + repeating / 10 ** len(fixed)), False
    if match.group("ratio"):
        if int(match.group("rden")) == 0:
            return None
        return sign * Fraction(int(match.group("rnum")), int(match.group("rden"))), False
    value = Fraction(match.group("decimal"))
    if match.group("exp"):
        value *= Fraction(10) ** int(match.group("exp"))
    return sign * value, "." in match.group("decimal") or bool(match.group("exp"))


def _numbers_equal(a: tuple[Fraction, bool], b: tuple[Fraction, bool]) -> bool:
    (x, x_inexact), (y, y_inexact) = a, b
    if x == y:
        return True
    if not (x_inexact or y_inexact):
        return False  # integers and fractions are exact: 1/2004! is not 1/2006!
    return abs(x - y) <= NUMBER_REL_TOL * max(abs(x), abs(y))


def _is_text(s: str) -> bool:
    """Words rather than math (`Evelyn`, `\\text{odd}`): sympy would read `ab` as a*b."""
    return bool(_PROSE_WORD.search(re.sub(r"\\[a-zA-Z]+", " ", s)))


def _scalar_equiv(pred: str, gold: str, deadline: float) -> bool:
    if pred.replace(" ", "") == gold.replace(" ", ""):
        return True
    pred_number, gold_number = _as_number(pred), _as_number(gold)
    if pred_number is not None and gold_number is not None:
        return _numbers_equal(pred_number, gold_number)  # plain numbers never reach sympy
    if _is_text(pred) or _is_text(gold):
        return pred.lower().replace(" ", "") == gold.lower().replace(" ", "")
    if _CHOICE.match(pred) or _CHOICE.match(gold):
        return False  # a choice letter only equals the same letter
    if len(pred) > MAX_SYMPY_CHARS or len(gold) > MAX_SYMPY_CHARS:
        return False
    return _sympy_equal(pred, gold, deadline)


# --------------------------------------------------------------------------- sympy helpers

class GraderSetupError(RuntimeError):
    """The sympy helper cannot run (e.g. wrong antlr4 runtime): raised, never graded as False."""


class _SympyHelper:
    """One helper process that answers "are these two LaTeX expressions equal?" one line at a time."""

    def __init__(self, process: subprocess.Popen, startup_timeout: float = 120.0):
        self.process = process
        try:
            first_line = self._read_line(startup_timeout)
        except (OSError, ValueError) as error:  # e.g. select() on pipes is POSIX-only
            first_line = f"{type(error).__name__}: {error}"
        if first_line != "ready":
            self.kill()
            raise GraderSetupError(
                f"the grader's sympy helper did not start ({first_line or 'no answer'}); sympy's LaTeX parser "
                "needs `pip install antlr4-python3-runtime==4.11.0`")

    def _read_line(self, timeout: float) -> str | None:
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            return None
        line = self.process.stdout.readline()
        return line.strip() if line else None

    def ask(self, pred: str, gold: str, timeout: float) -> bool | None:
        """The verdict, or None when the helper ran out of time or died (it is then killed)."""
        try:
            self.process.stdin.write(json.dumps([pred, gold]) + "\n")
            self.process.stdin.flush()
            answer = self._read_line(timeout)
        except (OSError, ValueError):
            answer = None
        if answer not in ("1", "0"):
            self.kill()
            return None
        return answer == "1"

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass


class _HelperPool:
    """At most MAX_HELPERS helpers per process; idle ones are reused, dead or timed-out ones replaced."""

    def __init__(self):
        self.idle: queue.LifoQueue = queue.LifoQueue()
        self.helpers: list[_SympyHelper] = []
        self.lock = threading.Lock()
        self.slots = threading.BoundedSemaphore(MAX_HELPERS)
        self.spawn_requests: queue.Queue = queue.Queue()
        self.spawner: threading.Thread | None = None

    def _spawn_loop(self) -> None:
        # Helpers are started from this one thread, which lives as long as the process: Linux ties
        # a child's "die with the parent" signal (set in _helper_main) to the thread that started
        # it, and a helper started by a short-lived pool thread would die with that thread.
        while True:
            command, reply = self.spawn_requests.get()
            try:
                reply.put(subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                           stderr=subprocess.DEVNULL, text=True, encoding="utf-8", bufsize=1))
            except Exception as error:  # noqa: BLE001 - handed to the thread that asked
                reply.put(error)

    def _new_helper(self) -> _SympyHelper:
        with self.lock:
            if self.spawner is None:
                self.spawner = threading.Thread(target=self._spawn_loop, name="w2s-grader-spawner", daemon=True)
                self.spawner.start()
        # Run this file as a script, without its folder on sys.path (a project module there
        # must never shadow a standard one); the argument is our pid, for _die_with_parent.
        launcher = ("import runpy, sys; sys.path.pop(0); "
                    f"runpy.run_path({os.path.abspath(__file__)!r}, run_name='__sympy_helper__')")
        reply: queue.Queue = queue.Queue()
        self.spawn_requests.put(([sys.executable, "-u", "-c", launcher, str(os.getpid())], reply))
        process = reply.get()
        if isinstance(process, BaseException):
            raise GraderSetupError(f"cannot start the grader's sympy helper: {process}")
        helper = _SympyHelper(process)
        with self.lock:
            self.helpers.append(helper)
        return helper

    def check(self, pred: str, gold: str, timeout: float) -> bool | None:
        """The helper's verdict, or None when it ran out of time (it is then replaced)."""
        with self.slots:  # at most MAX_HELPERS helpers busy; other threads wait here
            helper = None
            while helper is None or not helper.alive():  # an idle helper may have died: start another
                try:
                    helper = self.idle.get_nowait()
                except queue.Empty:
                    helper = self._new_helper()
            verdict = helper.ask(pred, gold, timeout)
            if verdict is not None and helper.alive():
                self.idle.put(helper)
            else:
                with self.lock:
                    if helper in self.helpers:
                        self.helpers.remove(helper)
            return verdict

    def stop(self) -> None:
        with self.lock:
            while not self.idle.empty():
                self.idle.get_nowait()
            for helper in self.helpers:
                helper.kill()
            self.helpers.clear()


_pool = _HelperPool()
atexit.register(lambda: _pool.stop())


def _forget_parent_helpers() -> None:
    # A forked child must not talk to its parent's helpers (their pipes are shared) and has no
    # spawner thread: it gets a pool of its own.
    global _pool
    _pool = _HelperPool()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_parent_helpers)


_sympy_verdicts: dict[tuple[str, str], bool] = {}  # single dict reads/writes are atomic: thread-safe


def _sympy_equal(pred: str, gold: str, deadline: float) -> bool:
    """Ask a helper with the time left until `deadline`; out of time is False (and not cached)."""
    verdict = _sympy_verdicts.get((pred, gold))
    if verdict is not None:
        return verdict
    time_left = deadline - time.monotonic()
    if time_left <= 0:
        return False
    verdict = _pool.check(pred, gold, time_left)
    if verdict is None:
        return False
    if len(_sympy_verdicts) >= 1 << 16:
        _sympy_verdicts.clear()
    _sympy_verdicts[(pred, gold)] = verdict
    return verdict


# ---- what runs inside a helper process (imports sympy; the parent never does)

_WARM_UP = [
    (r"\frac{\sqrt{3}}{2} + x^{2} - \sin^2 y \cdot \cos(z)", r"2\pi r \times (a-b)^{n}"),
    (r"\log_{2}(8) + \ln x - e^{i\pi}", r"\sqrt[3]{4} \div 5! + |x|"),
    (r"a_1 = \frac{b}{c}", r"\tan\theta \geq \binom{5}{2}"),
    (r"1.5 \cdot 10^{-3}", r"\frac{3}{2000}"),
    (r"(t+1)^2", r"t^2 + 2t + 1"),
]


def _die_with_parent() -> None:
    """A helper stuck on a hostile input must not outlive a parent that was killed."""
    parent_pid = int(sys.argv[1])
    try:  # Linux: the kernel kills us when the parent goes, even mid C-level big-integer work
        import ctypes
        import signal
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:  # the parent died before the line above
        os._exit(0)

    def watch() -> None:  # elsewhere: notice it between bytecodes
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(0)
    threading.Thread(target=watch, daemon=True).start()


def _helper_main() -> None:
    _die_with_parent()
    try:
        import resource
        limit = 4 << 30  # a runaway big-integer computation fails with MemoryError, not the machine
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass
    sys.set_int_max_str_digits(100_000)
    try:
        # Import sympy and warm the parser (ANTLR builds its prediction tables on first use)
        # and the comparisons before saying ready: every check after that is faster.
        for pred, gold in _WARM_UP:
            _sympy_expressions_equal(pred, gold)
    except Exception as error:  # noqa: BLE001 - reported to the parent, which raises it
        print(f"setup error: {type(error).__name__}: {error}".replace("\n", " "), flush=True)
        return
    print("ready", flush=True)
    for line in sys.stdin:
        try:
            pred, gold = json.loads(line)
            verdict = _sympy_expressions_equal(pred, gold)
        except BaseException:  # noqa: BLE001 - any failure (parse error, MemoryError, recursion) is "not equal"
            verdict = False
        print("1" if verdict else "0", flush=True)


@lru_cache(maxsize=4096)
def _latex_to_sympy(latex: str):
    import sympy
    from sympy.parsing.latex import parse_latex

    latex = re.sub(r"(\d)\s*[eE]\s*([-+]?\d+)", r"\1\\times 10^{\2}", latex)  # 1.5e3, not 1.5*e*3
    expr = parse_latex(latex, strict=True)
    # The parser reads \pi, e and i as plain symbols; in an answer they are the constants.
    constants = {sympy.Symbol("pi"): sympy.pi, sympy.Symbol("e"): sympy.E, sympy.Symbol("i"): sympy.I}
    return expr.subs(constants)


def _sympy_expressions_equal(pred: str, gold: str) -> bool:
    import sympy

    a, b = _latex_to_sympy(pred), _latex_to_sympy(gold)
    if isinstance(a, sympy.MatrixBase) or isinstance(b, sympy.MatrixBase):
        return (isinstance(a, sympy.MatrixBase) and isinstance(b, sympy.MatrixBase) and a.shape == b.shape
                and all(_values_equal(x, y) for x, y in zip(a, b)))
    if isinstance(a, sympy.core.relational.Relational) or isinstance(b, sympy.core.relational.Relational):
        return _relations_equal(a, b)
    return _values_equal(a, b)


def _values_equal(a, b) -> bool:
    import sympy

    if a == b:
        return True
    if a.has(sympy.zoo, sympy.nan, sympy.oo) or b.has(sympy.zoo, sympy.nan, sympy.oo):
        return False  # infinities are equal only when identical (oo - oo is nan)
    if not (a.free_symbols or b.free_symbols):
        return _constants_equal(a, b)
    # Cheap and safe first: equal expressions agree at every point. With a decimal coefficient
    # (0.3333333x) agreeing to the decimal tolerance is all that can be asked.
    inexact = a.has(sympy.Float) or b.has(sympy.Float)
    agree = _agree_at_probe_points(a, b, NUMBER_REL_TOL if inexact else 1e-12)
    if agree is False or inexact:
        return bool(agree)
    difference = a - b
    return difference.expand() == 0 or sympy.simplify(difference) == 0


def _constants_equal(a, b) -> bool:
    """Exactly for rationals (1/2004! is not 1/2006!, however close), else to 50 digits."""
    import sympy

    a, b = a.doit(), b.doit()
    if a.is_Rational and b.is_Rational:
        return a == b
    a_value, b_value = sympy.N(a, 50), sympy.N(b, 50)
    if not all(v.is_number and v.is_finite for v in (a_value, b_value)):
        return False  # an unevaluated 1/0 only shows up here, as zoo
    # Closed forms equal to 40 digits are equal (nested radicals that simplify cannot match);
    # a side written as a decimal gets the decimal tolerance.
    inexact = a.has(sympy.Float) or b.has(sympy.Float)
    tolerance = NUMBER_REL_TOL if inexact else sympy.Float("1e-40")
    return bool(abs(a_value - b_value) <= tolerance * max(abs(a_value), abs(b_value)))


_PROBE_POINTS = ("37/11", "-5/7", "13/3")  # arbitrary, not special: no symmetry or root hits them by chance


def _values_at_probe_points(expr, symbols):
    import sympy

    for point in _PROBE_POINTS:
        value = sympy.N(expr.subs({s: sympy.Rational(point) + k for k, s in enumerate(symbols)}), 30)
        yield value if value.is_number and value.is_finite else None


def _agree_at_probe_points(a, b, rel_tol: float) -> bool | None:
    """Do a and b take the same values at the probe points? None if no point gives two finite values."""
    symbols = sorted(a.free_symbols | b.free_symbols, key=str)
    compared = False
    for a_value, b_value in zip(_values_at_probe_points(a, symbols), _values_at_probe_points(b, symbols)):
        if a_value is None or b_value is None:
            continue
        if abs(a_value - b_value) > rel_tol * max(abs(a_value), abs(b_value), 1):
            return False
        compared = True
    return True if compared else None


def _relations_equal(a, b) -> bool:
    """Equations/inequalities with the same solution set: x + 2y = 3 is 2y + x = 3 and 2x + 4y = 6."""
    import sympy
    from sympy.core import relational

    def canonical(rel):
        if isinstance(rel, (relational.StrictLessThan, relational.LessThan)):
            kind = ">" if isinstance(rel, relational.StrictLessThan) else ">="
            return kind, rel.rhs - rel.lhs
        if isinstance(rel, (relational.StrictGreaterThan, relational.GreaterThan)):
            kind = ">" if isinstance(rel, relational.StrictGreaterThan) else ">="
            return kind, rel.lhs - rel.rhs
        if isinstance(rel, relational.Relational):
            return type(rel).__name__, rel.lhs - rel.rhs
        return None, None

    (kind_a, side_a), (kind_b, side_b) = canonical(a), canonical(b)
    if kind_a is None or kind_a != kind_b:
        return False
    # Same solution set when one side is a constant multiple of the other: any nonzero constant
    # for (in)equations, a positive one for inequalities. A ratio that changes between probe
    # points is not constant: a cheap, safe rejection before simplify.
    symbols = sorted(side_a.free_symbols | side_b.free_symbols, key=str)
    ratios = [r for r in _values_at_probe_points(side_a / side_b, symbols) if r is not None]
    if ratios and any(abs(r - ratios[0]) > 1e-12 * max(abs(r), 1) for r in ratios):
        return False
    difference = side_a - side_b
    if difference.expand() == 0 or sympy.simplify(difference) == 0:
        return True
    ratio = sympy.cancel(side_a / side_b)
    if not ratio.is_number:
        ratio = sympy.simplify(ratio)
    if not ratio.is_number or ratio == 0 or ratio.has(sympy.zoo, sympy.nan, sympy.oo):
        return False
    return kind_a in ("Equality", "Unequality") or bool(ratio.is_positive)


# --------------------------------------------------------------------------- public API

@lru_cache(maxsize=1 << 16)
def _is_equiv_cached(pred: str, gold: str, timeout: float) -> bool:
    return _is_equiv_uncached(pred, gold, timeout)


def _is_equiv_uncached(pred: str, gold: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout  # for all the sympy work of this check together
    pred_norm, gold_norm = normalize(pred), normalize(gold)
    if not pred_norm or not gold_norm:
        return False
    if len(pred_norm) > MAX_ANSWER_CHARS or len(gold_norm) > MAX_ANSWER_CHARS:
        return pred_norm == gold_norm
    if _CHOICE.match(gold_norm):  # a multiple-choice gold: only the letters count
        prefix = _CHOICE_PREFIX.match(pred_norm)
        pred_letters = (prefix.group(1) or prefix.group(2)) if prefix else pred_norm
        return pred_letters == gold_norm
    return _equiv(pred_norm, gold_norm, deadline)


def is_equiv(pred: str | None, gold: str | None, *, timeout: float = DEFAULT_TIMEOUT) -> bool:
    """True if answer `pred` means the same as answer `gold`; never raises, never hangs.

    `timeout` (seconds) bounds all the sympy work of this check, however many parts a structure
    has; a check that runs out is False. String and number work needs no limit: it is linear in
    the answer's length, which is capped.
    Results are cached (functools.lru_cache is thread-safe), so repeated pairs are free.
    """
    if not pred or not gold:
        return False
    try:
        return _is_equiv_cached(pred, gold, float(timeout))
    except GraderSetupError:
        raise  # a broken installation must not silently mark every symbolic answer wrong
    except Exception:  # noqa: BLE001 - a grader bug must cost one verdict, not an evaluation run
        return False


def grade(response: str, gold: str, *, timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Is the final answer of `response` equal to `gold` (a bare answer or a solution with \\boxed{})?"""
    if not response or not gold:
        return False
    pred = extract_answer(response)
    gold_answer = extract_answer(gold, strict=True) if ("\\boxed" in gold or "\\fbox" in gold) else gold
    return is_equiv(pred, gold_answer, timeout=timeout)


def clear_caches() -> None:
    """Forget every cached verdict (benchmarks time cold runs with it; see also `stop_helpers`)."""
    _is_equiv_cached.cache_clear()
    _sympy_verdicts.clear()


def stop_helpers() -> None:
    """Stop the sympy helper processes (and so their parse caches); the next check starts fresh ones.

    Call it only while no check is running.
    """
    _pool.stop()


if __name__ == "__sympy_helper__":
    _helper_main()
