"""train.py --objective grpo: a run on the built-in world writes its progress, a killed run resumes exactly,
2 processes = 1, a verifier reward, and bad inputs refused in one line. (Loss and gradients against TRL's
own GRPOTrainer: tests/test_grpo_trl.py.)"""
import json
import os
import subprocess
import sys

import pytest
import torch

import train
from tests.killed_run import train_killed_at_step
from tests.tiny_checkpoint import TASKS, make_checkpoint, write_jsonl
from w2s.data.datadir import build_builtin
from w2s.data.world.sets import builtin_set_args
from w2s.data.world import miniworld
from w2s.grpo import Group, group_advantages, grpo_loss, world_rewards
from w2s.model import Llama
from w2s.tokenizer import train_tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Small and fast: 4 completions of at most 12 tokens per prompt. A random model rarely stops, so a cut-off
# completion earning -1 (and a stopped one 0) gives the groups rewards that differ, hence a gradient.
FAST = ["--group-size", "4", "--rollout-max-new-tokens", "12", "--cutoff-penalty", "-1", "--lr", "1e-2",
        "--save-every", "100"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    """A tiny checkpoint with its tokenizer, its tasks (with gold answers), and a second checkpoint with
    another tokenizer."""
    directory = tmp_path_factory.mktemp("grpo")
    init = make_checkpoint(str(directory / "init"))
    tasks = write_jsonl(str(directory / "tasks.jsonl"), TASKS)
    other = str(directory / "other")
    tokenizer = train_tokenizer(["completely different texts 123 + - \n"] * 3, vocab_size=280)
    Llama.from_pretrained(init).save_pretrained(other)
    tokenizer.save_pretrained(other)
    return {"init": init, "tasks": tasks, "other": other, "dir": directory}


def run(setup: dict, out: str, *extra: str) -> str:
    return train.main(["--objective", "grpo", "--data", setup["tasks"], "--model", setup["init"], "--out", out,
                       *FAST, *extra])


def metrics(out: str) -> list[dict]:
    with open(os.path.join(out, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


@pytest.mark.parametrize("reward", ["answer", "world"])
def test_a_world_run_writes_its_progress(tmp_path, reward):
    """The built-in world's hard tasks, a tiny model from scratch, with the answer reward or the world's
    exact step checker: each step's row has the reward, accuracy, KL, clip fraction, completion length,
    cut-off share and tokens/s. At the first step the policy is its reference (KL 0), and with one update
    per rollout nothing is clipped."""
    world = str(tmp_path / "world")
    build_builtin(world, {"num_hard": 40, "num_foundation": 10, "num_test": 10, "num_long_test": 10},
                  **builtin_set_args("hard_full"), log=lambda *a: None)
    out = str(tmp_path / "run")
    train.main(["--objective", "grpo", "--data", os.path.join(world, "tasks", "hard_full.jsonl"), "--tokenizer",
                os.path.join(world, "tokenizer.json"), "--out", out, "--max-steps", "2", "--batch-size", "3",
                *FAST, "--reward", reward])
    rows = metrics(out)
    assert [r["step"] for r in rows] == [1, 2]
    for row in rows:
        for name in ("loss", "reward", "accuracy", "kl", "clip_fraction", "completion_length", "cut_off",
                     "tokens_per_s"):
            assert name in row, name
        assert -1 <= row["reward"] <= 1 and 0 <= row["accuracy"] <= 1 and 1 <= row["completion_length"] <= 12
        assert row["reward"] == pytest.approx(-row["cut_off"])  # no right answer from a random model
        assert row["clip_fraction"] == 0
    assert rows[0]["kl"] == pytest.approx(0, abs=1e-6) and rows[1]["kl"] >= 0
    with open(os.path.join(out, "args.json")) as f:
        saved = json.load(f)
    assert (saved["group_size"], saved["reward"], saved["kl_coef"]) == (4, reward, 0.04)


def test_the_policy_learns_what_the_reward_asks(setup, tmp_path):
    """The cut-off penalty as the only reward (-1 cut off, 0 stopped): a random model rarely stops within 12
    tokens; a few GRPO steps teach it to, so the reward rises and completions get shorter."""
    out = str(tmp_path / "run")
    run(setup, out, "--max-steps", "5", "--batch-size", "5", "--grad-accum", "1", "--group-size", "8",
        "--warmup-ratio", "0")
    rows = metrics(out)
    assert rows[0]["reward"] < -0.8 and rows[-1]["reward"] > -0.3
    assert rows[-1]["completion_length"] < rows[0]["completion_length"] - 3
    assert rows[-1]["kl"] > 0.1  # it moved away from its reference to get there


def test_resume_after_a_kill_equals_an_uninterrupted_run(setup, tmp_path):
    """Killed during step 3 (after its rollouts), resumed from step 2's checkpoint: step 3's rollouts are
    redone with the same seeds and weights, so every row and the final weights equal a straight run's."""
    common = ["--max-steps", "4", "--batch-size", "2", "--grad-accum", "1"]
    straight = run(setup, str(tmp_path / "straight"), *common)
    with train_killed_at_step(3), pytest.raises(SystemExit, match="^130$"):
        run(setup, str(tmp_path / "resumed"), *common, "--save-every", "2")
    resumed = run(setup, str(tmp_path / "resumed"), *common, "--save-every", "2")
    a, b = metrics(str(tmp_path / "straight")), metrics(str(tmp_path / "resumed"))
    assert [r["step"] for r in b] == [1, 2, 3, 4]
    assert any(r["grad_norm"] > 0 for r in a)
    for x, y in zip(a, b):
        for name in ("loss", "reward", "completion_length", "kl", "grad_norm"):
            assert x[name] == pytest.approx(y[name], rel=1e-6, abs=1e-9), name
    ours, theirs = Llama.from_pretrained(straight), Llama.from_pretrained(resumed)
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6, msg=name)


def test_two_processes_match_one(setup, tmp_path):
    """FSDP2 over 2 gloo processes, each sampling its own prompts from a gathered copy, = one process: 5
    tasks in global batches of 4 (the second epoch's last batch of 1 leaves rank 1 a filler)."""
    common = ["--max-steps", "3", "--group-size", "4"]
    run(setup, str(tmp_path / "one"), "--batch-size", "4", "--grad-accum", "1", *common)
    env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               os.path.join(ROOT, "train.py"), "--objective", "grpo", "--data", setup["tasks"], "--model",
               setup["init"], "--out", str(tmp_path / "two"), "--batch-size", "1", "--grad-accum", "2", *FAST, *common]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "FSDP2 over 2 processes" in result.stdout
    one, two = metrics(str(tmp_path / "one")), metrics(str(tmp_path / "two"))
    assert [r["step"] for r in two] == [1, 2, 3]
    for a, b in zip(one, two):
        for name in ("loss", "reward", "completion_length", "cut_off", "kl", "grad_norm"):
            assert a[name] == pytest.approx(b[name], rel=1e-4, abs=1e-6), name


def test_a_verifier_reward_scores_by_the_weakest_step_or_the_last(setup, tmp_path):
    """--reward prm / orm with a checkpoint as the verifier (any Llama with the policy's tokenizer reads
    verdicts): rewards are P(good) in (0, 1); on the same rollouts (same seeds and weights) the weakest step
    never scores above the last."""
    rewards = {}
    for reward in ("prm", "orm"):
        out = str(tmp_path / reward)
        run(setup, out, "--max-steps", "1", "--batch-size", "5", "--reward", reward, "--reward-model",
            setup["init"], "--cutoff-penalty", "0", "--rollout-max-new-tokens", "24")
        rewards[reward] = metrics(out)[0]["reward"]
        assert 0 < rewards[reward] < 1
    assert rewards["prm"] <= rewards["orm"]


def test_the_world_reward_is_the_exact_step_checker():
    """--reward world: 1 only for a solution whose every step is good and whose answer is right, read from the
    problem alone (no gold answer): a right answer reached through a wrong step earns 0, as does a premature
    answer or a wrong final line."""
    problem = ("Ben starts with 16 coins. He multiplies them by 4. He buys 5 more. He gives away 7. "
               "How many coins are there now?")
    assert miniworld.parse_problem(problem).answer == 62
    right = "16 * 4 = 64\n64 + 5 = 69\n69 - 7 = 62\nThe answer is \\boxed{62}"
    wrong_step = "16 * 4 = 64\n64 + 5 = 68\n69 - 7 = 62\nThe answer is \\boxed{62}"  # right answer, a wrong sum
    premature = "16 * 4 = 64\n64 + 5 = 69\nThe answer is \\boxed{69}"
    wrong_answer = "16 * 4 = 64\n64 + 5 = 69\n69 - 7 = 62\nThe answer is \\boxed{61}"
    assert world_rewards(problem, [right, wrong_step, premature, wrong_answer]) == [1.0, 0.0, 0.0, 0.0]


def test_the_loss_is_token_level_and_its_metrics_per_completion(tmp_path):
    """Two groups: the loss sums over completion tokens (COUNT), the reward is a [sum, count] pair over
    completions; a group whose rewards agree has zero advantage."""
    torch.manual_seed(0)
    model = Llama.from_pretrained(make_checkpoint(str(tmp_path / "ck")))
    groups = [Group([0, 5, 6], [[7, 8, 4], [9]], [1.0, 1.0], group_advantages([1.0, 1.0]), [True, True],
                    [False, True]),
              Group([0, 5], [[7, 4], [9, 9, 9, 9]], [1.0, 0.0], group_advantages([1.0, 0.0]), None, [False, True])]
    loss, m = grpo_loss(model, groups, 1, torch.device("cpu"), kl_coef=0.0)
    assert m["count"] == 3 + 1 + 2 + 4
    assert m["reward"].tolist() == [3.0, 4.0] and m["accuracy"].tolist() == [2.0, 2.0]
    assert m["completion_length"].tolist() == [10.0, 4.0] and m["cut_off"].tolist() == [2.0, 4.0]
    # Only the second group has an advantage: +-0.707 on its 2- and 4-token completions.
    assert loss.item() == pytest.approx(-(2 - 4) * 0.5 ** 0.5, rel=1e-3)


@pytest.mark.parametrize("extra, message", [
    (["--group-size", "1"], "--group-size 1: GRPO normalizes rewards within a group"),
    (["--reward", "prm"], "--reward prm needs --reward-model DIR"),
    (["--reward-model", "x"], "--reward-model x: only for --reward prm / orm"),
    (["--reward", "world"], ":1: task 't1': --reward world checks the built-in world's problems only"),
    (["--rollout-temperature", "0"], "need --rollout-max-new-tokens >= 1 and --rollout-temperature > 0"),
])
def test_bad_options_fail_in_one_line(setup, tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as exit_info:
        run(setup, str(tmp_path / "run"), "--max-steps", "1", *extra)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_tasks_without_gold_answers_and_a_verifier_with_another_tokenizer_fail_in_one_line(setup, tmp_path, capsys):
    no_answer = write_jsonl(str(tmp_path / "tasks.jsonl"), [TASKS[0], {"id": "x", "problem": "What is 1 + 1?"}])
    cases = [(["--data", no_answer], f"{no_answer}:2: task 'x' has no field 'answer'"),
             (["--reward", "orm", "--reward-model", setup["other"]], "its tokenizer"),
             ]
    for extra, message in cases:
        with pytest.raises(SystemExit):
            train.main(["--objective", "grpo", "--data", setup["tasks"], "--model", setup["init"], "--out",
                        str(tmp_path / "run"), *extra])
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    with pytest.raises(SystemExit):
        train.main(["--data", setup["tasks"], "--model", setup["init"], "--out", str(tmp_path / "sft"),
                    "--group-size", "4"])
    assert "--group-size 4: only for --objective grpo" in capsys.readouterr().err
