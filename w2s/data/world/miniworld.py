"""The built-in offline math world: hard tasks, easy sub-tasks, an exact step checker, weak teachers.

A task is a chain of integer operations on a starting amount, told as a short word problem:

    Ann has 17 coins. She now has 3 times as many. She gets 6 more. She gives away 5.
    How many coins does Ann have now?

and its reference solution writes one step per line, each on the previous line's result:

    17 * 3 = 51
    51 + 6 = 57
    57 - 5 = 52
    The answer is \\boxed{52}

Its easy sub-tasks come two ways: a run of 2-3 of its steps told as a problem of its own, or
(a prefix sub-task) the same text asking "How many coins does Ann have after the first 2 changes?",
solved by the first two lines. A model trained only on short problems learns to apply the
sentences right before the question; a prefix sub-task cannot be solved that way.

Everything here is exact, so the study's two quality measures are measured rather than
estimated: the outcome (is the final answer right) and the step-wise error rate (the share of
steps that are wrong, by `step_errors`). The world is deliberately small (amounts below 100,
one-digit operands, + - and * by default, a few phrasings, short solutions) so that a ~0.5M-parameter
model masters it in minutes on a CPU (the README's quick start; the trials behind these sizes are in
experiments/RESULTS.md).
"""
import functools
import random
import re
from dataclasses import dataclass, field

from w2s.data.rows import user_message
from w2s.data.world.sets import PoolItem, Solution

# ---------------------------------------------------------------------------------------------
# Tasks


@dataclass(frozen=True)
class Step:
    op: str  # one of + - * /
    operand: int


def apply(value: int, op: str, operand: int) -> int | None:
    """value op operand, or None when the result is not a non-negative integer (inexact division)."""
    if op == "+":
        return value + operand
    if op == "-":
        return value - operand if value >= operand else None
    if op == "*":
        return value * operand
    if op == "/":
        return value // operand if operand and value % operand == 0 else None
    raise ValueError(f"unknown operation {op!r}")


@dataclass(frozen=True)
class Task:
    start: int
    steps: tuple[Step, ...]

    @functools.cached_property
    def values(self) -> tuple[int, ...]:
        """The amount before the first step and after each step."""
        values = [self.start]
        for step in self.steps:
            values.append(apply(values[-1], step.op, step.operand))
        return tuple(values)

    @property
    def answer(self) -> int:
        return self.values[-1]

    def part(self, first: int, last: int) -> "Task":
        """Steps first..last (0-based, inclusive) as a task of their own, starting from the amount before `first`."""
        return Task(self.values[first], self.steps[first:last + 1])


@dataclass(frozen=True)
class WorldConfig:
    """Sizes of numbers and tasks. Defaults are tuned for a dim-128, 2-layer model on a CPU: two-digit
    operands and division made both reading the right operand and the arithmetic itself much harder
    to learn in budget (see experiments/RESULTS.md, "Trials behind the defaults")."""
    max_value: int = 99  # every intermediate amount of a task stays in 1..max_value
    start_range: tuple[int, int] = (1, 20)
    add_range: tuple[int, int] = (1, 9)  # operands of + and -
    mul_range: tuple[int, int] = (2, 9)  # operands of * and /
    operations: str = "+-*"  # the operations tasks may use (add "/" for exact division)
    hard_steps: tuple[int, int] = (3, 5)  # hard full tasks and the same-distribution test set
    long_steps: tuple[int, int] = (6, 7)  # the harder test set (generalization to more steps)
    foundation_steps: tuple[int, int] = (1, 2)  # stage-1 foundation problems
    phrasings: int = 3  # templates in use per kind of sentence (1-3): fewer = easier to learn


def sample_task(rng: random.Random, num_steps: int, config: WorldConfig = WorldConfig()) -> Task:
    """A random chain of `num_steps` operations whose amounts all stay in 1..max_value."""
    value = rng.randint(config.start_range[0], min(config.start_range[1], config.max_value))
    start, steps = value, []
    for _ in range(num_steps):
        # Draw the operation first, then the operand, so * and / (few operands) are as common as + and -.
        choices = _step_choices(value, config)
        op = rng.choice(sorted(choices))
        steps.append(Step(op, rng.choice(choices[op])))
        value = apply(value, op, steps[-1].operand)
    return Task(start, tuple(steps))


@functools.lru_cache(maxsize=None)
def _step_choices(value: int, config: WorldConfig) -> dict[str, list[int]]:
    """The operations and operands that keep `value` inside 1..max_value (cached: amounts are few)."""
    choices = {}
    for op in config.operations:
        low, high = config.mul_range if op in "*/" else config.add_range
        operands = [b for b in range(low, high + 1)
                    if (r := apply(value, op, b)) is not None and 1 <= r <= config.max_value]
        if operands:
            choices[op] = operands
    return choices


# ---------------------------------------------------------------------------------------------
# Word problems: a handful of phrasings, and an exact parser back to the task

NAMES = [("Ann", "She"), ("Ben", "He"), ("Kim", "She"), ("Tom", "He"), ("Eva", "She"), ("Max", "He")]
UNITS = ["coins", "apples", "stamps", "cards", "marbles", "shells"]
START_TEMPLATES = ["{name} has {n} {unit}.", "{name} starts with {n} {unit}.", "{name} owns {n} {unit}."]
STEP_TEMPLATES = {
    "+": ["{pro} gets {k} more.", "{pro} finds {k} more.", "{pro} buys {k} more."],
    "-": ["{pro} gives away {k}.", "{pro} loses {k}.", "{pro} sells {k}."],
    "*": ["{pro} now has {k} times as many.", "{pro} multiplies them by {k}.", "The number is multiplied by {k}."],
    "/": ["{pro} divides them by {k}.", "{pro} splits them into {k} equal piles and keeps one.",
          "The number is divided by {k}."],
}
QUESTION_TEMPLATES = ["How many {unit} does {name} have now?", "How many {unit} are there now?",
                      "How many does {name} have in the end?"]
# A prefix question asks for the amount after the story's first j operations, so an easy sub-task can be
# posed inside its whole hard problem: the sub-task cannot be solved by applying the sentences right
# before the question, the shortcut that short problems teach ({changes}: "change" or "2 changes").
PREFIX_QUESTION_TEMPLATES = ["How many {unit} does {name} have after the first {changes}?",
                             "How many {unit} are there after the first {changes}?",
                             "How many does {name} have after the first {changes}?"]


def changes(j: int) -> str:
    return "change" if j == 1 else f"{j} changes"


@dataclass(frozen=True)
class Phrasing:
    """Which name, unit and template each sentence uses: a task plus a phrasing is a problem text."""
    name: int
    unit: int
    start: int
    steps: tuple[int, ...]
    question: int


def sample_phrasing(rng: random.Random, task: Task, avoid: Phrasing | None = None, templates: int = 3) -> Phrasing:
    """A random phrasing among the first `templates` templates of each kind of sentence; with
    `avoid`, one that differs from it wherever there is a choice (a paraphrase)."""
    def pick(n: int, not_this: int | None) -> int:
        if not_this is None or n == 1:
            return rng.randrange(n)
        return (not_this + 1 + rng.randrange(n - 1)) % n  # any index but `not_this`

    a, t = avoid, templates
    return Phrasing(
        name=pick(len(NAMES), a and a.name),
        unit=pick(len(UNITS), a and a.unit),
        start=pick(min(t, len(START_TEMPLATES)), a and a.start),
        steps=tuple(pick(min(t, len(STEP_TEMPLATES[s.op])), a and a.steps[i]) for i, s in enumerate(task.steps)),
        question=pick(min(t, len(QUESTION_TEMPLATES)), a and a.question),
    )


def render_problem(task: Task, phrasing: Phrasing, prefix: int | None = None) -> str:
    """The problem text; with `prefix` j, the question asks for the amount after the first j steps."""
    name, pro = NAMES[phrasing.name]
    unit = UNITS[phrasing.unit]
    sentences = [START_TEMPLATES[phrasing.start].format(name=name, n=task.start, unit=unit)]
    for step, template in zip(task.steps, phrasing.steps):
        sentences.append(STEP_TEMPLATES[step.op][template].format(pro=pro, k=step.operand))
    if prefix is None:
        sentences.append(QUESTION_TEMPLATES[phrasing.question].format(name=name, unit=unit))
    else:
        sentences.append(PREFIX_QUESTION_TEMPLATES[phrasing.question].format(name=name, unit=unit,
                                                                             changes=changes(prefix)))
    return " ".join(sentences)


def _template_regex(template: str) -> re.Pattern:
    pattern = re.escape(template)
    for slot, regex in [("name", r"[A-Z][a-z]+"), ("pro", r"(?:He|She)"), ("unit", r"[a-z]+"),
                        ("n", r"(?P<n>\d+)"), ("k", r"(?P<k>\d+)"), ("changes", r"(?:change|(?P<j>\d+) changes)")]:
        pattern = pattern.replace(re.escape("{" + slot + "}"), regex)
    return re.compile(pattern + r"\Z")


_START_RES = [_template_regex(t) for t in START_TEMPLATES]
_STEP_RES = [(op, _template_regex(t)) for op, templates in STEP_TEMPLATES.items() for t in templates]
_QUESTION_RES = [_template_regex(t) for t in QUESTION_TEMPLATES]
_PREFIX_QUESTION_RES = [_template_regex(t) for t in PREFIX_QUESTION_TEMPLATES]


def parse_problem(text: str) -> Task:
    """The task behind a problem text of this world (so any solution can be step-checked from its problem).
    A prefix question ("... after the first 2 changes?") asks for a task of the story's first j steps only."""
    sentences = re.split(r"(?<=[.?])\s+", text.strip())
    if len(sentences) < 3:
        raise ValueError(f"not a problem of the built-in world (too few sentences): {text!r}")
    start = next((m for r in _START_RES if (m := r.match(sentences[0]))), None)
    if start is None:
        raise ValueError(f"not a problem of the built-in world (first sentence {sentences[0]!r})")
    prefix = next((int(m["j"] or 1) for r in _PREFIX_QUESTION_RES if (m := r.match(sentences[-1]))), None)
    if prefix is None and not any(r.match(sentences[-1]) for r in _QUESTION_RES):
        raise ValueError(f"not a problem of the built-in world (question {sentences[-1]!r})")
    steps = []
    for sentence in sentences[1:-1]:
        step = next((Step(op, int(m["k"])) for op, r in _STEP_RES if (m := r.match(sentence))), None)
        if step is None:
            raise ValueError(f"not a problem of the built-in world (sentence {sentence!r})")
        steps.append(step)
    if prefix is not None:
        if not 1 <= prefix <= len(steps):
            raise ValueError(f"not a problem of the built-in world (asks after {prefix} of its {len(steps)} changes)")
        steps = steps[:prefix]
    return Task(int(start["n"]), tuple(steps))


# ---------------------------------------------------------------------------------------------
# Solutions and the exact step checker

STEP_LINE = re.compile(r"^\s*(\d+)\s*([-+*/])\s*(\d+)\s*=\s*(-?\d+)\s*$")
ANSWER_LINE = "The answer is \\boxed{{{}}}"


@dataclass(frozen=True)
class Line:
    """One written step `a op b = c`, right or wrong."""
    a: int
    op: str
    b: int
    c: int

    def __str__(self) -> str:
        return f"{self.a} {self.op} {self.b} = {self.c}"


def solution_text(lines: list[Line]) -> str:
    """One step per line, then the final answer (the last line's result) in \\boxed{}."""
    return "\n".join([str(line) for line in lines] + [ANSWER_LINE.format(lines[-1].c)])


def correct_lines(task: Task) -> list[Line]:
    values = task.values
    return [Line(values[i], s.op, s.operand, values[i + 1]) for i, s in enumerate(task.steps)]


def correct_solution(task: Task) -> str:
    return solution_text(correct_lines(task))


def parse_lines(solution: str) -> list[Line]:
    """The step lines of a solution (lines of the form `a op b = c`); other lines are not steps."""
    return [Line(int(m[1]), m[2], int(m[3]), int(m[4])) for m in map(STEP_LINE.match, solution.splitlines()) if m]


def step_errors(solution: str, task: "Task | str") -> list[bool]:
    """For each step of `task` (a Task or its problem text): True when the solution gets that step wrong.

    Step i is right when the solution's i-th step line applies the task's i-th operation, with
    its operand, to the amount the solution had so far (the start, then its own previous result)
    and computes it exactly. So an error is counted once, where it is made: a later step that
    correctly carries on a wrong amount is a right step. A missing step is wrong; so is any step
    line beyond the task's steps (each adds one entry).
    """
    if isinstance(task, str):
        task = parse_problem(task)
    return line_errors(parse_lines(solution), task)


def line_errors(lines: list[Line], task: Task) -> list[bool]:
    """`step_errors` on already parsed step lines."""
    errors, amount = [], task.start
    for i in range(max(len(task.steps), len(lines))):
        if i >= len(task.steps) or i >= len(lines):
            errors.append(True)
            continue
        line, step = lines[i], task.steps[i]
        right = ((line.a, line.op, line.b) == (amount, step.op, step.operand)
                 and apply(line.a, line.op, line.b) == line.c)
        errors.append(not right)
        amount = line.c
    return errors


def step_error_rate(solution: str, task: "Task | str") -> float:
    errors = step_errors(solution, task)
    return sum(errors) / len(errors)


_BOXED = re.compile(r"\\boxed\{\s*(-?\d+)\s*\}")


def final_answer(solution: str) -> int | None:
    """The last \\boxed{integer} of a solution (the world's own exact check; the grader is the general one)."""
    found = _BOXED.findall(solution)
    return int(found[-1]) if found else None


# ---------------------------------------------------------------------------------------------
# Easy sub-tasks


def subtask_spans(num_steps: int, rng: random.Random) -> list[tuple[int, int]]:
    """2-3 contiguous runs of steps (first, last), each of 2-3 steps and never the whole task.

    As in the paper, a sub-task is neither a single step nor nearly the whole task. Runs
    partition the steps where that is possible; a 3-step task gets two overlapping 2-step runs.
    """
    if num_steps < 3:
        raise ValueError(f"a task of {num_steps} steps is too short to decompose")
    if num_steps == 3:
        return [(0, 1), (1, 2)]
    partitions = [p for p in _partitions(num_steps) if 2 <= len(p) <= 3]
    sizes = rng.choice(partitions)
    spans, first = [], 0
    for size in sizes:
        spans.append((first, first + size - 1))
        first += size
    return spans


def _partitions(n: int) -> list[tuple[int, ...]]:
    """Ordered ways to write n as a sum of 2s and 3s."""
    if n == 0:
        return [()]
    return [(size,) + rest for size in (2, 3) if size <= n for rest in _partitions(n - size)]


# ---------------------------------------------------------------------------------------------
# Weak teachers: incorrect solutions with a controlled error profile
#
# Two kinds of error, as in the paper's negative solutions:
#   computation: the right operation on the right numbers, a wrong result;
#   method:      a wrong operation or a wrong operand, computed exactly.
# Either way, later steps carry the wrong amount on (correctly, unless they are errors too).
# Profiles reach the same outcome (a wrong final answer) with different step-wise error rates:
#   low:   one computation slip, in the last step      (step-wise error rate 1/steps)
#   high:  every step is an error, from the first on   (step-wise error rate 1)
#   mixed: 1..all steps are errors, at random places, of random kinds

PROFILES = ("mixed", "low", "high")
SLIPS = [d for d in range(-9, 10) if d] + [-20, -10, 10, 20]  # wide, so no single wrong value dominates
VALUE_CAP = 999  # wrong amounts may leave 1..max_value, but stay positive and short


@dataclass
class WeakSolution:
    text: str
    lines: list[Line]
    error_steps: list[int]  # 0-based steps where an error was planted
    kinds: list[str] = field(default_factory=list)  # "computation" or "method", one per planted error


def _computation_error(amount: int, step: Step, rng: random.Random) -> Line | None:
    right = apply(amount, step.op, step.operand)
    if right is None:
        return None
    wrong = right + rng.choice(SLIPS)
    return Line(amount, step.op, step.operand, wrong) if 0 <= wrong <= VALUE_CAP else None


def _method_error(amount: int, step: Step, task: Task, rng: random.Random) -> Line | None:
    if rng.random() < 0.5:  # wrong operation
        op = rng.choice([o for o in "+-*/" if o != step.op])
        operand = step.operand
    else:  # wrong operand: another number of the problem, or a near miss
        op = step.op
        others = [task.start] + [s.operand for s in task.steps]
        operand = rng.choice(others + [step.operand + d for d in (-2, -1, 1, 2)])
        if operand == step.operand or operand < 1:
            return None
    result = apply(amount, op, operand)
    return Line(amount, op, operand, result) if result is not None and result <= VALUE_CAP else None


def weak_solution(task: Task, profile: str, rng: random.Random, max_tries: int = 1000) -> WeakSolution:
    """An incorrect solution to `task` (its final answer is wrong) with errors planted per `profile`."""
    if profile not in PROFILES:
        raise ValueError(f"unknown step profile {profile!r}; choose from {PROFILES}")
    n = len(task.steps)
    for _ in range(max_tries):
        if profile == "low":
            planted = {n - 1: "computation"}
        elif profile == "high":
            planted = {i: rng.choice(["computation", "method"]) for i in range(n)}
        else:
            where = rng.sample(range(n), rng.randint(1, n))
            planted = {i: rng.choice(["computation", "method"]) for i in where}
        lines, amount = [], task.start
        for i, step in enumerate(task.steps):
            if i not in planted:
                result = apply(amount, step.op, step.operand)
                line = (Line(amount, step.op, step.operand, result) if result is not None and result <= VALUE_CAP
                        else None)
            elif planted[i] == "computation":
                line = _computation_error(amount, step, rng)
            else:
                line = _method_error(amount, step, task, rng)
            if line is None:  # e.g. the carried amount is not divisible: draw again
                break
            lines.append(line)
            amount = line.c
        else:
            if amount != task.answer:
                # The planted errors are exactly the errors the checker finds (a guard on both).
                order = sorted(planted)
                if [i for i, wrong in enumerate(line_errors(lines, task)) if wrong] == order:
                    return WeakSolution(solution_text(lines), lines, order, [planted[i] for i in order])
    raise RuntimeError(f"no {profile} incorrect solution found for {task} in {max_tries} tries")


# ---------------------------------------------------------------------------------------------
# The world: training tasks, sub-tasks, paraphrases, foundation problems, held-out tests


@dataclass
class Problem:
    id: str
    task: Task
    text: str
    subtasks: list["Problem"] = field(default_factory=list)
    paraphrases: list["Problem"] = field(default_factory=list)
    prefixes: list["Problem"] = field(default_factory=list)  # its first PREFIX_STEPS steps, asked in its own text
    span: tuple[int, int] | None = None  # a sub-task's steps (first, last) in its task


PREFIX_STEPS = (1, 2)  # prefix sub-tasks ask for the amount after this many steps (easy: as many as easy_sub's runs)


@dataclass
class World:
    hard: list[Problem]  # hard full tasks, each with its sub-tasks, prefix sub-tasks and one paraphrase
    foundation: list[Problem]  # short problems for stage 1
    tests: dict[str, list[Problem]]  # benchmark name -> held-out problems
    report: dict  # what was drawn and left out while building


TEST_SETS = {"miniworld": "hard_steps", "miniworld_long": "long_steps"}  # benchmark -> WorldConfig field


def signature(task: Task) -> tuple:
    """What makes two problems the same problem, whatever their wording."""
    return (task.start, task.steps)


def _hard_problem(rng: random.Random, task_id: str, task: Task, spans: list[tuple[int, int]], phrase) -> Problem:
    """A hard task with its sub-tasks (one per span), a paraphrase and its prefix sub-tasks, phrased in
    that order from `rng` (the order fixes every later draw)."""
    phrasing = phrase(rng, task)
    problem = Problem(task_id, task, render_problem(task, phrasing))
    for j, (first, last) in enumerate(spans):
        part = task.part(first, last)
        # A sub-task keeps its task's name and unit, so it reads as a piece of the same story.
        sub_phrasing = phrase(rng, part)
        sub_phrasing = Phrasing(phrasing.name, phrasing.unit, sub_phrasing.start, sub_phrasing.steps,
                                sub_phrasing.question)
        problem.subtasks.append(Problem(f"{task_id}-sub{j + 1}", part, render_problem(part, sub_phrasing),
                                        span=(first, last)))
    problem.paraphrases.append(Problem(f"{task_id}-para1", task,
                                       render_problem(task, phrase(rng, task, avoid=phrasing))))
    # Prefix sub-tasks reuse the task's own text and draw nothing from rng, so every other problem is as before.
    problem.prefixes = [Problem(f"{task_id}-pre{j}", task.part(0, j - 1), render_problem(task, phrasing, prefix=j),
                                span=(0, j - 1))
                        for j in PREFIX_STEPS]
    return problem


def build_world(seed: int, num_hard: int, num_foundation: int, num_test: int, num_long_test: int,
                config: WorldConfig = WorldConfig()) -> World:
    """Draw the whole world from `seed`. Test problems are drawn first and nothing in training shares
    a task with them: not a hard task, a sub-task, a paraphrase or a foundation problem."""
    if not 1 <= config.phrasings <= 3:
        raise ValueError(f"phrasings must be 1, 2 or 3, got {config.phrasings}")

    def phrase(rng: random.Random, task: Task, avoid: Phrasing | None = None) -> Phrasing:
        return sample_phrasing(rng, task, avoid, config.phrasings)

    report = {"duplicate_draws_skipped": 0, "test_collisions_skipped": 0}
    tests, taken = {}, set()
    for name, size in [("miniworld", num_test), ("miniworld_long", num_long_test)]:
        rng, problems = random.Random(f"miniworld/{seed}/test/{name}"), []
        while len(problems) < size:
            _check_draws(report, size, name)
            task = sample_task(rng, rng.randint(*getattr(config, TEST_SETS[name])), config)
            if signature(task) in taken:
                report["duplicate_draws_skipped"] += 1
                continue
            taken.add(signature(task))
            problems.append(Problem(f"{name}-{len(problems):05d}", task, render_problem(task, phrase(rng, task))))
        tests[name] = problems
    test_signatures = set(taken)

    rng, hard = random.Random(f"miniworld/{seed}/hard"), []
    while len(hard) < num_hard:
        _check_draws(report, num_hard, "hard tasks")
        task = sample_task(rng, rng.randint(*config.hard_steps), config)
        spans = subtask_spans(len(task.steps), rng)
        parts = [task.part(first, last) for first, last in spans]
        if signature(task) in taken:
            report["duplicate_draws_skipped" if signature(task) not in test_signatures
                   else "test_collisions_skipped"] += 1
            continue
        if any(signature(p) in test_signatures for p in parts):
            report["test_collisions_skipped"] += 1
            continue
        taken.add(signature(task))
        hard.append(_hard_problem(rng, f"mw-{len(hard):06d}", task, spans, phrase))

    rng, foundation = random.Random(f"miniworld/{seed}/foundation"), []
    while len(foundation) < num_foundation:
        task = sample_task(rng, rng.randint(*config.foundation_steps), config)
        if signature(task) in test_signatures:
            report["test_collisions_skipped"] += 1
            continue
        foundation.append(Problem(f"mw-found-{len(foundation):06d}", task, render_problem(task, phrase(rng, task))))
    return World(hard, foundation, tests, report)


CORPUS_PROBLEMS = 3000


def _check_draws(report: dict, wanted: int, what: str) -> None:
    """Distinct tasks can run out in a small world: stop with advice rather than loop forever."""
    if report["duplicate_draws_skipped"] + report["test_collisions_skipped"] > 20 * wanted + 10_000:
        raise ValueError(f"the world has too few distinct tasks for {wanted} {what} (skipped {report}): "
                         "ask for fewer, or allow larger numbers or more steps")


def corpus(world: World):
    """Texts to train the world's tokenizer on: every training prompt (problem + instruction) and correct
    solution, and the chat roles, so the prompt's fixed words and the template's headers get one token each."""
    yield from ["user\n\n", "assistant\n\n", "system\n\n"] * 1000
    # A few thousand problems hold every word and number of the world; more only slows training down.
    # Prefix sub-tasks are left out, so the tokenizer is the same as before they existed (byte-level BPE
    # still encodes their question's few new words, in more tokens).
    for problem in world.foundation[:CORPUS_PROBLEMS] + world.hard[:CORPUS_PROBLEMS]:
        for p in [problem] + problem.subtasks + problem.paraphrases:
            yield user_message(p.text)
            yield correct_solution(p.task)


def to_pool(problems: list[Problem], seed: int, hard_profile: str | None = None, sub_profile: str | None = None,
            subtasks: bool = True, paraphrases: bool = True, prefixes: bool = False) -> list:
    """Problems as the data pipeline's PoolItems: each with its correct solution and, where a
    profile is given, an incorrect one drawn per that profile (seeded by the problem's id, so the
    same problem gets the same incorrect solution whatever else is built). Sub-tasks, prefix sub-tasks
    (with sub_profile, as sub-tasks) and paraphrases come along when asked for: leaving them out saves
    time when no set needs them.

    A paraphrase gets its task's incorrect solution (the same steps, the same errors): rewording a
    problem does not change what its supervision teaches, as with the paper's rephrased data.
    """
    pool = []
    for problem in problems:
        item = _pool_item(problem, seed, hard_profile)
        if subtasks:
            item.subtasks = [_pool_item(sub, seed, sub_profile, parent_id=problem.id) for sub in problem.subtasks]
        if paraphrases:
            item.paraphrases = [_pool_item(para, seed, None, item.incorrect, parent_id=problem.id)
                                for para in problem.paraphrases]
        if prefixes:
            item.prefixes = [_pool_item(pre, seed, sub_profile, parent_id=problem.id) for pre in problem.prefixes]
        pool.append(item)
    return pool


def _pool_item(problem: Problem, seed: int, profile: str | None, incorrect: list | None = None, **meta):
    n = len(problem.task.steps)
    if incorrect is None:
        incorrect = []
        if profile is not None:
            weak = weak_solution(problem.task, profile, random.Random(f"weak/{seed}/{profile}/{problem.id}"))
            incorrect.append(Solution(weak.text, False, len(weak.error_steps) / n,
                                      {"profile": profile, "error_steps": weak.error_steps, "error_kinds": weak.kinds}))
    return PoolItem(id=problem.id, problem=problem.text, answer=str(problem.task.answer),
                    correct=[Solution(correct_solution(problem.task), True, 0.0)], incorrect=incorrect,
                    meta={"source": "miniworld", "steps": n, **meta,
                          **({"span": list(problem.span)} if problem.span else {})})
