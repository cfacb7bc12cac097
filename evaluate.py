"""Benchmark accuracy with the grader: greedy by default (the paper's evaluation), maj@K and pass@K when asked.

    python evaluate.py --model PATH_OR_HUB_ID --bench math500 --out runs/eval
    python evaluate.py --model PATH_OR_HUB_ID --bench my_test.jsonl --n 8 --temperature 0.7 --out runs/eval
    python evaluate.py --model POLICY --bench miniworld --n 16 --temperature 0.7 --verifier runs/prm/final --out runs/rerank
    python evaluate.py --bench miniworld --samples SAMPLES.jsonl --verifier runs/prm/final --out runs/rerank_prm

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

`w2s.evaluation.evaluate(model, tokenizer, tasks, ...)` is the same thing as a function; this file
parses the arguments, checks the settings, calls it and reports.
"""
import argparse
import json
import os
import sys

from w2s.cli import DefaultsHelpFormatter, add_generation_args, check_generation_args
from w2s.data.jsonl import check_settings, settings_path, write_settings
from w2s.data.provenance import (check_output_dir, file_fingerprint, normalize_path, remove_outputs, same_file,
                                 weights_fingerprint)
from w2s.data.tasks import load_tasks
from w2s.errors import MissingFileError, UserError, run_main
from w2s.evaluation import NOT_GROUPS, evaluate, markdown, read_saved_responses, resolve_bench
from w2s.hf_io import is_hub_id
from w2s.runtime import default_device, load_model_and_tokenizer, resolve_dtype
from w2s.verifier import AGGREGATIONS, SPLITS, Verifier


def eval_settings(args: argparse.Namespace, bench_path: str, samples: str | None = None) -> dict:
    """What decides a benchmark's rows: the settings, the weights' and the benchmark's fingerprints.
    Batch size, device and compile do not. Scoring saved samples: the samples file and its fingerprint
    take the place of the model and the generation settings."""
    verifier = {"verifier": normalize_path(args.verifier),
                "verifier_fingerprint": weights_fingerprint(args.verifier) if args.verifier else None,
                "verifier_agg": args.verifier_agg if args.verifier else None,
                "verifier_split": args.verifier_split if args.verifier else None}
    if samples:
        return {"samples": os.path.abspath(samples), "samples_fingerprint": file_fingerprint(samples),
                "bench": os.path.abspath(bench_path), "bench_fingerprint": file_fingerprint(bench_path), **verifier}
    return {"model": normalize_path(args.model), "model_fingerprint": weights_fingerprint(args.model),
            "tokenizer": normalize_path(args.tokenizer),
            "bench": os.path.abspath(bench_path), "bench_fingerprint": file_fingerprint(bench_path),
            "n": args.n, "temperature": args.temperature, "top_p": args.top_p,
            "top_k": args.top_k, "max_new_tokens": args.max_new_tokens, "seed": args.seed, "template": args.template,
            "dtype": resolve_dtype(args.dtype, args.device or default_device()), **verifier}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark accuracy (greedy, or maj@K / pass@K with --n).",
                                     formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--model", help="checkpoint directory, Hugging Face Hub id, or Llama GGUF file (required "
                        "unless --samples)")
    parser.add_argument("--tokenizer", help="tokenizer.json or its directory (default: the model's)")
    parser.add_argument("--bench", required=True, nargs="+", help="benchmark JSONL file(s) or name(s) in DATA_DIR/test/")
    parser.add_argument("--data-dir", default="data", help="where benchmark names are looked up (DATA_DIR/test/NAME.jsonl)")
    parser.add_argument("--out", required=True, help="output directory (rerun into it to resume)")
    parser.add_argument("--n", type=int, default=1, help="samples per problem (maj@K and pass@K when > 1)")
    parser.add_argument("--samples", nargs="+", metavar="SAMPLES.jsonl", help="score these responses instead of "
                        "generating: one file per --bench, in its order (sample.py output or evaluate.py rows)")
    parser.add_argument("--group-by", nargs="*", help="grouping fields (default: found in the rows)")
    add_generation_args(parser, temperature=0.0, top_p=1.0, seed=0)
    verifier = parser.add_argument_group("re-ranking with a verifier (w2s/verifier.py)")
    verifier.add_argument("--verifier", metavar="DIR", help="a verifier checkpoint (train.py --objective prm): score every "
                          "response, report best_of@K and weighted_maj@K beside maj@K and pass@K")
    verifier.add_argument("--verifier-agg", choices=AGGREGATIONS, default="min",
                          help="a response's score from its steps': min or prod (a PRM), last (an ORM)")
    verifier.add_argument("--verifier-split", choices=SPLITS, default="lines",
                          help="a response's steps: its non-empty lines, or its blank-line-separated paragraphs")
    return parser.parse_args(argv)


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
        raise UserError(f"--group-by {' '.join(unknown)}: no benchmark row has {'this field' if len(unknown) == 1 else 'these fields'}; "
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
        raise UserError(f"{path}: not a summary file ({summaries if isinstance(summaries, Exception) else 'not a JSON object'}); "
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


def evaluate_command(argv=None) -> dict:
    args = parse_args(argv)
    check_generation_args(args)
    if not args.model and not args.samples:
        raise UserError("--model is required (or --samples, to score responses drawn before)")
    if args.samples and len(args.samples) != len(args.bench):
        raise UserError(f"--samples: {len(args.samples)} file(s) for {len(args.bench)} --bench; give one per benchmark, "
                        "in the same order")
    if args.samples and args.model:
        raise UserError("--samples with --model: the samples are scored as they are, nothing is generated; "
                        "drop --model")
    if args.n > 1 and args.temperature == 0 and not args.samples:
        raise UserError(f"--n {args.n}: {args.n} samples at temperature 0 would be {args.n} copies of the greedy answer; "
                        "set a temperature > 0 for maj@K / pass@K")
    check_output_dir(args.out)
    if args.verifier:
        check_verifier(args.verifier)
    benches = [resolve_bench(b, args.data_dir) for b in args.bench]
    for name, path in benches:
        out_path = os.path.join(args.out, f"{name}.jsonl")
        if same_file(path, out_path):
            raise UserError(f"--bench {path}: this benchmark file is where evaluate.py writes its rows for {name!r} "
                            f"in --out {args.out}; keep benchmarks outside --out (or pick another --out)")
    tasks = {name: load_tasks(path) for name, path in benches}  # check every file before loading the model
    check_group_by(args.group_by, tasks)
    samples = dict(zip([name for name, _ in benches], args.samples or [None] * len(benches)))
    saved = {}
    for name, path in samples.items():
        if path:
            if not os.path.isfile(path):
                raise MissingFileError(f"--samples {path}: no such file")
            saved[name] = read_saved_responses(path, tasks[name])
    settings = {name: eval_settings(args, path, samples[name]) for name, path in benches}
    summary_path = os.path.join(args.out, "summary.json")
    if args.overwrite:
        remove_outputs([p for name, _ in benches for p in (os.path.join(args.out, f"{name}.jsonl"),
                                                           settings_path(os.path.join(args.out, f"{name}.jsonl")))])
    for name, _ in benches:  # refuse another run's rows before any work
        out_path = os.path.join(args.out, f"{name}.jsonl")
        check_settings(out_path, settings[name], begun=os.path.exists(out_path) and os.path.getsize(out_path) > 0)
    summaries = read_summaries(summary_path)
    model, tokenizer = (load_model_and_tokenizer(args.model, args.tokenizer, args.dtype, args.device) if args.model
                        else (None, None))
    verifier = Verifier(args.verifier, args.verifier_agg, args.verifier_split, args.dtype, args.device,
                        args.batch_size) if args.verifier else None
    os.makedirs(args.out, exist_ok=True)
    for name, path in benches:
        print(f"{name}: {len(tasks[name])} problems from {path}", file=sys.stderr)
        out_path = os.path.join(args.out, f"{name}.jsonl")
        n, temperature, model_name = args.n, args.temperature, normalize_path(args.model)
        if name in saved:
            n = saved[name][1]
            model_name, temperature = samples_origin(samples[name])
            if args.n not in (1, n):
                raise UserError(f"--n {args.n}: {samples[name]} holds {n} responses per problem")
        summary = evaluate(model, tokenizer, tasks[name], n=n, temperature=temperature, top_p=args.top_p,
                           top_k=args.top_k, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                           seed=args.seed, template=args.template, out_path=out_path,
                           group_by=args.group_by, compile=args.compile, progress=not args.quiet, verifier=verifier,
                           on_start=lambda out_path=out_path, name=name: write_settings(out_path, settings[name]),
                           saved=saved[name][0] if name in saved else None)
        summaries[name] = {"bench": path, "model": model_name, **({"samples": samples[name]} if name in saved else {}),
                           **summary}
        key = "accuracy" if n == 1 else f"maj@{n}"
        reranked = (f"; best_of@{n} {summary[f'best_of@{n}']:.1%}, weighted_maj@{n} "
                    f"{summary[f'weighted_maj@{n}']:.1%}, pass@{n} {summary[f'pass@{n}']:.1%}"
                    if verifier and n > 1 else "")
        print(f"{name}: {key} {summary['accuracy']:.1%} over {summary['problems']} problems{reranked}; "
              f"{summary['cut_off']} of {summary['responses']} responses cut off at --max-new-tokens "
              f"({summary['cut_off_share']:.1%})")
        tmp = summary_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(summaries, f, indent=2, allow_nan=False)
        os.replace(tmp, summary_path)
        with open(os.path.join(args.out, "summary.md"), "w") as f:
            f.write(markdown(summaries))
    return summaries


def main(argv=None) -> dict:
    """evaluate.py's command line: a bad input ends it with one line on stderr (exit status 2)."""
    return run_main(evaluate_command, argv, "evaluate.py")


if __name__ == "__main__":
    main()
