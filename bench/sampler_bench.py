"""Sampler speed against transformers' `generate` on the same weights.

Greedy decoding of the `30m` preset with random weights (saved with `save_pretrained`, loaded by
both), fp32 and bf16, at batch 16 (prompts of random lengths, ragged as real prompts are) and at
batch 1: new tokens per second over whole generate calls, split into prefill (a 1-token call) and
decode time per step (the rest of an n-token call). Both sides run with no stop token so they
generate exactly the same number of tokens, and the run reports how many rows came out identical.
Runs are interleaved (ours, theirs, ours, ...) and the best of `--repeats` is kept; by default times
are the process's CPU time with one thread, because this machine is shared and elapsed time is noise.

    python bench/sampler_bench.py [--new-tokens 256] [--repeats 2] [--threads 1] [--clock cpu] [--no-write]
"""
import argparse
import os
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.results import write_section  # noqa: E402
from w2s.model import Llama, ModelArgs  # noqa: E402
from w2s.sampler import generate  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def ragged_prompts(count: int, low: int, high: int, vocab: int, seed: int = 1) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(low, high + 1, (count,), generator=g).tolist()
    return [torch.randint(5, vocab, (n,), generator=g).tolist() for n in lengths]


def hf_generate(model, prompts: list[list[int]], new_tokens: int) -> list[list[int]]:
    """transformers' greedy generate, prompts left-padded as it expects."""
    width = max(len(p) for p in prompts)
    ids = torch.zeros(len(prompts), width, dtype=torch.long)
    mask = torch.zeros(len(prompts), width, dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, width - len(p):] = torch.tensor(p)
        mask[i, width - len(p):] = 1
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                             do_sample=False, pad_token_id=0)
    return out[:, width:].tolist()


CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}
clock = time.process_time


def best_time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = clock()
        fn()
        best = min(best, clock() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    parser.add_argument("--clock", choices=CLOCKS, default="cpu",
                        help="cpu: the process's CPU time (steady on a shared machine, with 1 thread); wall: elapsed time")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    global clock
    clock = CLOCKS[args.clock]
    import transformers

    torch.manual_seed(0)
    config = ModelArgs.preset("30m")
    checkpoint = tempfile.mkdtemp(prefix="sampler_bench_")
    Llama(config).save_pretrained(checkpoint)
    prompts = ragged_prompts(args.batch, 16, 128, config.vocab_size)
    single = ragged_prompts(1, 64, 64, config.vocab_size, seed=2)
    n = args.new_tokens
    throughput_rows, latency_rows, notes = [], [], []
    for dtype_name, dtype in DTYPES.items():
        ours = Llama.from_pretrained(checkpoint, dtype=dtype).eval()
        theirs = transformers.LlamaForCausalLM.from_pretrained(checkpoint, dtype=dtype).eval()
        theirs.generation_config.eos_token_id = None  # both sides generate exactly n tokens
        runners = {"ours": lambda batch, k: generate(ours, batch, max_new_tokens=k),
                   "transformers": lambda batch, k: hf_generate(theirs, batch, k)}
        # Warm up both (first calls allocate and pick kernels), and compare tokens.
        same = sum(a == b for a, b in zip(runners["ours"](prompts, n), runners["transformers"](prompts, n)))
        notes.append(f"{dtype_name}: {same}/{len(prompts)} rows token-for-token identical to transformers")
        for batch, rows in [(prompts, throughput_rows), (single, latency_rows)]:
            # Best of `repeats` for a 1-token call (the prefill) and an n-token call, interleaved
            # so both sides see the same machine load; decode per step is their difference / (n - 1).
            first, whole = {name: float("inf") for name in runners}, {name: float("inf") for name in runners}
            for _ in range(args.repeats):
                for name, run in runners.items():
                    first[name] = min(first[name], best_time(lambda: run(batch, 1), 1))
                    whole[name] = min(whole[name], best_time(lambda: run(batch, n), 1))
            rows.append((dtype_name, {name: (len(batch) * n / whole[name], first[name] * 1e3,
                                             (whole[name] - first[name]) / (n - 1) * 1e3) for name in runners}))
            print(dtype_name, len(batch), rows[-1][1], flush=True)

    lines = [
        "## Sampler: `bench/sampler_bench.py`",
        "",
        f"`w2s.sampler.generate` against transformers {transformers.__version__} `generate` on the same random "
        f"weights: `30m` preset ({Llama(config).num_params() / 1e6:.0f}M parameters), greedy, no stop token, "
        f"{n} new tokens per prompt; best of {args.repeats} interleaved runs. Tokens/s counts new tokens over whole "
        "generate calls (prefill included), "
        + ("per second of the process's CPU time, with one thread: this machine is shared with other jobs, and CPU "
           "time stays steady where elapsed time is noise." if args.clock == "cpu" else "per second of elapsed time.")
        + " Prefill is a 1-token call; decode is the rest of an n-token call, per step.",
        "",
    ]
    for title, rows in [(f"Batch {args.batch}: prompts of 16..128 tokens", throughput_rows),
                        ("Batch 1: a 64-token prompt", latency_rows)]:
        lines += [f"{title}.", "",
                  "| dtype | ours tok/s | transformers tok/s | speedup | ours prefill ms | transformers prefill ms "
                  "| ours decode ms/step | transformers decode ms/step |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for dtype_name, r in rows:
            (o_tps, o_pre, o_step), (h_tps, h_pre, h_step) = r["ours"], r["transformers"]
            lines.append(f"| {dtype_name} | {o_tps:.0f} | {h_tps:.0f} | **{o_tps / h_tps:.2f}x** | {o_pre:.1f} | "
                         f"{h_pre:.1f} | {o_step:.2f} | {h_step:.2f} |")
        lines.append("")
    lines += ["Parity: " + "; ".join(notes) + " (bf16 rounding differs between the two implementations, "
              "so near-ties can go either way).", "",
              "Where the time goes (torch profiler on this machine): at batch 16 both sides spend most of each decode "
              "step in the same matrix multiplies (same weights, same shapes) and the same CPU attention kernel, so "
              "decode steps are close. Ours writes its cache in place (transformers concatenates its cache every "
              "step, a cost that grows with the sequence), prefills prompts in length groups instead of padding the "
              "whole batch to its longest prompt, and runs the head only on each prompt's last token. "
              f"**The 2x goal is not met on this CPU.**", ""]
    if torch.cuda.is_available():
        lines.append("GPU: a GPU is present but this script measures the CPU path only; the GPU measurements "
                     "(Llama-3.2-1B shape, bf16, batch 1 and 32, with and without compile) are not implemented here.")
    else:
        lines.append("GPU: no GPU was available for this run, so the GPU part (a Llama-3.2-1B-shaped model in bf16 "
                     "at batch 1 and 32, with and without `compile=True`, decode bandwidth against the card's) "
                     "was not measured.")
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section("sampler", body)


if __name__ == "__main__":
    main()
