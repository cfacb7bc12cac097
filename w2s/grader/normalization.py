"""Answer clean-up: an answer string to a canonical string, and the patterns the modules above share.

Plain string work, no sympy, no imports from the rest of the grader: the bottom of the package.

1. `normalize`: formatting that never changes the value goes (`$`, `\\left`, `\\dfrac`, units, `\\%`,
   choice letters sorted...), spellings of one thing become one (`\\geq`, `inf`, `\\mathbb{R}`, `sqrt(3)`).
2. Shared with extraction and equivalence: `braced_group`, `PROSE_WORD`, `CHOICE`, `as_text`.
"""
import re

# --------------------------------------------------------------------------- shared with the modules above

PROSE_WORD = re.compile(r"(?<![\\a-zA-Z])[a-zA-Z]{3,}")  # a word of three letters or more, not a `\command`
CHOICE = re.compile(r"^\(?([A-E](?:\)?\s*,?\s*\(?[A-E])*)\)?[.:]?$")  # (C), B., multi-answer ABD or (A), (C)


def braced_group(text: str, start: int) -> tuple[str, int] | None:
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


def as_text(value: str | int | float | None) -> str | None:
    """An int or float answer (`0`, `2.5`, a gold read from JSON) as its text; anything else as it is."""
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


# --------------------------------------------------------------------------- normalization

_UNIT_WORDS = (
    "units?|square units|sq units|cm|centimeters?|mm|millimeters?|meters?|km|kilometers?|inch(?:es)?|"
    "feet|foot|ft|yards?|miles?|mph|grams?|kg|kilograms?|pounds?|lbs?|ounces?|oz|liters?|ml|"
    "seconds?|sec|minutes?|min|hours?|hrs?|days?|weeks?|months?|years?|degrees?|radians?|"
    "dollars?|cents?|percent(?:age)?|pct|people|students|cups?|pages|points|ways|mm\\^2|cm\\^2|m\\^2|"
    "square (?:feet|inches|meters|centimeters|units)|cubic (?:feet|inches|meters|centimeters|units)"
)
_TRAILING_UNIT = re.compile(rf"(?<=[\d}}\s])\s*(?:{_UNIT_WORDS})(?:\s*\^\s*\{{?\d\}}?)?\s*$", re.I)
_TEXT_NAMES = "text|textbf|textit|textnormal|textrm|textsf|texttt|textup|mathrm|mathbf|mathit|mathsf|mathtt|mbox"
_TEXT_COMMANDS = re.compile(rf"\\(?:{_TEXT_NAMES}|operatorname|boldsymbol)\s*\{{")
# Commands JSON-escaped twice arrive as `\\frac`; a matrix row break `\\` is never followed by a command name.
_DOUBLED_BACKSLASH = re.compile(
    r"(?<!\\)\\\\(?=(?:[dtc]?frac|sqrt|pi|cdot|times|div|pm|mp|infty|left|right|text\w*|math\w+|boxed|begin|end|"
    r"[lg]eq?|neq?|[lg]t|circ|sin|cos|tan|cot|sec|csc|log|ln|exp|alpha|beta|gamma|theta|cup|cap|emptyset|"
    r"varnothing|binom|dbinom|overline|angle|approx|in)(?![a-zA-Z]))")
_RELATIONS = [  # spellings of one relation, to the one sympy reads
    (r">=|≥|\\geqslant|\\geq?(?![a-zA-Z])", r"\\geq "), (r"<=|≤|\\leqslant|\\leq?(?![a-zA-Z])", r"\\leq "),
    (r"!=|≠|\\neq?(?![a-zA-Z])", r"\\neq "), (r"\\gt(?![a-zA-Z])", ">"), (r"\\lt(?![a-zA-Z])", "<"),
]
_NUMBER_WORDS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
                 "sixteen seventeen eighteen nineteen twenty").split()
_MAGNITUDES = r"(?:hundred|thousand|million|billion|trillion)\b"  # words that are part of a value
# − × · ÷ √ π ∞ ∪ ∩ ² ³ become their LaTeX, and € £ ¥ are dropped
_UNICODE_MATH = [("\u2212", "-"), ("\u00d7", "\\times "), ("\u00b7", "\\cdot "), ("\u00f7", "\\div "),
                 ("\u221a", "\\sqrt"), ("\u03c0", "\\pi "), ("\u221e", "\\infty "),
                 ("\u222a", "\\cup "), ("\u2229", "\\cap "), ("\u00b2", "^2"), ("\u00b3", "^3"),
                 ("\u20ac", ""), ("\u00a3", ""), ("\u00a5", "")]
_DEGREES = r"\s*\^\s*\{\s*\\circ\s*\}|\s*\^\s*\\circ|\\circ|\\degree|°"


def _unwrap_text_commands(s: str) -> str:
    """`\\text{cm}` -> ` cm `: the words stay (units are then removed), the command goes."""
    while True:
        match = _TEXT_COMMANDS.search(s)
        if not match:
            return s
        group = braced_group(s, match.end() - 1)
        if group is None:
            return s[:match.start()] + s[match.end():]
        inner, end = group
        s = s[:match.start()] + f" {inner} " + s[end:]


def _separators(s: str) -> str:
    """`1,000` is a thousand and `1000,99` / `0,111` are decimal commas: the digit grouping decides.

    `12,5`, `0,1` and `2,74` fit neither and stay a list of two (`\\boxed{0,1}` for two roots is
    common); the grader reads two digits after the comma (`2,74`) as a decimal only against a gold
    that is itself a decimal number, and one digit (`1,2`) never. `32, 349` (a space) is a list.
    """
    if re.fullmatch(r"-?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?|-?[1-9]\d{0,2}(?: \d{3})+(?:\.\d+)?", s):
        return s.replace(",", "").replace(" ", "")  # thousands separators (`32, 349` is a list of two)
    if re.fullmatch(r"-?0,\d{3,}|-?\d{4,},\d+|-?\d+,\d{4,}", s):
        return s.replace(",", ".")  # a decimal comma: no thousands grouping reads this way
    return s


def normalize(answer: str) -> str:
    """A canonical string for an answer: formatting that never changes the value is removed.

    Each step works on what the one before left, so the order matters: `\\text{cm}` is unwrapped
    before units are dropped, `sqrt(2)` is LaTeX before unbraced arguments are braced."""
    s = _plain_latex(answer.strip())
    s = _drop_text_remarks(s)
    s = _drop_answer_wording(s)
    s = _one_spelling_each(s)
    s = _plain_text_math_as_latex(s)
    s = _brace_arguments(s)
    s = _bare_value(s)
    return _canonical_value(s)


def _plain_latex(s: str) -> str:
    r"""Doubled backslashes, Unicode symbols, math delimiters, `$` and `%`, spacing and sizing commands go."""
    s = _DOUBLED_BACKSLASH.sub(r"\\", s)
    for symbol, latex in _UNICODE_MATH:
        s = s.replace(symbol, latex)
    s = re.sub(r",\\!\s*|\{,\}\s*", ",", s)  # `11,\! 111`: a thousands comma, however spaced
    s = re.sub(r"\\\$|\\%|%|\$|\\\(|\\\)|\\\[|\\\]", "", s)  # math delimiters, dollars, percent
    s = s.replace("\\displaystyle", "").replace("\\!", "").replace("{,}", "").replace("\\,", " ")
    s = re.sub(r"(?<!\\)\\[;: ]|\\q?quad|~", " ", s)
    s = re.sub(r"\\(?:left|right|big|Big|bigg|Bigg)(?![a-zA-Z])", "", s)
    return re.sub(r"\\[dtc]frac", r"\\frac", s).replace("\\dbinom", "\\binom")


def _drop_text_remarks(s: str) -> str:
    r"""`\text{or}` becomes a comma; an ordinal and trailing words go; other `\text{...}` keeps its words."""
    # \text{ or } between answers is a list separator, not a unit.
    s = re.sub(r"\\text\s*\{\s*(?:or|and|,)\s*\}", ",", s)
    # A \text{...} of words after the value is a unit or a remark ("4 \text{ m}", "\text{ of the pie}").
    ordinal = rf"\^\s*\{{?\s*(?:\\(?:{_TEXT_NAMES})\s*)?\{{?(?:st|nd|rd|th)\}}?\s*\}}?"
    s = re.sub(rf"(?<=\d)\s*{ordinal}", "", s)  # 5^{\text{th}}
    words = rf"\\(?:{_TEXT_NAMES})\s*\{{\s*(?!{_MAGNITUDES})[a-zA-Z][a-zA-Z ./]*\}}"
    s = re.sub(rf"(?<=\S)\s*{words}\s*(?:\^\s*\{{?\d\}}?)?\s*\.?$", "", s)
    return _unwrap_text_commands(s)


def _drop_answer_wording(s: str) -> str:
    r"""An "answer is" inside a box goes, "or" / "and" become commas, and `\approx` keeps one value."""
    s = re.sub(r"^\s*(?:the (?:final )?answer is|(?:final )?answer\s*:)\s*", "", s, flags=re.I)  # inside a box
    s = re.sub(r"\s+(?:or|and)\s+", ",", s)
    s = re.sub(r"^\s*\\approx", "", s)  # `\approx 3.14` alone: the value it gives
    return re.sub(r"\s*\\approx.*$", "", s, flags=re.S) or s  # `\frac{\sqrt3}{3} \approx 0.577`: the exact value


def _one_spelling_each(s: str) -> str:
    r"""One spelling of degrees, infinity, relations, the empty set, the reals, vectors, binomials, unions."""
    if re.search(r"\\(?:sin|cos|tan|cot|sec|csc)", s):  # \sin(30^\circ) is 1/2: degrees to radians
        s = re.sub(r"(\d+(?:\.\d+)?)(?:" + _DEGREES + ")", r"\\frac{\1\\pi}{180}", s)
    s = re.sub(_DEGREES, "", s)
    s = s.replace("\\infinity", "\\infty").replace("+\\infty", "\\infty")
    s = re.sub(r"(?<![a-zA-Z\\])inf(?:inity)?(?![a-zA-Z])|\\inf(?![a-zA-Z])", r"\\infty", s)  # (0, inf)
    for spellings, relation in _RELATIONS:
        s = re.sub(spellings, relation, s)
    s = re.sub(r"\\(?:varnothing|emptyset)|\\\{\s*\\\}", r"\\emptyset", s)
    s = re.sub(r"\\mathbb\s*\{?R\}?|^\s*all real(?: number)?s\s*$", r"(-\\infty, \\infty)", s, flags=re.I)
    s = s.replace("\\langle", "(").replace("\\rangle", ")")  # a vector <1, 2> is the tuple (1, 2)
    s = re.sub(r"\{([^{}]*)\\choose([^{}]*)\}", r"\\binom{\1}{\2}", s)
    return re.sub(r"(?<=[\])])\s*U\s*(?=[\[(])", r" \\cup ", s)  # (-inf, 2) U (3, inf): a union


def _plain_text_math_as_latex(s: str) -> str:
    r"""Plain-text math (`-2*pi`, `sqrt(3)`, `2**10`), as some golds and models write it, in LaTeX."""
    s = s.replace("**", "^")
    s = re.sub(r"\^\s*\(([^()]*)\)", r"^{(\1)}", s)  # 2^(1/4): LaTeX needs the exponent in braces
    s = re.sub(r"(?<![\\a-zA-Z])pi(?![a-zA-Z])", r"\\pi", s)
    s = re.sub(r"(?<![\\a-zA-Z])sqrt\s*\(([^()]*)\)", r"\\sqrt{\1}", s)
    return re.sub(r"(?<=[\w)}\s])\*(?=[\w(\\\s])", r" \\cdot ", s)


def _brace_arguments(s: str) -> str:
    r"""Unbraced arguments braced: `\sqrt2` is `\sqrt{2}`, `\frac12` is `\frac{1}{2}`."""
    s = re.sub(r"\\sqrt\s*([0-9a-zA-Z])", r"\\sqrt{\1}", s)  # \sqrt2 -> \sqrt{2}
    one_token = r"(\\[a-zA-Z]+|[0-9a-zA-Z])"  # an unbraced argument: one character or one command
    s = re.sub(rf"\\frac\s*{one_token}\s*{one_token}", r"\\frac{\1}{\2}", s)  # \frac12, \frac\pi4
    s = re.sub(rf"\\frac\s*{one_token}\s*(?=\{{)", r"\\frac{\1}", s)
    return re.sub(r"\\frac(\{[^{}]*\})\s*([0-9a-zA-Z])", r"\\frac\1{\2}", s)  # \frac{\pi}4


def _bare_value(s: str) -> str:
    """The value without what surrounds it: a base's braces, a time's seconds, spaces, units, counted nouns."""
    s = re.sub(r"(?<=\d)_\{\s*(\d+)\s*\}", r"_\1", s)  # base subscripts: 4210_{7} is 4210_7
    s = re.sub(r"^(\d{1,2}:\d{2}):00$", r"\1", s.strip())  # a time: 20:34:00 is 20:34
    s = re.sub(r"\s+", " ", s).strip()
    for _ in range(3):  # units, punctuation and a stray backslash can be stacked: "5 cm.", "185\"
        s = s.rstrip(".;,\\").strip()
        s = _TRAILING_UNIT.sub("", s).strip()
    # A number and a word or two of what it counts ("3 apples", from `\text{3 apples}`) is the number;
    # not "1 million", whose word is part of the value.
    # (A word: four letters or more with a vowel, so `2 xyz` stays a product.)
    counted = re.fullmatch(rf"(-?[\d.,/]*\d)\s+(?!{_MAGNITUDES})(?=[a-zA-Z]*[aeiouAEIOU])[a-zA-Z]{{4,}}"
                           rf"(?:\s+[a-zA-Z]+)?", s)
    return counted.group(1) if counted else s


def _canonical_value(s: str) -> str:
    """One spelling of a value: number words, separators, a leading zero, sorted choice letters."""
    s = str(_NUMBER_WORDS.index(s.lower())) if s.lower() in _NUMBER_WORDS else s  # "twelve" is 12
    s = _separators(s)
    s = re.sub(r"(?<![\d.])\.(\d)", r"0.\1", s)  # .5 -> 0.5
    choice = CHOICE.match(s)
    if choice:
        s = "".join(sorted(set(re.sub(r"[^A-E]", "", choice.group(1)))))
    return s
