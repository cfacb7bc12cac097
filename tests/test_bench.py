"""The sampler benchmark's GPU path, run small on the CPU: on a GPU machine it is the first thing a
session runs, so it should not fail there on a Python error."""
import argparse
import math

import pytest
import torch

from w2s.model import Llama, ModelArgs


def test_sampler_gpu_benchmark_runs_on_cpu(tmp_path):
    pytest.importorskip("transformers", reason="compares with transformers (requirements-dev.txt)")
    from bench import sampler_bench

    config = ModelArgs.preset("tiny")
    Llama(config).to(torch.bfloat16).save_pretrained(str(tmp_path))
    args = argparse.Namespace(device="cpu", preset="tiny", new_tokens=8, batches=[1, 3], repeats=1, compile=False,
                              copy_bytes=1 << 20)
    lines = sampler_bench.gpu_benchmark(args, str(tmp_path), config, sampler_bench.Clock("wall", torch.device("cpu")))
    rows = [line.split(" | ") for line in lines if line.startswith(("| 1 |", "| 3 |"))]
    assert [(row[0], row[1]) for row in rows] == [("| 1", "ours"), ("| 1", "transformers"),
                                                  ("| 3", "ours"), ("| 3", "transformers")]
    for ours, theirs in zip(rows[0::2], rows[1::2]):  # "vs transformers" is ours' tok/s over theirs, in the same batch
        assert float(ours[3].strip("*x")) == pytest.approx(float(ours[2]) / float(theirs[2]), rel=0.02, abs=0.01)
    assert all(float(row[2]) > 0 for row in rows)  # tok/s
    assert all(math.isfinite(float(row[5])) for row in rows)  # decode ms/step: a difference of two timings (noise here)


def test_matmul_floor_times_every_linear_once(monkeypatch):
    from bench import sampler_bench

    model = Llama(ModelArgs.preset("tiny"))
    calls = []
    original = torch.nn.functional.linear
    monkeypatch.setattr(torch.nn.functional, "linear", lambda x, w: calls.append(tuple(w.shape)) or original(x, w))
    sampler_bench.matmul_floor_ms(sampler_bench.Clock("cpu", torch.device("cpu")), model, batch=4, repeats=1)
    linears = [tuple(m.weight.shape) for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert calls == linears * 2  # one warm-up pass, one timed pass
