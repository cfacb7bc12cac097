#!/usr/bin/env bash
# The GPU check: on one NVIDIA GPU, in under 8 minutes, what no CPU test can show (bench/gpu_check.py says why):
#   1. parity   our logits against transformers' LlamaForCausalLM, llama3.2-1b shape, fp32 and bf16
#   2. train    train.py under torchrun: a bf16 FSDP2 step of the llama3.2-1b shape, its MFU
#   3. sampler  bench/sampler_bench.py --device cuda: ours against transformers' generate
# Each part runs under its own time limit (together under 8 minutes); a part that fails or runs out of time
# is recorded and the others still run, since GPU time is scarce. The results are printed and written to
# bench/RESULTS.md (section gpu_check; the sampler also writes its own). Exit status 1 if a part failed.
# Without a GPU it says so in one line and exits 0.
#
#   bash bench/gpu_check.sh                  # PYTHON=/path/to/python to choose the interpreter
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Looked for before anything imports torch, so that a CPU machine answers at once.
if [[ "$(nvidia-smi -L 2>/dev/null || true)" != GPU* && ! -e /dev/nvidia0 ]]; then
  echo "gpu_check: no GPU present; nothing to check on this machine"
  exit 0
fi
PYTHON=${PYTHON:-$(command -v python || command -v python3)}
if ! "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  echo "gpu_check: a GPU is present but $PYTHON's torch cannot use it (a CPU-only build?)" >&2
  exit 1
fi

WORK=$(mktemp -d -t gpu_check.XXXXXX)
trap 'rm -rf "$WORK"' EXIT  # the training run's checkpoints there are ~12 GB
START=$SECONDS

run_part() {  # NAME LIMIT_S COMMAND...: output shown and kept in WORK/NAME.log, status in WORK/parts.tsv
  local name=$1 limit=$2 start=$SECONDS status
  shift 2
  echo "== $name (at most ${limit} s): $*"
  set +e
  timeout --kill-after 10 "$limit" "$@" 2>&1 | tee "$WORK/$name.log"
  status=${PIPESTATUS[0]}
  set -e
  printf '%s\t%s\t%s\n' "$name" "$status" "$((SECONDS - start))" >> "$WORK/parts.tsv"
}

# Limits: 100 + 170 + 180 + 20 s for the report, with the check above, under 480 s.
run_part parity 100 "$PYTHON" bench/gpu_check.py parity "$WORK"
run_part train 170 "$PYTHON" bench/gpu_check.py train "$WORK"
run_part sampler 180 "$PYTHON" bench/sampler_bench.py --device cuda --new-tokens 128
timeout 20 "$PYTHON" bench/gpu_check.py report "$WORK"

failed=$(awk -F '\t' '$2 != 0 {print $1}' "$WORK/parts.tsv" | tr '\n' ' ')
echo "gpu_check: done in $((SECONDS - START)) s${failed:+; failed: $failed}"
[[ -z "$failed" ]]
