"""train.py --objective dpo: ln 2 at the first step, learning, 2 processes = 1, exact resume, the
loss and gradients against a plain DPO on transformers' Llama, and pair rows checked."""
import json
import math
import os
import random
import shutil
import subprocess
import sys
from functools import partial

import pytest
import torch
import torch.nn.functional as F

import train
from bench.addition_chains import addition_chain
from tests.killed_run import train_killed_at_step
from w2s import training
from w2s.dpo import dpo_loss, reference_pass, response_logps, tokenize_pairs
from w2s.model import Llama, ModelArgs
from w2s.tokenizer import Tokenizer, train_tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pair_rows(n: int = 24, seed: int = 0) -> list[dict]:
    """Chains of additions: chosen ends in the right sum, rejected in a wrong one (same steps otherwise)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        problem, lines, value = addition_chain(rng, 3)
        wrong = value + rng.randint(1, 9)
        rows.append({"id": f"p{i}", "prompt": [{"role": "user", "content": problem}],
                     "chosen": [{"role": "assistant", "content": "\n".join(lines + [f"The answer is \\boxed{{{value}}}"])}],
                     "rejected": [{"role": "assistant", "content": "\n".join(lines[:-1] + [f"The answer is \\boxed{{{wrong}}}"])}],
                     "meta": {}})
    return rows


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> tuple[str, str]:
    """(pairs file, an --init checkpoint of the tiny preset with its tokenizer)."""
    directory = tmp_path_factory.mktemp("dpo")
    rows = pair_rows()
    with open(directory / "pairs.jsonl", "w") as f:
        f.writelines(json.dumps(row) + "\n" for row in rows)
    texts = [m["content"] for row in rows for key in ("prompt", "chosen", "rejected") for m in row[key]]
    tokenizer = train_tokenizer(texts, vocab_size=300)
    init = str(directory / "init")
    torch.manual_seed(0)
    Llama(ModelArgs.preset("tiny", vocab_size=tokenizer.vocab_size, bos_token_id=tokenizer.bos_id,
                           eos_token_id=tokenizer.eos_id)).save_pretrained(init)
    tokenizer.save_pretrained(init)
    return str(directory / "pairs.jsonl"), init


def run(data: str, init: str, out: str, *extra: str) -> str:
    return train.main(["--objective", "dpo", "--data", data, "--init", init, "--out", out, "--save-every", "100", *extra])


def metrics(out: str) -> list[dict]:
    with open(os.path.join(out, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def copy_data(data: str, directory) -> str:
    """The pairs in a fresh folder: no cached reference log-probs there, so a run computes its own."""
    os.makedirs(directory, exist_ok=True)
    return shutil.copy(data, directory)


# A plain DPO on transformers' Llama: the independent reference the tests compare against.

def hf_response_logps(model, tokenizer: Tokenizer, row: dict, side: str) -> torch.Tensor:
    ids, mask = tokenizer.encode_chat_for_training(row["prompt"] + row[side])
    log_probs = F.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].float(), dim=-1)
    return sum(log_probs[t - 1, ids[t]] for t in range(1, len(ids)) if mask[t])


def hf_margins(model, tokenizer: Tokenizer, rows: list[dict]) -> torch.Tensor:
    with torch.no_grad():
        return torch.stack([hf_response_logps(model, tokenizer, r, "chosen") - hf_response_logps(model, tokenizer, r, "rejected")
                            for r in rows])


def test_dpo_starts_at_ln2_learns_and_prefers_chosen_more_than_its_reference(setup, tmp_path):
    transformers = pytest.importorskip("transformers", reason="compares with transformers (requirements-dev.txt)")
    data, init = setup
    final = run(data, init, str(tmp_path / "run"), "--max-steps", "12", "--batch-size", "8", "--lr", "1e-3",
                "--beta", "0.5")
    rows = metrics(str(tmp_path / "run"))
    for name in ("loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins"):
        assert name in rows[0]
    assert rows[0]["loss"] == pytest.approx(math.log(2), abs=1e-5)
    assert rows[0]["rewards/margins"] == pytest.approx(0, abs=1e-5)
    assert rows[0]["rewards/chosen"] == pytest.approx(0, abs=1e-5)
    early, late = rows[:3], rows[-3:]
    assert sum(r["loss"] for r in late) < sum(r["loss"] for r in early)
    assert sum(r["rewards/accuracies"] for r in late) > sum(r["rewards/accuracies"] for r in early)
    # Independently: transformers' Llama on the exported policy and on its reference.
    tokenizer = Tokenizer.from_pretrained(init)
    pairs = [json.loads(line) for line in open(data)]
    policy = transformers.LlamaForCausalLM.from_pretrained(final, dtype=torch.float32)
    reference = transformers.LlamaForCausalLM.from_pretrained(init, dtype=torch.float32)
    assert hf_margins(policy, tokenizer, pairs).mean() > hf_margins(reference, tokenizer, pairs).mean() + 0.1


def test_loss_and_gradients_match_a_plain_dpo_on_transformers(setup, tmp_path):
    """dpo_loss over two micro-batches (train_step), with reference_pass's cached numbers, against
    -log sigmoid(beta * margin) written by hand on transformers' LlamaForCausalLM; the policy is the
    reference moved by noise, so the loss is not ln 2 and both sides' gradients matter."""
    transformers = pytest.importorskip("transformers", reason="compares with transformers (requirements-dev.txt)")
    data, init = setup
    data = copy_data(data, tmp_path / "data")
    tokenizer = Tokenizer.from_pretrained(init)
    rows = [json.loads(line) for line in open(data)][:5]
    beta = 0.3

    ours = Llama.from_pretrained(init, dtype=torch.float32)
    examples, _ = tokenize_pairs(rows, tokenizer, max_seq_len=512)
    reference_pass(ours, examples, tokenizer.pad_id, torch.device("cpu"), data_path=data, start="test", batch_size=2)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(0.02 * torch.randn_like(p))
    policy_dir = str(tmp_path / "policy")
    ours.save_pretrained(policy_dir)
    hf_policy = transformers.LlamaForCausalLM.from_pretrained(policy_dir, dtype=torch.float32)
    hf_reference = transformers.LlamaForCausalLM.from_pretrained(init, dtype=torch.float32).eval()

    losses = []
    for row in rows:
        with torch.no_grad():
            ref_c, ref_r = (hf_response_logps(hf_reference, tokenizer, row, s) for s in ("chosen", "rejected"))
        pol_c, pol_r = (hf_response_logps(hf_policy, tokenizer, row, s) for s in ("chosen", "rejected"))
        losses.append(-F.logsigmoid(beta * ((pol_c - ref_c) - (pol_r - ref_r))))
    hand_loss = torch.stack(losses).mean()
    hand_loss.backward()

    setup = training.StepSetup(partial(dpo_loss, beta=beta), examples, [e.length for e in examples], micro_batch_size=3,
                            pad_id=tokenizer.pad_id, device=torch.device("cpu"))
    loss_sum, metric_sums = training.train_step(ours, setup, list(range(len(examples))))  # micro-batches of 3 and 2
    assert metric_sums["count"].item() == len(examples)
    assert abs(hand_loss.item() - math.log(2)) > 1e-3
    assert abs(loss_sum.item() / len(examples) - hand_loss.item()) < 1e-5
    theirs = dict(hf_policy.named_parameters())
    for name, p in ours.named_parameters():
        g = theirs["lm_head.weight" if name == "lm_head.weight" else "model." + name].grad
        assert ((p.grad - g).abs().max() / g.abs().max()).item() < 1e-5, name


def test_two_processes_match_one(setup, tmp_path):
    """FSDP2 over 2 gloo processes (each computing half the reference log-probs) = one process:
    global batches of 10 from 24 pairs, the last one partial (4 pairs: rank 1 runs a filler micro-step)."""
    data, init = setup
    common = ["--max-steps", "3", "--lr", "1e-3"]
    run(copy_data(data, tmp_path / "d1"), init, str(tmp_path / "one"), "--batch-size", "10", "--grad-accum", "1", *common)
    env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}
    data_two = copy_data(data, tmp_path / "d2")
    command = lambda out: [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",  # noqa: E731
                           os.path.join(ROOT, "train.py"), "--objective", "dpo", "--data", data_two,
                           "--init", init, "--out", str(tmp_path / out), "--batch-size", "1", "--grad-accum", "5", *common]
    result = subprocess.run(command("two"), env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "FSDP2 over 2 processes" in result.stdout and "computed in" in result.stdout
    # Again on the same data: rank 0 reads the cached reference and sends it to rank 1.
    again = subprocess.run(command("again"), env=env, capture_output=True, text=True, timeout=240)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "reference log-probs of 24 pairs: read from" in again.stdout
    one, two = metrics(str(tmp_path / "one")), metrics(str(tmp_path / "two"))
    assert [r["step"] for r in two] == [1, 2, 3]
    for other in (two, metrics(str(tmp_path / "again"))):
        for a, b in zip(one, other):
            for name in ("loss", "rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"):
                assert a[name] == pytest.approx(b[name], rel=1e-4, abs=1e-6), name
            assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-4)


def test_resume_continues_exactly_and_reads_the_cached_reference(setup, tmp_path, capsys):
    data, init = setup
    data = copy_data(data, tmp_path / "data")
    common = ["--max-steps", "4", "--lr", "1e-3", "--batch-size", "6"]
    run(data, init, str(tmp_path / "straight"), *common)
    with train_killed_at_step(3), pytest.raises(SystemExit, match="^130$"):  # Ctrl-C: exit 130, one line
        run(data, init, str(tmp_path / "resumed"), *common, "--save-every", "2")
    capsys.readouterr()
    run(data, init, str(tmp_path / "resumed"), *common, "--save-every", "2")
    assert "reference log-probs of 24 pairs: read from" in capsys.readouterr().out
    straight, resumed = metrics(str(tmp_path / "straight")), metrics(str(tmp_path / "resumed"))
    assert [r["step"] for r in resumed] == [1, 2, 3, 4]
    for a, b in zip(straight, resumed):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-6)
        assert a["rewards/margins"] == pytest.approx(b["rewards/margins"], rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("change, message", [
    (lambda r: r.pop("chosen"), "pairs.jsonl:2: field 'chosen' must be a non-empty list"),
    (lambda r: r.update(rejected=[{"role": "user", "content": "x"}]), "pairs.jsonl:2: field 'rejected[0].role'"),
    (lambda r: r.update(prompt="text"), "pairs.jsonl:2: field 'prompt' must be a non-empty list"),
    (lambda r: r["chosen"].append({"role": "assistant", "content": "more"}), "field 'chosen' must hold one"),
])
def test_bad_pair_rows_fail_with_file_line_and_field(setup, tmp_path, capsys, change, message):
    data, init = setup
    rows = [json.loads(line) for line in open(data)][:3]
    change(rows[1])
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(SystemExit) as exit_info:
        run(str(path), init, str(tmp_path / "run"), "--max-steps", "1")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_beta_is_refused_for_sft(setup, tmp_path, capsys):
    data, init = setup
    with pytest.raises(SystemExit):
        train.main(["--data", data, "--init", init, "--out", str(tmp_path / "x"), "--beta", "0.2"])
    assert "--beta 0.2: only for --objective dpo" in capsys.readouterr().err


def test_rpo_alpha_raises_the_chosen_log_prob(setup):
    """On a pair whose responses differ in one token, a few SGD steps with the NLL term raise the
    chosen response's log-prob, and more than plain DPO does (which may lower it, on other models)."""
    _, init = setup
    tokenizer = Tokenizer.from_pretrained(init)
    prompt = [{"role": "user", "content": pair_rows(1)[0]["prompt"][0]["content"]}]
    row = {"id": "one", "prompt": prompt, "chosen": [{"role": "assistant", "content": "The answer is \\boxed{17}"}],
           "rejected": [{"role": "assistant", "content": "The answer is \\boxed{18}"}]}
    examples, _ = tokenize_pairs([row], tokenizer, max_seq_len=512)
    e, cpu = examples[0], torch.device("cpu")
    assert len(e.chosen_ids) == len(e.rejected_ids)
    assert sum(a != b for a, b in zip(e.chosen_ids, e.rejected_ids)) == 1
    chosen_logp = lambda model: response_logps(model, [(e.chosen_ids, e.chosen_mask)], tokenizer.pad_id, cpu).item()  # noqa: E731
    with torch.no_grad():
        e.ref_chosen = chosen_logp(Llama.from_pretrained(init, dtype=torch.float32))
        e.ref_rejected = response_logps(Llama.from_pretrained(init, dtype=torch.float32),
                                        [(e.rejected_ids, e.rejected_mask)], tokenizer.pad_id, cpu).item()
    rise = {}
    for rpo_alpha in (0.0, 1.0):
        model = Llama.from_pretrained(init, dtype=torch.float32)
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-2)
        for _ in range(3):
            loss, metrics = dpo_loss(model, examples, tokenizer.pad_id, cpu, beta=0.1, rpo_alpha=rpo_alpha)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        assert ("nll_loss" in metrics) == (rpo_alpha > 0)
        with torch.no_grad():
            rise[rpo_alpha] = chosen_logp(model) - e.ref_chosen
    assert rise[1.0] > 1.0
    assert rise[1.0] > rise[0.0] + 1.0


def test_rpo_alpha_adds_the_chosen_nll_and_logs_it(setup, tmp_path):
    """At the first step the policy is its reference: DPO's part is ln 2, the rest rpo_alpha * nll_loss.
    Logged every step: the log-probs of both responses, the rewards and their margin, and nll_loss."""
    data, init = setup
    out = str(tmp_path / "rpo")
    run(data, init, out, "--max-steps", "2", "--batch-size", "8", "--lr", "1e-3", "--rpo-alpha", "0.5")
    rows = metrics(out)
    for row in rows:
        for name in ("logps/chosen", "logps/rejected", "rewards/chosen", "rewards/rejected", "rewards/margins",
                     "nll_loss"):
            assert name in row, name
    assert rows[0]["nll_loss"] > 0
    assert rows[0]["loss"] == pytest.approx(math.log(2) + 0.5 * rows[0]["nll_loss"], abs=1e-5)
    with open(os.path.join(out, "args.json")) as f:
        assert json.load(f)["rpo_alpha"] == 0.5
    plain = str(tmp_path / "plain")
    run(data, init, plain, "--max-steps", "1")
    assert "nll_loss" not in metrics(plain)[0]


def test_a_dpo_run_recorded_before_rpo_alpha_still_resumes(setup, tmp_path, capsys):
    """args.json written before --rpo-alpha existed has no such key: that run was plain DPO (0)."""
    data, init = setup
    out = str(tmp_path / "run")
    run(data, init, out, "--max-steps", "1")
    path = os.path.join(out, "args.json")
    with open(path) as f:
        saved = json.load(f)
    assert saved.pop("rpo_alpha") == 0.0
    with open(path, "w") as f:
        json.dump(saved, f)
    capsys.readouterr()
    run(data, init, out, "--max-steps", "1")
    assert "other settings" not in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--rpo-alpha", "0.2"], "--rpo-alpha 0.2: only for --objective dpo"),
    (["--objective", "dpo", "--rpo-alpha", "-1"], "--rpo-alpha -1.0: only for --objective dpo, and must be >= 0"),
])
def test_rpo_alpha_is_refused_for_sft_and_below_zero(setup, tmp_path, capsys, argv, message):
    data, init = setup
    with pytest.raises(SystemExit):
        train.main(["--data", data, "--init", init, "--out", str(tmp_path / "x"), *argv])
    assert message in capsys.readouterr().err
