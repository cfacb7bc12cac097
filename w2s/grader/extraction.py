"""Finding the final answer in a reply: `extract_answer` (`\\boxed{}` first, then fallbacks).

String work. It needs `equivalence` for one decision: a statement after the last box
("\\boxed{3} ... The answer is: 4") replaces the box only when the two disagree.
"""
import re

from w2s.grader.equivalence import is_equiv
from w2s.grader.normalization import PROSE_WORD, braced_group, normalize

# "The answer is X", "Final Answer: X", "The answer to the question is X", "Answer: X".
_ANSWER_MARKER = re.compile(
    r"(?:final answer|the answer(?: to [^.\n]{0,80}?)?|^\s*\**answer\**)\s*(?:is\b|:|=)"
    r"(?!\s*(?:not|never)\b)\s*:?\**\s*", re.I | re.M)  # "The answer is not 5" states no answer
_GSM8K = re.compile(r"####\s*(?=[-+$\\\d(.]|[a-zA-Z]\s*=)(.+)")  # "#### 72", not a Markdown heading "#### Step 2"
_DELIMITER = re.compile(r"\\\(|\\\[|\$\$|(?<!\\)\$")
_CLOSER = {"\\(": "\\)", "\\[": "\\]", "$$": "$$", "$": "$"}
_UNESCAPED_DOLLAR = re.compile(r"(?<!\\)\$")
_NUMBER_IN_TEXT = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?(?:/\d+)?")
_NUMBER_TOKEN = re.compile(r"-?\\?\$?\s*-?\d[\d,]*(?:\.\d+)?(?:/\d+)?(?:\s*\\?%)?")
_NUMBERS_JOINED = re.compile(r"-?\d+(?:\.\d+)?(?:\s*(?:,|,?\s*\b(?:or|and)\b)\s*-?\d+(?:\.\d+)?)+")
# A model that misses its stop token writes the next chat turn ("<|im_start|>user ...", "</s>"): not its answer.
_END_OF_TURN = re.compile(r"<\|[a-z_]+\|>|</s>|<eos>|<(?:start|end)_of_turn>")
# A new question after the reply: "Q: ...", "Question 2: ...", "Problem:" at the start of a line.
_NEXT_QUESTION = re.compile(r"\n\s*(?:Q|Question|Problem)\s*\d*\s*:", re.I)
# Markdown bold (`**72 clips**`, `**Answer:** 18`) but not a plain-text power (`2**10`).
_MARKDOWN_BOLD = re.compile(r"(?<![\w)}])\*\*|\*\*(?![\w({])")
# The verb before a stated value: "the largest $n$ is 34", "the roots are 2 and 3".
_COPULA = re.compile(r"\s(?:is|are|was|were|equals|be|becomes)\s+(?:equal to\s+|about\s+|approximately\s+)?", re.I)
# Words that show a last line draws a conclusion even without a final full stop.
_CONCLUSION_WORD = re.compile(r"\b(?:so|thus|therefore|hence|total|altogether|in all|finally|answer|result|each)\b",
                              re.I)
_SIGN_OFF = re.compile(r"(?:I hope|Hope (?:this|that|it)|Let me know|Feel free|Is there anything|If you have any|"
                       r"Thank you|Thanks|Good luck|Happy to help|Please let me know)", re.I)
# Words that offer a second answer beside the first rather than correcting it.
_HEDGE = re.compile(r"\b(?:alternatively|maybe|perhaps|possibly|could|might|or)\b", re.I)
# Between boxes, only these may stand for the boxes to be one answer (`\boxed{2}` or `\boxed{3}`).
_BOX_CONNECTOR = re.compile(r"\$|\\[()\[\]]|\\text\s*\{\s*(?:or|and)\s*\}|\\q?quad|\b(?:or|and)\b|[,;\s]|"
                            r"(?:[a-zA-Z]|\\[a-zA-Z]+)(?:_\{?\w+\}?)?\s*=")


def _boxes(text: str) -> list[tuple[int, int, str | None]]:
    """Every `\\boxed{...}` / `\\boxed x` / `\\fbox{...}` as (start, end, contents); contents None if unclosed."""
    found = []
    for match in re.finditer(r"\\(?:boxed|fbox)(?![a-zA-Z])\s*", text):
        rest = match.end()
        if rest < len(text) and text[rest] == "{":
            group = braced_group(text, rest)
            if group is None:
                found.append((match.start(), len(text), None))
                break  # an unclosed box swallows the rest of the text
            found.append((match.start(), group[1], group[0].strip()))
        else:  # `\boxed 5`: TeX takes the next token as the argument; we take the word after it.
            word = re.match(r"[^\s$]+", text[rest:])
            found.append((match.start(), rest + (word.end() if word else 0), word.group(0) if word else ""))
    return found


def _final_boxed(text: str) -> str | None:
    """The answer in the last box; boxes joined only by `or`, `,`, `x =` are one answer together.

    `\\boxed{2} or \\boxed{3}` is the answer `2, 3`, so a hedge never matches a single gold; so is
    "\\boxed{3}. Alternatively, it could be \\boxed{4}". Boxes with other prose between them
    ("\\boxed{3}, but rechecking, ... \\boxed{4}") are a correction: the last wins.
    """
    boxes = _boxes(text)
    if not boxes or boxes[-1][2] is None:
        return None  # cut off inside the box: the model never finished, no fallback may guess
    group = [boxes[-1]]
    for box in reversed(boxes[:-1]):
        between = text[box[1]:group[0][0]]
        hedge = len(between) < 80 and _HEDGE.search(between)  # far apart, boxes answer different steps
        if box[2] is None or _BOX_CONNECTOR.sub("", between) and not hedge:
            break
        group.insert(0, box)
    answers = list(dict.fromkeys(contents for _, _, contents in group if contents))
    percent = re.match(r"\s*\$?\s*(?:\\%|%|percent\b|pct\b)", text[boxes[-1][1]:])
    if percent and len(answers) == 1:  # `$\boxed{28}\%$`: the sign is part of the answer
        answers[0] += "\\%"
    return ", ".join(answers) or None


def _math_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, contents) of each `$...$`, `$$...$$`, `\\(...\\)`, `\\[...\\]` in order.

    `\\$` is an escaped dollar, not a delimiter. A `$` that opens a number is a currency sign
    when what it would pair with also opens a number (`$70/7=$10`) or the span reads as prose
    (`$5 and the pen costs $`): it is skipped, so prose prices never become math spans.
    """
    spans, i = [], 0
    while True:
        match = _DELIMITER.search(text, i)
        if not match:
            return spans
        opener, start = match.group(0), match.end()
        if opener == "$":
            closer = _UNESCAPED_DOLLAR.search(text, start)
            end = closer.start() if closer else -1
        else:
            end = text.find(_CLOSER[opener], start)
        if end < 0:
            i = start
            continue
        contents = text[start:end]
        currency = opener == "$" and text[start:start + 1].isdigit() and (
            text[end + 1:end + 2].isdigit() or len(PROSE_WORD.findall(contents)) >= 2)
        if currency:
            i = start
            continue
        i = end + len(_CLOSER[opener])
        spans.append((match.start(), i, contents.strip()))


def _sentences(line: str) -> list[str]:
    """Split a line at `. `, `! `, `? ` outside math spans (a decimal point is not a full stop)."""
    spans = [(start, end) for start, end, _ in _math_spans(line)]
    pieces, begin = [], 0
    for match in re.finditer(r"(?<!\d)[.!?](?=\s|$)|[.!?](?=\s+[A-Z]|\s+\d+\s*[-+*/=])", line):
        if not any(a <= match.start() < b for a, b in spans):
            pieces.append(line[begin:match.end()])
            begin = match.end()
    pieces.append(line[begin:])
    return [p.strip() for p in pieces if p.strip()]


def _joined_spans(text: str, spans: list[tuple[int, int, str]]) -> str:
    """The first math span and those joined to it by and/or/commas (`$2$ and $3$`): one answer."""
    joined = [spans[0]]
    for span in spans[1:]:
        if _BOX_CONNECTOR.sub("", text[joined[-1][1]:span[0]]):
            break
        joined.append(span)
    return ", ".join(contents for _, _, contents in joined)


def _value_in_sentence(sentence: str, opens_with_value: bool = False) -> str | None:
    """The value a sentence states: after its last "is"/"are" if any, a math span or a number.

    Without such a verb, the last one of a concluding sentence ("so she has 12 apples"), or the
    first when the sentence follows an answer marker ("The answer is: 7 apples and 3 pears").
    """
    masked = sentence
    for start, end, _ in _math_spans(sentence):  # "is" inside a math span does not count
        masked = masked[:start] + "#" * (end - start) + masked[end:]
    copulas = list(_COPULA.finditer(masked))
    tail = sentence[copulas[-1].end():] if copulas else sentence
    if copulas and re.match(r"(?:not|never)\b", tail, re.I):
        return None  # "the answer is not 5"
    spans = [span for span in _math_spans(tail) if span[2]]
    if spans and copulas:  # "the roots are $2$ and $3$"
        return _joined_spans(tail, spans)
    if spans:
        return spans[-1][2]
    stripped = tail.strip().rstrip(".!").strip()
    if copulas and stripped and not PROSE_WORD.search(re.sub(r"\\[a-zA-Z]+", "", stripped)):
        return stripped  # "the answer is 2x+1": the whole tail is the value
    numbers = _NUMBER_TOKEN.findall(tail)
    if numbers:
        return (numbers[0] if copulas or opens_with_value else numbers[-1]).strip()
    return None


_ENV_BEGIN = re.compile(r"\\begin\s*\{([a-zA-Z]+\*?)\}")
_ENV_END = re.compile(r"\\end\s*\{([a-zA-Z]+\*?)\}")


def _environment_end(text: str, begin: re.Match) -> int | None:
    """The index after the `\\end{name}` that closes the `\\begin{name}` matched by `begin` (nesting counted)."""
    name, depth = begin.group(1), 0
    for match in re.finditer(r"\\(begin|end)\s*\{" + re.escape(name) + r"\}", text[begin.start():]):
        depth += 1 if match.group(1) == "begin" else -1
        if depth == 0:
            return begin.start() + match.end()
    return None


def _leading_environment(answer: str) -> str | None:
    """An answer that opens with a matrix or vector (`\\begin{pmatrix} 1 & 2 \\\\ 6 & -1 \\end{pmatrix}`), whole.

    Its `&` and `\\\\` are the environment's own separators, not the end of a sentence or a line:
    the answer runs to the matching `\\end{...}`, over several lines if need be ("The matrix is" before it goes).
    """
    first_line = answer.lstrip().split("\n", 1)[0]
    begin = _ENV_BEGIN.search(answer)
    if not begin or begin.group(0) not in first_line or re.search(r"[.!?]\s", answer[:begin.start()]):
        return None
    end = _environment_end(answer, begin)
    return answer[begin.start():end] if end else None


def _trailing_environment(text: str) -> str | None:
    """The matrix or vector a reply ends on ("So $M = \\begin{pmatrix}...\\end{pmatrix}$."), whole."""
    ends = list(_ENV_END.finditer(text))
    if not ends or not re.fullmatch(r"[\s$.]*(?:\\\]|\\\))?[\s$.]*", text[ends[-1].end():]):
        return None
    name = ends[-1].group(1)
    for begin in reversed([m for m in _ENV_BEGIN.finditer(text, 0, ends[-1].start()) if m.group(1) == name]):
        if _environment_end(text, begin) == ends[-1].end():
            return text[begin.start():ends[-1].end()]
    return None


def _clean_sentence_answer(answer: str) -> str | None:
    """The value after an answer marker: the first sentence of the rest of its line (a matrix: all of it)."""
    environment = _leading_environment(answer)
    if environment:
        return environment
    line = answer.strip().splitlines()[0] if answer.strip() else ""
    line = re.sub(r"^(?:either|both|between)\s+", "", line, flags=re.I)  # "either 4 or 5" is the hedge `4, 5`
    sentences = _sentences(line)
    if not sentences:
        return None
    sentence = sentences[0]
    if _NUMBERS_JOINED.fullmatch(sentence.rstrip(".").strip()):
        return sentence.rstrip(".").strip()  # "4 or 5", "2 and 3": every value, so a hedge stays one
    spans = [span for span in _math_spans(sentence) if span[2]]
    masked_words = PROSE_WORD.findall(re.sub(r"\$[^$]*\$|\\[a-zA-Z]+", " ", sentence))
    if spans and (not _COPULA.search(sentence) or spans[0][0] == 0):
        return _joined_spans(sentence, spans)  # "$\frac12$ because half are red": the value comes first
    if masked_words and _COPULA.search(sentence) or (not spans and masked_words):
        value = _value_in_sentence(sentence, opens_with_value=True)  # "Final Answer: The largest $n$ is 34."
        if value:
            return value
    return sentence.rstrip(".").strip() or None


def _concludes(text: str) -> bool:
    """Does the reply end by stating something, rather than being cut off or looping?

    A reply cut off by the token limit ends mid-sentence; one that loops repeats its last lines.
    Neither stated an answer, so the fallbacks must not pick a number out of it.
    """
    units = [u for line in text.splitlines() for u in _sentences(line.strip())]
    tail = units[-12:]
    if len(tail) >= 6 and len(set(tail)) <= len(tail) // 2:
        return False  # looping
    for period in (1, 2, 3, 4):  # looping through a cycle of a few lines ("+ 1 = 26", "- 1 = 25", ...)
        if len(units) >= 3 * period and units[-period:] * 3 == units[-3 * period:]:
            return False
    last = text.rstrip()
    if last.endswith("?"):
        return False  # a question (often the problem restated) is not an answer
    if re.search(r"[.!]\**$|\$$|\\\]$|\\\)$", last):
        return True
    last_line = last.splitlines()[-1].strip()
    if re.search(r"[-+*/=,(^]\s*$|\b(?:and|of|the|is|are|to|at|by|for|with|from|than|then|a|an)$", last_line):
        return False  # stopped mid-sentence or mid-computation
    last_sentence = _sentences(last_line)[-1]
    if _CONCLUSION_WORD.search(last_sentence):
        return True  # "So she has 8 apples in total"
    # A line of working that ends on its result ("48 + 24 = 72", "= 72", "72"), as GSM8K-style replies end.
    ends_on_number = re.search(r"(?:^|=|\s)\s*\\?\$?\s*-?\d[\d,]*(?:\.\d+)?"
                               r"\s*(?:(?:[a-zA-Z]+[²³]?|[€£¥%])\s*){0,2}$",
                               last_sentence)  # then a unit or two: "72 clips", "2,500.75€", "12 m²"
    # A reply of one short sentence ("It costs $7.00") was not cut off by a token limit either.
    short = len(units) == 1 and len(text) < 200
    return bool(ends_on_number) and ("=" in last_sentence or short or not PROSE_WORD.search(last_sentence))


def _drop_sign_off(text: str) -> str:
    """The text without its closing courtesies ("I hope this helps!"), which state nothing."""
    for _ in range(4):
        lines = text.rstrip().splitlines()
        last = _sentences(lines[-1].strip())[-1] if lines and lines[-1].strip() else ""
        if not last or not _SIGN_OFF.match(last) or re.search(r"\d", last):  # "Thanks to the sale, $18"
            return text
        text = text[:text.rstrip().rfind(last)]
    return text


def _later_statement(text: str) -> str | None:
    """An answer stated after the last box ("The answer is 4", "#### 4"), which must agree with it."""
    markers = list(_ANSWER_MARKER.finditer(text))
    if markers:
        return _clean_sentence_answer(text[markers[-1].end():])
    gsm8k = _GSM8K.findall(text)
    return gsm8k[-1].strip() if gsm8k else None


def _states_a_value(statement: str) -> bool:
    """Does a closing statement give a value ("4", "$x+1$", "(B)"), not a verdict ("The answer is correct.")?"""
    words = PROSE_WORD.findall(re.sub(r"\\[a-zA-Z]+", " ", statement))
    return bool(re.search(r"[\d\\^=+*/()]", statement) or len(statement.strip()) <= 2 or not words)


def _same_answer(a: str, b: str) -> bool:
    if normalize(a).replace(" ", "") == normalize(b).replace(" ", ""):
        return True
    return is_equiv(a, b, timeout=1.0)


def extract_answer(text: str, strict: bool = False) -> str | None:
    """The final answer in `text`, or None when the text never states one.

    Tried in this order; the first that matches wins:
    1. the last `\\boxed{...}` (nested braces), `\\boxed x` or `\\fbox{...}`: what we ask every
       model for. An unclosed last box (cut off by the token limit) gives None. Boxes side by
       side (`\\boxed{2}` or `\\boxed{3}`) are one answer `2, 3`; a later "The answer is: X" or
       `#### X` that disagrees with the box is the answer: the last statement stands (GAIR's
       replies close with "The answer is:" after their box). "The answer is correct" states no value.
    2. "The answer is X" / "Final Answer: X" / "Answer: X": how instruction-tuned models end when
       they forget the box. In "Final Answer: The largest $n$ is 34." the value is 34. A matrix or
       vector there (`\\begin{pmatrix} 1 & 2 \\\\ 6 & -1 \\end{pmatrix}`) is taken whole, to its `\\end`.
    3. GSM8K's `#### X`: the reference format of GSM8K-style data.
    4. a reply that ends on a matrix or vector ("So $M = \\begin{pmatrix}...\\end{pmatrix}$."): all of it.
    5. a short line with no prose words taken whole (`0.5`, `$\\frac12$`, `x = 3`).
    6. only if the text concludes (ends with a full sentence, a "so ... 8" line, or a line of
       working that ends on its result, `48 + 24 = 72`; and does not loop): the value its last
       sentence states (after its last "is"/"are", a math span, or a number), else the last math
       span or number of the text. A reply cut off mid-computation or mid-sentence gets None
       rather than a guess from its last number.
    `$` that opens a price (`$70/7=$10`) and `\\$` are not math delimiters. Markdown bold is
    dropped, and so is everything after a chat end-of-turn token (`</s>`, `<|im_start|>`): a
    model that misses its stop token goes on to write the next turn.
    With `strict=True` only step 1 is used (for reference solutions that must carry a box).
    """
    if not text:
        return None
    text = _the_reply(text)
    if "\\boxed" in text or "\\fbox" in text:
        return _boxed_answer(text, strict)
    if strict:
        return None
    marked = _marked_answer(text)
    if marked:
        return marked
    text = _drop_sign_off(text)
    environment = _trailing_environment(text)
    if environment:
        return environment
    if _is_short_math_line(text):
        return _short_line_answer(text)
    if not _concludes(text):
        return None
    return _concluding_value(text)


def _the_reply(text: str) -> str:
    """The reply itself: its first chat turn, without Markdown bold, `boxed{` given back its backslash;
    once it has answered, cut before the next few-shot question a base model goes on to write (and answer)."""
    turns = [turn for turn in _END_OF_TURN.split(text) if turn.strip()]
    text = _MARKDOWN_BOLD.sub("", turns[0] if turns else "")
    text = re.sub(r"(?<![\\a-zA-Z])boxed\{", r"\\boxed{", text)  # weak models drop the backslash
    next_question = _NEXT_QUESTION.search(text)
    before = text[:next_question.start()] if next_question else ""
    if "\\boxed" in before or "####" in before or _ANSWER_MARKER.search(before):
        return before
    return text


def _boxed_answer(text: str, strict: bool) -> str | None:
    """Step 1: the last box, unless a later statement of a value disagrees with it."""
    answer = _final_boxed(text)
    if answer is None or strict:
        return answer
    later = _later_statement(text[_boxes(text)[-1][1]:])
    if later is None or not _states_a_value(later) or _same_answer(later, answer):
        return answer
    return later  # "\\boxed{3} ... The answer is: 4": the last statement stands


def _marked_answer(text: str) -> str | None:
    """Steps 2 and 3: the value after the last answer marker that gives one, else GSM8K's last `#### X`."""
    for marker in reversed(list(_ANSWER_MARKER.finditer(text))):
        answer = _clean_sentence_answer(text[marker.end():])
        if answer:
            return answer
    matches = _GSM8K.findall(text)
    if matches and matches[-1].strip():
        return matches[-1].strip()
    return None


def _is_short_math_line(text: str) -> bool:
    """Step 5's test: one line of at most 80 characters with no prose words."""
    stripped = text.strip()
    math_only = re.sub(r"\\[a-zA-Z]+|\b(?:sqrt|sin|cos|tan|log|ln|exp|pi)\b", "", stripped)  # `sqrt(3)/2` is math
    return "\n" not in stripped and len(stripped) <= 80 and not PROSE_WORD.search(math_only)


def _short_line_answer(text: str) -> str | None:
    """Step 5: a short math line taken whole, or its last math span."""
    stripped = text.strip()
    spans = _math_spans(stripped)
    return (spans[-1][2] if spans else stripped.rstrip(".").strip()) or None


def _concluding_value(text: str) -> str | None:
    """Step 6, for a text that concludes: the value its last sentences state, else its last math span or number."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    for sentence in reversed(_sentences(lines[-1].strip())[-2:]):
        value = _value_in_sentence(sentence)
        if value:
            return value
    if re.search(r"\b(?:is|are|was|were)\s+(?:not|never)\b|n't\b", _sentences(lines[-1].strip())[-1], re.I):
        return None  # the text ends by ruling a value out ("The answer is not 5."), not by stating one
    spans = _math_spans(text)
    if spans and spans[-1][2]:
        return spans[-1][2]
    numbers = _NUMBER_IN_TEXT.findall(lines[-1])
    return numbers[-1] if numbers else None
