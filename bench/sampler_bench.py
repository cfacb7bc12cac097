"""Sampler speed against transformers' `generate` on the same weights.

Greedy decoding with random weights (saved with `save_pretrained`, loaded by both sides). Tokens/s
counts new tokens over whole generate calls (prefill included); each call is also split into prefill
(a 1-token call) and decode time per step (the rest of an n-token call). Runs are interleaved (ours,
theirs, ours, ...) and the best of `--repeats` is kept.

CPU (the default): the `30m` preset in fp32 and bf16, batch 16 (prompts of 16..128 tokens, ragged as
real prompts are) and batch 1. Times are the process's CPU time with one thread, because a shared
machine makes elapsed time noise. The *matmul floor* is the decode step's matrix multiplies alone
(every Linear once, on `batch` rows) with the same GEMM library: no eager implementation's step is
faster, so transformers' step over the floor bounds what any sampler can gain on decode. Parity:
how many rows come out token-for-token identical.

GPU (`--device cuda`): a Llama-3.2-1B-shaped model in bf16, batch 1 and 32, ours with and without
`compile_decoding`, timed by elapsed time with CUDA synchronization; decode bandwidth is the bytes a
decode step must read (weights + the average KV cache) over its time, against the card's bandwidth
measured in the same run by a device-to-device copy (and its spec-sheet figure where known).

    python bench/sampler_bench.py [--new-tokens 256] [--repeats 2] [--threads 1] [--clock cpu] [--no-write]
    python bench/sampler_bench.py --device cuda [--preset llama3.2-1b] [--batches 1,32]
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.results import RESULTS, write_section  # noqa: E402
from w2s.model import Llama, ModelArgs  # noqa: E402
from w2s.sampler import compile_decoding, generate  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
# Spec-sheet memory bandwidth (bytes/s) by device name, for context next to the measured copy bandwidth.
SPEC_BANDWIDTH = {"H200": 4.8e12, "H100 80GB HBM3": 3.35e12, "H100 PCIe": 2.0e12, "A100-SXM4-80GB": 2.04e12,
                  "A100-SXM4-40GB": 1.56e12, "A100 80GB PCIe": 1.94e12, "L40S": 0.864e12, "A10G": 0.6e12}


def ragged_prompts(count: int, low: int, high: int, vocab: int, seed: int = 1) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(low, high + 1, (count,), generator=g).tolist()
    return [torch.randint(5, vocab, (n,), generator=g).tolist() for n in lengths]


def hf_generate(model, prompts: list[list[int]], new_tokens: int) -> list[list[int]]:
    """transformers' greedy generate of exactly `new_tokens` per row, prompts left-padded as it expects."""
    width = max(len(p) for p in prompts)
    ids = torch.zeros(len(prompts), width, dtype=torch.long)
    mask = torch.zeros(len(prompts), width, dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, width - len(p):] = torch.tensor(p)
        mask[i, width - len(p):] = 1
    device = model.device
    with torch.inference_mode():
        out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), max_new_tokens=new_tokens,
                             min_new_tokens=new_tokens, do_sample=False, pad_token_id=0)
    return out[:, width:].tolist()


class Clock:
    """CPU time of this process (steady on a shared machine with one thread), or elapsed time after
    waiting for the GPU to finish."""

    def __init__(self, kind: str, device: torch.device):
        self.kind, self.device = kind, device

    def __call__(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.process_time() if self.kind == "cpu" else time.perf_counter()

    def time(self, fn) -> float:
        start = self()
        fn()
        return self() - start


def measure(clock: Clock, runners: dict, prompts: list[list[int]], n: int, repeats: int) -> dict:
    """Per runner: (new tokens/s, prefill ms, decode ms/step), best of `repeats` interleaved runs."""
    first = {name: float("inf") for name in runners}
    whole = {name: float("inf") for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            first[name] = min(first[name], clock.time(lambda: run(prompts, 1)))
            whole[name] = min(whole[name], clock.time(lambda: run(prompts, n)))
    return {name: (len(prompts) * n / whole[name], first[name] * 1e3, (whole[name] - first[name]) / (n - 1) * 1e3)
            for name in runners}


def matmul_floor_ms(clock: Clock, model: Llama, batch: int, repeats: int = 20) -> float:
    """Time of one decode step's matrix multiplies alone: every Linear once on `batch` rows (median)."""
    weights = [m.weight for m in model.modules() if isinstance(m, torch.nn.Linear)]
    inputs = {w.shape[1]: torch.randn(batch, w.shape[1], dtype=w.dtype, device=w.device) for w in weights}

    def step():
        for w in weights:
            F.linear(inputs[w.shape[1]], w)

    step()
    return statistics.median(clock.time(step) for _ in range(repeats)) * 1e3


def table(rows: list[tuple], columns: list[str]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(columns))) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines + [""]


def pair_runners(ours: Llama, theirs) -> dict:
    """name -> run(prompts, new_tokens): the two samplers under test, greedy."""
    return {"ours": lambda p, k: generate(ours, p, max_new_tokens=k),
            "transformers": lambda p, k: hf_generate(theirs, p, k)}


def compiled_generate(model: Llama, prompts: list[list[int]], new_tokens: int) -> list[list[int]]:
    """Greedy generate with the compiled decode step, switched off again so the eager runner stays eager."""
    compile_decoding(model)
    try:
        return generate(model, prompts, max_new_tokens=new_tokens)
    finally:
        compile_decoding(model, enabled=False)


def speed_cells(r: dict) -> list[str]:
    """Table cells comparing ours with transformers, from `measure`'s result."""
    (o_tps, o_pre, o_step), (h_tps, h_pre, h_step) = r["ours"], r["transformers"]
    return [f"{o_tps:.0f}", f"{h_tps:.0f}", f"**{o_tps / h_tps:.2f}x**", f"{o_pre:.1f}", f"{h_pre:.1f}",
            f"{o_step:.2f}", f"{h_step:.2f}"]


SPEED_COLUMNS = ["ours tok/s", "transformers tok/s", "speedup", "ours prefill ms", "transformers prefill ms",
                 "ours decode ms/step", "transformers decode ms/step"]


def load_pair(checkpoint: str, dtype: torch.dtype, device: torch.device):
    import transformers

    ours = Llama.from_pretrained(checkpoint, dtype=dtype, device=device).eval()
    theirs = transformers.LlamaForCausalLM.from_pretrained(checkpoint, dtype=dtype).to(device).eval()
    theirs.generation_config.eos_token_id = None  # both sides generate exactly n tokens
    return ours, theirs


def cpu_benchmark(args, checkpoint: str, config: ModelArgs, clock: Clock) -> list[str]:
    n, device = args.new_tokens, torch.device("cpu")
    batched = ragged_prompts(args.batch, 16, 128, config.vocab_size)
    single = ragged_prompts(1, 64, 64, config.vocab_size, seed=2)
    results, notes = {}, []
    for dtype_name, dtype in DTYPES.items():
        ours, theirs = load_pair(checkpoint, dtype, device)
        runners = pair_runners(ours, theirs)
        # Warm up both (first calls allocate and pick kernels), and compare tokens.
        ours_out, theirs_out = runners["ours"](batched, n), runners["transformers"](batched, n)
        notes.append(f"{dtype_name}: {sum(a == b for a, b in zip(ours_out, theirs_out))}/{len(batched)} rows identical")
        for prompts in (batched, single):
            r = measure(clock, runners, prompts, n, args.repeats)
            results[dtype_name, len(prompts)] = (r, matmul_floor_ms(clock, ours, len(prompts)))
            print(dtype_name, len(prompts), results[dtype_name, len(prompts)], flush=True)

    lines = [f"`w2s.sampler.generate` against transformers {transformers_version()} `generate` on the same random "
             f"weights: `{args.preset}` preset ({ours.num_params() / 1e6:.0f}M parameters), greedy, {n} new "
             f"tokens per prompt, no stop token; best of {args.repeats} interleaved runs. Times are "
             + ("the process's CPU time with one thread (this machine is shared with other jobs; CPU time stays "
                "steady where elapsed time is noise)." if args.clock == "cpu" else "elapsed time.")
             + " Prefill is a 1-token call; decode is the rest of an n-token call, per step. The matmul floor is "
             "the decode step's matrix multiplies alone (every Linear once on the batch's rows), and *best possible* "
             "is transformers' decode step over that floor: what a sampler that did nothing but those matmuls would "
             "gain on decode.", ""]
    for batch, title in [(args.batch, f"Batch {args.batch}: prompts of 16..128 tokens"), (1, "Batch 1: a 64-token prompt")]:
        rows = []
        for dtype_name in DTYPES:
            r, floor = results[dtype_name, batch]
            rows.append((dtype_name, *speed_cells(r), f"{floor:.2f}", f"{r['transformers'][2] / floor:.2f}x"))
        lines += [f"{title}.", ""] + table(rows, ["dtype", *SPEED_COLUMNS, "matmul floor ms/step",
                                                  "best possible decode speedup"])
    lines += ["Parity (no stop token): " + "; ".join(notes) + " (bf16 rounding differs between the two "
              "implementations, so near-ties can go either way).", ""]
    speedup = {d: results[d, args.batch][0]["ours"][0] / results[d, args.batch][0]["transformers"][0] for d in DTYPES}
    bound = {d: results[d, args.batch][0]["transformers"][2] / results[d, args.batch][1] for d in DTYPES}
    met = all(x >= 2 for x in speedup.values())
    lines += [f"Reading: the goal of 2x transformers at batch {args.batch} is **{'met' if met else 'not met'}** on "
              "this CPU (" + ", ".join(f"{d} {x:.2f}x" for d, x in speedup.items()) + "). Ours gains on prefill "
              "(prompts prefilled in length groups instead of all padded to the longest, the head run on each "
              "prompt's last token only) and writes its cache in place, but at this size a decode step on a CPU "
              "is its matrix multiplies, the same GEMMs on the same shapes on both sides: a sampler whose step did "
              "nothing else would still be only " + ", ".join(f"{bound[d]:.2f}x ({d})" for d in DTYPES)
              + " faster per step than transformers. The rest of our step is attention over the cache and "
              "elementwise work. Where steps are overhead-bound instead (small models, GPUs launching one kernel "
              "per op) the design shows: see the `tiny` table below and the GPU section.", ""]
    return lines


def cpu_small_model(args, clock: Clock, preset: str = "tiny") -> list[str]:
    """The same batched measurement (fp32) on the preset the miniature study samples from, where a
    decode step is small enough that per-op overhead, not the matmuls, decides its time."""
    n, config = args.new_tokens, ModelArgs.preset(preset)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory(prefix="sampler_bench_") as checkpoint:
        Llama(config).save_pretrained(checkpoint)
        ours, theirs = load_pair(checkpoint, torch.float32, torch.device("cpu"))
    runners = pair_runners(ours, theirs)
    prompts = ragged_prompts(args.batch, 16, 128, config.vocab_size)
    same = sum(a == b for a, b in zip(*(run(prompts, n) for run in runners.values())))
    r = measure(clock, runners, prompts, n, args.repeats)
    floor = matmul_floor_ms(clock, ours, len(prompts))
    print(preset, r, floor, flush=True)
    return [f"The `{preset}` preset ({ours.num_params() / 1e6:.1f}M parameters, the miniature study's model), fp32, "
            f"batch {args.batch}, prompts of 16..128 tokens, {n} new tokens ({same}/{len(prompts)} rows identical): "
            "here a decode step is mostly per-op overhead rather than matmuls.", ""] + table(
        [("fp32", *speed_cells(r), f"{floor:.2f}")], ["dtype", *SPEED_COLUMNS, "matmul floor ms/step"])


def card_bandwidth(clock: Clock, device: torch.device, nbytes: int) -> float:
    """Bytes/s of a device-to-device copy (each byte read once and written once)."""
    src = torch.empty(nbytes // 2, dtype=torch.bfloat16, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    return 2 * nbytes / min(clock.time(lambda: dst.copy_(src)) for _ in range(10))


def gpu_benchmark(args, checkpoint: str, config: ModelArgs, clock: Clock) -> list[str]:
    n, device, dtype = args.new_tokens, torch.device(args.device), torch.bfloat16
    ours, theirs = load_pair(checkpoint, dtype, device)
    runners = pair_runners(ours, theirs)
    if args.compile:  # listed between ours and transformers in the table
        runners = {"ours": runners["ours"], "ours, compiled": lambda p, k: compiled_generate(ours, p, k),
                   "transformers": runners["transformers"]}
    copy_bandwidth = card_bandwidth(clock, device, args.copy_bytes)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    spec = next((b for key, b in SPEC_BANDWIDTH.items() if key in name), None)
    weight_bytes = sum(p.numel() * p.element_size() for p in ours.parameters())
    if not config.tie_embeddings:
        weight_bytes -= ours.embed_tokens.weight.numel() * ours.embed_tokens.weight.element_size()  # a lookup
    rows = []
    for batch in args.batches:
        prompts = ragged_prompts(batch, 16, 128, config.vocab_size) if batch > 1 else \
            ragged_prompts(1, 64, 64, config.vocab_size, seed=2)
        t = time.perf_counter()
        for run in runners.values():
            run(prompts, n)  # warm-up, and compilation for the compiled decode step
        print(f"batch {batch}: warm-up {time.perf_counter() - t:.0f} s", flush=True)
        r = measure(clock, runners, prompts, n, args.repeats)
        # Bytes a decode step must read: the weights, and each row's keys and values (on average the
        # longest prompt plus half the new tokens, as both eager samplers attend over the padded width).
        kv_slots = max(map(len, prompts)) + n / 2
        step_bytes = weight_bytes + 2 * config.n_layers * batch * config.n_kv_heads * config.head_dim * kv_slots * 2
        for impl, (tps, pre, step) in r.items():
            bandwidth = step_bytes / (step / 1e3)
            rows.append((batch, impl, f"{tps:.0f}", f"**{tps / r['transformers'][0]:.2f}x**", f"{pre:.1f}", f"{step:.2f}",
                         f"{bandwidth / 1e9:.0f}", f"{bandwidth / copy_bandwidth:.0%}"))
            print(rows[-1], flush=True)
    return [f"GPU: {name}. `{args.preset}` shape ({ours.num_params() / 1e6:,.0f}M parameters), random weights, bf16, "
            f"greedy, {n} new tokens per prompt, no stop token; transformers {transformers_version()}; best of "
            f"{args.repeats} interleaved runs, elapsed time. Batch 1: a 64-token prompt; larger batches: prompts of "
            "16..128 tokens. Decode bandwidth: bytes a decode step must read (weights + the average KV cache) over "
            f"its time; the card copies device-to-device at {copy_bandwidth / 1e9:.0f} GB/s in this run"
            + (f" (spec sheet: {spec / 1e9:.0f} GB/s)" if spec else "") + ".", ""] + table(rows, [
        "batch", "implementation", "tok/s", "vs transformers", "prefill ms", "decode ms/step", "decode GB/s",
        "of copy bandwidth"])


def transformers_version() -> str:
    import transformers

    return transformers.__version__


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu (fp32 + bf16 tables) or cuda (the GPU measurements)")
    parser.add_argument("--preset", help="model shape (default: 30m on CPU, llama3.2-1b on GPU)")
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16, help="CPU: the batched measurement's size")
    parser.add_argument("--batches", default="1,32", help="GPU: batch sizes, comma-separated")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="CPU: torch threads (0: torch's default)")
    parser.add_argument("--clock", choices=["cpu", "wall"], default=None,
                        help="cpu: the process's CPU time (default on CPU, with 1 thread); wall: elapsed (GPU)")
    parser.add_argument("--no-compile", dest="compile", action="store_false",
                        help="GPU: skip the compiled decode step's rows")
    parser.add_argument("--copy-bytes", type=int, default=2 * 1024**3, help="GPU: size of the bandwidth-measuring copy")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    on_gpu = device.type == "cuda"
    if on_gpu and not torch.cuda.is_available():
        parser.error("--device cuda: no GPU is visible to torch")
    args.preset = args.preset or ("llama3.2-1b" if on_gpu else "30m")
    args.clock = args.clock or ("wall" if on_gpu else "cpu")
    args.batches = [int(b) for b in args.batches.split(",")]
    if args.threads and not on_gpu:
        torch.set_num_threads(args.threads)
    clock = Clock(args.clock, device)

    torch.manual_seed(0)
    config = ModelArgs.preset(args.preset)
    with tempfile.TemporaryDirectory(prefix="sampler_bench_") as checkpoint:
        Llama(config).to(torch.bfloat16 if on_gpu else torch.float32).save_pretrained(checkpoint)
        if on_gpu:
            body = gpu_benchmark(args, checkpoint, config, clock)
        else:
            body = cpu_benchmark(args, checkpoint, config, clock)
    if not on_gpu:
        body += cpu_small_model(args, clock)
        if "<!-- sampler-gpu:start -->" not in (open(RESULTS).read() if os.path.exists(RESULTS) else ""):
            body += ["GPU: not measured yet (no GPU machine has been lent to a session so far). On one, "
                     "`python bench/sampler_bench.py --device cuda` measures a Llama-3.2-1B-shaped model in bf16 at "
                     "batch 1 and 32, with and without `compile_decoding`, with decode bandwidth against the card's, and "
                     "writes its own section below.", ""]
    body = "\n".join(["## Sampler: `bench/sampler_bench.py`" + (" on GPU" if on_gpu else ""), ""] + body)
    print(body)
    if not args.no_write:
        write_section("sampler-gpu" if on_gpu else "sampler", body)


if __name__ == "__main__":
    main()
