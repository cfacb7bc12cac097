"""bench/gpu_check.sh on a machine without a GPU (one line, exit 0, RESULTS.md untouched), and its logits
parity check run on the CPU, so the code a GPU session runs has run before it gets there."""
import os
import shutil
import subprocess

import pytest

from bench import gpu_check
from bench.results import RESULTS
from w2s.model import ModelArgs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
gpu_here = shutil.which("nvidia-smi") is not None or os.path.exists("/dev/nvidia0")


@pytest.mark.skipif(gpu_here, reason="this machine has a GPU: the script would run the whole check")
def test_script_without_gpu_says_so_in_one_line_and_writes_nothing():
    before = open(RESULTS).read()
    result = subprocess.run(["bash", os.path.join(ROOT, "bench", "gpu_check.sh")], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0
    assert result.stdout == "gpu_check: no GPU present; nothing to check on this machine\n"
    assert result.stderr == ""
    assert open(RESULTS).read() == before


def tiny_1b_shape() -> ModelArgs:
    """The 1B preset's features (GQA, llama3-scaled RoPE, tied embeddings) at a size a CPU runs in a second."""
    return ModelArgs.preset("llama3.2-1b", dim=64, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=16, ffn_dim=128,
                            vocab_size=256, bos_token_id=0, eos_token_id=1)


def test_logits_parity_on_cpu_with_the_1b_shape_made_tiny():
    pytest.importorskip("transformers", reason="compares with transformers (requirements-dev.txt)")
    config = tiny_1b_shape()
    result = gpu_check.logits_parity(config, "cpu", batch=2, length=48)
    assert result["fp32_max_abs_diff"] < 1e-4
    assert result["fp32_max_abs_logit"] > 0.1  # logits that are not all near zero, so the difference means something
    assert result["tokens"] == 96 and result["params"] == gpu_check.num_params(config)
    assert 0.5 <= result["bf16_top1_agreement"] <= 1.0


def test_logits_parity_sees_a_small_rope_mistake(monkeypatch):
    pytest.importorskip("transformers", reason="compares with transformers (requirements-dev.txt)")
    import w2s.model

    correct = w2s.model.rope_inv_freq
    monkeypatch.setattr(w2s.model, "rope_inv_freq", lambda args, device=None: correct(args, device) * 1.01)
    assert gpu_check.logits_parity(tiny_1b_shape(), "cpu", batch=2, length=48)["fp32_max_abs_diff"] > 1e-3
