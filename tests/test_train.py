"""train.py: 2 processes = 1 process, accumulation = a big batch, the loss over assistant tokens only,
exact resume, the exported checkpoint in transformers, divergence handling, early argument errors.

Runs use the `tiny` preset on a small synthetic SFT file whose tokenizer sits beside it.
"""
import json
import os
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors.torch import load_file

import train
from bench.addition_chains import synthetic_rows
from tests.killed_run import train_killed_at_step
from w2s import training
from w2s.model import Llama, ModelArgs
from w2s.sft import IGNORE_INDEX, TokenizedExample, load_sft_data, sft_loss, tokenize_sft
from w2s.tokenizer import Tokenizer, train_tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> str:
    directory = tmp_path_factory.mktemp("data")
    rows = synthetic_rows()
    with open(directory / "sft.jsonl", "w") as f:
        f.writelines(json.dumps(row) + "\n" for row in rows)
    texts = [m["content"] for row in rows for m in row["messages"]]
    train_tokenizer(texts, vocab_size=300).save_pretrained(str(directory))
    return str(directory / "sft.jsonl")


def run(data_file: str, out: str, *extra: str) -> str:
    return train.main(["--data", data_file, "--out", out, "--save-every", "100", *extra])


def metrics(out: str) -> list[dict]:
    with open(os.path.join(out, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def weights(out: str) -> dict[str, torch.Tensor]:
    return load_file(os.path.join(out, "final", "model.safetensors"))


# Adam divides by sqrt(v): where a gradient is near zero, fp32 rounding from a different summation
# order (micro-batches, ranks) can move that element's update by up to lr. Weights are therefore
# compared at a fraction of one step (lr 1e-3); the gradient norms, which see any scaling error
# that Adam would hide, are compared tightly.
WEIGHT_ATOL = 1e-4


def assert_same_weights(a: dict, b: dict, atol: float = WEIGHT_ATOL) -> None:
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=atol, rtol=0, msg=lambda m: f"{name}: {m}")


def test_two_processes_match_one(data_file, tmp_path):
    """FSDP2 over 2 gloo processes = one plain process on the same global batches of 12. The two
    processes accumulate 6 micro-batches of 1 each; the 45 examples end in a partial batch of 9, where
    rank 1 runs out of examples after 4 micro-steps and must still join the 5th (a zero-weight one)."""
    common = ["--max-steps", "4", "--lr", "1e-3"]
    run(data_file, str(tmp_path / "one"), "--batch-size", "12", "--grad-accum", "1", *common)
    env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               os.path.join(ROOT, "train.py"), "--data", data_file, "--out", str(tmp_path / "two"),
               "--batch-size", "1", "--grad-accum", "6", *common]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "FSDP2 over 2 processes" in result.stdout
    one, two = metrics(str(tmp_path / "one")), metrics(str(tmp_path / "two"))
    assert [r["step"] for r in two] == [1, 2, 3, 4]
    for a, b in zip(one, two):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-4)
    assert_same_weights(weights(str(tmp_path / "one")), weights(str(tmp_path / "two")))


def test_accumulation_equals_one_big_batch(data_file, tmp_path):
    common = ["--max-steps", "3", "--lr", "1e-3"]
    run(data_file, str(tmp_path / "accum"), "--batch-size", "1", "--grad-accum", "4", *common)
    run(data_file, str(tmp_path / "batch"), "--batch-size", "4", "--grad-accum", "1", *common)
    accum, batch = metrics(str(tmp_path / "accum")), metrics(str(tmp_path / "batch"))
    assert [r["loss"] for r in accum] == pytest.approx([r["loss"] for r in batch], rel=1e-5)
    assert [r["grad_norm"] for r in accum] == pytest.approx([r["grad_norm"] for r in batch], rel=1e-4)
    assert_same_weights(weights(str(tmp_path / "accum")), weights(str(tmp_path / "batch")))


def test_loss_is_mean_over_assistant_tokens(data_file):
    """train_step's loss and gradient against a by-hand mean over assistant tokens only, with the two
    examples in separate micro-batches (a mean of per-micro-batch means would weigh them differently)."""
    tokenizer = Tokenizer.from_pretrained(os.path.dirname(data_file))
    rows = [{"id": "a", "messages": [{"role": "user", "content": "Start at 3. Add 4."},
                                     {"role": "assistant", "content": "3 + 4 = 7\nThe answer is \\boxed{7}"}]},
            {"id": "b", "messages": [{"role": "user", "content": "Start at 10. Add 2. Add 9. Add 5."},
                                     {"role": "assistant", "content": "10 + 2 = 12\n12 + 9 = 21\n21 + 5 = 26\n"
                                                                      "The answer is \\boxed{26}"}]}]
    examples, _ = tokenize_sft(rows, tokenizer, max_seq_len=512)
    torch.manual_seed(0)
    model = Llama(ModelArgs.preset("tiny", vocab_size=tokenizer.vocab_size))

    # By hand: every assistant token t (per the tokenizer's mask) is predicted from position t-1.
    hand_terms = []
    for row, example in zip(rows, examples):
        ids, mask = tokenizer.encode_chat_for_training(row["messages"])
        assert ids == example.input_ids
        log_probs = F.log_softmax(model(torch.tensor([ids]))[0].float(), dim=-1)
        hand_terms += [-log_probs[t - 1, ids[t]] for t in range(1, len(ids)) if mask[t]]
        assert sum(mask[1:]) == example.num_targets and not any(mask[:8]) and mask[-1]  # not the prompt; the <|eot_id|>
    hand_loss = torch.stack(hand_terms).mean()
    hand_grads = torch.autograd.grad(hand_loss, list(model.parameters()))

    num_targets = sum(e.num_targets for e in examples)
    setup = training.StepSetup(sft_loss, examples, [e.length for e in examples], micro_batch_size=1,
                            pad_id=tokenizer.pad_id, device=torch.device("cpu"))
    loss_sum, metric_sums = training.train_step(model, setup, [0, 1])  # two micro-batches of one
    assert num_targets == len(hand_terms) == metric_sums["count"].item()
    assert loss_sum.item() / num_targets == pytest.approx(hand_loss.item(), rel=1e-5)
    for p, g in zip(model.parameters(), hand_grads):
        torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-6)


def test_a_loss_whose_count_disagrees_with_its_examples_is_refused_before_the_step():
    """The loop weighs each micro-batch by its examples' counts before any forward; an objective whose
    loss sums over other positions (here: one token too few) would be weighed wrongly, so update() says so."""
    torch.manual_seed(0)
    model = Llama(ModelArgs.preset("tiny", vocab_size=64))
    examples = [TokenizedExample([1, 5, 6, 7], [IGNORE_INDEX, IGNORE_INDEX, 6, 7]),
                TokenizedExample([1, 8, 9], [IGNORE_INDEX, 8, 9])]

    def one_short(model, batch, pad_id, device):
        loss, metrics = sft_loss(model, batch, pad_id, device)
        return loss, {"count": metrics["count"] - 1}

    optimizer = training.build_optimizer(model, lr=1e-3, weight_decay=0.0)
    state = training.TrainState(model, optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for loss, message in ((sft_loss, None), (one_short, "counted 2 where its examples count 4")):
        setup = training.StepSetup(loss, examples, [e.length for e in examples], micro_batch_size=1, pad_id=0,
                                device=torch.device("cpu"))
        if message is None:
            assert training.update(state, setup, [0, 1])["loss"] > 0 and state.step == 1
            before = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            with pytest.raises(RuntimeError, match=message):
                training.update(state, setup, [0, 1])
            assert state.step == 1 and all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_padding_and_prompt_labels_do_not_count():
    """Changing prompt or padding tokens' labels to IGNORE_INDEX matters; their values do not."""
    torch.manual_seed(0)
    model = Llama(ModelArgs.preset("tiny", vocab_size=64))
    example = TokenizedExample(input_ids=[1, 5, 6, 7, 8, 9], labels=[IGNORE_INDEX] * 3 + [7, 8, 9])
    short = TokenizedExample(input_ids=[1, 5, 8], labels=[IGNORE_INDEX, IGNORE_INDEX, 8])
    num_targets = example.num_targets + short.num_targets
    assert num_targets == 4
    loss_sum, metrics = sft_loss(model, [example, short], pad_id=3, device=torch.device("cpu"))
    assert metrics == {"count": num_targets}
    logits_long, logits_short = model(torch.tensor([example.input_ids])), model(torch.tensor([short.input_ids]))
    expected = (F.cross_entropy(logits_long[0, 2:5], torch.tensor([7, 8, 9]), reduction="sum")
                + F.cross_entropy(logits_short[0, 1:2], torch.tensor([8]), reduction="sum"))
    assert loss_sum.item() == pytest.approx(expected.item(), rel=1e-5)


def test_resume_continues_exactly(data_file, tmp_path):
    common = ["--max-steps", "6", "--lr", "1e-3", "--batch-size", "4"]
    run(data_file, str(tmp_path / "straight"), *common)

    with train_killed_at_step(5), pytest.raises(SystemExit, match="^130$"):  # Ctrl-C: exit 130, one line
        run(data_file, str(tmp_path / "resumed"), *common, "--save-every", "3")
    assert not dist.is_initialized()
    assert [r["step"] for r in metrics(str(tmp_path / "resumed"))] == [1, 2, 3, 4]
    run(data_file, str(tmp_path / "resumed"), *common, "--save-every", "3")  # the same command: resumes

    straight, resumed = metrics(str(tmp_path / "straight")), metrics(str(tmp_path / "resumed"))
    assert [r["step"] for r in resumed] == [1, 2, 3, 4, 5, 6]  # step 4 was redone, and appears once
    assert [r["loss"] for r in resumed] == pytest.approx([r["loss"] for r in straight], rel=1e-6)
    assert [r["lr"] for r in resumed] == pytest.approx([r["lr"] for r in straight], rel=1e-9)
    assert_same_weights(weights(str(tmp_path / "straight")), weights(str(tmp_path / "resumed")), atol=1e-6)
    # Old checkpoints are pruned to --keep-checkpoints (2): steps 3 and 6 remain.
    assert sorted(os.listdir(tmp_path / "resumed" / "checkpoints")) == ["step_000003", "step_000006"]


def test_export_loads_in_transformers_with_same_logits(data_file, tmp_path):
    transformers = pytest.importorskip("transformers", reason="compares with transformers (requirements-dev.txt)")
    final = run(data_file, str(tmp_path / "run"), "--max-steps", "2")
    ours = Llama.from_pretrained(final)
    theirs = transformers.LlamaForCausalLM.from_pretrained(final, dtype=torch.float32)
    tokens = torch.randint(0, ours.args.vocab_size, (2, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(theirs(input_ids=tokens).logits, ours(tokens), rtol=1e-4, atol=1e-4)
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(final)
    messages = synthetic_rows(1)[0]["messages"]
    rendered = hf_tokenizer.apply_chat_template(messages, tokenize=False)
    assert hf_tokenizer(rendered, add_special_tokens=False)["input_ids"] == \
        Tokenizer.from_pretrained(final).encode_chat(messages, add_generation_prompt=False)


def test_stage_two_starts_from_init(data_file, tmp_path):
    """--init loads another run's final/ exactly: zero steps of change = the same weights out."""
    stage1 = run(data_file, str(tmp_path / "stage1"), "--max-steps", "2")
    run(data_file, str(tmp_path / "stage2"), "--max-steps", "1", "--lr", "1e-12", "--init", stage1)
    assert_same_weights(weights(str(tmp_path / "stage1")), weights(str(tmp_path / "stage2")), atol=1e-8)


def test_a_checkpoint_takes_the_fine_tuning_recipe_in_the_devices_dtype(data_file, tmp_path, capsys):
    """--model DIR (here a fresh tiny checkpoint) takes the fine-tuning recipe, but the compute dtype follows
    the device: fp32 on a CPU. One line says which defaults were taken and why;
    --dtype still overrides."""
    tokenizer = Tokenizer.from_pretrained(os.path.dirname(data_file))
    checkpoint = str(tmp_path / "checkpoint")
    torch.manual_seed(0)
    Llama(ModelArgs.preset("tiny", vocab_size=tokenizer.vocab_size)).save_pretrained(checkpoint)
    tokenizer.save_pretrained(checkpoint)
    capsys.readouterr()
    run(data_file, str(tmp_path / "run"), "--model", checkpoint, "--max-steps", "1", "--device", "cpu")
    printed = capsys.readouterr().out.splitlines()
    line = printed[0]
    assert line.startswith("defaults: fine-tuning recipe") and "is a checkpoint" in line and "grad_accum 8" in line
    assert "dtype fp32 (on a CPU; --dtype bf16 where the CPU has bf16 instructions; --dtype overrides)" in line
    assert sum(printed_line.startswith("defaults: ") for printed_line in printed) == 1
    assert json.loads((tmp_path / "run" / "args.json").read_text())["dtype"] == "fp32"
    assert all(w.dtype == torch.float32 for w in weights(str(tmp_path / "run")).values())

    run(data_file, str(tmp_path / "bf16"), "--model", checkpoint, "--max-steps", "1", "--dtype", "bf16",
        "--lr", "1e-4")
    line = capsys.readouterr().out.splitlines()[0]
    assert "dtype bf16 (--dtype)" in line and "lr " not in line  # a flag given is no default taken
    assert all(w.dtype == torch.bfloat16 for w in weights(str(tmp_path / "bf16")).values())


def test_divergence_stops_and_keeps_last_good_checkpoint(data_file, tmp_path, monkeypatch, capsys):
    real_step, calls = training.train_step, []

    def nan_at_step_3(*args, **kwargs):
        calls.append(1)
        loss_sum, metric_sums = real_step(*args, **kwargs)
        return (loss_sum * float("nan") if len(calls) == 3 else loss_sum), metric_sums

    monkeypatch.setattr(training, "train_step", nan_at_step_3)
    with pytest.raises(SystemExit) as exit_info:
        run(data_file, str(tmp_path / "run"), "--max-steps", "5", "--save-every", "2")
    assert exit_info.value.code == 1
    message = capsys.readouterr().err
    assert "step 3: loss nan" in message and "step_000002" in message and "--resume" in message
    assert os.listdir(tmp_path / "run" / "checkpoints") == ["step_000002"]
    assert [r["step"] for r in metrics(str(tmp_path / "run"))] == [1, 2]


@pytest.mark.parametrize("argv, message", [
    (["--data", "no_such_set"], "python data_prep.py"),
    (["--data", "{data}", "--lr", "-1"], "--lr > 0"),
    (["--data", "{data}", "--batch-size", "0"], "--batch-size must be at least 1"),
    (["--data", "{data}", "--model", "not a model"], "no such folder"),
    (["--data", "{data}", "--init", "/no/such/run"], "another run's exported DIR/final"),
    (["--data", "{data}", "--max-seq-len", "4096"], "exceeds the tiny preset's"),
    (["--data", "{data}", "--tokenizer", "/no/tokenizer.json"], "no such file"),
])
def test_bad_arguments_fail_before_any_process_group(data_file, tmp_path, capsys, argv, message):
    argv = [a.replace("{data}", data_file) for a in argv]
    argv += ["--out", str(tmp_path / "run"), "--data-dir", str(tmp_path)]
    with pytest.raises(SystemExit) as exit_info:
        train.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("train.py: error: ") and err.count("\n") == 1
    assert not dist.is_initialized() and not os.path.exists(tmp_path / "run")


def test_rerun_of_a_finished_run_is_done_and_other_settings_are_refused(data_file, tmp_path, capsys):
    out = tmp_path / "run"
    final = run(data_file, str(out), "--max-steps", "1")
    before = (out / "metrics.jsonl").read_text(), (out / "final" / "model.safetensors").stat().st_mtime_ns
    capsys.readouterr()
    assert run(data_file, str(out), "--max-steps", "1") == final  # the same command again: done, nothing redone
    assert "already done" in capsys.readouterr().out
    assert ((out / "metrics.jsonl").read_text(), (out / "final" / "model.safetensors").stat().st_mtime_ns) == before
    with pytest.raises(SystemExit) as exit_info:  # another run's settings into the same --out
        run(data_file, str(out), "--max-steps", "1", "--lr", "1")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "args.json" in err and "lr (was 0.002, now 1.0)" in err and err.count("\n") == 1


def test_tokenized_cache_matches_and_follows_the_file(data_file, tmp_path):
    tokenizer = Tokenizer.from_pretrained(os.path.dirname(data_file))
    path = tmp_path / "sft.jsonl"
    rows = synthetic_rows(12, seed=1)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    expected = tokenize_sft(rows, tokenizer, max_seq_len=40)
    assert load_sft_data(str(path), tokenizer, 40) == expected  # tokenized, cache written
    assert len(os.listdir(tmp_path / ".cache")) == 1
    assert load_sft_data(str(path), tokenizer, 40) == expected  # from the cache
    assert expected[1]["truncated"] > 0  # the report (with its counts) comes back from the cache too
    path.write_text("".join(json.dumps(row) + "\n" for row in rows[:5]))  # the file changes: a new cache
    assert load_sft_data(str(path), tokenizer, 40) == tokenize_sft(rows[:5], tokenizer, max_seq_len=40)


def test_fused_adamw_under_fsdp_matches_the_unfused_one():
    """build_optimizer's fused AdamW on FSDP2's DTensor shards (CPU, gloo) = the foreach AdamW, with
    weight decay on weight matrices only (the norm gains keep theirs)."""
    from torch.distributed.fsdp import fully_shard

    from w2s.runtime import init_distributed

    init_distributed("cpu")
    try:
        results = []
        for fused in (True, False):
            torch.manual_seed(0)
            model = Llama(ModelArgs.preset("tiny", vocab_size=64))
            for block in model.layers:
                fully_shard(block)
            fully_shard(model)
            optimizer = training.build_optimizer(model, lr=1e-2, weight_decay=0.5)
            # 2 blocks x 7 matrices + the (tied) embedding; 2 blocks x 2 norms + the final norm
            assert [len(g["params"]) for g in optimizer.param_groups] == [7 * 2 + 1, 2 * 2 + 1]
            assert [g["weight_decay"] for g in optimizer.param_groups] == [0.5, 0.0]
            if not fused:
                for group in optimizer.param_groups:
                    group["fused"], group["foreach"] = False, True
            tokens = torch.randint(0, 64, (2, 16), generator=torch.Generator().manual_seed(1))
            for _ in range(3):
                model(tokens).float().logsumexp(-1).mean().backward()
                optimizer.step()
                optimizer.zero_grad()
            results.append({k: v.full_tensor() for k, v in model.state_dict().items()})
        assert_same_weights(*results, atol=1e-5)  # 1e-3 of one step (lr 1e-2): rounding, not a wrong update
        assert not torch.equal(results[0]["norm.weight"], torch.ones(128))  # trained, not decayed toward 0 alone
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("tie_embeddings", [True, False])
def test_flops_per_token_match_torchs_count_of_a_training_step(tie_embeddings):
    """model.flops_per_token (what MFU divides by) against torch's own count of every matmul in one forward
    and backward (FlopCounterMode; attention on SDPA's math path, whose matmuls it sees). The formula's 6
    per weight also counts the norm gains, which are no matmul: that, and nothing else, is the difference."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    model = Llama(ModelArgs.preset("tiny", vocab_size=64, tie_embeddings=tie_embeddings))
    batch, length = 2, 48
    tokens = torch.randint(0, 64, (batch, length))
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(tokens).float().logsumexp(-1).sum().backward()
    norm_gains = sum(p.numel() for p in model.parameters() if p.ndim == 1)
    assert counter.get_flop_counts()["Global"].get(torch.ops.aten.bmm, 0) > 0  # attention was counted
    assert counter.get_total_flops() == batch * length * (model.flops_per_token(length) - 6 * norm_gains)


def test_mfu_is_remeasured_and_capped(monkeypatch):
    peaks = iter([1e9, 2e9, 2e9])
    monkeypatch.setattr(training, "matmul_peak_flops", lambda device, dtype: next(peaks))
    mfu = training.MFU(torch.device("cpu"), torch.float32, world_size=1)
    assert mfu.approximate and mfu(0.5e9, 1.0) == pytest.approx(0.5)
    assert mfu(1.5e9, 1.0) == pytest.approx(0.75) and mfu.peak == 2e9  # above 100%: the peak is measured again
    assert mfu(5e9, 1.0) == 1.0  # and never reported above 100%


def test_a_run_leaves_a_summary_a_curve_and_elapsed_seconds(data_file, tmp_path, capsys):
    out = tmp_path / "run"
    run(data_file, str(out), "--max-steps", "3")
    assert "done: 3 steps" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 3 and summary["torch"] == torch.__version__ and summary["wall_s"] > 0
    assert summary["final_loss"] == pytest.approx(metrics(str(out))[-1]["loss"])
    elapsed = [r["elapsed_s"] for r in metrics(str(out))]
    assert elapsed == sorted(elapsed) and elapsed[0] > 0
    pytest.importorskip("matplotlib", reason="loss.png needs matplotlib, an optional dependency")
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # final/ files are readable like their neighbours (safetensors writes 0600 by itself)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (out / "final").iterdir()}
    assert modes["model.safetensors"] == modes["config.json"]


def test_progress_line_shows_the_objective_metrics(tmp_path, capsys):
    """A step's console line carries what the objective adds to metrics.jsonl (grpo's reward, kl, ...), and a
    CPU's tens of tokens/s read as such, not as 0.0k."""
    from w2s.checkpoint import MetricsLog
    log = MetricsLog(str(tmp_path), start_step=0, total_steps=4, rank=0, run_start=0.0)
    log.write({"step": 1, "epoch": 0, "loss": 1e-9, "reward": 0.25, "kl": 0.0123, "completion_length": 147.25,
               "lr": 1e-6, "grad_norm": 1e-4, "tokens_per_s": 21.99, "mfu": 0.3, "peak_memory_gb": 8.2},
              approximate_mfu=True)
    line = capsys.readouterr().out
    assert "| reward 0.25 | kl 0.0123 | completion_length 147.2 |" in line and "| 22 tok/s |" in line
    assert "peak_memory_gb" not in line and "elapsed_s" not in line
    log.write({"step": 2, "epoch": 0, "loss": 0.5, "lr": 1e-6, "grad_norm": 1.0, "tokens_per_s": 2500.0, "mfu": 0.3,
               "peak_memory_gb": 8.2}, approximate_mfu=False)
    assert "| loss 0.5000 | lr" in capsys.readouterr().out  # SFT's line as before: no objective metrics
