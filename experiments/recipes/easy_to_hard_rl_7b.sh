#!/usr/bin/env bash
# Easy-to-hard RL at the seed's scale, with this project's commands: a 7B policy and a 7B process reward
# model (PRM) that see only MATH levels 1-3, then GRPO on levels 4-5 rewarded by that PRM alone (the policy
# never sees a level 4-5 answer), scored on MATH500. The seed: Sun et al. 2024, "Easy-to-Hard Generalization:
# Scalable Alignment Beyond Human Supervision" (github.com/Edward-Sun/easy-to-hard), whose 7B policy trained
# with an easy-trained PRM reaches 34.0% on MATH500. Its miniature is Q7 of experiments/mini_study.py.
#
#   bash experiments/recipes/easy_to_hard_rl_7b.sh [OUT]      (default OUT=runs/e2h7b; one node, 8 GPUs)
#
# NOT RUN in this repository (it has no GPUs): the commands are the ones run on the miniature and on
# SmolLM2-135M (experiments/REAL_MODEL.md), at this scale's settings. Each step resumes when rerun.
#
# Needs: network for the downloads (git, git-lfs, `pip install huggingface_hub` for huggingface-cli,
# transformers from requirements-dev.txt for one tokenizer conversion), about 150 GB of disk, and 8 GPUs with
# 141 GB each (H200). On 80 GB cards the GRPO step will likely not fit: each rank holds its optimizer shard
# (~14 GB for 7B), a gathered copy of the policy to sample from (gathered in fp32: ~28 GB while it is cast to
# bf16), the frozen reference (~14 GB) and the PRM (~14 GB), plus the KV cache of its rollouts: GPU_PROMPTS x 2
# accumulation x GROUP = 64 sequences of up to ~1.2k tokens at ~0.5 MB a token for Llemma-7B (no grouped-query
# attention), ~38 GB. Fewer prompts per step (GPU_PROMPTS=2) halve that. Host memory: each rank builds the
# reference in fp32 on the CPU before moving it (~28 GB a rank, ~230 GB for 8).
#
# Settings. "paper" = the seed's example scripts (examples/README.md, data/prepare_*.py); "guess" = ours.
#   SFT:  lr 2e-5, 3 epochs, sequence length 768, global batch 128 (paper: 16 per device x 8)
#   PRM:  lr 2e-5, 2 epochs, sequence length 1024, global batch 128 (paper: 32 per device x 4 GPUs)
#         both: cosine to 0 after 3% warmup (guess: the paper's decays to 2e-7, its warmup is not given)
#   RL:   the paper ran PPO (rollout batch 512, KL 0.01, temperature 0.7, up to 768 new tokens, -1 for a
#         completion without a stop token, a value model initialized from the reward model), on all MATH
#         train problems with the final answer also rewarded on levels 1-3. This project has GRPO: no value
#         model, the group's mean as the baseline. GRPO here: 64 prompts x 8 completions = 512 a step (paper's
#         rollout batch), temperature 0.7, 768 new tokens, cut-off penalty -1 (paper); lr 1e-6 and KL 0.04
#         (DeepSeekMath's GRPO; guess for this model); one pass over levels 4-5 (guess); PRM reward = its
#         weakest step (the seed's re-ranking default, "min"; its PPO instead added clipped per-step rewards).
#   Policy: Llemma-7B (paper). Meta-Llama-3-8B works the same way (BASE=meta-llama/Meta-Llama-3-8B).
#   Prompt: the user turn every w2s command uses (the problem, then "Solve the problem step by step. Put the
#         final answer in \boxed{}."), inside PRM800K's "# Question ... # Solution" layout (paper) as the base
#         model's chat template, so that SFT, the PRM, the rollouts and evaluation all read one format.
#   SFT data: MATH's written solutions of levels 1-3 (guess: simpler than the paper's, which fine-tuned on
#         the steps PRM800K's labellers rated good on those problems).
#
# GPU hours (estimates, not measured; H100/H200, bf16):
#   SFT easy       ~5.6k solutions x 3 epochs, ~7M tokens                          ~1-2 GPU-hours
#   SFT all (base) ~12k solutions x 3 epochs, the baseline to beat                 ~2-4
#   PRM            ~40-50k PRM800K rows on easy problems x 2 epochs, ~40M tokens   ~3-6
#   GRPO           ~100 steps; a step: 512 rollouts of up to 768 tokens with the project's eager KV-cached
#                  sampler (~30-40 s), PRM and reference forwards, the update (~10-15 s)   ~12-20
#   Evaluation     MATH500 greedy and 16 samples each, for 3 policies                  ~3-5
#   Total          about 20-35 GPU-hours: roughly 3-5 hours of wall clock on one 8-GPU node.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-runs/e2h7b}
GPUS=${GPUS:-8}
BASE=${BASE:-EleutherAI/llemma_7b}
GPU_PROMPTS=${GPU_PROMPTS:-4}    # GRPO prompts a rank samples per micro-step; 4 x 2 accumulation x 8 GPUs = 64
GROUP=${GROUP:-8}
RUN="torchrun --standalone --nproc_per_node $GPUS"
mkdir -p "$OUT/split"
stamp() { echo "== $(date -u +%H:%M:%S) $*"; }

stamp "downloads: PRM800K (its MATH splits with levels, and its step labels), the base model"
[ -d "$OUT/prm800k" ] || git clone https://github.com/openai/prm800k "$OUT/prm800k"
git -C "$OUT/prm800k" lfs pull   # the data files are Git LFS objects; data_prep.py names a pointer as such
huggingface-cli download "$BASE" --exclude "*.bin" "*.pth" --local-dir "$OUT/base"   # safetensors only
# w2s reads tokenizer.json; an older upload may ship only the SentencePiece file, which transformers converts.
[ -f "$OUT/base/tokenizer.json" ] || python -c "import sys; from transformers import AutoTokenizer as T; \
T.from_pretrained(sys.argv[1]).save_pretrained(sys.argv[1])" "$OUT/base"
# A base model has no chat template: give it PRM800K's layout (the tokenizer reads chat_template.jinja).
[ -f "$OUT/base/chat_template.jinja" ] || printf '%s' "{{ bos_token }}{% for m in messages %}\
{% if m['role'] == 'user' %}{{ '# Question\n\n' + m['content'] + '\n\n# Solution\n\n' }}\
{% elif m['role'] == 'assistant' %}{{ m['content'] + eos_token }}{% endif %}{% endfor %}" \
    > "$OUT/base/chat_template.jinja"

stamp "splits by MATH level: SFT rows (1-3; 1-5 for the baseline), tasks 4-5, MATH500, PRM800K rows on easy problems"
python - "$OUT/prm800k/prm800k" "$OUT/split" <<'EOF'
# The seed's split (data/prepare_prm800k_rm.py): a PRM800K row is "easy" if its problem is a level 1-3
# problem of the 12k MATH train split, or no MATH problem at all; rows on harder or test problems are left out.
import json, sys
from w2s.data.rows import user_message
src, out = sys.argv[1], sys.argv[2]
read = lambda path: [json.loads(line) for line in open(path) if line.strip()]
train, test = read(f"{src}/math_splits/train.jsonl"), read(f"{src}/math_splits/test.jsonl")
def write(name, rows):
    with open(f"{out}/{name}", "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    print(f"{out}/{name}: {len(rows)} rows")
sft = lambda p: {"id": p["unique_id"], "messages": [{"role": "user", "content": user_message(p["problem"])},
                 {"role": "assistant", "content": p["solution"]}], "meta": {"level": p["level"]}}
task = lambda p: {"id": p["unique_id"], "problem": p["problem"], "answer": p["answer"], "level": p["level"],
                  "subject": p["subject"]}
write("sft_easy.jsonl", [sft(p) for p in train if p["level"] <= 3])
write("sft_all.jsonl", [sft(p) for p in train])
write("tasks_hard.jsonl", [task(p) for p in train if p["level"] >= 4])  # answers: metrics only, never the reward
write("math500.jsonl", [task(p) for p in test])
easy = {p["problem"] for p in train if p["level"] <= 3}
known = {p["problem"] for p in train + test}
rows = [r for phase in (1, 2) for r in read(f"{src}/data/phase{phase}_train.jsonl")
        if r["question"]["problem"] in easy or r["question"]["problem"] not in known]
write("prm800k_easy.jsonl", rows)
EOF
[ -f "$OUT/data/manifest.json" ] || python data_prep.py prm800k "$OUT/split/prm800k_easy.jsonl" --name prm800k_easy \
    --out "$OUT/data"

# Each run resumes when rerun; --save-every keeps a killed run's loss small.
stamp "SFT on levels 1-3 (the policy), and on levels 1-5 (the baseline the seed compares with)"
for SET in easy all; do
    $RUN train.py --model "$OUT/base" --data "$OUT/split/sft_$SET.jsonl" --dtype bf16 --lr 2e-5 --warmup-ratio 0.03 \
        --epochs 3 --batch-size 4 --grad-accum 4 --max-seq-len 768 --activation-checkpointing --save-every 100 \
        --out "$OUT/sft_$SET"
done

stamp "PRM on PRM800K's easy rows (a verdict token after each step)"
$RUN train.py --objective prm --model "$OUT/base" --data "$OUT/data/prm800k_easy.jsonl" --dtype bf16 --lr 2e-5 \
    --warmup-ratio 0.03 --epochs 2 --batch-size 8 --grad-accum 2 --max-seq-len 1024 --activation-checkpointing \
    --save-every 200 --out "$OUT/prm"

stamp "GRPO on levels 4-5 from the easy SFT policy, rewarded by the easy PRM's weakest step"
$RUN train.py --objective grpo --model "$OUT/sft_easy/final" --data "$OUT/split/tasks_hard.jsonl" \
    --reward prm --reward-model "$OUT/prm/final" --group-size "$GROUP" --kl-coef 0.04 --rollout-temperature 0.7 \
    --rollout-max-new-tokens 768 --cutoff-penalty -1 --lr 1e-6 --warmup-ratio 0 --epochs 1 \
    --batch-size "$GPU_PROMPTS" --grad-accum 2 --max-seq-len 2048 --dtype bf16 --activation-checkpointing \
    --save-every 10 --out "$OUT/grpo_prm"
# metrics.jsonl, a row per step: reward (the PRM's), accuracy (the gold answers', which the reward never
# reads: a reward that rises while accuracy falls is the policy gaming the PRM), kl, completion_length, cut_off.

stamp "MATH500: greedy (one GPU each), then 16 samples per problem (maj@16, pass@16, best-of-16 by the PRM)"
for POLICY in sft_easy sft_all grpo_prm; do
    python evaluate.py --model "$OUT/$POLICY/final" --bench "$OUT/split/math500.jsonl" --max-new-tokens 1024 \
        --batch-size 64 --out "$OUT/eval/$POLICY"
    $RUN sample.py --model "$OUT/$POLICY/final" --tasks "$OUT/split/math500.jsonl" --out "$OUT/eval/$POLICY.k16.jsonl" \
        --num-samples 16 --temperature 0.7 --max-new-tokens 1024 --batch-size 64
    python evaluate.py --bench "$OUT/split/math500.jsonl" --samples "$OUT/eval/$POLICY.k16.jsonl" \
        --verifier "$OUT/prm/final" --out "$OUT/eval/${POLICY}_k16"
done
stamp "done: the seed's claim holds if grpo_prm beats sft_easy and reaches sft_all on MATH500 (the seed: 34.0%)"
