"""The sampler benchmark's GPU path, run small on the CPU: on a GPU machine it is the first thing a
session runs, so it should not fail there on a Python error."""
import argparse

import pytest
import torch

from w2s.model import Llama, ModelArgs


def test_sampler_gpu_benchmark_runs_on_cpu(tmp_path):
    pytest.importorskip("transformers")
    from bench import sampler_bench

    config = ModelArgs.preset("tiny")
    Llama(config).to(torch.bfloat16).save_pretrained(str(tmp_path))
    args = argparse.Namespace(device="cpu", preset="tiny", new_tokens=8, batches=[1, 3], repeats=1, compile=False,
                              copy_bytes=1 << 20)
    lines = sampler_bench.gpu_benchmark(args, str(tmp_path), config, sampler_bench.Clock("wall", torch.device("cpu")))
    rows = [line.split(" | ") for line in lines if line.startswith(("| 1 |", "| 3 |"))]
    assert [(row[0], row[1]) for row in rows] == [("| 1", "ours"), ("| 1", "transformers"),
                                                  ("| 3", "ours"), ("| 3", "transformers")]
    assert all(row[3] == "**1.00x**" for row in rows if row[1] == "transformers")
    assert all(float(row[2]) > 0 for row in rows)  # tok/s (decode ms/step is a difference of two timings: noise here)
    assert all(float(row[5]) == float(row[5]) for row in rows)


def test_matmul_floor_times_every_linear_once(monkeypatch):
    from bench import sampler_bench

    model = Llama(ModelArgs.preset("tiny"))
    calls = []
    original = torch.nn.functional.linear
    monkeypatch.setattr(torch.nn.functional, "linear", lambda x, w: calls.append(tuple(w.shape)) or original(x, w))
    sampler_bench.matmul_floor_ms(sampler_bench.Clock("cpu", torch.device("cpu")), model, batch=4, repeats=1)
    linears = [tuple(m.weight.shape) for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert calls == linears * 2  # one warm-up pass, one timed pass
