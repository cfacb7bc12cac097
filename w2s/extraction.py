"""Answer text: find the final answer in a solution, then clean it into a canonical string.

Plain string work, no sympy. Reading order:

1. `extract_answer`: find the final answer in a model's text (`\\boxed{}` first, then fallbacks).
2. `normalize`: plain string clean-up (`$`, `\\left`, `\\dfrac`, units, `\\%`, choice letters...).
"""
import re

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

