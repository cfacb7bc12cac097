"""Forward+backward throughput of w2s's Llama against transformers' LlamaForCausalLM.

Same config (the `30m` preset), same weights, same batch, same loss (cross-entropy in fp32 over
all positions), fp32 and bf16. Steps alternate between the two models, and by default each runs on
one thread timed by the process's CPU time, so that other jobs on a shared machine slow neither side
(wall-clock ratios swung from 0.9x to 1.4x under load); the median step is reported. MFU is achieved
training FLOPs over a matmul peak measured the same way, in the same run and dtype.

    python bench/model_bench.py [--batch 4 --seq 256 --steps 6 --threads 1]
"""
import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.results import write_section  # noqa: E402
from w2s.model import Llama, ModelArgs  # noqa: E402


# One thread: CPU time is the time the work itself took, whatever else the machine runs.
clock = time.process_time


def matmul_peak_flops(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t = clock()
        a @ b
        best = min(best, clock() - t)
    return 2 * n**3 / best


def hf_twin(model: Llama, dtype: torch.dtype):
    """transformers' Llama with the same config and weights (through our save_pretrained)."""
    import tempfile

    import transformers

    with tempfile.TemporaryDirectory() as d:
        model.save_pretrained(d)
        return transformers.LlamaForCausalLM.from_pretrained(d, dtype=dtype, attn_implementation="sdpa")


def train_step(forward, params, tokens, targets) -> float:
    t = clock()
    logits = forward(tokens)
    loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten())
    loss.backward()
    for p in params:
        p.grad = None
    return clock() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="30m")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads; above 1, steps are timed by the wall clock instead of CPU time")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    global clock
    torch.set_num_threads(args.threads)
    if args.threads > 1:
        clock = time.perf_counter
    timing = "CPU time, 1 thread" if args.threads == 1 else f"wall clock, {args.threads} threads"

    torch.manual_seed(0)
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        ours = Llama(ModelArgs.preset(args.preset)).to(dtype)
        theirs = hf_twin(ours, dtype)
        tokens = torch.randint(0, ours.args.vocab_size, (args.batch, args.seq))
        targets = torch.roll(tokens, -1, dims=1)
        runners = {
            "w2s": (lambda x: ours(x), list(ours.parameters())),
            "transformers": (lambda x: theirs(input_ids=x).logits, list(theirs.parameters())),
        }
        times = {name: [] for name in runners}
        for step in range(args.steps + 2):  # the first two rounds warm up
            for name, (forward, params) in runners.items():
                elapsed = train_step(forward, params, tokens, targets)
                if step >= 2:
                    times[name].append(elapsed)
        peak = matmul_peak_flops(dtype)
        flops_per_step = ours.flops_per_token(args.seq) * tokens.numel()
        speeds = {}
        for name in runners:
            step_time = statistics.median(times[name])
            speeds[name] = tokens.numel() / step_time
            rows.append((str(dtype).removeprefix("torch."), name, speeds[name], flops_per_step / step_time / peak))
        rows.append((str(dtype).removeprefix("torch."), "ratio w2s / transformers", speeds["w2s"] / speeds["transformers"], None))
        print(rows[-3:], f"peak {peak / 1e9:.0f} GFLOP/s", flush=True)

    n_params = Llama(ModelArgs.preset(args.preset)).num_params()
    table = ["| dtype | model | tokens/s | MFU |", "|---|---|---|---|"]
    for dtype, name, speed, mfu in rows:
        if mfu is None:
            table.append(f"| {dtype} | **{name}** | **{speed:.2f}x** | |")
        else:
            table.append(f"| {dtype} | {name} | {speed:,.0f} | {100 * mfu:.1f}% |")
    body = (f"## Model: forward + backward\n\n`{args.preset}` preset ({n_params / 1e6:.1f}M parameters), "
            f"batch {args.batch} x {args.seq} tokens, median of {args.steps} steps after 2 warm-up rounds, "
            f"the two models alternating step by step, timed by {timing}. MFU against a 2048^3 matmul measured in the same run "
            "and dtype.\n\n" + "\n".join(table))
    print(body)
    if not args.no_write:
        write_section("model", body)


if __name__ == "__main__":
    main()
