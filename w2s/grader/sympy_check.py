"""Sympy equivalence of two LaTeX expressions, run in helper processes that can be killed.

Reading order:

1. `sympy_equal(pred, gold, deadline, tolerance)`: the one call the grader makes. Verdicts are cached.
2. `_HelperPool` / `_SympyHelper`: persistent helper processes, one question a line over a pipe.
   Sympy can take forever (simplifying `10^{10^{10^{10}}}` builds the integer), and the only time
   limit that works from any thread, inside daemonic worker processes and around C-level
   big-integer loops is to run the work in another process and kill it when time is up.
   `signal.alarm` only works in the main thread and cannot interrupt a long C call. The helpers
   are started with `subprocess` (not `multiprocessing`), so a grader called inside a
   multiprocessing pool worker (a daemon, which may not have multiprocessing children) still works.
3. What runs inside a helper (this file run as a script; it imports sympy, the parent never does):
   `_latex_to_sympy`, then values (exactly for rationals, to 40 digits for closed forms, at
   probe points for expressions with symbols) and relations (same solution set).

LaTeX is parsed by sympy's own parser, ANTLR backend, in strict mode: it needs exactly
`antlr4-python3-runtime==4.11.0`. Strict matters: the lenient default silently drops what it
cannot read (`2\\sqrt2` -> 2, `1,-2` -> 1, `1+` -> 1), turning wrong answers into right ones.
The Lark backend was measured too: equally strict but 3-5x slower (an Earley parser: 30-50 ms per
expression), it evaluates while parsing and it has no `\\pi`.
"""
import atexit
import ctypes
import json
import os
import queue
import re
import select
import signal
import subprocess
import sys
import threading
import time
from fractions import Fraction
from functools import lru_cache

NUMBER_REL_TOL = 1e-6  # decimal coefficients in expressions with symbols: 0.3333333x is x/3, 0.33x is not
MAX_HELPERS = int(os.environ.get("W2S_GRADER_HELPERS", "0")) or min(4, os.cpu_count() or 1)  # sympy processes


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

    def ask(self, question: tuple[str, str, str], timeout: float) -> bool | None:
        """The verdict, or None when the helper ran out of time or died (it is then killed)."""
        try:
            self.process.stdin.write(json.dumps(question) + "\n")
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

    def check(self, question: tuple[str, str, str], timeout: float) -> bool | None:
        """The helper's verdict, or None when it ran out of time (it is then replaced)."""
        with self.slots:  # at most MAX_HELPERS helpers busy; other threads wait here
            helper = None
            while helper is None or not helper.alive():  # an idle helper may have died: start another
                try:
                    helper = self.idle.get_nowait()
                except queue.Empty:
                    helper = self._new_helper()
            verdict = helper.ask(question, timeout)
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


def sympy_equal(pred: str, gold: str, deadline: float, tolerance: Fraction = Fraction(0)) -> bool:
    """Ask a helper with the time left until `deadline`; out of time is False (and not cached).

    A nonzero `tolerance` is how far apart two constants may be (the grader's decimal rule).
    """
    key = (pred, gold, str(tolerance))
    verdict = _sympy_verdicts.get(key)
    if verdict is not None:
        return verdict
    time_left = deadline - time.monotonic()
    if time_left <= 0:
        return False
    verdict = _pool.check(key, time_left)
    if verdict is None:
        return False
    if len(_sympy_verdicts) >= 1 << 16:
        _sympy_verdicts.clear()
    _sympy_verdicts[key] = verdict
    return verdict


# ---- what runs inside a helper process
# Each function here imports sympy itself: only a helper ever imports it, never the parent (seconds and
# hundreds of MB in every process that grades).

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
        import resource  # here, not at the top: POSIX only, and only the helper sets a limit
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
            pred, gold, tolerance = json.loads(line)
            verdict = _sympy_expressions_equal(pred, gold, tolerance)
        except BaseException:  # noqa: BLE001 - any failure (parse error, MemoryError, recursion) is "not equal"
            verdict = False
        print("1" if verdict else "0", flush=True)


@lru_cache(maxsize=4096)
def _latex_to_sympy(latex: str):
    import sympy  # here: only a helper process runs this; the parent never imports sympy
    from sympy.parsing.latex import parse_latex

    latex = re.sub(r"(\d)\s*[eE]\s*([-+]?\d+)", r"\1\\times 10^{\2}", latex)  # 1.5e3, not 1.5*e*3
    expr = parse_latex(latex, strict=True)
    # The parser reads \pi, e and i as plain symbols; in an answer they are the constants.
    constants = {sympy.Symbol("pi"): sympy.pi, sympy.Symbol("e"): sympy.E, sympy.Symbol("i"): sympy.I}
    return expr.subs(constants)


def _sympy_expressions_equal(pred: str, gold: str, tolerance: str = "0") -> bool:
    import sympy  # here: only a helper process runs this; the parent never imports sympy

    a, b = _latex_to_sympy(pred), _latex_to_sympy(gold)
    if isinstance(a, sympy.MatrixBase) or isinstance(b, sympy.MatrixBase):
        return (isinstance(a, sympy.MatrixBase) and isinstance(b, sympy.MatrixBase) and a.shape == b.shape
                and all(_values_equal(x, y) for x, y in zip(a, b)))
    if isinstance(a, sympy.core.relational.Relational) or isinstance(b, sympy.core.relational.Relational):
        return _relations_equal(a, b)
    return _values_equal(a, b, tolerance)


def _values_equal(a, b, tolerance: str = "0") -> bool:
    import sympy  # here: only a helper process runs this; the parent never imports sympy

    if a == b:
        return True
    if a.has(sympy.zoo, sympy.nan, sympy.oo) or b.has(sympy.zoo, sympy.nan, sympy.oo):
        return False  # infinities are equal only when identical (oo - oo is nan)
    if not (a.free_symbols or b.free_symbols):
        return _constants_equal(a, b, tolerance)
    # Cheap and safe first: equal expressions agree at every point. With a decimal coefficient
    # (0.3333333x) agreeing to the decimal tolerance is all that can be asked.
    inexact = a.has(sympy.Float) or b.has(sympy.Float)
    agree = _agree_at_probe_points(a, b, NUMBER_REL_TOL if inexact else 1e-12)
    if agree is False or inexact:
        return bool(agree)
    difference = a - b
    return difference.expand() == 0 or sympy.simplify(difference) == 0


def _constants_equal(a, b, tolerance: str = "0") -> bool:
    """Exactly for rationals (1/2004! is not 1/2006!, however close), else to 50 digits."""
    import sympy  # here: only a helper process runs this; the parent never imports sympy

    a, b = a.doit(), b.doit()
    if a.is_Rational and b.is_Rational:
        return a == b
    a_value, b_value = sympy.N(a, 50), sympy.N(b, 50)
    if not all(v.is_number and v.is_finite for v in (a_value, b_value)):
        return False  # an unevaluated 1/0 only shows up here, as zoo
    if tolerance != "0":  # a decimal with enough digits against a closed form: `125.663` is `40\pi`
        return bool(abs(a_value - b_value) < sympy.Rational(tolerance))
    # Closed forms equal to 40 digits are equal (nested radicals that simplify cannot match);
    # a side written as a decimal gets the decimal tolerance.
    inexact = a.has(sympy.Float) or b.has(sympy.Float)
    tolerance = NUMBER_REL_TOL if inexact else sympy.Float("1e-40")
    return bool(abs(a_value - b_value) <= tolerance * max(abs(a_value), abs(b_value)))


_PROBE_POINTS = ("37/11", "-5/7", "13/3")  # arbitrary, not special: no symmetry or root hits them by chance


def _values_at_probe_points(expr, symbols):
    import sympy  # here: only a helper process runs this; the parent never imports sympy

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
    import sympy  # here: only a helper process runs this; the parent never imports sympy
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


def clear_verdicts() -> None:
    _sympy_verdicts.clear()


def stop_helpers() -> None:
    """Stop the sympy helper processes (and so their parse caches); the next check starts fresh ones.

    Call it only while no check is running.
    """
    _pool.stop()


if __name__ == "__sympy_helper__":
    _helper_main()
