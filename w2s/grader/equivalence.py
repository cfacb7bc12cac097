"""Is one answer equal to another: `is_equiv(pred, gold)` on two answer strings, never raising, never hanging.

Both answers are normalized (normalization.py), then structures (tuples, intervals, sets, lists,
matrices, `\\pm`, labelled answers, relations) are split into parts with string work only and
compared part by part with the right rule (ordered or not); scalars are compared as exact strings,
then as plain numbers (no sympy, exact fractions), then by sympy in a helper process that can be
killed when a check runs out of time (sympy_check.py). The public `is_equiv` and `answer_groups` are
at the end.

Numeric tolerance, the whole policy (tests: the `tolerance` kind in bench/grader_cases.py):
1. Integers, fractions and closed forms (`40\\pi`, `\\sqrt2`) are exact: 1/2004! is not 1/2006!,
   and `1.0001` is not `1` (a decimal is taken at the digits it shows).
2. A decimal with at least MIN_SIGNIFICANT_DIGITS significant digits also stands for any value
   it rounds or truncates to: it matches when the difference is under one unit of its last
   digit. `125.663` is `40\\pi` (125.6637...) and `0.3333333` is 1/3; `0.99999` and `1.00001`
   are not 1 (a whole unit off); `3.14` is not `\\pi` and `0.333` is not 1/3 (too few digits to
   tell a rounded value from a different one).
3. A percent (`25\\%`, `25 percent`, `25 pct`) matches its number (`25`, the question asked in
   percent) and its fraction (`0.25`, `\\frac14`); without a percent sign on either side,
   `25` and `0.25` differ.

Several answers (tests: `lists`, `collections`, `number_formats`): a set is order-free; a bare list
is order-free too (all the roots, in any order) unless it is three or more numbers in no increasing
order on both sides (`10, 4, -2`: answers in a given order). `1,2` is always a list, never 1.2; a
decimal comma is read only with two digits after it against a decimal gold (`2,74` is 2.74).
"""
import re
import time
from fractions import Fraction
from functools import lru_cache
from typing import NamedTuple

from w2s.grader.normalization import CHOICE, PROSE_WORD, as_text, normalize
from w2s.grader.sympy_check import GraderSetupError, clear_verdicts, sympy_equal

DEFAULT_TIMEOUT = 3.0  # seconds of sympy work for one check; a check that runs out is False
MAX_SYMPY_CHARS = 400  # longer expressions are compared as strings only: no real answer is this long
MAX_ANSWER_CHARS = 2000  # longer answers skip structure matching (quadratic in the worst case)
MAX_ITEMS = 50  # longer lists are matched as sorted strings, not item by item

_CHOICE_PREFIX = re.compile(r"^\(([A-E])\)|^([A-E])[.)]\s")  # "(C) 12" or "C. 12": the letter is the answer
_VARIABLE_PREFIX = re.compile(r"^(?:[a-zA-Z]|\\[a-z]+)(?:_\{?[a-zA-Z0-9]+\}?)?'?(?:\([a-z]\))?\s*(?:=|\\in)\s*(?=\S)")

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
    bracketed_matrix = re.fullmatch(r"[\[(]\s*(\\begin\{.*\\end\{[a-zA-Z]+\})\s*[\])]", s, re.S)
    rows = _matrix_rows(bracketed_matrix.group(1) if bracketed_matrix else s)  # \left[\begin{array}..\right]
    if rows is not None:
        return ("matrix", rows)
    unions = _split_top_level(s, "\\cup")
    if len(unions) > 1:
        parts = [_structure(part) for part in unions]
        if all(part[0] == "set" for part in parts):  # `\{1,3\} \cup \{2,4\}` is the set `\{1,2,3,4\}`
            return ("set", [item for part in parts for item in part[1]])
        return ("union", unions)
    if s.startswith("\\{") and s.endswith("\\}"):
        inner = s[2:-2].strip()
        return ("set", _split_top_level(inner, ",") if inner else [])
    if len(s) >= 2 and s[0] == "{" and s[-1] == "}" and _encloses(s):  # `{1, 2}`: a set in bare braces
        inner = s[1:-1].strip()
        return ("set", _split_top_level(inner, ",")) if len(_split_top_level(inner, ",")) > 1 else _structure(inner)
    if len(s) >= 2 and s[0] in "([" and s[-1] in ")]" and _encloses(s):
        items = _split_top_level(s[1:-1], ",")
        if len(items) > 1:
            return ("tuple", s[0], s[-1], items)
    for separator in (";", ","):  # `(1,2); (3,4)` or `1, 2`
        items = _split_top_level(s, separator)
        if len(items) > 1:
            return ("list", [item for item in items if item])
    expanded = _expand_pm(s)
    if expanded is not None:
        return ("list", expanded)
    return ("scalar", s)


def _vector_items(structure) -> list[str] | None:
    """A row/column matrix, a tuple or a bracketed list, as an ordered list of entries."""
    if structure[0] == "matrix" and (len(structure[1]) == 1 or all(len(r) == 1 for r in structure[1])):
        return [cell for row in structure[1] for cell in row]
    if structure[0] == "tuple" and structure[1:3] in (("(", ")"), ("[", "]")):
        return structure[3]
    if structure[0] == "list":
        return structure[1]
    return None


def _one_value(items: list[str]) -> bool:
    """Do the items all say one thing (`6, 6`; `\\frac12, 0.5`)? Plain numbers only: no sympy here."""
    if len(set(items)) == 1:
        return True
    numbers = [_as_number(item) for item in items]
    return all(numbers) and all(_numbers_equal(number, numbers[0]) for number in numbers[1:])


def _ordered_list(items: list[str]) -> bool:
    """Is a bare list of numbers one whose order means something (`10, 4, -2`)?

    All the solutions of an equation are written in any order, most often increasing (`-2, 1`),
    so lists are matched order-free; but three or more numbers in no increasing order are
    answers in a given order (parts a, b, c), as MATH's own checker reads them.
    """
    numbers = [_as_number(item) for item in items]
    if len(items) < 3 or any(number is None for number in numbers):
        return False
    values = [number.value for number in numbers]
    return values != sorted(values)


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


# --------------------------------------------------------------------------- labels and relations

_FUNCTION_NAMES = "fgh"  # `f(x)`, not f times x: the conventional names of functions
_LABEL_COMMANDS = re.compile(r"\\(?!(?:sin|cos|tan|cot|sec|csc|log|ln|exp|sqrt)(?![a-zA-Z]))[a-zA-Z]+")


def _is_label(s: str) -> bool:
    """A name rather than a value: `x`, `AB`, `(p,q)`, `V_1:V_2`, `\\frac{NO}{BO}`, `f(x)`, `\\angle A`."""
    if re.fullmatch(r"[a-zA-Z](?:\^\{-1\})?\(\s*-?[\w./\\{} ]+\)", s):
        return True  # a function at a point: `f(3)`, `g(-1)`, `f^{-1}(2)`
    bare = re.sub(r"_\{[^{}]*\}|_\w|\^\{-1\}|'", "", s)
    bare = _LABEL_COMMANDS.sub("", bare)
    return bool(re.fullmatch(r"[a-zA-Z(){}\[\],:\s]*[a-zA-Z][a-zA-Z(){}\[\],:\s]*", bare))


def _is_function_label(s: str) -> bool:
    return s == "y" or bool(re.fullmatch(r"[a-zA-Z](?:\^\{-1\})?\([a-z]\)", s))


def _value_of(s: str) -> tuple[str | None, str]:
    """Split `label = value` into (label, value); (None, s) when s is no such answer.

    A chain keeps its last side (`x = 5+5+1 = 11` is 11, `\\frac{272}{5} = 54.4` is 54.4), and
    so does a computation with no letters on the left. An equation between expressions
    (`2x + 4y = 6`) is not a label and value: it stays whole.
    """
    sides = _split_top_level(s, "=")
    if len(sides) < 2 or not all(sides) or len(_split_top_level(s, ",")) > 1 or len(_split_top_level(s, ";")) > 1:
        return None, s
    left = sides[0]
    if len(sides) == 2 and _is_label(sides[1]) and not re.search(r"[a-zA-Z]", re.sub(r"\\[a-zA-Z]+", "", left)):
        return sides[1], left  # `5 = x`
    if len(sides) > 2 or not re.search(r"[a-zA-Z]", re.sub(r"\\[a-zA-Z]+", "", left)) or _is_label(left):
        return left, sides[-1]
    return None, s


def _drop_labels(pred: str, gold: str) -> tuple[str, str]:
    r"""`x \in [1, 4]` is `[1, 4]`; `(p,q)=(3,2)` is `(3,2)`; `x = 5` is `5` unless both are equations.

    Two equations keep their labels unless they name the same thing: `f(x) = 2x+3` and
    `y = 2x+3` are one function, but `x = 3` and `y = 3` are different lines.
    """
    pred, gold = _strip_variable(pred), _strip_variable(gold)
    (pred_label, pred_value), (gold_label, gold_value) = _value_of(pred), _value_of(gold)
    # `a + b = 5` answers "find a + b" (gold 5). With one unknown (`2x = 6`) it is an equation still
    # to solve, and a gold that is an equation needs one.
    sides = _split_top_level(pred_value, "=")
    if ("=" not in gold and len(sides) == 2 and not re.search(r"[a-zA-Z]", re.sub(r"\\[a-zA-Z]+", "", sides[1]))
            and len(set(re.findall(r"[a-zA-Z]", re.sub(r"\\[a-zA-Z]+", "", sides[0])))) >= 2):
        return sides[1], gold_value
    if "=" not in pred_value and "=" not in gold_value:
        if pred_label is None or gold_label is None:
            return pred_value, gold_value
        same_name = pred_label.replace(" ", "") == gold_label.replace(" ", "")
        if same_name or (_is_function_label(pred_label) and _is_function_label(gold_label)):
            return pred_value, gold_value
    return pred, gold


def _strip_variable(s: str) -> str:
    return _VARIABLE_PREFIX.sub("", s).strip() if "\\in" in s[:20] else s


def _equiv(pred: str, gold: str, deadline: float) -> bool:
    """Equivalence of two normalized answers, structure first, then scalars."""
    if pred.replace(" ", "") == gold.replace(" ", ""):
        return True
    pred, gold = _drop_labels(pred, gold)
    pred_structure, gold_structure = _structure(pred), _structure(gold)
    as_intervals = _inequalities_as_intervals(pred, gold, pred_structure, gold_structure)
    if as_intervals is not None:
        return _equiv(*as_intervals, deadline)
    # Each step decides (True or False) when the two shapes are its case, and passes (None) when not.
    for step in (_same_shape_equiv, _several_answers_equiv, _decimal_comma_equiv, _one_value_equiv,
                 _named_values_equiv):
        verdict = step(pred, gold, pred_structure, gold_structure, deadline)
        if verdict is not None:
            return verdict
    return False  # different shapes: a tuple is not a list, an interval is not a number


def _inequalities_as_intervals(pred: str, gold: str, pred_structure, gold_structure) -> tuple[str, str] | None:
    """The pair to compare instead when inequalities meet intervals, else None."""
    pred_kind, gold_kind = pred_structure[0], gold_structure[0]
    pred_interval, gold_interval = _inequality_as_interval(pred), _inequality_as_interval(gold)
    if pred_interval and gold_interval and (pred_interval, gold_interval) != (pred, gold):
        return pred_interval, gold_interval  # `1 < x < 3` is `3 > x > 1`
    if pred_kind == "scalar" and gold_kind in ("tuple", "union") and pred_interval:
        return pred_interval, gold  # `x < 3` answers `(-\infty, 3)`
    if gold_kind == "scalar" and pred_kind in ("tuple", "union") and gold_interval:
        return pred, gold_interval
    if pred_kind == "list" and gold_kind in ("union", "tuple") and _inequalities_as_union(pred_structure[1]):
        return _inequalities_as_union(pred_structure[1]), gold  # `x < -2, x > 3`
    if gold_kind == "list" and pred_kind in ("union", "tuple") and _inequalities_as_union(gold_structure[1]):
        return pred, _inequalities_as_union(gold_structure[1])
    return None


def _same_shape_equiv(pred: str, gold: str, pred_structure, gold_structure, deadline: float) -> bool | None:
    """Two scalars, two matrices (or a vector against a row or column), two tuples, two unions."""
    pred_kind, gold_kind = pred_structure[0], gold_structure[0]
    if pred_kind == gold_kind == "scalar":
        return _scalar_equiv(pred, gold, deadline)
    pred_vector, gold_vector = _vector_items(pred_structure), _vector_items(gold_structure)
    if pred_vector is not None and gold_vector is not None and [pred_kind, gold_kind].count("matrix") == 1:
        return _all_pairwise(pred_vector, gold_vector, deadline)  # a row or column against a list
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
    return None


def _several_answers_equiv(pred: str, gold: str, pred_structure, gold_structure, deadline: float) -> bool | None:
    r"""Several answers ("1, -2", "\{1, -2\}", "x = \pm 3", "AB=4, CD=5"): order-free, unless both lists are ordered.

    Passes (None) on two collections that differ, as on any other shapes."""
    pred_kind, gold_kind = pred_structure[0], gold_structure[0]
    if not {pred_kind, gold_kind} <= {"set", "list"}:
        return None
    pred_items = [_value_of(_strip_variable(p))[1] for p in pred_structure[1]]
    gold_items = [_value_of(_strip_variable(g))[1] for g in gold_structure[1]]
    if pred_kind == "set" or gold_kind == "set":
        pred_items, gold_items = list(dict.fromkeys(pred_items)), list(dict.fromkeys(gold_items))
    elif _ordered_list(pred_items) and _ordered_list(gold_items):
        return _all_pairwise(pred_items, gold_items, deadline)
    return True if _same_multiset(pred_items, gold_items, deadline) else None


def _decimal_comma_equiv(pred: str, gold: str, pred_structure, gold_structure, deadline: float) -> bool | None:
    r"""`2,74` against `2.74`: a decimal comma (prices are written so).

    With one digit after it, `1,2` is a list of two, as in MATH (`\boxed{0,5}` for two roots), never 1.2."""
    pred_kind, gold_kind = pred_structure[0], gold_structure[0]
    if "scalar" not in (pred_kind, gold_kind):
        return None
    decimal_comma = re.fullmatch(r"(-?\d+),(\d\d)", pred if pred_kind == "list" else gold)
    scalar = pred if pred_kind == "scalar" else gold
    if decimal_comma and re.fullmatch(r"-?\d*\.\d+", scalar):
        return _scalar_equiv(".".join(decimal_comma.groups()), scalar, deadline)
    return None


def _one_value_equiv(pred: str, gold: str, pred_structure, gold_structure, deadline: float) -> bool | None:
    r"""A collection of exactly one answer (`\{6\}`, `\{(1,2)\}`, `\frac12 or 0.5`) is that answer."""
    for one, other in ((pred_structure, gold), (gold_structure, pred)):
        if one[0] in ("set", "list") and _one_value(one[1]) and _structure(other)[0] not in ("set", "list"):
            item = one[1][0]
            return _equiv(item, other, deadline) if one is pred_structure else _equiv(other, item, deadline)
    return None


def _named_values_equiv(pred: str, gold: str, pred_structure, gold_structure, deadline: float) -> bool | None:
    """`x = 2, y = 3` for the ordered pair `(2, 3)`: the values in the order of their names."""
    for one, other in ((pred_structure, gold_structure), (gold_structure, pred_structure)):
        if one[0] == "list" and other[0] == "tuple" and other[1:3] == ("(", ")"):
            named = [re.fullmatch(r"([a-zA-Z]|\\[a-zA-Z]+)\s*=\s*(.+)", item) for item in one[1]]
            if all(named) and len({m.group(1) for m in named}) == len(named):
                values = [m.group(2) for m in sorted(named, key=lambda m: m.group(1).lstrip("\\"))]
                return (_all_pairwise(values, other[3], deadline) if one is pred_structure
                        else _all_pairwise(other[3], values, deadline))
    return None


_LESS = r"(<|\\leq)"
_MORE = r"(>|\\geq)"
_SIDE = r"[^<>=]+?"
_INEQUALITY_PATTERNS = [  # (pattern, how its groups become an interval)
    (re.compile(rf"^(?P<low>{_SIDE})\s*{_LESS}\s*[a-zA-Z]\s*{_LESS}\s*(?P<high>[^<>=]+)$"),
     lambda m: ("(" if m.group(2) == "<" else "[") + f"{m['low']}, {m['high']}" + (")" if m.group(3) == "<" else "]")),
    (re.compile(rf"^(?P<high>{_SIDE})\s*{_MORE}\s*[a-zA-Z]\s*{_MORE}\s*(?P<low>[^<>=]+)$"),
     lambda m: ("(" if m.group(3) == ">" else "[") + f"{m['low']}, {m['high']}" + (")" if m.group(2) == ">" else "]")),
    (re.compile(rf"^[a-zA-Z]\s*{_LESS}\s*(?P<high>[^<>=]+)$"),
     lambda m: f"(-\\infty, {m['high']}" + (")" if m.group(1) == "<" else "]")),
    (re.compile(rf"^[a-zA-Z]\s*{_MORE}\s*(?P<low>[^<>=]+)$"),
     lambda m: ("(" if m.group(1) == ">" else "[") + f"{m['low']}, \\infty)"),
    (re.compile(rf"^(?P<low>{_SIDE})\s*{_LESS}\s*[a-zA-Z]$"),  # `3 < x`
     lambda m: ("(" if m.group(2) == "<" else "[") + f"{m['low']}, \\infty)"),
    (re.compile(rf"^(?P<high>{_SIDE})\s*{_MORE}\s*[a-zA-Z]$"),  # `3 \geq x`
     lambda m: f"(-\\infty, {m['high']}" + (")" if m.group(2) == ">" else "]")),
    (re.compile(r"^[a-zA-Z]\s*\\neq\s*(?P<point>[^<>=]+)$"),  # `x \neq 2`
     lambda m: f"(-\\infty, {m['point']}) \\cup ({m['point']}, \\infty)"),
]


def _inequality_as_interval(s: str) -> str | None:
    """`x < 3` -> `(-\\infty, 3)`, `x \\geq 1` -> `[1, \\infty)`, `-2 < x \\leq 5` -> `(-2, 5]`."""
    for pattern, to_interval in _INEQUALITY_PATTERNS:
        match = pattern.match(s.strip())
        if match:
            return to_interval(match)
    return None


def _inequalities_as_union(items: list[str]) -> str | None:
    """`x < -2, x > 3` (normalize turned "or" into a comma) -> `(-\\infty, -2) \\cup (3, \\infty)`."""
    intervals = [_inequality_as_interval(item) for item in items]
    return " \\cup ".join(intervals) if all(intervals) else None


# --------------------------------------------------------------------------- scalars
#
# The numeric tolerance policy is in the module docstring; `Number.tolerance` and `_percent_equal` apply it.

MIN_SIGNIFICANT_DIGITS = 5

_NUMBER = re.compile(
    r"(?P<sign>[-+]?)\s*(?:"
    r"(?P<mixed>(?P<whole>\d+)\s*\\frac\{\s*(?P<mnum>\d+)\s*\}\{\s*(?P<mden>\d+)\s*\})|"
    r"(?P<plainmixed>(?P<pwhole>\d+)\s+(?P<pnum>\d+)\s*/\s*(?P<pden>\d+))|"  # 1 1/2
    r"(?P<frac>\\frac\{\s*(?P<num>\d+)\s*\}\{\s*(?P<den>\d+)\s*\})|"
    r"(?P<ratio>(?P<rnum>\d+)\s*/\s*(?P<rden>\d+))|"
    r"(?P<repeating>(?P<int>\d*)\.(?P<fixed>\d*)\\overline\{(?P<period>\d+)\})|"
    r"(?P<decimal>\d+(?:\.\d*)?|\.\d+)"
    r"(?:\s*(?:[eE]|\\times\s*10\s*\^|\\cdot\s*10\s*\^)\s*\{?\s*(?P<exp>[-+]?\d{1,3})\s*\}?)?"  # 1.5e3, 2 \times 10^{4}
    r")"
)


class Number(NamedTuple):
    value: Fraction
    unit: Fraction | None  # the unit of the last written digit of a decimal; None when exact

    @property
    def tolerance(self) -> Fraction:
        """How far a value may be from this one and still be what it stands for (rule 2 above)."""
        if self.unit is None or not self.value:
            return Fraction(0)
        digits = len(str(int(abs(self.value) / self.unit)))  # significant digits as written
        return self.unit if digits >= MIN_SIGNIFICANT_DIGITS else Fraction(0)


def _as_number(s: str) -> Number | None:
    """A plain number as an exact Fraction and, for a decimal, the unit of its last digit.

    Integers, decimals, a/b, \\frac{a}{b}, mixed numbers 2\\frac{1}{2} and 1 1/2, repeating
    decimals 0.\\overline{3}, 1.5e3 and 1.5 \\times 10^{3}; anything else is None.
    Exponents are limited to 3 digits so that this never builds a giant integer.
    """
    match = _NUMBER.fullmatch(s.strip())
    if not match or len(s) > 200:
        return None
    sign = -1 if match.group("sign") == "-" else 1
    for kind, whole, num, den in (("mixed", "whole", "mnum", "mden"), ("plainmixed", "pwhole", "pnum", "pden"),
                                  ("frac", None, "num", "den"), ("ratio", None, "rnum", "rden")):
        if match.group(kind):
            if int(match.group(den)) == 0 or (whole and int(match.group(num)) >= int(match.group(den))):
                return None  # 1/0, or a "mixed number" 7 9/5 that no one writes
            integer = int(match.group(whole)) if whole else 0
            return Number(sign * (integer + Fraction(int(match.group(num)), int(match.group(den)))), None)
    if match.group("repeating"):  # 0.1\overline{6} = 1/6
        fixed, period = match.group("fixed"), match.group("period")
        repeating = Fraction(int(fixed or "0")) + Fraction(int(period), 10 ** len(period) - 1)
        return Number(sign * (int(match.group("int") or "0") + repeating / 10 ** len(fixed)), None)
    decimal = match.group("decimal")
    exponent = Fraction(10) ** int(match.group("exp") or 0)
    places = len(decimal.split(".")[1]) if "." in decimal else 0
    inexact = "." in decimal or bool(match.group("exp"))
    return Number(sign * Fraction(decimal) * exponent, Fraction(1, 10 ** places) * exponent if inexact else None)


def _numbers_equal(a: Number, b: Number) -> bool:
    return a.value == b.value or abs(a.value - b.value) < max(a.tolerance, b.tolerance)


_PERCENT = re.compile(r"\\?%|\b(?:percent(?:age)?|pct)\b", re.I)


def _percent_equal(pred: str, gold: str, pred_norm: str, gold_norm: str) -> bool:
    """Rule 3: a percent on one side only also matches its fraction (`25\\%` is 0.25)."""
    pred_percent, gold_percent = bool(_PERCENT.search(pred)), bool(_PERCENT.search(gold))
    if pred_percent == gold_percent:
        return False
    pred_number, gold_number = _as_number(pred_norm), _as_number(gold_norm)
    if pred_number is None or gold_number is None:
        return False
    if pred_percent:
        pred_number = Number(pred_number.value / 100, pred_number.unit and pred_number.unit / 100)
    else:
        gold_number = Number(gold_number.value / 100, gold_number.unit and gold_number.unit / 100)
    return _numbers_equal(pred_number, gold_number)


def _is_text(s: str) -> bool:
    """Words rather than math (`Evelyn`, `\\text{odd}`): sympy would read `ab` as a*b."""
    return bool(PROSE_WORD.search(re.sub(r"\\[a-zA-Z]+", " ", s)))


def _explicit_products(s: str) -> str:
    """`x(2-x)`, `i(2-i)` and `2^6 3^5` are products; sympy's parser would read a call or one power.

    Only `f`, `g`, `h` and names the answer defines (`p(x) = ...`) are functions.
    """
    defined = set(re.findall(r"(?<![a-zA-Z\\])([a-zA-Z])\([a-z]\)\s*=", s)) | set(_FUNCTION_NAMES)
    s = re.sub(r"(?<![a-zA-Z\\])([a-zA-Z])\s*\(", lambda m: m.group(0) if m.group(1) in defined
               else f"{m.group(1)} \\cdot (", s)
    return re.sub(r"(\^\s*(?:\{[^{}]*\}|\d))\s+(?=\d)", r"\1 \\cdot ", s)


def _scalar_equiv(pred: str, gold: str, deadline: float) -> bool:
    if pred.replace(" ", "") == gold.replace(" ", ""):
        return True
    pred_number, gold_number = _as_number(pred), _as_number(gold)
    if pred_number is not None and gold_number is not None:
        return _numbers_equal(pred_number, gold_number)  # plain numbers never reach sympy
    pred_base, gold_base = (re.fullmatch(r"([0-9A-Z]+)_\{?(\d+)\}?", side) for side in (pred, gold))
    if pred_base and gold_base:  # `2A_{16}` is `2A_16`
        return pred_base.groups() == gold_base.groups()
    if pred_base or gold_base:  # `1011_2` against `1011`: the base left off one side, the same digits
        return (pred_base or gold_base).group(1) == (gold if pred_base else pred)
    if _is_text(pred) or _is_text(gold):
        return pred.lower().replace(" ", "") == gold.lower().replace(" ", "")
    if CHOICE.match(pred) or CHOICE.match(gold):
        return False  # a choice letter only equals the same letter
    if len(pred) > MAX_SYMPY_CHARS or len(gold) > MAX_SYMPY_CHARS:
        return False
    decimal = pred_number or gold_number  # a decimal against a closed form: rule 2 of the policy
    tolerance = decimal.tolerance if decimal else Fraction(0)
    return sympy_equal(_explicit_products(pred), _explicit_products(gold), deadline, tolerance)


# --------------------------------------------------------------------------- public API

@lru_cache(maxsize=1 << 16)
def _is_equiv_cached(pred: str, gold: str, timeout: float) -> bool:
    return _is_equiv_uncached(pred, gold, timeout)


_ONE_CHOICE = re.compile(r"\(?([A-Ea-e])\)?[.:]?")
_CHOICE_PREFIX_ANY_CASE = re.compile(r"^\(([A-Ea-e])\)\s|^([A-Ea-e])[.)]\s")  # "(b) 12": the letter is the answer


def _choice_letter(norm: str) -> str | None:
    """The letter of a one-letter choice in any case and wrapping (normalized: `B`, `(b)`, `b)`, `c.`), as a capital."""
    match = _ONE_CHOICE.fullmatch(norm) or _CHOICE_PREFIX_ANY_CASE.match(norm)
    return next(g for g in match.groups() if g).upper() if match else None


def _is_equiv_uncached(pred: str, gold: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout  # for all the sympy work of this check together
    pred_norm, gold_norm = normalize(pred), normalize(gold)
    if not pred_norm or not gold_norm:
        return False
    if len(pred_norm) > MAX_ANSWER_CHARS or len(gold_norm) > MAX_ANSWER_CHARS:
        return pred_norm == gold_norm
    gold_letter, pred_letter = _choice_letter(gold_norm), _choice_letter(pred_norm)
    if gold_letter and pred_letter and (gold_letter in gold_norm or pred_letter in pred_norm or
                                        "(" in gold_norm + pred_norm or ")" in gold_norm + pred_norm):
        return gold_letter == pred_letter  # `b` and `(B)` are one choice; two bare lowercase letters are variables
    if CHOICE.match(gold_norm):  # a multiple-choice gold: only the letters count
        prefix = _CHOICE_PREFIX.match(pred_norm)
        pred_letters = (prefix.group(1) or prefix.group(2)) if prefix else pred_norm
        return pred_letters == gold_norm
    gold_prefix = _CHOICE_PREFIX.match(gold_norm)
    if gold_prefix:  # gold `(A) 5`: answered by its letter or by its value
        pred_prefix = _CHOICE_PREFIX.match(pred_norm)
        if pred_prefix or CHOICE.match(pred_norm):
            pred_letter = (pred_prefix.group(1) or pred_prefix.group(2)) if pred_prefix else pred_norm
            return pred_letter == (gold_prefix.group(1) or gold_prefix.group(2))
        gold_norm = gold_norm[gold_prefix.end():].strip() or gold_norm
    return _equiv(pred_norm, gold_norm, deadline) or _percent_equal(pred, gold, pred_norm, gold_norm)


def is_equiv(pred: str | None, gold: str | None, *, timeout: float = DEFAULT_TIMEOUT) -> bool:
    """True if answer `pred` means the same as answer `gold`; never raises, never hangs.

    `timeout` (seconds) bounds all the sympy work of this check, however many parts a structure
    has; a check that runs out is False. String and number work needs no limit: it is linear in
    the answer's length, which is capped.
    Results are cached (functools.lru_cache is thread-safe), so repeated pairs are free.
    A number given for either (a gold of 0 read from JSON) is taken as its text.
    """
    pred, gold = as_text(pred), as_text(gold)
    if not pred or not gold:
        return False
    try:
        return _is_equiv_cached(pred, gold, float(timeout))
    except GraderSetupError:
        raise  # a broken installation must not silently mark every symbolic answer wrong
    except Exception:  # noqa: BLE001 - a grader bug must cost one verdict, not an evaluation run
        return False


def clear_caches() -> None:
    """Forget every cached verdict (benchmarks time cold runs with it; see also `stop_helpers`)."""
    _is_equiv_cached.cache_clear()
    clear_verdicts()


def answer_groups(answers: list[str | None]) -> list[int | None]:
    """Each answer's group of equivalent answers, numbered in order of first appearance (None: no answer,
    no group). An answer joins the first group whose first answer it equals (is_equiv, that first answer
    as gold), so 1/2 and 0.5 group together. Groups form in order: the first k answers' groups are the
    prefix of these. Majority votes, re-ranking and confidence pairs all group through this."""
    firsts: list[str] = []
    groups: list[int | None] = []
    for answer in answers:
        if answer is None:
            groups.append(None)
            continue
        for g, first in enumerate(firsts):
            if answer == first or is_equiv(answer, first):
                groups.append(g)
                break
        else:
            firsts.append(answer)
            groups.append(len(firsts) - 1)
    return groups
