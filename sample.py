"""Teacher generations: tasks JSONL in, samples JSONL out.

    python sample.py --model PATH_OR_HUB_ID --tasks TASKS.jsonl --out SAMPLES.jsonl --n 4 \\
        --temperature 0.7 --top-p 0.9 --max-new-tokens 1024 --batch-size 32 --seed 42
    torchrun --nproc_per_node 8 sample.py ... --num-samples 4   (data-parallel; torchrun would take --n for its own)

Tasks are {"id", "problem", "answer"?, ...}. Each output row is the task (all its fields) plus
"prompt" (the rendered text sampled from), "samples": [n completions], "finish_reasons": ["stop" or
"length", one per sample] and, when the task has an answer, "correct": [n grader verdicts]. A sample
cut off at --max-new-tokens ("length") states no answer: its verdict is False. The run ends by
printing the teacher's outcome error rate (the share of wrong samples) and how many were cut off.

Resuming: rows are appended and flushed as soon as all samples of a task are done. Rerunning with
the same --out skips the tasks already there. Sample k of task t is drawn with its own seed, made
from (--seed, t's id, k), so it does not depend on the batch it lands in, the number of processes
or an interruption: a resumed run's file equals an uninterrupted one's. At the end the file is
rewritten in task order (under torchrun, rank r appends to OUT.rank<r> and rank 0 merges them).
The settings that decide the samples (model and a fingerprint of its weights, tokenizer, the tasks
file's fingerprint, n, temperature, top-p, top-k, max-new-tokens, seed, template, dtype, few-shot file)
are kept in OUT.settings.json, written once the model has loaded (a run that fails on its inputs
leaves none). Resuming with other settings or changed inputs fails before the model loads, in one
line; --overwrite discards the old output and starts fresh.

The library does the work (w2s/data/tasks.py: task rows and few-shot examples; w2s/generation.py: prompts,
seeds, the sampling loop; w2s/data/jsonl.py: resumable output); this file parses the arguments, calls it
and reports.
"""
import argparse
import os
import sys
from dataclasses import replace
from typing import Iterator

import torch.distributed as dist

from w2s.cli import DefaultsHelpFormatter, Progress, add_generation_args, check_generation_args, sampling_from_args
from w2s.data.jsonl import append_row, check_settings, read_output_rows, settings_path, write_settings
from w2s.data.jsonl import merge_outputs, rank_files
from w2s.data.provenance import (check_output_file, file_fingerprint, normalize_path, remove_outputs, same_file,
                                 weights_fingerprint)
from w2s.data.tasks import choose_shots, load_few_shot, load_tasks
from w2s.errors import UserError, run_main
from w2s.generation import Sampling, fit_max_new_tokens, sample_tasks
from w2s.grader import grade
from w2s.runtime import default_device, init_distributed, load_model_and_tokenizer, rank_and_world, resolve_dtype


def sample_settings(args: argparse.Namespace, sampling: Sampling) -> dict:
    """What decides the samples: the settings, the weights' and the input files' fingerprints. Batch
    size, device, compile and the number of processes do not: each sample has its own seed
    (w2s.generation.sample_seed)."""
    return {"model": normalize_path(args.model), "model_fingerprint": weights_fingerprint(args.model),
            "tokenizer": normalize_path(args.tokenizer), "tasks_fingerprint": file_fingerprint(args.tasks),
            **sampling.recorded(), "dtype": resolve_dtype(args.dtype, args.device or default_device()),
            "few_shot": normalize_path(args.few_shot), "shots": args.shots if args.few_shot else None,
            "few_shot_fingerprint": file_fingerprint(args.few_shot) if args.few_shot else None}


def sample_rows(model, tokenizer, tasks: list[dict], sampling: Sampling, few_shot: list[dict], shots: int,
                progress: Progress) -> Iterator[dict]:
    """Output rows for `tasks`: the task, its prompt, samples, finish reasons and (with an answer) the
    grader's verdicts; a sample cut off at the length limit is never graded right."""
    for task, prompt, samples, reasons in sample_tasks(model, tokenizer, tasks, sampling, progress=progress,
                                                       few_shot=few_shot, shots=shots):
        row = {**task, "prompt": prompt, "samples": samples, "finish_reasons": reasons}
        if "answer" in task:
            row["correct"] = [reason == "stop" and grade(sample, task["answer"])
                              for sample, reason in zip(samples, reasons)]
        yield row


def report(rows: list[dict], total_tasks: int) -> None:
    verdicts = [v for row in rows for v in row.get("correct", [])]
    reasons = [r for row in rows for r in row.get("finish_reasons", [])]
    print(f"{len(rows)}/{total_tasks} tasks sampled", file=sys.stderr)
    if reasons:
        cut = reasons.count("length")
        print(f"cut off at --max-new-tokens: {cut} of {len(reasons)} samples ({cut / len(reasons):.1%}); "
              "a cut-off sample states no answer")
    if verdicts:
        wrong = verdicts.count(False)
        print(f"outcome error rate: {wrong / len(verdicts):.1%} ({wrong} of {len(verdicts)} samples wrong, "
              f"{sum(1 for row in rows if 'correct' in row)} tasks with answers)")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Sample teacher solutions for math tasks (resumable, torchrun-able).",
                                     formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--model", required=True, help="checkpoint directory, Hugging Face Hub id, or Llama GGUF file")
    parser.add_argument("--tokenizer", help="tokenizer.json or its directory (default: the model's)")
    parser.add_argument("--tasks", required=True, help='JSONL of {"id", "problem", "answer"?}')
    parser.add_argument("--out", required=True, help="samples JSONL (appended to; rerun to resume)")
    parser.add_argument("--n", "--num-samples", dest="n", type=int, default=4,
                        help="samples per task (under torchrun write --num-samples: torchrun reads --n as its own)")
    parser.add_argument("--few-shot", metavar="FILE", help="solved examples to show before each task (an SFT set, "
                        "a sample.py output, or rows {problem, solution}): weak-ICL")
    parser.add_argument("--shots", type=int, default=4, help="with --few-shot: how many, drawn by --seed, the same for "
                        "every task and never the task itself")
    add_generation_args(parser, temperature=0.7, top_p=0.9, seed=42)
    return parser.parse_args(argv)


def check_paths(args: argparse.Namespace) -> None:
    """--out is a writable file that is none of the inputs; checked before any file is touched."""
    check_output_file(args.out)
    for flag, path in (("--tasks", args.tasks), ("--few-shot", args.few_shot)):
        if path and same_file(path, args.out):
            raise UserError(f"--out {args.out} is the {flag} file: sample.py would write its rows over its input; "
                            "pick another --out")


def sample(argv=None) -> None:
    args = parse_args(argv)
    check_generation_args(args)
    check_paths(args)
    tasks = load_tasks(args.tasks)
    chosen_shots = choose_shots(load_few_shot(args.few_shot), args.shots, args.seed) if args.few_shot else []
    sampling = sampling_from_args(args)
    settings = sample_settings(args, sampling)  # before any process-group work: a bad flag is one line
    rank, world = rank_and_world()
    if world > 1:
        init_distributed("cpu", backend="gloo")  # only barriers: gloo works with or without GPUs
    try:
        # Rank 0 alone checks the settings (before touching any file) and folds whatever an earlier
        # run left (OUT, rank files) into OUT; then every rank reads the same finished ids, and takes
        # every world-th of the remaining tasks. The settings are recorded once the model has loaded
        # and the prompts fit, so a run that fails on its inputs leaves no settings file behind.
        if rank == 0:
            if args.overwrite:
                remove_outputs([args.out, settings_path(args.out), *rank_files(args.out)])
            os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
            begun = any(os.path.getsize(p) for p in [args.out, *rank_files(args.out)] if os.path.exists(p))
            check_settings(args.out, settings, begun, older="sample.py")
            merge_outputs(args.out, tasks, args.n)
        if world > 1:
            dist.barrier()
        finished = {row["id"] for _, row in read_output_rows(args.out)}
        remaining = [task for task in tasks if task["id"] not in finished]
        mine = remaining[rank::world]
        if mine:
            model, tokenizer = load_model_and_tokenizer(args.model, args.tokenizer, args.dtype, args.device)
            sampling = replace(sampling, max_new_tokens=fit_max_new_tokens(
                model, tokenizer, tasks, sampling.template, sampling.max_new_tokens, chosen_shots, args.shots))
        if world > 1:
            dist.barrier()
        if rank == 0:
            write_settings(args.out, settings)  # after merge_outputs checked the rows of an older output
        if world > 1:
            dist.barrier()
        if mine:
            progress = Progress(len(mine), "tasks", enabled=not args.quiet and rank == 0)
            with open(args.out if world == 1 else f"{args.out}.rank{rank}", "a", encoding="utf-8") as f:
                for row in sample_rows(model, tokenizer, mine, sampling, chosen_shots, args.shots, progress):
                    append_row(f, row)
            progress.close()
        if world > 1:
            dist.barrier()
        if rank == 0:
            report(merge_outputs(args.out, tasks, args.n), len(tasks))
    finally:
        if world > 1:
            dist.destroy_process_group()


def main(argv=None) -> None:
    """sample.py's command line: a bad input ends it with one line on stderr (exit status 2)."""
    return run_main(sample, argv, "sample.py")


if __name__ == "__main__":
    main()
