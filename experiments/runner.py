"""What every study script in experiments/ shares: running the project's commands in worker processes,
a pool of jobs that start when what they need is done, progress with an ETA, and the statistics
(mean and standard error over seeds; 95% intervals over seeds and test problems, paired by seed and
problem; verdict words; rank correlation).

Reading order: the commands and the pools; the statistics; the figures (matplotlib optional).
"""
import glob
import hashlib
import json
import math
import os
import signal
import sys
import threading
import time
import concurrent.futures
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from w2s.verifier import average_ranks  # noqa: E402


# ---------------------------------------------------------------------------------------------
# Running commands, and a pool that runs jobs as soon as what they need is done


@dataclass(frozen=True)
class TrainSettings:
    """Where one train.py run departs from the study's own stage-1 or stage-2 settings (None: the study's)."""
    max_steps: int | None = None
    epochs: int | None = None
    lr: float | None = None
    batch_size: int | None = None
    model: str = "tiny"  # a train.py preset
    extra: tuple[str, ...] = ()  # more train.py flags: an objective and its settings


class Progress:
    """One line per job started or finished, with the elapsed time and an ETA from the work done so far."""

    def __init__(self, total_cost: float):
        self.total_cost, self.done_cost, self.lock = total_cost, 0.0, threading.Lock()
        self.start = time.time()
        self.finished = self.skipped_cost = 0.0

    def log(self, message: str) -> None:
        elapsed = time.time() - self.start
        with self.lock:
            worked = self.done_cost - self.skipped_cost
            left = self.total_cost - self.done_cost
            eta = f", ETA {left * elapsed / worked / 60:.0f} min" if worked > 0 and left > 0 else ""
            print(f"[{time.strftime('%H:%M:%S')} +{elapsed / 60:.1f} min{eta}] {message}", flush=True)

    def add(self, cost: float, skipped: bool = False) -> None:
        with self.lock:
            self.done_cost += cost
            self.skipped_cost += cost if skipped else 0.0


def run_stage(script: str, argv: list[str], log_path: str) -> float:
    """`python <script>.py <argv>`, run by calling the script's main(argv) in this (worker) process, its
    output appended to log_path. The same as the command line, without importing torch again for each
    of the study's ~80 stages (about 3 s of CPU each). Returns the seconds it ran."""
    import importlib
    from contextlib import redirect_stderr, redirect_stdout

    started = time.perf_counter()
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "a") as log, redirect_stdout(log), redirect_stderr(log):
        print(f"\n$ python {script}.py {' '.join(argv)}", flush=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C ends the command (see start_worker)
        try:
            importlib.import_module(script).main(argv)
            code = 0
        except SystemExit as e:  # argparse and the scripts' own errors exit; a failed stage must not end the worker
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            if e.code not in (None, 0) and not isinstance(e.code, int):
                print(e.code)
        except Exception:
            import traceback

            traceback.print_exc()
            code = 1
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
    if code != 0:
        with open(log_path) as f:
            tail = "".join(f.readlines()[-15:])
        raise RuntimeError(f"`python {script}.py {' '.join(argv)}` failed (exit {code}); "
                           f"its log is {log_path}:\n{tail}")
    return time.perf_counter() - started


def count_rows(path: str) -> int:
    """Rows of a JSONL file (0 when it does not exist yet)."""
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        return sum(1 for line in f if line.strip())


def start_worker(threads: int) -> None:
    """A worker process runs one stage at a time with `threads` threads, from the repository root.
    Ctrl-C reaches it only while it runs a command (which then ends as on the command line): an idle
    worker ignores it, and the study stops the pool."""
    import torch

    os.chdir(REPO)
    torch.set_num_threads(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Jobs:
    """A pool of `workers` threads, each running one command at a time. A job waits for the jobs it
    depends on; jobs are added in an order where dependencies come first, so a waiting job only ever
    waits on jobs already running or done (no deadlock)."""

    def __init__(self, workers: int):
        self.pool = ThreadPoolExecutor(workers)
        self.futures = {}

    def add(self, name: str, work, after: tuple[str, ...] = ()) -> None:
        needed = [self.futures[a] for a in after]

        def job():
            for future in needed:
                future.result()  # a failed dependency fails this job too
            return work()

        self.futures[name] = self.pool.submit(job)

    def wait(self) -> dict[str, BaseException]:
        """Wait for every job; the failures by job name. Ctrl-C cancels every job not yet started and is
        raised again (the running commands got it too, and end)."""
        failures = {}
        try:
            for name, future in self.futures.items():
                # Wait in short slices: a signal the kernel hands to another thread of this process is
                # run (as KeyboardInterrupt) only when the main thread returns to Python code.
                while not future.done():
                    concurrent.futures.wait([future], timeout=0.5)
                try:
                    future.result()
                except Exception as e:  # noqa: BLE001 - reported below, the other jobs go on
                    failures[name] = e
        except KeyboardInterrupt:
            self.pool.shutdown(wait=False, cancel_futures=True)
            raise
        self.pool.shutdown()
        return failures


def marked_job(progress: Progress, cost: float, marker: str, what: str, work) -> None:
    """A job that leaves the file `marker` once done: skipped when it exists (its cost counted as done),
    else work() runs between a start line and a done line with its time (and the note work() returns,
    if any). The marker is written last, so a killed job runs again."""
    if os.path.exists(marker):
        progress.add(cost, skipped=True)
        return
    started = time.time()
    progress.log(f"start  {what}")
    note = work()
    open(marker, "w").close()
    progress.add(cost)
    progress.log(f"done   {what} in {time.time() - started:.0f} s{note or ''}")


COMMAND_SOURCES = ("*.py", "w2s/**/*.py")  # what the commands a study runs import
STUDY_SOURCES = COMMAND_SOURCES + ("experiments/*.py",)  # and the study's own scripts


def code_fingerprint(repo: str = REPO, sources: tuple = STUDY_SOURCES) -> str:
    """A hash of the project's Python sources (by default the commands, w2s/ and experiments/): what a
    study's results depend on besides their inputs and settings."""
    paths = sorted({p for pattern in sources for p in glob.glob(os.path.join(repo, pattern), recursive=True)})
    digest = hashlib.sha256()
    for path in paths:
        digest.update(os.path.relpath(path, repo).encode() + b"\0")
        with open(path, "rb") as f:
            digest.update(f.read() + b"\0")
    return digest.hexdigest()[:16]


class CodeChanged(RuntimeError):
    pass


class Workers:
    """`jobs` worker processes (spawned: a clean interpreter each, nothing inherited from this one's
    threads), each importing torch once and running command after command with `threads` threads.

    A worker keeps the modules it imported, so a command's code (the scripts, w2s/) edited under a
    running study would mix versions: a module imported before the edit stays old, one imported after is
    new. So their fingerprint is taken when the workers start, and no command starts once it has changed.
    (The study's own scripts, experiments/, are loaded once at the start: editing them mid-run is safe.)
    `code` fingerprints everything, the study's scripts too: what an invocation ran, for its record."""

    def __init__(self, jobs: int, threads: int, repo: str = REPO, record: str | None = None):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.jobs, self.threads, self.repo = jobs, threads, repo
        self.record, self.record_lock = record, threading.Lock()  # RECORD: a JSONL row per command, its time
        self.code = code_fingerprint(repo)
        self.command_code = code_fingerprint(repo, COMMAND_SOURCES)
        self.pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=start_worker, initargs=(threads,))

    def check_code(self) -> None:
        now = code_fingerprint(self.repo, COMMAND_SOURCES)
        if now != self.command_code:
            raise CodeChanged(f"the commands' Python sources (*.py, w2s/) changed on disk while this study ran "
                              f"(fingerprint {self.command_code} at its start, {now} now): its workers hold the old "
                              "modules, so a new command would mix versions. Rerun the same command to resume with the "
                              "new code.")

    def run(self, script: str, argv: list[str], log_path: str) -> None:
        """A project command (`python <script>.py <argv>`), in the next free worker process."""
        self.check_code()
        seconds = self.pool.submit(run_stage, script, argv, log_path).result()
        if self.record:
            row = {"script": script, "log": log_path, "seconds": round(seconds, 2), "threads": self.threads}
            with self.record_lock, open(self.record, "a") as f:
                f.write(json.dumps(row) + "\n")

    def shutdown(self) -> None:
        self.pool.shutdown()

    def stop(self) -> None:
        """After Ctrl-C: no command starts (a shut-down pool refuses new ones); the pool goes when the
        running ones have ended."""
        self.pool.shutdown(wait=False, cancel_futures=True)


def command_costs(rows: list[dict], out: str, worker_minutes: float) -> list[str]:
    """Where a study's time goes, from its commands' records (Workers' RECORD): minutes by part of the
    study (the first folder of a command's log under OUT: runs = Q1-Q4, q5, easy_to_hard = Q6, ...) and
    by command, beside the workers' whole time (WORKER_MINUTES: wall time x workers), whose rest is
    start-up, waiting on other jobs, and the study's own work between commands."""
    scripts = ["train", "sample", "evaluate", "data_prep"]
    table: dict[str, dict[str, float]] = {}
    for row in rows:
        part = os.path.relpath(row["log"], out).split(os.sep)[0]
        table.setdefault(part, {})[row["script"]] = table.get(part, {}).get(row["script"], 0.0) + row["seconds"] / 60
    lines = ["| part of the study (folder) | " + " | ".join(f"{s}.py min" for s in scripts) + " | all |",
             "|---|" + "---:|" * (len(scripts) + 1)]
    for part, by in sorted(table.items(), key=lambda kv: -sum(kv[1].values())):
        cells = " | ".join(f"{by.get(s, 0):.1f}" for s in scripts)
        lines.append(f"| {part} | {cells} | {sum(by.values()):.1f} |")
    total = sum(r["seconds"] for r in rows) / 60
    lines.append("| all | " + " | ".join(f"{sum(r['seconds'] for r in rows if r['script'] == s) / 60:.1f}"
                                         for s in scripts) + f" | {total:.1f} |")
    lines += ["", f"Commands ran {total:.1f} of the workers' {worker_minutes:.1f} minutes; the other "
              f"{max(worker_minutes - total, 0):.1f} went to start-up, waiting on other jobs and the study's own work."]
    return lines


# ---------------------------------------------------------------------------------------------
# Statistics


def mean_and_spread(values: list[float]) -> dict:
    """Mean, sample standard deviation across seeds, standard error of the mean, min and max."""
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else float("nan")
    return {"n": n, "mean": mean, "std": std, "se": std / math.sqrt(n) if n > 1 else float("nan"),
            "min": min(values), "max": max(values), "values": values}


def summarize(results: list[dict]) -> dict[str, dict[str, dict]]:
    """condition -> bench -> accuracy statistics over seeds (in seed order), and the test-sampling
    standard error of one run."""
    by_condition: dict[str, dict[str, list]] = {}
    for row in sorted(results, key=lambda r: (r["condition"], -1 if r["seed"] is None else r["seed"])):
        for bench, r in row["benches"].items():
            by_condition.setdefault(row["condition"], {}).setdefault(bench, []).append({**r, "seed": row["seed"]})
    summary = {}
    for condition, benches in by_condition.items():
        summary[condition] = {}
        for bench, runs in benches.items():
            stats = mean_and_spread([r["accuracy"] for r in runs])
            problems = runs[0]["problems"]
            # The binomial standard error of one run's accuracy: what a bigger test set would shrink.
            stats["test_se"] = math.sqrt(stats["mean"] * (1 - stats["mean"]) / problems)
            stats["problems"] = problems
            stats["seeds"] = [r["seed"] for r in runs]
            stats["step"] = mean_and_spread([r["step_accuracy"] for r in runs])
            summary[condition][bench] = stats
    return summary


# Intervals. A comparison's uncertainty has two parts: how much it moves from seed to seed (training
# randomness, every model it rests on seeded), and how much it would move on another draw of test
# problems (the test set is fixed for every seed, so the seed spread cannot see it). The interval is
# mean ± t(n-1) x sqrt(seed variance / n + test variance): Student's t at n-1 degrees of freedom for
# the seeds (n = 5 makes it 2.78 standard errors, not 2), and the test term from the per-problem
# outcomes (a paired difference on the same problems: the variance over problems of the per-problem
# difference, averaged over seeds, / problems).

_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045,
         2.042]


def t_quantile(df: int) -> float:
    """The two-sided 95% quantile of Student's t with `df` degrees of freedom (1.96 from 31 on; df 0:
    no seed spread to scale, the normal quantile for the test term alone)."""
    return _T975[df - 1] if 1 <= df <= len(_T975) else 1.96


@dataclass
class Interval:
    """A mean (over seeds) with its 95% interval: mean ± half."""
    mean: float
    half: float
    n: int  # seeds
    seed_se: float  # the seeds' standard error (nan with one seed)
    test_se: float  # the test set's sampling error of the mean
    values: tuple[float, ...] = ()  # the per-seed values the mean is over (the spread beside a verdict)

    @property
    def lo(self) -> float:
        return self.mean - self.half

    @property
    def hi(self) -> float:
        return self.mean + self.half

    def accuracy_bounds(self) -> tuple[float, float]:
        """The interval of an accuracy, cut to 0-1 (the symmetric interval of a spread-out mean can pass 100%)."""
        return max(self.lo, 0.0), min(self.hi, 1.0)

    def seed_values(self, scale: float = 100.0) -> str:
        """The per-seed values, in seed order: "+50.0, +25.0, +0.0"."""
        return ", ".join(f"{v * scale:+.1f}" for v in self.values)

    def text(self, scale: float = 100.0, unit: str = " points", per_seed: bool = True) -> str:
        """"+10.3 points (95% CI +7.0 to +13.6, 5 seeds: +9.1, ...)": the per-seed values show the spread
        behind the interval (one low seed, or all alike)."""
        seeds = ": " + self.seed_values(scale) if per_seed and len(self.values) > 1 else ""
        return (f"{self.mean * scale:+.1f}{unit} (95% CI {self.lo * scale:+.1f} to {self.hi * scale:+.1f}, "
                f"{self.n} seeds{seeds})")


def interval(values: list[float], test_variance: float = 0.0) -> Interval:
    """mean ± t(n-1) x sqrt(s^2/n + test_variance) over per-seed values."""
    n = len(values)
    mean = sum(values) / n
    seed_var = sum((v - mean) ** 2 for v in values) / (n - 1) / n if n > 1 else 0.0
    half = t_quantile(n - 1) * math.sqrt(seed_var + test_variance)
    return Interval(mean, half, n, math.sqrt(seed_var) if n > 1 else float("nan"), math.sqrt(test_variance),
                    tuple(values))


def per_problem_test_variance(a: list[list[float]], b: list[list[float]] | None = None) -> float:
    """The test set's sampling variance of mean(a) (or of mean(a) - mean(b), paired by problem): a and b
    hold one list per seed of per-problem outcomes (1/0 right, or the share of steps right), in the
    same problem order. The per-problem value is averaged over seeds, and its variance over problems
    divided by the number of problems."""
    problems = len(a[0])
    if problems < 2:
        return 0.0
    per = [sum(run[i] for run in a) / len(a) for i in range(problems)]
    if b is not None:
        per = [p - sum(run[i] for run in b) / len(b) for i, p in enumerate(per)]
    mean = sum(per) / problems
    return sum((p - mean) ** 2 for p in per) / (problems - 1) / problems


def binomial_test_variance(p: float, problems: int) -> float:
    """The binomial term for one accuracy on `problems` problems (when per-problem outcomes are not kept)."""
    return p * (1 - p) / problems if problems else 0.0


def decide(iv: Interval | None, expected_sign: int = 1) -> str:
    """The verdict word for one comparison against the paper's direction: 'reproduced' (the 95% interval
    excludes zero on the paper's side), 'contradicted' (on the other side), else 'no clear difference'.
    expected_sign 0: the paper makes no claim; 'clearly higher' / 'clearly lower' / 'no clear difference'."""
    if iv is None:
        return "not measured"
    if expected_sign == 0:  # a comparison the paper makes no claim about: only whether it differs
        return "clearly higher" if iv.lo > 0 else "clearly lower" if iv.hi < 0 else "no clear difference"
    low, high = sorted((iv.lo * expected_sign, iv.hi * expected_sign))  # the interval, the paper's side positive
    if low > 0:
        return "reproduced"
    if high < 0:
        return "contradicted"
    return "no clear difference"


def seed_runs(results: list[dict], condition: str, bench: str = "miniworld") -> dict:
    """seed -> that run's results on `bench` (results.jsonl rows of one condition)."""
    return {r["seed"]: r["benches"][bench] for r in results if r["condition"] == condition and bench in r["benches"]}


def outcomes_interval(runs: dict) -> Interval | None:
    """The mean accuracy over seeds with its 95% interval, from seed -> per-problem outcomes."""
    if not runs:
        return None
    outcomes = [runs[s] for s in sorted(runs, key=lambda s: -1 if s is None else s)]
    return interval([sum(o) / len(o) for o in outcomes], per_problem_test_variance(outcomes))


def outcomes_difference(a: dict, b: dict) -> Interval | None:
    """mean(a) - mean(b) over the seeds both have (seed -> per-problem outcomes), paired by seed and by
    problem, with its 95% interval; None without a common seed."""
    seeds = sorted(set(a) & set(b), key=lambda s: -1 if s is None else s)
    if not seeds:
        return None
    values = [sum(a[s]) / len(a[s]) - sum(b[s]) / len(b[s]) for s in seeds]
    return interval(values, per_problem_test_variance([a[s] for s in seeds], [b[s] for s in seeds]))


def _measure(run: dict, steps: bool) -> tuple[float, list | None]:
    """A run's value (final answers right, or steps right) and its per-problem outcomes (None in rows
    written before they were kept)."""
    return (run["step_accuracy"], run.get("step_outcomes")) if steps else (run["accuracy"], run.get("outcomes"))


def condition_interval(results: list[dict], condition: str, steps: bool = False,
                       bench: str = "miniworld") -> Interval | None:
    """One condition's mean over seeds with its 95% interval (seeds and the test set's sampling)."""
    runs = seed_runs(results, condition, bench)
    if not runs:
        return None
    measured = [_measure(runs[s], steps) for s in sorted(runs)]
    values, outcomes = [v for v, _ in measured], [o for _, o in measured]
    if all(o is not None for o in outcomes):
        test_variance = per_problem_test_variance(outcomes)
    else:
        mean = sum(values) / len(values)
        test_variance = binomial_test_variance(mean, runs[min(runs)]["problems"])
    return interval(values, test_variance)


def paired_interval(results: list[dict], a: str, b: str, steps: bool = False,
                    bench: str = "miniworld") -> Interval | None:
    """acc(a) - acc(b), paired by seed (every condition of a seed starts from that seed's models, so the
    per-seed difference cancels how good they happened to be) and by test problem, with its 95%
    interval. None unless both ran on at least one common seed."""
    runs_a, runs_b = seed_runs(results, a, bench), seed_runs(results, b, bench)
    seeds = sorted(set(runs_a) & set(runs_b), key=lambda s: -1 if s is None else s)
    if not seeds:
        return None
    pairs = [(_measure(runs_a[s], steps), _measure(runs_b[s], steps)) for s in seeds]
    diffs = [va - vb for (va, _), (vb, _) in pairs]
    if all(oa is not None and ob is not None for (_, oa), (_, ob) in pairs):
        test_variance = per_problem_test_variance([oa for (_, oa), _ in pairs], [ob for _, (_, ob) in pairs])
    else:
        problems = runs_a[seeds[0]]["problems"]
        test_variance = sum(binomial_test_variance(v, problems) for v in (
            sum(va for (va, _), _ in pairs) / len(pairs), sum(vb for _, (vb, _) in pairs) / len(pairs)))
    return interval(diffs, test_variance)


def spearman(xs: list[float], ys: list[float]) -> float:
    """Rank correlation (average ranks for ties), without scipy."""
    rx, ry = average_ranks(xs), average_ranks(ys)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    var = math.sqrt(sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry))
    return cov / var if var else float("nan")


# ---------------------------------------------------------------------------------------------
# The report


def pct(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None or x != x else f"{x * 100:.{digits}f}"


# ---------------------------------------------------------------------------------------------
# Figures (optional: matplotlib is not a dependency)


def pyplot():
    """matplotlib.pyplot drawing to files only, or None where matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def save_figure(plt, fig, path: str) -> str:
    """Lay the figure out, write it to `path` and close it; returns the path."""
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def accuracy_bars(ax, summary: dict, names: list[str], labels: list[str], fontsize: int = 8,
                  bench: str = "miniworld") -> None:
    """Two bars per condition, final answers right and steps right on `bench` (mean ± SE over seeds),
    each seed a dot."""
    for offset, (label, pick, color) in enumerate([("final answer right", lambda m: m, "tab:blue"),
                                                  ("steps right", lambda m: m["step"], "tab:orange")]):
        x = [i + (offset - 0.5) * 0.38 for i in range(len(names))]
        stats = [pick(summary[c][bench]) for c in names]
        ax.bar(x, [st["mean"] * 100 for st in stats], width=0.38, color=color, label=label,
               yerr=[st["se"] * 100 if st["n"] > 1 else 0 for st in stats], capsize=3)
        for xi, st in zip(x, stats):  # each seed as a dot
            ax.scatter([xi] * len(st["values"]), [v * 100 for v in st["values"]], color="black", s=8, zorder=3)
    ax.set_xticks(range(len(names)), labels, fontsize=fontsize)


def not_a_script(doc: str, path: str) -> None:
    """For a module of the study run as a script: --help shows its docstring and what runs it, anything
    else exits saying so."""
    import argparse

    argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter,
                            epilog="Run it through the study: python experiments/mini_study.py "
                                   "(--help lists its options).").parse_args()
    raise SystemExit(f"{path}: not a script of its own; run python experiments/mini_study.py")


if __name__ == "__main__":
    not_a_script(__doc__, __file__)
