"""Benchmark accuracy with the grader: greedy by default (the paper's evaluation), maj@K and pass@K when asked.

    python evaluate.py --model PATH_OR_HUB_ID --bench math500 --out runs/eval
    python evaluate.py --model PATH_OR_HUB_ID --bench my_test.jsonl --n 8 --temperature 0.7 --out runs/eval
    python evaluate.py --model POLICY --bench miniworld --n 16 --temperature 0.7 --verifier runs/prm/final \
        --out runs/rerank
    python evaluate.py --bench miniworld --samples SAMPLES.jsonl --verifier runs/prm/final --out runs/rerank_prm
    python evaluate.py --bench miniworld --samples SAMPLES.jsonl --verifier world --out runs/rerank_oracle

--samples scores responses drawn before (a sample.py output, or an evaluate.py rows file) instead of
generating: draw K samples once, and let every verifier rank the same ones. Their rows must be the
benchmark's problems (same ids, problems and answers, K responses each); their verdicts are graded again.
No --model is needed then; the summary's "model" is the one recorded in SAMPLES.settings.json, if any.

--bench takes a JSONL file or a NAME, read from data/test/NAME.jsonl (data_prep.py writes benchmarks
there), and may name several. Benchmark rows are {"id", "problem", "answer", ...}.

Writes, in --out:
- <bench>.jsonl: one row per problem, appended as produced (a killed run resumes where it stopped):
  the task's fields, "prompt", "responses", "extracted" (answers), "correct" (verdict per response),
  "majority" (the voted answer) and "verdict" (is the voted answer right; greedy: the one response).
  With --verifier (a checkpoint of train.py --objective prm): "scores" (each response's score in [0, 1]:
  its steps' P(good) aggregated by --verifier-agg), "step_scores", "answer_groups", "best_of" (is the
  highest-scored response right), "weighted_majority" / "weighted_verdict" (each answer voted by the sum
  of its responses' scores); the summary adds best_of@K, weighted_maj@K, the verifier and its aggregation,
  and "curves": every measure over the first k = 1, 2, 4, ... K responses.
  Each row also keeps "finish_reasons" ("stop" or "length", one per response): a response cut off at
  --max-new-tokens states no answer (its verdict is False, it casts no vote); the summary counts them.
- <bench>.jsonl.settings.json: what decides those rows (the model and a fingerprint of its weights,
  the benchmark file and its fingerprint, the generation settings). Rerunning into the same --out
  resumes only with the same ones; rows of another model, another benchmark's content or other
  settings are refused, never reported (--overwrite discards them and starts fresh).
- summary.json (every benchmark evaluated into this directory) and summary.md (the same as tables):
  accuracy overall and by each grouping field the rows carry (level, subject, source, ...).

`w2s.evaluation.evaluate(model, tokenizer, tasks, sampling, ...)` is the same thing as a function (and
`evaluate_saved` for --samples); this file parses the arguments, checks the settings, calls it and reports.
"""
import argparse
import json
import os
import sys
from dataclasses import dataclass, replace

from w2s.cli import DefaultsHelpFormatter, add_generation_args, check_generation_args, sampling_from_args
from w2s.data.jsonl import check_settings, settings_path, write_settings
from w2s.data.provenance import (check_output_dir, file_fingerprint, normalize_path, remove_outputs, same_file,
                                 weights_fingerprint)
from w2s.data.tasks import load_tasks
from w2s.errors import MissingFileError, UserError, run_main
from w2s.evaluation import NOT_GROUPS, check_answers, evaluate, evaluate_saved, markdown, read_saved_responses
from w2s.evaluation import resolve_bench
from w2s.generation import Sampling, fit_max_new_tokens
from w2s.hf_io import is_hub_id
from w2s.runtime import default_device, load_model_and_tokenizer, resolve_dtype
from w2s.verifier import AGGREGATIONS, LOGPROB, SPLITS, WORLD, LogProbVerifier, Verifier, WorldVerifier


@dataclass
class Bench:
    """One --bench: its problems, where its rows go, and with --samples the responses scored instead of
    generating (`read_saved_responses`: responses by task id, and how many per problem)."""
    name: str
    path: str
    tasks: list[dict]
    out_path: str
    samples: str | None = None
    saved: tuple[dict[str, dict], int] | None = None


def eval_settings(args: argparse.Namespace, sampling: Sampling, bench: Bench) -> dict:
    """What decides a benchmark's rows: the settings, the weights' and the benchmark's fingerprints.
    Batch size, device and compile do not. Scoring saved samples: the samples file and its fingerprint
    take the place of the model and the generation settings."""
    path = verifier_model(args.verifier)
    verifier = {"verifier": normalize_path(args.verifier),
                "verifier_fingerprint": weights_fingerprint(path) if path else None,
                "verifier_agg": args.verifier_agg if args.verifier else None,
                "verifier_split": args.verifier_split if args.verifier else None}
    if bench.samples:
        return {"samples": os.path.abspath(bench.samples), "samples_fingerprint": file_fingerprint(bench.samples),
                "bench": os.path.abspath(bench.path), "bench_fingerprint": file_fingerprint(bench.path), **verifier}
    return {"model": normalize_path(args.model), "model_fingerprint": weights_fingerprint(args.model),
            "tokenizer": normalize_path(args.tokenizer),
            "bench": os.path.abspath(bench.path), "bench_fingerprint": file_fingerprint(bench.path),
            **sampling.recorded(), "dtype": resolve_dtype(args.dtype, args.device or default_device()), **verifier}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark accuracy (greedy, or maj@K / pass@K with --n).",
                                     formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--model", help="checkpoint directory, Hugging Face Hub id, or Llama GGUF file (required "
                        "unless --samples)")
    parser.add_argument("--tokenizer", help="tokenizer.json or its directory (default: the model's)")
    parser.add_argument("--bench", required=True, nargs="+",
                        help="benchmark JSONL file(s) or name(s) in DATA_DIR/test/")
    parser.add_argument("--data-dir", default="data",
                        help="where benchmark names are looked up (DATA_DIR/test/NAME.jsonl)")
    parser.add_argument("--out", required=True, help="output directory (rerun into it to resume)")
    parser.add_argument("--n", type=int, default=1, help="samples per problem (maj@K and pass@K when > 1)")
    parser.add_argument("--samples", nargs="+", metavar="SAMPLES.jsonl", help="score these responses instead of "
                        "generating: one file per --bench, in its order (sample.py output or evaluate.py rows)")
    parser.add_argument("--group-by", nargs="*", help="grouping fields (default: found in the rows)")
    add_generation_args(parser, temperature=0.0, top_p=1.0, seed=0)
    verifier = parser.add_argument_group("re-ranking with a verifier (w2s/verifier.py)")
    verifier.add_argument("--verifier", metavar="DIR", help="a verifier checkpoint (train.py --objective prm), or "
                          f"'{WORLD}' (the built-in world's exact step checker, an oracle), or '{LOGPROB}DIR' (the "
                          "checkpoint DIR's own mean token log-prob of each response, a baseline): score every "
                          "response, report best_of@K and weighted_maj@K beside maj@K and pass@K")
    verifier.add_argument("--verifier-agg", choices=AGGREGATIONS, default="min",
                          help="a response's score from its steps': min or prod (a PRM), last (an ORM), mean")
    verifier.add_argument("--verifier-split", choices=SPLITS, default="lines",
                          help="a response's steps: its non-empty lines, or its blank-line-separated paragraphs")
    return parser.parse_args(argv)


def verifier_model(verifier: str | None) -> str | None:
    """The checkpoint behind --verifier: DIR, or the policy of logprob:DIR; None for the world's checker."""
    if verifier in (None, WORLD):
        return None
    return verifier[len(LOGPROB):] if verifier.startswith(LOGPROB) else verifier


def check_verifier(path: str) -> None:
    """--verifier is a folder (or Hub id); a run of train.py records its objective in the run's
    args.json, one level up from DIR/final: a model trained with another objective is refused."""
    if not os.path.isdir(path) and not is_hub_id(path):
        raise MissingFileError(f"--verifier {path}: no such folder (a checkpoint of train.py --objective prm)")
    run_args = os.path.join(os.path.dirname(os.path.normpath(path)), "args.json")
    if os.path.isdir(path) and os.path.isfile(run_args):
        try:
            with open(run_args) as f:
                objective = json.load(f).get("objective", "sft")
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            return
        if objective != "prm":
            raise UserError(f"--verifier {path}: trained with --objective {objective} ({run_args}), not prm: its "
                            "outputs are not step scores; pass a checkpoint of train.py --objective prm")
    elif os.path.isdir(path):
        print(f"--verifier {path}: no train.py args.json beside it, so it cannot be checked to be a verifier "
              "(train.py --objective prm); its scores mean something only if it is one", file=sys.stderr)


def check_group_by(group_by: list[str] | None, tasks: dict[str, list[dict]]) -> None:
    """--group-by names fields the benchmark rows carry."""
    fields = {k for rows in tasks.values() for row in rows for k in row if k not in NOT_GROUPS}
    unknown = [f for f in group_by or [] if f not in fields]
    if unknown:
        which = "this field" if len(unknown) == 1 else "these fields"
        raise UserError(f"--group-by {' '.join(unknown)}: no benchmark row has {which}; "
                        f"the rows carry: {', '.join(sorted(fields)) or 'no grouping fields'}")


def read_summaries(path: str) -> dict:
    """summary.json of earlier benchmarks evaluated into this --out (a broken one is one line)."""
    if not os.path.exists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            summaries = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        summaries = e
    if not isinstance(summaries, dict):
        why = summaries if isinstance(summaries, Exception) else "not a JSON object"
        raise UserError(f"{path}: not a summary file ({why}); "
                        "delete it: rerunning evaluate.py for each benchmark rebuilds its entry from the rows in --out")
    return summaries


def samples_origin(path: str) -> tuple[str | None, float | None]:
    """The model and temperature that drew a samples file, from the settings sample.py or evaluate.py
    recorded beside it (None where there are none)."""
    try:
        with open(settings_path(path), encoding="utf-8") as f:
            settings = json.load(f)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None, None
    return (settings.get("model"), settings.get("temperature")) if isinstance(settings, dict) else (None, None)


def check_flags(args: argparse.Namespace) -> None:
    """The flags, alone and together, before any file is read."""
    check_generation_args(args)
    if not args.model and not args.samples:
        raise UserError("--model is required (or --samples, to score responses drawn before)")
    if args.samples and len(args.samples) != len(args.bench):
        raise UserError(f"--samples: {len(args.samples)} file(s) for {len(args.bench)} --bench; "
                        "give one per benchmark, in the same order")
    if args.samples and args.model:
        raise UserError("--samples with --model: the samples are scored as they are, nothing is generated; "
                        "drop --model")
    if args.n > 1 and args.temperature == 0 and not args.samples:
        raise UserError(f"--n {args.n}: {args.n} samples at temperature 0 would be {args.n} copies of the greedy "
                        "answer; set a temperature > 0 for maj@K / pass@K")
    check_output_dir(args.out)
    if args.verifier and args.verifier.startswith(LOGPROB):
        if not os.path.exists(verifier_model(args.verifier)):
            raise MissingFileError(f"--verifier {args.verifier}: no such checkpoint (a model dir or .gguf file)")
    elif args.verifier and args.verifier != WORLD:
        check_verifier(args.verifier)


def read_benches(args: argparse.Namespace) -> list[Bench]:
    """Every --bench, and its --samples file, read and checked before the model loads."""
    resolved = [resolve_bench(b, args.data_dir) for b in args.bench]
    for name, path in resolved:
        if same_file(path, os.path.join(args.out, f"{name}.jsonl")):
            raise UserError(f"--bench {path}: this benchmark file is where evaluate.py writes its rows for {name!r} "
                            f"in --out {args.out}; keep benchmarks outside --out (or pick another --out)")
    benches = [Bench(name, path, load_tasks(path), os.path.join(args.out, f"{name}.jsonl"), samples)
               for (name, path), samples in zip(resolved, args.samples or [None] * len(resolved))]
    check_group_by(args.group_by, {bench.name: bench.tasks for bench in benches})
    for bench in benches:
        if bench.samples:
            if not os.path.isfile(bench.samples):
                raise MissingFileError(f"--samples {bench.samples}: no such file")
            bench.saved = read_saved_responses(bench.samples, bench.tasks)
    return benches


def evaluate_bench(bench: Bench, settings: dict, sampling: Sampling, model, tokenizer, verifier,
                   args: argparse.Namespace) -> dict:
    """One benchmark's summary entry. Its settings are recorded once its prompts are known to fit, before
    any row is read or written, so a run that fails on its inputs leaves none behind."""
    print(f"{bench.name}: {len(bench.tasks)} problems from {bench.path}", file=sys.stderr)
    scoring = dict(out_path=bench.out_path, group_by=args.group_by, verifier=verifier, progress=not args.quiet)
    if bench.saved:
        responses, n = bench.saved
        model_name, temperature = samples_origin(bench.samples)
        if args.n not in (1, n):
            raise UserError(f"--n {args.n}: {bench.samples} holds {n} responses per problem")
        check_answers(bench.tasks)
        write_settings(bench.out_path, settings)
        summary = evaluate_saved(bench.tasks, responses, replace(sampling, n=n, temperature=temperature), **scoring)
        return {"bench": bench.path, "model": model_name, "samples": bench.samples, **summary}
    check_answers(bench.tasks)
    sampling = replace(sampling, max_new_tokens=fit_max_new_tokens(model, tokenizer, bench.tasks, sampling.template,
                                                                   sampling.max_new_tokens))
    write_settings(bench.out_path, settings)
    summary = evaluate(model, tokenizer, bench.tasks, sampling, **scoring)
    return {"bench": bench.path, "model": normalize_path(args.model), **summary}


def report_line(name: str, summary: dict, reranked: bool) -> str:
    n = summary["n"]
    key = "accuracy" if n == 1 else f"maj@{n}"
    rerank = (f"; best_of@{n} {summary[f'best_of@{n}']:.1%}, weighted_maj@{n} "
              f"{summary[f'weighted_maj@{n}']:.1%}, pass@{n} {summary[f'pass@{n}']:.1%}" if reranked and n > 1 else "")
    return (f"{name}: {key} {summary['accuracy']:.1%} over {summary['problems']} problems{rerank}; "
            f"{summary['cut_off']} of {summary['responses']} responses cut off at --max-new-tokens "
            f"({summary['cut_off_share']:.1%})")


def write_summaries(out_dir: str, summaries: dict) -> None:
    """summary.json (replaced whole: a kill never leaves half of it) and summary.md."""
    summary_path = os.path.join(out_dir, "summary.json")
    tmp = summary_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(summaries, f, indent=2, allow_nan=False)
    os.replace(tmp, summary_path)
    with open(os.path.join(out_dir, "summary.md"), "w") as f:
        f.write(markdown(summaries))


def evaluate_command(argv=None) -> dict:
    args = parse_args(argv)
    check_flags(args)
    benches = read_benches(args)
    sampling = sampling_from_args(args)
    settings = {bench.name: eval_settings(args, sampling, bench) for bench in benches}
    if args.overwrite:
        remove_outputs([p for bench in benches for p in (bench.out_path, settings_path(bench.out_path))])
    for bench in benches:  # refuse another run's rows before any work
        begun = os.path.exists(bench.out_path) and os.path.getsize(bench.out_path) > 0
        check_settings(bench.out_path, settings[bench.name], begun=begun)
    summaries = read_summaries(os.path.join(args.out, "summary.json"))
    model, tokenizer = (load_model_and_tokenizer(args.model, args.tokenizer, args.dtype, args.device) if args.model
                        else (None, None))
    verifier = (WorldVerifier() if args.verifier == WORLD
                else LogProbVerifier(verifier_model(args.verifier), args.dtype, args.device)
                if args.verifier and args.verifier.startswith(LOGPROB)
                else Verifier(args.verifier, args.verifier_agg, args.verifier_split, args.dtype, args.device,
                              args.batch_size) if args.verifier else None)
    os.makedirs(args.out, exist_ok=True)
    for bench in benches:
        summaries[bench.name] = evaluate_bench(bench, settings[bench.name], sampling, model, tokenizer, verifier, args)
        print(report_line(bench.name, summaries[bench.name], verifier is not None))
        write_summaries(args.out, summaries)
    return summaries


def main(argv=None) -> dict:
    """evaluate.py's command line: a bad input ends it with one line on stderr (exit status 2)."""
    return run_main(evaluate_command, argv, "evaluate.py")


if __name__ == "__main__":
    main()
