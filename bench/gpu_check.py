"""The checks only a GPU can make, run by bench/gpu_check.sh on one card in under 8 minutes.

Everything else in the project is tested on CPUs; these are the paths whose kernels or backends differ there:

- parity: w2s.model.Llama against transformers' LlamaForCausalLM on the same random weights (written with
  save_pretrained, read by both), the llama3.2-1b shape (GQA, llama3-scaled RoPE, tied embeddings, its
  128k vocabulary): fp32 max abs diff, and in bf16 how often the two pick the same top-1 token. The GPU's
  SDPA and matmul kernels are not the CPU's that tests/test_model.py checks against.
- train: train.py under torchrun, bf16 with FSDP2 on NCCL (CPU tests only ever run gloo), the llama3.2-1b
  shape with the built-in world's tokenizer, on rows of exactly --seq tokens; its MFU, tokens/s and peak
  memory are the medians over the steps after two warm-up steps of its metrics.jsonl.
- sampler: bench/sampler_bench.py --device cuda, run by the shell script; `report` copies its table.

    python bench/gpu_check.py parity WORK [--preset llama3.2-1b --length 512]
    python bench/gpu_check.py train WORK [--preset llama3.2-1b --steps 20 --batch 8 --seq 1024]
    python bench/gpu_check.py report WORK        # bench/RESULTS.md's gpu_check section, from WORK's files

Each part writes WORK/<part>.json; the shell script writes WORK/parts.tsv (part, exit status, seconds)
and WORK/<part>.log. `report` writes RESULTS.md only where torch sees a GPU.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from bench.results import write_section  # noqa: E402
from w2s.model import Llama, ModelArgs  # noqa: E402

# fp32 logits of two correct implementations differ by kernel rounding, orders of magnitude below this share
# of the largest logit; a real mistake (a rope scaling, a norm gain, a GQA mapping) moves them by their own size.
PARITY_TOLERANCE = 1e-3
# Spec-sheet dense bf16 FLOP/s by device name, next to train.py's MFU (whose denominator is a measured matmul).
SPEC_BF16_FLOPS = {"H200": 989e12, "H100 80GB HBM3": 989e12, "H100 PCIe": 756e12, "H100 NVL": 835e12,
                   "A100": 312e12}
QK_SCALE = 3.0  # on q and k weights in the parity check: see logits_parity
WARMUP_STEPS = 2  # the first steps pay for allocation, NCCL set-up and kernel choice
SHORTEST_WORLD_ROW = 40  # tokens of a world row, rounded down (they run about 60..150): how many to join


def logits_parity(config: ModelArgs, device: str, batch: int = 2, length: int = 64, seed: int = 0) -> dict:
    """Ours and transformers' logits on the same random weights and tokens, in fp32 and in bf16."""
    import transformers

    device = torch.device(device)
    torch.manual_seed(seed)
    with torch.device(device):
        model = Llama(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:  # gains other than 1, so that both sides are seen to apply them
                p.uniform_(0.5, 1.5)
            elif name.endswith(("q_proj.weight", "k_proj.weight")):
                # Fresh weights attend almost uniformly, where positions (RoPE) and which keys a head
                # reads (GQA) hardly change the logits; sharper attention makes a mistake in them show.
                p.mul_(QK_SCALE)
    tokens = torch.randint(0, config.vocab_size, (batch, length), generator=torch.Generator().manual_seed(seed))
    tokens = tokens.to(device)
    logits = {}
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as checkpoint:
        model.save_pretrained(checkpoint)
        del model
        for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            ours = Llama.from_pretrained(checkpoint, dtype=dtype, device=device).eval()
            theirs = transformers.LlamaForCausalLM.from_pretrained(checkpoint, dtype=dtype).to(device).eval()
            with torch.inference_mode():
                logits[name] = ours(tokens).float(), theirs(input_ids=tokens).logits.float()
            del ours, theirs
    (ours32, theirs32), (ours16, theirs16) = logits["fp32"], logits["bf16"]
    top1 = theirs32.argmax(-1)

    def agreement(a: torch.Tensor, b: torch.Tensor) -> float:
        return (a == b).float().mean().item()

    return {"params": num_params(config), "tokens": batch * length,
            "fp32_max_abs_diff": (ours32 - theirs32).abs().max().item(),
            "fp32_max_abs_logit": theirs32.abs().max().item(),
            "bf16_max_abs_diff": (ours16 - theirs16).abs().max().item(),
            "bf16_top1_agreement": agreement(ours16.argmax(-1), theirs16.argmax(-1)),
            "bf16_top1_ours_vs_fp32": agreement(ours16.argmax(-1), top1),
            "bf16_top1_theirs_vs_fp32": agreement(theirs16.argmax(-1), top1)}


def num_params(config: ModelArgs) -> int:
    with torch.device("meta"):  # shapes only: nothing allocated
        return Llama(config).num_params()


def parity_part(work: str, preset: str, length: int) -> int:
    """The parity check on this machine's GPU; exit status 1 when fp32 logits differ beyond the tolerance."""
    result = {"preset": preset, **logits_parity(ModelArgs.preset(preset), "cuda", length=length)}
    result["ok"] = result["fp32_max_abs_diff"] <= PARITY_TOLERANCE * result["fp32_max_abs_logit"]
    write_json(os.path.join(work, "parity.json"), result)
    print(json.dumps(result, indent=1))
    return 0 if result["ok"] else 1


def write_json(path: str, obj: dict) -> None:
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)


def long_rows(data_dir: str, count: int, seq: int) -> str:
    """DIR/long.jsonl: `count` SFT rows, each a world task whose answer is many world rows' text joined, so
    that every row is cut to exactly --max-seq-len tokens and each step is the same size."""
    with open(os.path.join(data_dir, "hard_full.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    texts = ["\n".join(m["content"] for m in row["messages"]) for row in rows]
    path = os.path.join(data_dir, "long.jsonl")
    with open(path, "w") as f:
        for i in range(count):
            answer = "\n\n".join(texts[(i + k) % len(texts)] for k in range(1, seq // SHORTEST_WORLD_ROW + 2))
            messages = [rows[i % len(rows)]["messages"][0], {"role": "assistant", "content": answer}]
            f.write(json.dumps({"id": f"long-{i}", "messages": messages, "meta": {}}) + "\n")
    return path


def run(command: list[str]) -> None:
    print("$ " + " ".join(command), flush=True)
    subprocess.run(command, check=True, cwd=ROOT)


def train_part(work: str, preset: str, steps: int, batch: int, seq: int, device: str = "cuda",
               dtype: str = "bf16") -> int:
    """train.py under torchrun (one process) on long rows with the world's tokenizer beside them; the
    medians of its metrics.jsonl after the warm-up steps, in WORK/train.json."""
    data_dir, out = os.path.join(work, "data"), os.path.join(work, "run")
    run([sys.executable, "data_prep.py", "world", "--out", data_dir, "--sets", "hard_full", "--num-hard", "200",
         "--num-foundation", "10", "--num-test", "10", "--num-long-test", "10"])
    data = long_rows(data_dir, steps * batch, seq)
    # torchrun as `python -m torch.distributed.run`: the same interpreter as this script's.
    run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1", "train.py",
         "--model", preset, "--data", data, "--out", out, "--max-steps", str(steps), "--batch-size", str(batch),
         "--grad-accum", "1", "--max-seq-len", str(seq), "--dtype", dtype, "--device", device, "--lr", "1e-4",
         "--warmup-ratio", "0.1", "--save-every", str(steps), "--keep-checkpoints", "1"])
    with open(os.path.join(out, "metrics.jsonl")) as f:
        all_rows = [json.loads(line) for line in f]
    rows = all_rows[WARMUP_STEPS:]
    with open(os.path.join(out, "final", "config.json")) as f:
        args = ModelArgs.from_hf_config(json.load(f))
    with torch.device("meta"):
        flops_per_token = Llama(args).flops_per_token(seq)
    result = {"preset": preset, "params": num_params(args), "vocab_size": args.vocab_size, "batch": batch,
              "seq": seq, "dtype": dtype, "steps_measured": len(rows), "first_loss": all_rows[0]["loss"],
              "last_loss": all_rows[-1]["loss"], "flops_per_token": flops_per_token}
    for key in ("tokens_per_s", "mfu", "peak_memory_gb"):
        result[key] = statistics.median(row[key] for row in rows)
    # MFU's denominator as train.py measured it (a bf16 matmul of 4096^2), recovered from its own numbers.
    result["measured_peak_tflops"] = result["tokens_per_s"] * flops_per_token / result["mfu"] / 1e12
    write_json(os.path.join(work, "train.json"), result)
    print(json.dumps(result, indent=1))
    return 0


def read_part(work: str, name: str) -> dict | None:
    path = os.path.join(work, name + ".json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def part_statuses(work: str) -> list[str]:
    """One table row per part the shell script ran: its exit status in words and its seconds."""
    lines = []
    path = os.path.join(work, "parts.tsv")
    for line in open(path).read().splitlines() if os.path.exists(path) else []:
        name, status, seconds = line.split("\t")
        words = {"0": "ok", "124": "timed out", "137": "killed after its time limit"}.get(status, f"failed ({status})")
        lines.append(f"| {name} | {words} | {seconds} |")
    return ["| part | result | seconds |", "|---|---|---:|"] + lines + [""]


def parity_lines(result: dict | None) -> list[str]:
    if result is None:
        return ["Parity: no result (see the part's status above).", ""]
    r = result
    return [f"Parity: `{r['preset']}` shape ({r['params'] / 1e9:.2f}B parameters), random weights (norm gains in "
            f"0.5..1.5, q and k scaled by {QK_SCALE:g} for sharper attention) saved once and read by both, "
            f"{r['tokens']} random tokens. fp32: max abs diff "
            f"{r['fp32_max_abs_diff']:.2e} over logits up to {r['fp32_max_abs_logit']:.2f} "
            f"(**{'ok' if r['ok'] else 'FAILED'}** against {PARITY_TOLERANCE:g} of the largest). bf16: max abs diff "
            f"{r['bf16_max_abs_diff']:.3f}; same top-1 token as transformers at **{r['bf16_top1_agreement']:.1%}** "
            f"of positions (against the fp32 top-1: ours {r['bf16_top1_ours_vs_fp32']:.1%}, transformers "
            f"{r['bf16_top1_theirs_vs_fp32']:.1%}; random weights make near-ties common).", ""]


def train_lines(result: dict | None, gpu: str) -> list[str]:
    if result is None:
        return ["Training: no result (see the part's status above).", ""]
    r = result
    spec = next((flops for key, flops in SPEC_BF16_FLOPS.items() if key in gpu), None)
    spec_mfu = f"{r['tokens_per_s'] * r['flops_per_token'] / spec:.1%}" if spec else "n/a"
    return [f"Training: `torchrun --nproc_per_node 1 train.py --model {r['preset']} --dtype {r['dtype']}` (FSDP2, "
            f"{r['dtype']} compute over fp32 weights), {r['params'] / 1e9:.2f}B parameters (the world tokenizer's "
            f"{r['vocab_size']} tokens), batch {r['batch']} x {r['seq']} tokens; medians of {r['steps_measured']} "
            f"steps after {WARMUP_STEPS} warm-up steps; loss {r['first_loss']:.2f} -> {r['last_loss']:.2f}. MFU is "
            f"train.py's (over a bf16 matmul peak it measured at {r['measured_peak_tflops']:.0f} TFLOP/s); the "
            "spec-sheet column divides by the card's dense bf16 figure.", "",
            "| tokens/s | MFU | MFU vs spec sheet | peak memory GB |", "|---:|---:|---:|---:|",
            f"| {r['tokens_per_s']:,.0f} | **{r['mfu']:.1%}** | {spec_mfu} | {r['peak_memory_gb']:.1f} |", ""]


def sampler_lines(work: str) -> list[str]:
    """The sampler benchmark's own body (the last thing it prints), without its heading."""
    path = os.path.join(work, "sampler.log")
    text = open(path).read() if os.path.exists(path) else ""
    start = text.rfind("## Sampler")
    if start < 0:
        return ["Sampler: no result (see the part's status above).", ""]
    body = text[start:].split("\n", 1)[1].strip()
    return ["Sampler (`bench/sampler_bench.py --device cuda`, also in its own section):", "", body, ""]


def report(work: str) -> int:
    """Print the results, and where torch sees a GPU write them as RESULTS.md's gpu_check section."""
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else ""
    lines = ["## GPU check: `bench/gpu_check.sh`", "", *part_statuses(work),
             *parity_lines(read_part(work, "parity")), *train_lines(read_part(work, "train"), gpu),
             *sampler_lines(work)]
    body = "\n".join(lines)
    print(body)
    if gpu:
        write_section("gpu_check", body, command="bash bench/gpu_check.sh")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["parity", "train", "report"])
    parser.add_argument("work", help="the directory the parts share (written by bench/gpu_check.sh)")
    parser.add_argument("--preset", default="llama3.2-1b")
    parser.add_argument("--length", type=int, default=512, help="parity: tokens per row (2 rows)")
    parser.add_argument("--steps", type=int, default=20, help="train: optimizer steps")
    parser.add_argument("--batch", type=int, default=8, help="train: rows per step")
    parser.add_argument("--seq", type=int, default=1024, help="train: tokens per row")
    parser.add_argument("--device", default="cuda", help="train: cuda (cpu only to try the part small)")
    parser.add_argument("--dtype", default="bf16", help="train: compute dtype")
    args = parser.parse_args(argv)
    if args.part == "parity":
        return parity_part(args.work, args.preset, args.length)
    if args.part == "train":
        return train_part(args.work, args.preset, args.steps, args.batch, args.seq, args.device, args.dtype)
    return report(args.work)


if __name__ == "__main__":
    sys.exit(main())
