"""The data directory (data_prep.py --out DIR): one world per directory, the sets written into it
with their measured quality, its benchmarks and task files, from any of the three sources.

Reading order: the manifest (a directory holds one world: the settings it was built with);
writing sets, benchmarks, task files and selected sets; source 1, the built-in world (its settings,
tokenizer and sets at every asked-for quality); source 2, the paper's release; source 3, the
release of "Weak-to-Strong Reasoning".

Each build takes a `log` for its progress lines and returns what it wrote: set name -> its
`quality.measure`, which data_prep.py prints as a table.
"""
import json
import os
from dataclasses import dataclass
from typing import Callable

from w2s.data.jsonl import read_json_object, write_jsonl
from w2s.data.sources.gair import GairReport, convert_gair
from w2s.data.sources.paper import HF_REPO, read_release
from w2s.data.world import miniworld
from w2s.data.world.quality import check_outcomes_with_grader, measure, token_lengths
from w2s.data.world.sets import build_sets, sft_row
from w2s.data.world.sets import SET_KINDS, SUB_KINDS, builtin_set_args, set_names
from w2s.errors import UserError
from w2s.tokenizer import Tokenizer, train_tokenizer

Log = Callable[[str], None]

# The settings a built-in world directory is built with (recorded in DIR/manifest.json). A setting
# left out takes the directory's recorded value, so adding a variant to a directory never needs them again.
WORLD_DEFAULTS = {"seed": 0, "num_hard": 30000, "num_foundation": 10000, "num_test": 1000, "num_long_test": 500,
                  "vocab_size": 512, "max_value": miniworld.WorldConfig.max_value,
                  "max_start": miniworld.WorldConfig.start_range[1], "max_add": miniworld.WorldConfig.add_range[1],
                  "max_mul": miniworld.WorldConfig.mul_range[1], "operations": miniworld.WorldConfig.operations,
                  "hard_steps": "3-5",
                  "long_steps": "6-7", "foundation_steps": "1-2", "phrasings": miniworld.WorldConfig.phrasings}


# ---------------------------------------------------------------------------------------------
# The manifest


def _read_manifest_file(out: str) -> dict:
    path = os.path.join(out, "manifest.json")
    if not os.path.exists(path):
        return {}
    return read_json_object(path, "a manifest", "use another --out")


def _write_manifest_file(out: str, manifest: dict) -> None:
    os.makedirs(out, exist_ok=True)
    tmp = os.path.join(out, "manifest.json.tmp")
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=2)
    os.replace(tmp, os.path.join(out, "manifest.json"))


def read_manifest(out: str) -> dict:
    """The settings the directory's world was built with ({} before the first build)."""
    return {k: v for k, v in _read_manifest_file(out).items() if k != SETS_KEY}


def check_manifest(out: str, manifest: dict, write: bool = True) -> None:
    """One directory holds one world: refuse to mix seeds, sizes or sources (tests would stop being held out).
    The first build into a directory records its settings there (`write`)."""
    old = read_manifest(out)
    if old:
        if old != manifest:
            diff = {k: (old.get(k), manifest.get(k)) for k in set(old) | set(manifest) if old.get(k) != manifest.get(k)}
            raise UserError(f"{out} was built with other settings {diff} (was, now): "
                            f"use another --out, or delete {out}")
    elif write:
        _write_manifest_file(out, {**manifest, SETS_KEY: recorded_sets(out)})


# ---------------------------------------------------------------------------------------------
# Which sets are built and which derived: a derived set never overwrites a set of another kind

SETS_KEY = "sets"  # manifest.json: {"sets": {name: kind}}
BUILT = "built"  # written by a build (the built-in world, the paper's data, GAIR's release)
DERIVED_KINDS = ("from_samples", "agree", "pairs", "verifier")  # made from samples by data_prep.py


def recorded_sets(out: str) -> dict[str, str]:
    return dict(_read_manifest_file(out).get(SETS_KEY, {}))


def claim_sets(out: str, names: list[str], kind: str, record: bool = True) -> None:
    """Record that DIR/<name>.jsonl of each name is a set of `kind` (BUILT or one of DERIVED_KINDS),
    refusing in one line a name whose file is already there as a set of another kind, and a derived
    set named as a build names its sets (hard_full, foundation, ...: the name promises a quality).
    record=False only checks (a build that writes its manifest once it is whole records them then)."""
    recorded = recorded_sets(out)
    for name in names:
        if kind != BUILT and builtin_set_args(name) is not None:  # train.py --data NAME would take it for the built one
            raise UserError(f"--name {name}: the name of a built set (its name promises its quality); "
                            f"a {kind.replace('_', '-')} set needs another --name")
        if not os.path.exists(os.path.join(out, f"{name}.jsonl")):
            continue
        was = recorded.get(name) or kind  # written before kinds were recorded: taken as this kind
        if was != kind:
            what = {BUILT: "a built set"}.get(was, f"a set derived by {was.replace('_', '-')}")
            raise UserError(f"{os.path.join(out, name + '.jsonl')} is {what} ({os.path.join(out, 'manifest.json')}); "
                            f"a {kind.replace('_', '-')} set never overwrites it: pick another --name or --out")
    if record and any(recorded.get(name) != kind for name in names):
        _write_manifest_file(out, {**_read_manifest_file(out), SETS_KEY: {**recorded, **{n: kind for n in names}}})


# ---------------------------------------------------------------------------------------------
# Writing


def write_sets(out: str, sets: dict[str, list[dict]], tokenizer, written: dict[str, dict], cache: dict,
               kind: str = BUILT, record: bool = True) -> None:
    """DIR/<name>.jsonl for each set not `written` yet; `written[name]` gets its measurements. The
    sets are recorded as `kind` in the manifest (refused where that would overwrite another kind)."""
    claim_sets(out, [name for name in sets if name not in written], kind, record)
    for name, rows in sets.items():
        if name in written:
            continue
        write_jsonl(os.path.join(out, f"{name}.jsonl"), rows, cache.setdefault("<lines>", {}))
        written[name] = measure(rows, token_lengths(rows, tokenizer, cache.setdefault("<tokens>", {}))
                                if tokenizer else None)


def write_tests(out: str, tests: dict[str, list[dict]], log: Log = print) -> None:
    os.makedirs(os.path.join(out, "test"), exist_ok=True)
    for name, rows in tests.items():
        write_jsonl(os.path.join(out, "test", f"{name}.jsonl"), rows)
        log(f"wrote {os.path.join(out, 'test', name + '.jsonl')}: {len(rows)} problems")


def write_tasks(out: str, task_sets: dict[str, list[dict]], log: Log = print) -> None:
    """Training tasks as task rows DIR/tasks/<name>.jsonl, for a model teacher to solve (sample.py --tasks)."""
    os.makedirs(os.path.join(out, "tasks"), exist_ok=True)
    for name, rows in task_sets.items():
        write_jsonl(os.path.join(out, "tasks", f"{name}.jsonl"), rows)
        log(f"wrote {os.path.join(out, 'tasks', name + '.jsonl')}: {len(rows)} tasks (for sample.py)")


def write_selection(out: str, name: str, rows: list[dict], report: dict, kind: str) -> str:
    """OUT/NAME.jsonl and, beside it, NAME.report.json (the counts and the measured quality); the first's path."""
    os.makedirs(out, exist_ok=True)
    claim_sets(out, [name], kind)
    write_jsonl(os.path.join(out, f"{name}.jsonl"), rows)
    with open(os.path.join(out, f"{name}.report.json"), "w") as f:
        json.dump(report, f, indent=2)
    return os.path.join(out, f"{name}.jsonl")


# ---------------------------------------------------------------------------------------------
# Source 1: the built-in world


def step_range(text: str) -> tuple[int, int]:
    """'3-5' -> (3, 5); '4' -> (4, 4). Raises ValueError on anything else."""
    low, _, high = str(text).partition("-")
    try:
        low, high = int(low), int(high or low)
    except ValueError:
        raise ValueError(f"expected a step range like 3-5, got {text!r}") from None
    if not 1 <= low <= high:
        raise ValueError(f"expected 1 <= low <= high in a step range, got {text!r}")
    return low, high


def world_settings(out: str, given: dict) -> tuple[dict, miniworld.WorldConfig]:
    """The world's settings: those `given` (not None), else the directory's manifest, else WORLD_DEFAULTS."""
    recorded = read_manifest(out)
    settings = {k: given[k] if given.get(k) is not None else recorded.get(k, default)
                for k, default in WORLD_DEFAULTS.items()}
    config = miniworld.WorldConfig(max_value=settings["max_value"], start_range=(1, settings["max_start"]),
                                   add_range=(1, settings["max_add"]), mul_range=(2, settings["max_mul"]),
                                   operations=settings["operations"], hard_steps=step_range(settings["hard_steps"]),
                                   long_steps=step_range(settings["long_steps"]),
                                   foundation_steps=step_range(settings["foundation_steps"]),
                                   phrasings=settings["phrasings"])
    if config.hard_steps[0] < 3:
        raise UserError(f"--hard-steps {settings['hard_steps']}: hard tasks need at least 3 steps to have sub-tasks")
    return settings, config


def world_tokenizer(out: str, world: miniworld.World, vocab_size: int, log: Log = print):
    """DIR/tokenizer.json: trained once, on training text only (the same text whatever the qualities asked for)."""
    if os.path.exists(os.path.join(out, "tokenizer.json")):
        return Tokenizer.from_pretrained(out)
    tokenizer = train_tokenizer(list(miniworld.corpus(world)), vocab_size)
    tokenizer.save_pretrained(out)
    log(f"wrote {os.path.join(out, 'tokenizer.json')}: vocabulary {tokenizer.vocab_size}")
    return tokenizer


@dataclass
class SetRequest:
    """The built-in sets asked for: these kinds, at every outcome error rate and step profile listed."""
    kinds: list[str]
    hard_errors: list[float]
    sub_errors: list[float]
    profiles: list[str]


def write_builtin_sets(out: str, world: miniworld.World, tokenizer, seed: int, request: SetRequest,
                       log: Log = print) -> dict[str, dict]:
    """Every asked-for set kind at every asked-for quality; returns each written set's measurements."""
    written, cache = {}, {}
    if "foundation" in request.kinds:
        items = miniworld.to_pool(world.foundation, seed, subtasks=False, paraphrases=False)
        check_outcomes_with_grader(items)
        write_sets(out, {"foundation": [sft_row(it.id, it, it.correct[0], "foundation") for it in items]},
                   tokenizer, written, cache)
    hard_kinds = [k for k in request.kinds if k != "foundation"]
    if not hard_kinds:
        return written
    # Draw only what the asked-for sets use: incorrect solutions cost time, sub-tasks and paraphrases too.
    with_subs = any(k in ("easy_sub", "hard_full+easy_sub") for k in hard_kinds)
    with_prefixes = "easy_sub_prefix" in hard_kinds
    with_paraphrases = "hard_full+paraphrase" in hard_kinds
    with_hard_errors = any(e > 0 for e in request.hard_errors) and any(k not in SUB_KINDS for k in hard_kinds)
    with_sub_errors = (with_subs or with_prefixes) and any(e > 0 for e in request.sub_errors)
    for profile in request.profiles if with_hard_errors or with_sub_errors else ["mixed"]:
        pool = miniworld.to_pool(world.hard, seed, profile if with_hard_errors else None,
                                 profile if with_sub_errors else None, subtasks=with_subs, paraphrases=with_paraphrases,
                                 prefixes=with_prefixes)
        checked = check_outcomes_with_grader(pool)
        log(f"step profile {profile if with_hard_errors or with_sub_errors else '-'}: {checked} solutions graded, "
            "all agree with the exact check")
        for hard_error in request.hard_errors if with_hard_errors else [0.0]:
            for sub_error in request.sub_errors if with_sub_errors else [0.0]:
                sets, _ = build_sets(pool, hard_error, sub_error, seed)
                names = set_names(hard_error, sub_error, profile)
                write_sets(out, {names[k]: rows for k, rows in sets.items() if k in request.kinds}, tokenizer,
                           written, cache)
    return written


def build_builtin(out: str, given: dict, kinds: list[str] | None, hard_errors: list[float], sub_errors: list[float],
                  profiles: list[str], log: Log = print) -> dict[str, dict]:
    """The built-in world into `out`: its benchmarks, tasks, tokenizer and the asked-for sets
    (`kinds`, None for all). `given`: world settings (WORLD_DEFAULTS' keys; None = the directory's)."""
    settings, config = world_settings(out, given)
    manifest = {"source": "miniworld", **settings}
    check_manifest(out, manifest, write=False)  # fail before the work; record only once it is done
    try:
        world = miniworld.build_world(settings["seed"], settings["num_hard"], settings["num_foundation"],
                                      settings["num_test"], settings["num_long_test"], config)
    except ValueError as e:
        raise UserError(str(e)) from None
    check_manifest(out, manifest)
    log(f"built-in world (seed {settings['seed']}): {len(world.hard)} hard tasks, "
        f"{sum(len(p.subtasks) for p in world.hard)} sub-tasks, {len(world.foundation)} foundation problems; "
        f"draws left out: {world.report}")
    tokenizer = world_tokenizer(out, world, settings["vocab_size"], log)

    def task_row(p: miniworld.Problem) -> dict:
        return {"id": p.id, "problem": p.text, "answer": str(p.task.answer), "steps": len(p.task.steps)}

    write_tests(out, {name: [task_row(p) for p in problems] for name, problems in world.tests.items()}, log)
    write_tasks(out, {"hard_full": [task_row(p) for p in world.hard]}, log)
    request = SetRequest(kinds or list(SET_KINDS), hard_errors, sub_errors, profiles)
    return write_builtin_sets(out, world, tokenizer, settings["seed"], request, log)


# ---------------------------------------------------------------------------------------------
# Source 2: the paper's released data (w2s/data/sources/paper.py)


def download_hf(cache_dir: str | None = None) -> str:
    from huggingface_hub import snapshot_download  # here: only a download needs the Hub client

    try:
        return snapshot_download(HF_REPO, repo_type="dataset", cache_dir=cache_dir)
    except Exception as e:  # network, auth, missing repo: all end the same way for the user
        raise UserError(f"could not download {HF_REPO}: {type(e).__name__}: {e}; "
                        "download it where the hub is reachable and convert it with "
                        "`data_prep.py hf --dir LOCAL_DIR`") from None


def build_hf(out: str, hf_dir: str | None, subset: str | None, seed: int | None, kinds: list[str] | None,
             hard_errors: list[float], sub_errors: list[float], log: Log = print) -> dict[str, dict]:
    """The paper's data into `out` (downloaded unless `hf_dir` holds a copy): benchmarks, tasks, the
    sets at every asked-for outcome error rate, and the weaker teachers' sets."""
    if seed is None:
        seed = read_manifest(out).get("seed", WORLD_DEFAULTS["seed"])
    root = hf_dir or download_hf()
    check_manifest(out, {"source": "hf", "dataset": HF_REPO, "subset": subset, "seed": seed})
    pool, weak_sets, tests, report = read_release(root, subset)
    log(f"{HF_REPO} at {root}:")
    for key, value in report.items():
        log(f"  {key}: {value}")
    write_tests(out, tests, log)
    write_tasks(out, {"hard_full": [{"id": it.id, "problem": it.problem, "answer": it.answer} for it in pool]}, log)
    kinds = kinds or [k for k in SET_KINDS if k != "foundation"]
    written = {}
    for hard_error in hard_errors:
        for sub_error in sub_errors:
            sets, notes = build_sets(pool, hard_error, sub_error, seed)
            for key, value in notes.items():
                if value:
                    log(f"  {key}: {value}")
            names = set_names(hard_error, sub_error)
            write_sets(out, {names[k]: rows for k, rows in sets.items() if k in kinds}, None, written, {})
    write_sets(out, weak_sets, None, written, {})
    return written


# ---------------------------------------------------------------------------------------------
# Source 3: the release of "Weak-to-Strong Reasoning" (GAIR-NLP/weak-to-strong-reasoning, w2s/data/sources/gair.py)


def build_gair(out: str, gair_dir: str, log: Log = print) -> dict[str, dict]:
    """The release converted set by set, each written before the next is read; the report at the end.
    The manifest is recorded only once every set is written: a failed conversion leaves none behind."""
    manifest = {"source": "gair"}
    check_manifest(out, manifest, write=False)  # refuse a directory of another source before any work
    report, written = GairReport(), {}
    os.makedirs(out, exist_ok=True)
    log(f"GAIR-NLP/weak-to-strong-reasoning at {gair_dir}:")
    for gair_set in convert_gair(gair_dir, report):
        report.sets.append((gair_set.kind, gair_set.name, gair_set.report))
        if gair_set.kind == "test":
            write_tests(out, {gair_set.name: gair_set.rows}, log)
        elif gair_set.kind == "tasks":
            write_tasks(out, {gair_set.name: gair_set.rows}, log)
        elif gair_set.kind == "pairs":
            claim_sets(out, [gair_set.name], BUILT, record=False)
            write_jsonl(os.path.join(out, f"{gair_set.name}.jsonl"), gair_set.rows)
            log(f"wrote {os.path.join(out, gair_set.name + '.jsonl')}: {len(gair_set.rows)} pairs "
                "(train.py --objective dpo)")
        else:
            write_sets(out, {gair_set.name: gair_set.rows}, None, written, {}, record=False)
    log("conversion report:")
    for line in report.lines():
        log(line)
    # Recorded only now, with the source: a conversion that failed half way leaves no manifest.
    claim_sets(out, [name for kind, name, _ in report.sets if kind in ("sft", "pairs")], BUILT)
    check_manifest(out, manifest)
    return written
