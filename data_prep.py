"""Build the data directory: training sets of chosen quality, test sets, and (built-in world) a tokenizer.

    python data_prep.py                                   # the built-in world into data/
    python data_prep.py --hard-error 0.9 --step-profile low high   # more variants, same dir
    python data_prep.py --source hf                       # the paper's data (hexuan21/weak-to-strong)
    python data_prep.py --stats data/hard_full_e0.9.jsonl  # the quality of a set

Set names carry the quality they were built at, so one directory holds many variants:
`hard_full` is at outcome error 0, `hard_full_e0.9` at 0.9 with the default (mixed) step profile,
`hard_full_e0.9_low` / `_high` with one late slip / errors in every step; easy_sub likewise;
combinations are named by their parts (`hard_full_e0.9+easy_sub`, `hard_full_e0.9_x2`, ...).
"""
import argparse
import json
import os
import re
import sys
import time
from collections import Counter

from w2s import miniworld
from w2s.data import PoolItem, Solution, build_sets, load_sft_examples, problem_from_user_message
from w2s.errors import run_main
from w2s.jsonl import write_jsonl
from w2s.release import HF_REPO, HF_TESTS, read_release, string_field
from w2s.errors import UserError
from w2s.sets import SET_KINDS, builtin_set_args, set_names  # noqa: F401  (builtin_set_args: tests)

BUILTIN_SETS = SET_KINDS  # the built-in world's sets at their default quality (outcome error 0)
BUILTIN_TESTS = tuple(miniworld.TEST_SETS)  # DIR/test/<name>.jsonl
# The settings a built-in world directory is built with (recorded in DIR/manifest.json). A flag left
# out takes the directory's recorded value, so adding a variant to a directory never needs them again.
WORLD_DEFAULTS = {"seed": 0, "num_hard": 30000, "num_foundation": 10000, "num_test": 1000, "num_long_test": 500,
                  "vocab_size": 512, "max_value": miniworld.WorldConfig.max_value,
                  "max_start": miniworld.WorldConfig.start_range[1], "max_add": miniworld.WorldConfig.add_range[1],
                  "max_mul": miniworld.WorldConfig.mul_range[1], "operations": miniworld.WorldConfig.operations,
                  "hard_steps": "3-5",
                  "long_steps": "6-7", "foundation_steps": "1-2", "phrasings": miniworld.WorldConfig.phrasings}


# ---------------------------------------------------------------------------------------------
# Measuring a set


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


def token_lengths(rows: list[dict], tokenizer, cache: dict | None = None, verify: int = 50) -> list[int]:
    """Tokens of each row under the chat template.

    Tokenizing 300k rows whole takes minutes; but the pre-tokenizer never merges across a newline
    or across ". " / "? ", so a text's count is the sum of its lines' and sentences' counts, and
    those repeat a lot (cached). The first `verify` rows are also tokenized whole, as a check.
    """
    from w2s.tokenizer import chat_template_text

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
        return len(tokenizer.raw.encode(chat_template_text(row["messages"], False)[0], add_special_tokens=False).ids)

    lengths = [overhead(r["messages"]) + sum(count(m["content"].strip()) for m in r["messages"]) for r in rows]
    if any(exact(row) != length for row, length in zip(rows[:verify], lengths)):
        return [exact(row) for row in rows]  # some other tokenizer or text: count the slow way
    return lengths


_CHUNK = re.compile(r"(?<=\n)(?!\n)|(?<=[.?])(?= )")


def _rate(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def print_table(stats: dict[str, dict]) -> None:
    """One line per set. outcome err: share of incorrect solutions (checked by the grader); step err:
    wrong steps / all steps (the step checker's count; n/a where steps are not known)."""
    if not stats:
        return
    width = max(len(name) for name in stats) + 2
    print(f"{'set':<{width}}{'examples':>9}{'tokens':>11}{'outcome err':>13}{'step err':>10}")
    for name, s in stats.items():
        tokens = "n/a" if s["tokens"] is None else str(s["tokens"])
        print(f"{name:<{width}}{s['examples']:>9}{tokens:>11}{_rate(s['outcome_error']):>13}{_rate(s['step_error']):>10}")


def histogram(values: list[int], bins: int = 10) -> list[tuple[int, int, int]]:
    """(low, high, count) for equal-width bins over the values."""
    low, high = min(values), max(values)
    width = max(1, -(-(high - low + 1) // bins))
    counts = Counter((v - low) // width for v in values)
    return [(low + b * width, low + (b + 1) * width - 1, counts.get(b, 0)) for b in range(-(-(high - low + 1) // width))]


def stats_command(path: str, tokenizer_path: str | None) -> dict:
    """--stats: counts, outcome and step-wise error rates (rechecked when the rows are built-in world ones), lengths."""
    from w2s.grader import grade

    rows = load_sft_examples(path)
    tokenizer = _find_tokenizer(path, tokenizer_path)
    lengths = token_lengths(rows, tokenizer) if tokenizer else [sum(len(m["content"]) for m in r["messages"]) for r in rows]
    unit = "tokens" if tokenizer else "characters"
    s = measure(rows, lengths if tokenizer else None, recheck_steps=True)
    # Outcome by the grader, against the gold answer in meta, next to what the rows claim.
    graded = [(grade(r["messages"][-1]["content"], str(r["meta"]["answer"])), r["meta"].get("correct"))
              for r in rows if r.get("meta", {}).get("answer") not in (None, "")]
    s["graded"] = len(graded)
    s["outcome_error_by_grader"] = 1 - sum(g for g, _ in graded) / len(graded) if graded else None
    s["grader_disagrees_with_meta"] = sum(isinstance(c, bool) and g != c for g, c in graded)
    s["kinds"] = dict(Counter(r.get("meta", {}).get("kind", "?") for r in rows))
    print(f"{path}: {s['examples']} examples, kinds {s['kinds']}")
    print(f"  outcome error rate: {_rate(s['outcome_error'])} from meta.correct ({s['unknown_correctness']} rows without), "
          f"{_rate(s['outcome_error_by_grader'])} by the grader on {s['graded']} rows with a gold answer "
          f"({s['grader_disagrees_with_meta']} disagree with meta)")
    print(f"  step-wise error rate: {_rate(s['step_error'])} ({s['unknown_step_error']} rows unknown)")
    print(f"  length in {unit}: total {sum(lengths)}, mean {sum(lengths) / len(lengths):.1f}, max {max(lengths)}")
    for low, high, count in histogram(lengths):
        print(f"    {low:>6}-{high:<6} {count:>8} {'#' * round(50 * count / len(lengths))}")
    return s


def _find_tokenizer(path: str, tokenizer_path: str | None):
    from w2s.tokenizer import Tokenizer

    candidate = tokenizer_path or os.path.join(os.path.dirname(os.path.abspath(path)), "tokenizer.json")
    return Tokenizer.from_pretrained(candidate) if tokenizer_path or os.path.exists(candidate) else None


# ---------------------------------------------------------------------------------------------
# Writing


def check_outcomes_with_grader(pool: list[PoolItem]) -> int:
    """The grader must agree with the world's exact check on every solution (a guard on both). Returns the count."""
    from w2s.grader import grade

    checked, seen = 0, set()
    for item in pool:
        for it in [item] + item.subtasks + item.paraphrases:
            for sol in it.correct + it.incorrect:
                if (sol.text, it.answer) in seen:
                    continue
                seen.add((sol.text, it.answer))
                if grade(sol.text, it.answer) != sol.correct:
                    raise RuntimeError(f"{it.id}: the grader says correct={not sol.correct} but the exact check says "
                                       f"{sol.correct} for answer {it.answer!r}:\n{sol.text}")
                checked += 1
    return checked


def write_sets(out: str, sets: dict[str, list[dict]], tokenizer, written: dict[str, dict], cache: dict) -> None:
    for name, rows in sets.items():
        if name in written:
            continue
        write_jsonl(os.path.join(out, f"{name}.jsonl"), rows, cache.setdefault("<lines>", {}))
        written[name] = measure(rows, token_lengths(rows, tokenizer, cache.setdefault("<tokens>", {})) if tokenizer else None)


def write_tests(out: str, tests: dict[str, list[dict]]) -> None:
    os.makedirs(os.path.join(out, "test"), exist_ok=True)
    for name, rows in tests.items():
        write_jsonl(os.path.join(out, "test", f"{name}.jsonl"), rows)
        print(f"wrote {os.path.join(out, 'test', name + '.jsonl')}: {len(rows)} problems")


def write_hard_tasks(out: str, tasks: list[dict]) -> None:
    """The hard training tasks as task rows, for a model teacher to solve (sample.py --tasks)."""
    os.makedirs(os.path.join(out, "tasks"), exist_ok=True)
    write_jsonl(os.path.join(out, "tasks", "hard_full.jsonl"), tasks)
    print(f"wrote {os.path.join(out, 'tasks', 'hard_full.jsonl')}: {len(tasks)} tasks (for sample.py)")


# ---------------------------------------------------------------------------------------------
# A model teacher's samples (sample.py output) as a training set


def sft_from_samples(path: str, teacher: str) -> tuple[list[dict], Counter]:
    """Rows {"id", "problem", "answer", "samples": [...], "correct": [...]?} -> one SFT example per sample.

    Correctness is sample.py's grader verdict (or the grader's, where the row has none); the
    step-wise error rate is measured by the step checker when the problem is of the built-in world.
    """
    from w2s.data import sft_row
    from w2s.jsonl import read_jsonl_numbered
    from w2s.grader import grade

    rows, report = [], Counter()
    for line_no, row in read_jsonl_numbered(path):
        where = f"{path}:{line_no}"
        if not isinstance(row, dict):
            raise UserError(f"{where}: a row must be a JSON object")
        task_id, problem, answer = string_field(row, "id", where), string_field(row, "problem", where), string_field(row, "answer", where)
        samples, verdicts = row.get("samples"), row.get("correct")
        if not isinstance(samples, list) or not all(isinstance(x, str) for x in samples):
            raise UserError(f"{where}: field 'samples' must be a list of strings")
        if verdicts is not None and (not isinstance(verdicts, list) or len(verdicts) != len(samples)
                                     or not all(isinstance(v, bool) for v in verdicts)):
            raise UserError(f"{where}: field 'correct' must be a list of booleans, one per sample")
        item = PoolItem(task_id, problem, answer, [], meta={"source": f"samples/{teacher}", "teacher": teacher})
        for k, text in enumerate(samples):
            if not text.strip():
                report["empty samples (skipped)"] += 1
                continue
            correct = verdicts[k] if verdicts is not None else grade(text, answer)
            row_out = sft_row(f"{task_id}/s{k}", item, Solution(text, correct), "weak_teacher")
            errors = solution_step_errors(row_out)
            if errors is not None:
                row_out["meta"].update(step_error_rate=sum(errors) / len(errors), steps=len(errors))
            rows.append(row_out)
            report["samples"] += 1
    if not rows:
        raise UserError(f"{path}: no samples to train on")
    return rows, report


def from_samples_command(args) -> None:
    stem = os.path.basename(args.from_samples).rsplit(".", 1)[0]
    name = args.name or f"weak_{stem}"
    rows, report = sft_from_samples(args.from_samples, name)
    os.makedirs(args.out, exist_ok=True)
    tokenizer = _find_tokenizer(os.path.join(args.out, "x.jsonl"), args.tokenizer)
    written = {}
    write_sets(args.out, {name: rows}, tokenizer, written, {})
    print(f"{args.from_samples}: {dict(report)}")
    print_table(written)
    print(f"wrote {os.path.join(args.out, name + '.jsonl')}")


def verifier_data_command(args) -> None:
    """Step rows for train.py --objective prm (w2s/verifier_data.py): from samples, PRM800K or Math-Shepherd."""
    from w2s import verifier_data

    if args.verifier_from_samples:
        source = args.verifier_from_samples
        name = args.name or f"steps_{os.path.basename(source).rsplit('.', 1)[0]}"
        rows, report = verifier_data.step_rows_from_samples(source, args.outcome, args.verifier_split)
    else:
        source = args.input
        name = args.name or args.source.replace("-", "_")
        convert = verifier_data.from_prm800k if args.source == "prm800k" else verifier_data.from_math_shepherd
        rows, report = convert(source)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, name + ".jsonl")
    write_jsonl(path, rows)
    print(f"{source}: {dict(report)}")
    print(f"wrote {len(rows)} step rows to {path}")
# ---------------------------------------------------------------------------------------------
# Weak-to-strong reasoning (Yang et al. 2024): sets selected from samples without gold (w2s/selection.py)


def _write_selection(out: str, name: str, rows: list[dict], report: dict) -> None:
    """OUT/NAME.jsonl and, beside it, NAME.report.json (the counts and the measured quality)."""
    os.makedirs(out, exist_ok=True)
    write_jsonl(os.path.join(out, f"{name}.jsonl"), rows)
    with open(os.path.join(out, f"{name}.report.json"), "w") as f:
        json.dump(report, f, indent=2)
    for key, value in report.items():
        print(f"  {key}: {value}")
    print(f"wrote {os.path.join(out, name + '.jsonl')}: {len(rows)} rows (report in {name}.report.json)")


def _stem(path: str) -> str:
    return os.path.basename(path).rsplit(".", 1)[0]


def agree_command(args) -> dict:
    """--agree A B: the hybrid SFT set of the tasks whose first samples' final answers agree."""
    from w2s import selection

    path_a, path_b = args.agree
    rows_a, rows_b = selection.load_samples(path_a), selection.load_samples(path_b)
    by_id = selection.same_tasks(rows_a, path_a, rows_b, path_b)
    source_a, source_b = (_stem(path_a), _stem(path_b)) if _stem(path_a) != _stem(path_b) else ("a", "b")
    rows, counts = selection.agreement_set(rows_a, by_id, source_a, source_b)
    report = {"sources": {source_a: path_a, source_b: path_b}, **counts, "examples": len(rows)}
    quality = selection.diagnose_hybrid(rows, {r["id"]: r for r in rows_a})  # gold, for the report only
    if quality is not None:
        report.update(quality, first_sample_accuracy={source_a: selection.first_sample_accuracy(rows_a),
                                                      source_b: selection.first_sample_accuracy(list(by_id.values()))})
    print(f"agreement of {path_a} and {path_b}:")
    _write_selection(args.out, args.name, rows, report)
    return report


def pairs_command(args) -> dict:
    """--pairs STRONG --weak WEAK: DPO pairs by the strong samples' confidence and the weak answer."""
    from w2s import selection

    strong = selection.load_samples(args.pairs)
    weak = selection.same_tasks(strong, args.pairs, selection.load_samples(args.weak), args.weak)
    rows, counts = selection.confidence_pairs(strong, weak, min_confidence=args.min_confidence,
                                              flip_confidence=args.flip_confidence, max_pairs=args.max_pairs,
                                              seed=args.seed or 0)
    report = {"strong": args.pairs, "weak": args.weak, "min_confidence": args.min_confidence,
              "flip_confidence": args.flip_confidence, "max_pairs": args.max_pairs, "seed": args.seed or 0,
              **dict(sorted(counts.items())), "pairs": len(rows)}
    quality = selection.diagnose_pairs(rows, {r["id"]: r for r in strong})  # gold, for the report only
    if quality is not None:
        report.update(quality)
    print(f"confidence pairs from {args.pairs} (weak: {args.weak}):")
    _write_selection(args.out, args.name, rows, report)
    return report


def check_manifest(out: str, manifest: dict, write: bool = True) -> None:
    """One directory holds one world: refuse to mix seeds, sizes or sources (tests would stop being held out).
    The first build into a directory records its settings there (`write`)."""
    path = os.path.join(out, "manifest.json")
    if os.path.exists(path):
        old = read_manifest(out)
        if old != manifest:
            diff = {k: (old.get(k), manifest.get(k)) for k in set(old) | set(manifest) if old.get(k) != manifest.get(k)}
            raise UserError(f"{out} was built with other settings {diff} (was, now): use another --out, or delete {out}")
    elif write:
        os.makedirs(out, exist_ok=True)
        with open(path, "w") as f:
            json.dump(manifest, f, indent=2)


def read_manifest(out: str) -> dict:
    path = os.path.join(out, "manifest.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def step_range(text: str) -> tuple[int, int]:
    """'3-5' -> (3, 5); '4' -> (4, 4)."""
    low, _, high = str(text).partition("-")
    try:
        low, high = int(low), int(high or low)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a step range like 3-5, got {text!r}") from None
    if not 1 <= low <= high:
        raise argparse.ArgumentTypeError(f"expected 1 <= low <= high in a step range, got {text!r}")
    return low, high


# ---------------------------------------------------------------------------------------------
# Source 1: the built-in world


def world_settings(args) -> tuple[dict, miniworld.WorldConfig]:
    """The world's settings: the flags given, else the directory's manifest, else WORLD_DEFAULTS."""
    recorded = read_manifest(args.out)
    settings = {k: getattr(args, k) if getattr(args, k) is not None else recorded.get(k, default)
                for k, default in WORLD_DEFAULTS.items()}
    config = miniworld.WorldConfig(max_value=settings["max_value"], start_range=(1, settings["max_start"]),
                                   add_range=(1, settings["max_add"]), mul_range=(2, settings["max_mul"]),
                                   operations=settings["operations"], hard_steps=step_range(settings["hard_steps"]),
                                   long_steps=step_range(settings["long_steps"]),
                                   foundation_steps=step_range(settings["foundation_steps"]), phrasings=settings["phrasings"])
    if config.hard_steps[0] < 3:
        raise UserError(f"--hard-steps {settings['hard_steps']}: hard tasks need at least 3 steps to have sub-tasks")
    return settings, config


def world_tokenizer(out: str, world: miniworld.World, vocab_size: int):
    """DIR/tokenizer.json: trained once, on training text only (the same text whatever the qualities asked for)."""
    from w2s.tokenizer import Tokenizer, train_tokenizer

    if os.path.exists(os.path.join(out, "tokenizer.json")):
        return Tokenizer.from_pretrained(out)
    tokenizer = train_tokenizer(list(miniworld.corpus(world)), vocab_size)
    tokenizer.save_pretrained(out)
    print(f"wrote {os.path.join(out, 'tokenizer.json')}: vocabulary {tokenizer.vocab_size}")
    return tokenizer


def write_builtin_sets(args, world: miniworld.World, tokenizer) -> dict[str, dict]:
    """Every asked-for set kind at every asked-for quality; returns each written set's measurements."""
    from w2s.data import sft_row

    kinds = args.sets or list(SET_KINDS)
    written, cache = {}, {}
    if "foundation" in kinds:
        items = miniworld.to_pool(world.foundation, args.seed, subtasks=False, paraphrases=False)
        check_outcomes_with_grader(items)
        write_sets(args.out, {"foundation": [sft_row(it.id, it, it.correct[0], "foundation") for it in items]},
                   tokenizer, written, cache)
    hard_kinds = [k for k in kinds if k != "foundation"]
    if not hard_kinds:
        return written
    # Draw only what the asked-for sets use: incorrect solutions cost time, sub-tasks and paraphrases too.
    with_subs = any("easy_sub" in k for k in hard_kinds)
    with_paraphrases = "hard_full+paraphrase" in hard_kinds
    hard_errors = any(e > 0 for e in args.hard_error) and any(k != "easy_sub" for k in hard_kinds)
    sub_errors = with_subs and any(e > 0 for e in args.sub_error)
    for profile in args.step_profile if hard_errors or sub_errors else ["mixed"]:
        pool = miniworld.to_pool(world.hard, args.seed, profile if hard_errors else None, profile if sub_errors else None,
                                 subtasks=with_subs, paraphrases=with_paraphrases)
        checked = check_outcomes_with_grader(pool)
        print(f"step profile {profile if hard_errors or sub_errors else '-'}: {checked} solutions graded, "
              "all agree with the exact check")
        for hard_error in args.hard_error if hard_errors else [0.0]:
            for sub_error in args.sub_error if sub_errors else [0.0]:
                sets, _ = build_sets(pool, hard_error, sub_error, args.seed)
                names = set_names(hard_error, sub_error, profile)
                write_sets(args.out, {names[k]: rows for k, rows in sets.items() if k in kinds}, tokenizer, written, cache)
    return written


def build_builtin(args) -> None:
    t0 = time.time()
    settings, config = world_settings(args)
    manifest = {"source": "miniworld", **settings}
    check_manifest(args.out, manifest, write=False)  # fail before the work; record only once it is done
    for key in ("seed", "num_hard", "num_foundation", "num_test", "num_long_test", "vocab_size"):
        setattr(args, key, settings[key])
    try:
        world = miniworld.build_world(args.seed, args.num_hard, args.num_foundation, args.num_test, args.num_long_test, config)
    except ValueError as e:
        raise UserError(str(e)) from None
    check_manifest(args.out, manifest)
    print(f"built-in world (seed {args.seed}): {len(world.hard)} hard tasks, "
          f"{sum(len(p.subtasks) for p in world.hard)} sub-tasks, {len(world.foundation)} foundation problems; "
          f"draws left out: {world.report}")
    tokenizer = world_tokenizer(args.out, world, args.vocab_size)

    def task_row(p: miniworld.Problem) -> dict:
        return {"id": p.id, "problem": p.text, "answer": str(p.task.answer), "steps": len(p.task.steps)}

    write_tests(args.out, {name: [task_row(p) for p in problems] for name, problems in world.tests.items()})
    write_hard_tasks(args.out, [task_row(p) for p in world.hard])
    written = write_builtin_sets(args, world, tokenizer)
    print()
    print_table(written)
    print(f"\nwrote {len(written)} sets to {args.out}/ in {time.time() - t0:.1f}s")


# ---------------------------------------------------------------------------------------------
# Source 2: the paper's released data


def download_hf(cache_dir: str | None = None) -> str:
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(HF_REPO, repo_type="dataset", cache_dir=cache_dir)
    except Exception as e:  # network, auth, missing repo: all end the same way for the user
        raise UserError(f"could not download {HF_REPO}: {type(e).__name__}: {e}; "
                         f"download it where the hub is reachable and convert it with --hf-dir LOCAL_DIR") from None


def build_hf(args) -> None:
    t0 = time.time()
    if args.seed is None:
        args.seed = read_manifest(args.out).get("seed", WORLD_DEFAULTS["seed"])
    root = args.hf_dir or download_hf()
    check_manifest(args.out, {"source": "hf", "dataset": HF_REPO, "subset": args.hf_subset, "seed": args.seed})
    pool, weak_sets, tests, report = read_release(root, args.hf_subset)
    print(f"{HF_REPO} at {root}:")
    for key, value in report.items():
        print(f"  {key}: {value}")
    write_tests(args.out, tests)
    write_hard_tasks(args.out, [{"id": it.id, "problem": it.problem, "answer": it.answer} for it in pool])
    kinds = args.sets or [k for k in SET_KINDS if k != "foundation"]
    written = {}
    for hard_error in args.hard_error:
        for sub_error in args.sub_error:
            sets, notes = build_sets(pool, hard_error, sub_error, args.seed)
            for key, value in notes.items():
                if value:
                    print(f"  {key}: {value}")
            names = set_names(hard_error, sub_error)
            write_sets(args.out, {names[k]: rows for k, rows in sets.items() if k in kinds}, None, written, {})
    write_sets(args.out, weak_sets, None, written, {})
    print()
    print_table(written)
    print(f"\nwrote {len(written)} sets to {args.out}/ in {time.time() - t0:.1f}s")


# ---------------------------------------------------------------------------------------------
# Source 3: the release of "Weak-to-Strong Reasoning" (GAIR-NLP/weak-to-strong-reasoning, w2s/gair.py)


def build_gair(args) -> None:
    from w2s.gair import read_gair

    check_manifest(args.out, {"source": "gair"})
    tests, sft_sets, pair_sets, task_sets, report = read_gair(args.gair_dir)
    print(f"GAIR-NLP/weak-to-strong-reasoning at {args.gair_dir}:")
    for key, value in report.items():
        print(f"  {key}: {value}")
    write_tests(args.out, tests)
    os.makedirs(os.path.join(args.out, "tasks"), exist_ok=True)
    for name, rows in task_sets.items():
        write_jsonl(os.path.join(args.out, "tasks", f"{name}.jsonl"), rows)
        print(f"wrote {os.path.join(args.out, 'tasks', name + '.jsonl')}: {len(rows)} tasks (for sample.py)")
    for name, rows in pair_sets.items():
        write_jsonl(os.path.join(args.out, f"{name}.jsonl"), rows)
        print(f"wrote {os.path.join(args.out, name + '.jsonl')}: {len(rows)} pairs (train.py --objective dpo)")
    written = {}
    write_sets(args.out, sft_sets, None, written, {})
    print()
    print_table(written)


# ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"""
files written to --out DIR:
  <set>.jsonl         chat SFT rows {{"id", "messages": [user, assistant], "meta"}}
  test/<bench>.jsonl  {{"id", "problem", "answer"}}: built-in {', '.join(BUILTIN_TESTS)}; hf {', '.join(HF_TESTS.values())}
  tokenizer.json      (built-in world) byte-level BPE trained on the world's training text
  tasks/hard_full.jsonl  the hard training tasks as {{"id", "problem", "answer"}}, for a model teacher (sample.py)
  manifest.json       the settings DIR was built with; a later run into DIR must use the same ones

set kinds (--sets): {', '.join(SET_KINDS)}
  hf adds weak_<teacher> (weaker_sampling; correctness from the release's judge fields).
names carry the quality: outcome error E > 0 adds _e<E>, a low/high step profile adds _low/_high:
  hard_full, hard_full_e0.5, hard_full_e0.9_low, easy_sub_e0.2, hard_full_e0.9+easy_sub,
  hard_full_e0.9+paraphrase, hard_full_e0.9_x2, foundation (1-2 step problems, always correct)
step profiles of incorrect solutions (built-in world):
  mixed  1..all steps wrong at random places, computation or method errors (default)
  low    one computation slip in the last step       (step-wise error 1/steps per wrong solution)
  high   every step wrong, from the first on         (step-wise error 1 per wrong solution)
examples:
  python data_prep.py --hard-error 0 0.5 0.9            # three hard_full variants (and their combinations)
  python data_prep.py --hard-error 0.9 --step-profile low high --sets hard_full
  python data_prep.py --stats data/hard_full_e0.9_low.jsonl
  python sample.py --model runs/weak/final --tasks data/tasks/hard_full.jsonl --out runs/weak/samples.jsonl --n 1
  python data_prep.py --from-samples runs/weak/samples.jsonl --name weak_model   # -> data/weak_model.jsonl
verifier step rows {{"id", "prompt", "steps", "labels"}} (train.py --objective prm):
  python data_prep.py --verifier-from-samples samples.jsonl --name prm_easy     # exact step labels (built-in world)
  python data_prep.py --verifier-from-samples samples.jsonl --name orm_easy --outcome   # outcome labels
  python data_prep.py --source prm800k --input phase2_train.jsonl               # -> data/prm800k.jsonl
  python data_prep.py --source math-shepherd --input math-shepherd.jsonl        # -> data/math_shepherd.jsonl""")
    parser.add_argument("--out", default="data", help="output directory (default: data)")
    parser.add_argument("--source", choices=["builtin", "hf", "gair", "prm800k", "math-shepherd"], default="builtin",
                        help="the built-in world (default), the paper's data (hf), Weak-to-Strong Reasoning's release "
                             "(gair), or verifier step rows converted from a downloaded PRM800K / Math-Shepherd file (--input)")
    parser.add_argument("--seed", type=int, help="world / mixture seed (default 0, or the directory's)")
    parser.add_argument("--hard-error", type=float, nargs="+", default=[0.0], metavar="E",
                        help="outcome error rate(s) of hard full tasks (default 0; the paper's grid: 0 0.2 0.5 0.7 0.9 1)")
    parser.add_argument("--sub-error", type=float, nargs="+", default=[0.0], metavar="E", help="outcome error rate(s) of easy sub-tasks (default 0)")
    parser.add_argument("--step-profile", nargs="+", choices=miniworld.PROFILES, default=["mixed"],
                        help="error profile(s) of incorrect solutions, built-in world only (default mixed)")
    parser.add_argument("--sets", nargs="+", choices=SET_KINDS, metavar="KIND", help="write only these set kinds (default: all)")
    world = parser.add_argument_group("the built-in world (defaults: the directory's manifest.json, else these)")
    world.add_argument("--num-hard", type=int, help=f"hard full tasks ({WORLD_DEFAULTS['num_hard']})")
    world.add_argument("--num-foundation", type=int, help=f"stage-1 foundation problems ({WORLD_DEFAULTS['num_foundation']})")
    world.add_argument("--num-test", type=int, help=f"same-distribution test problems ({WORLD_DEFAULTS['num_test']})")
    world.add_argument("--num-long-test", type=int, help=f"longer test problems ({WORLD_DEFAULTS['num_long_test']})")
    world.add_argument("--hard-steps", type=step_range, help=f"steps of hard tasks and the same-distribution test ({WORLD_DEFAULTS['hard_steps']})")
    world.add_argument("--long-steps", type=step_range, help=f"steps of the longer test ({WORLD_DEFAULTS['long_steps']})")
    world.add_argument("--foundation-steps", type=step_range, help=f"steps of foundation problems ({WORLD_DEFAULTS['foundation_steps']})")
    world.add_argument("--max-value", type=int, help=f"largest amount in a task ({WORLD_DEFAULTS['max_value']})")
    world.add_argument("--max-start", type=int, help=f"largest starting amount ({WORLD_DEFAULTS['max_start']})")
    world.add_argument("--max-add", type=int, help=f"largest operand of + and - ({WORLD_DEFAULTS['max_add']})")
    world.add_argument("--max-mul", type=int, help=f"largest operand of * and / ({WORLD_DEFAULTS['max_mul']})")
    world.add_argument("--operations", help=f"the operations tasks use, e.g. '+-*' ({WORLD_DEFAULTS['operations']})")
    world.add_argument("--phrasings", type=int, choices=[1, 2, 3],
                       help=f"templates per kind of sentence; fewer are easier to learn ({WORLD_DEFAULTS['phrasings']})")
    world.add_argument("--vocab-size", type=int, help=f"tokenizer vocabulary ({WORLD_DEFAULTS['vocab_size']})")
    hf = parser.add_argument_group("the paper's data (--source hf)")
    hf.add_argument("--hf-dir", help="convert an already-downloaded copy of the dataset instead of downloading")
    hf.add_argument("--hf-subset", help="only this subset folder of task_sol_pairs/ and paraphrase/")
    parser.add_argument("--gair-dir", metavar="DIR", help="--source gair: a downloaded copy of "
                        "GAIR-NLP/weak-to-strong-reasoning (or its data/ folder); no download happens")
    parser.add_argument("--stats", metavar="FILE.jsonl", help="report a set's quality (counts, error rates, lengths) and exit")
    parser.add_argument("--from-samples", metavar="SAMPLES.jsonl",
                        help="turn a model teacher's samples (sample.py output) into the set DIR/<--name>.jsonl and exit")
    verifier = parser.add_argument_group("verifier step rows (w2s/verifier_data.py)")
    verifier.add_argument("--verifier-from-samples", metavar="SAMPLES.jsonl",
                          help="turn samples (sample.py output) into step rows DIR/<--name>.jsonl and exit: exact step "
                               "labels for built-in world problems, else --outcome")
    verifier.add_argument("--outcome", action="store_true",
                          help="label every step with its solution's outcome (an outcome reward model's data)")
    verifier.add_argument("--verifier-split", choices=["lines", "blank"], default="lines",
                          help="steps of a sample: its non-empty lines, or its blank-line-separated paragraphs (default lines)")
    verifier.add_argument("--input", metavar="FILE.jsonl", help="with --source prm800k / math-shepherd: the downloaded file")
    parser.add_argument("--name", help="with --from-samples: the set's name (default weak_<file stem>); with "
                        "--verifier-from-samples: the step rows' name (default steps_<file stem>); "
                        "with --agree / --pairs (required): the output OUT/NAME.jsonl")
    w2s_group = parser.add_argument_group("weak-to-strong reasoning (Yang et al. 2024): selection without gold answers")
    w2s_group.add_argument("--agree", nargs=2, metavar=("A.jsonl", "B.jsonl"),
                           help="two sample.py outputs over the same tasks: keep the tasks whose first samples' final "
                                "answers agree (the grader's is_equiv), and write both responses as an SFT set (hybrid)")
    w2s_group.add_argument("--pairs", metavar="STRONG.jsonl",
                           help="the strong model's samples (e.g. 10 at temperature 1): DPO pairs against --weak")
    w2s_group.add_argument("--weak", metavar="WEAK.jsonl", help="with --pairs: the weak model's samples (its first is its response)")
    w2s_group.add_argument("--min-confidence", type=float, default=0.6,
                           help="with --pairs: skip a task whose majority answer has a smaller share of the samples (default 0.6)")
    w2s_group.add_argument("--flip-confidence", type=float, default=0.8,
                           help="with --pairs: a weak answer outside the majority is rejected (against a majority "
                                "sample) only at this confidence or above (default 0.8)")
    w2s_group.add_argument("--max-pairs", type=int, default=1, help="with --pairs: pairs per task at most (default 1; the paper's MATH: 3)")
    parser.add_argument("--tokenizer", help="with --stats / --from-samples: tokenizer for token counts (default: tokenizer.json beside the file / in --out)")
    args = parser.parse_args(argv)
    for rate in args.hard_error + args.sub_error:
        if not 0 <= rate <= 1:
            parser.error(f"error rates must be in [0, 1], got {rate}")
    if args.source in ("prm800k", "math-shepherd") and not args.input:
        parser.error(f"--source {args.source} converts a downloaded file: pass it with --input")
    for flag, path in (("--stats", args.stats), ("--from-samples", args.from_samples),
                       ("--verifier-from-samples", args.verifier_from_samples), ("--input", args.input),
                       ("--pairs", args.pairs), ("--weak", args.weak), *(("--agree", p) for p in args.agree or [])):
        if path and not os.path.isfile(path):
            parser.error(f"{flag} {path}: no such file")
    if (args.agree or args.pairs) and not args.name:
        parser.error("--agree and --pairs need --name (the output OUT/NAME.jsonl)")
    if args.pairs and not args.weak:
        parser.error("--pairs needs --weak WEAK.jsonl (the weak model's samples)")
    if not 0 <= args.min_confidence <= args.flip_confidence <= 1 or args.max_pairs < 1:
        parser.error("need 0 <= --min-confidence <= --flip-confidence <= 1 and --max-pairs >= 1")
    if args.hf_dir:
        args.source = "hf"
        if not os.path.isdir(args.hf_dir):
            parser.error(f"--hf-dir {args.hf_dir}: no such directory")
    if args.gair_dir:
        args.source = "gair"
        if not os.path.isdir(args.gair_dir):
            parser.error(f"--gair-dir {args.gair_dir}: no such directory")
    elif args.source == "gair":
        parser.error("--source gair needs --gair-dir DIR (a downloaded copy of GAIR-NLP/weak-to-strong-reasoning)")
    if args.source != "builtin" and args.step_profile != ["mixed"]:
        parser.error("--step-profile applies to the built-in world only (the paper's data brings its own errors)")
    for name in ("num_hard", "num_test", "num_long_test", "vocab_size", "max_value", "max_start", "max_add"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.max_value is not None and args.max_value < 3:
        parser.error("--max-value must be at least 3")
    if args.max_mul is not None and args.max_mul < 2:
        parser.error("--max-mul must be at least 2")
    if args.operations is not None and (not args.operations or set(args.operations) - set("+-*/")):
        parser.error(f"--operations {args.operations!r}: use some of + - * / (e.g. '+-*')")
    if args.num_foundation is not None and args.num_foundation < 0:
        parser.error("--num-foundation must not be negative")
    for name in ("hard_steps", "long_steps", "foundation_steps"):  # recorded in the manifest as text
        if getattr(args, name) is not None:
            setattr(args, name, "-".join(map(str, getattr(args, name))))
    return args


def prepare(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.stats:
        stats_command(args.stats, args.tokenizer)
    elif args.from_samples:
        from_samples_command(args)
    elif args.verifier_from_samples or args.source in ("prm800k", "math-shepherd"):
        verifier_data_command(args)
    elif args.agree:
        agree_command(args)
    elif args.pairs:
        pairs_command(args)
    elif args.source == "hf":
        build_hf(args)
    elif args.source == "gair":
        build_gair(args)
    else:
        build_builtin(args)


def main(argv: list[str] | None = None) -> None:
    """data_prep.py's command line: a bad input ends it with one line on stderr (exit status 2)."""
    return run_main(prepare, argv, "data_prep.py")


if __name__ == "__main__":
    main(sys.argv[1:])
