"""Verifiers (w2s/verifier.py, w2s/data/selection/verifier_rows.py, w2s/data/sources/prm800k.py, math_shepherd.py): one verdict position per step, the same layout at
training and scoring, step rows from samples (exact world labels, outcome labels), PRM800K and
Math-Shepherd fixtures, re-ranking arithmetic, a PRM that learns to tell a good step from a bad one,
2 processes = 1, and the chain sample.py -> data_prep.py -> train.py --objective prm -> evaluate.py --verifier."""
import json
import os
import random
import subprocess
import sys

import pytest
import torch

import data_prep
import evaluate
import sample
import train
from tests.tiny_checkpoint import TASKS, make_checkpoint, read_lines, write_jsonl
from w2s import prm, verifier
from w2s.data import datadir
from w2s.data.rows import split_steps, user_message
from w2s.data.selection.verifier_rows import step_rows_from_samples
from w2s.data.sources.math_shepherd import from_math_shepherd
from w2s.data.sources.prm800k import from_prm800k
from w2s.data.world import miniworld
from w2s.errors import UserError
from w2s.model import Llama
from w2s.tokenizer import Tokenizer, train_tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


GOOD_STEPS = ["2 + 2 = 4", "3 + 4 = 7", "5 + 1 = 6"]
BAD_STEPS = ["2 + 2 = 5", "3 + 4 = 8", "5 + 1 = 9"]


def toy_rows(n: int = 48, seed: int = 0) -> list[dict]:
    """Two or three steps drawn from a few known good and bad ones, labelled so."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        steps, labels = [], []
        for _ in range(rng.randint(2, 3)):
            good = rng.random() < 0.5
            steps.append(rng.choice(GOOD_STEPS if good else BAD_STEPS))
            labels.append(good)
        rows.append({"id": f"r{i}", "prompt": [{"role": "user", "content": f"Check problem {i % 5}."}],
                     "steps": steps, "labels": labels})
    return rows


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    directory = tmp_path_factory.mktemp("toy")
    rows = toy_rows()
    write_jsonl(str(directory / "steps.jsonl"), rows)
    texts = [r["prompt"][0]["content"] for r in rows] + [s for r in rows for s in r["steps"]]
    tokenizer = train_tokenizer(texts, vocab_size=300)
    tokenizer.save_pretrained(str(directory))
    return str(directory / "steps.jsonl"), tokenizer


def test_one_verdict_position_per_step_at_its_tag_and_the_same_layout_for_training(toy):
    path, tokenizer = toy
    tag, good, bad = verifier.verdict_ids(tokenizer)
    rows = prm.load_step_rows(path)
    examples, report = prm.tokenize_step_rows(rows, tokenizer, max_seq_len=512)
    for row, example in zip(rows, examples):
        ids, positions = verifier.layout(tokenizer, row["prompt"], row["steps"])
        assert example.input_ids == ids and example.positions == positions  # one layout for both
        assert len(positions) == len(row["steps"]) == len(set(positions))
        assert [ids[p] for p in positions] == [tag] * len(positions)
        assert positions[-1] == len(ids) - 1
        assert example.targets == [good if label else bad for label in row["labels"]]
        # Between two verdicts lies exactly one step's text.
        for i, step in enumerate(row["steps"]):
            begin = positions[i - 1] + 1 if i else positions[0] - len(tokenizer.encode(step))
            assert tokenizer.decode(ids[begin:positions[i]]) == step
    assert report["verdicts"] == sum(len(r["steps"]) for r in rows) == report["good"] + report["bad"]
    # Truncation keeps the steps whose verdicts fit, never half a step's verdict.
    first = examples[0]
    short, short_report = prm.tokenize_step_rows(rows[:1], tokenizer, max_seq_len=first.positions[0] + 2)
    assert short[0].positions == first.positions[:1] and short_report["truncated"] == 1


def test_verdict_tokens_are_single_tokens_of_the_world_tokenizer(toy, tmp_path):
    """(Llama-3's: "\n" 198, "+" 10, "-" 12, each one token; no download in tests.)"""
    _, tokenizer = toy
    assert len(set(verifier.verdict_ids(tokenizer))) == 3
    world = miniworld.build_world(0, num_hard=20, num_foundation=5, num_test=5, num_long_test=5)
    world_tokenizer = datadir.world_tokenizer(str(tmp_path), world, 512)
    assert len(set(verifier.verdict_ids(world_tokenizer))) == 3


def test_split_steps():
    assert split_steps("a\n\n b \nc\n") == ["a", "b", "c"]
    assert split_steps("a\nb\n\n\nc", "blank") == ["a\nb", "c"]
    assert split_steps("   ") == [""]  # an empty response is one (empty) step, still scored


@pytest.mark.parametrize("row, message", [
    ({"id": "x", "prompt": [{"role": "user", "content": "q"}], "steps": ["a", "b"], "labels": [True]},
     "rows.jsonl:1: field 'labels' has 1 entries but 'steps' has 2"),
    ({"id": "x", "prompt": [{"role": "user", "content": "q"}], "steps": ["a"], "labels": [1]}, "field 'labels'"),
    ({"id": "x", "prompt": "q", "steps": ["a"], "labels": [True]}, "field 'prompt'"),
    ({"id": "x", "prompt": [{"role": "user", "content": "q"}], "steps": [], "labels": []}, "field 'steps'"),
])
def test_bad_step_rows_name_file_line_and_field(tmp_path, row, message):
    path = write_jsonl(str(tmp_path / "rows.jsonl"), [row])
    with pytest.raises(UserError, match=message):
        prm.load_step_rows(path)


def test_world_samples_get_exact_step_labels_and_free_form_needs_outcome(tmp_path):
    task = miniworld.Task(17, (miniworld.Step("*", 3), miniworld.Step("+", 16), miniworld.Step("-", 5)))
    problem = miniworld.render_problem(task, miniworld.sample_phrasing(random.Random(0), task))
    right = miniworld.correct_solution(task)
    slip = "17 * 3 = 51\n51 + 16 = 68\n68 - 5 = 63\nThe answer is \\boxed{63}"  # wrong at step 2 only
    short = "17 * 3 = 51\nhmm\nThe answer is \\boxed{51}"
    samples = write_jsonl(str(tmp_path / "samples.jsonl"), [
        {"id": "w1", "problem": problem, "answer": "62", "samples": [right, slip, short], "correct": [True, False, False]}])
    rows, report = step_rows_from_samples(samples)
    assert [r["id"] for r in rows] == ["w1/s0", "w1/s1", "w1/s2"]
    assert rows[0]["steps"] == right.splitlines() and rows[0]["labels"] == [True] * 4
    assert rows[1]["labels"] == [True, False, True, False]  # the slip counts once, where it is made
    assert rows[2]["steps"] == ["17 * 3 = 51", "hmm", "The answer is \\boxed{51}"]
    assert rows[2]["labels"] == [True, False, False]
    assert report["samples"] == 3 and report["steps"] == 11
    for row in rows:
        prm.check_step_row(row, "x")
    outcome, _ = step_rows_from_samples(samples, outcome=True)
    assert [r["labels"] for r in outcome] == [[True] * 4, [False] * 4, [False] * 3]
    free = write_jsonl(str(tmp_path / "free.jsonl"), [
        {"id": "f", "problem": "What is 2 + 3?", "answer": "5", "samples": ["2 + 3 = 5\n\\boxed{5}"], "correct": [True]}])
    with pytest.raises(UserError, match="free.jsonl:1: field 'problem' is not a built-in world problem.*--outcome"):
        step_rows_from_samples(free)
    assert step_rows_from_samples(free, outcome=True)[0][0]["labels"] == [True, True]


PRM800K_ROW = {
    "question": {"problem": "What is $1 + 2 + 3$?", "ground_truth_answer": "6"},
    "label": {"steps": [
        {"completions": [{"text": "First, 1 + 2 = 3.", "rating": 1}, {"text": "1 + 2 = 4.", "rating": -1}],
         "chosen_completion": 0},
        {"completions": [{"text": "Then 3 + 3 = 6.", "rating": 0}], "chosen_completion": 0},
        {"completions": [{"text": "So the answer is 7.", "rating": -1}, {"text": "# Answer\n\n6", "rating": 1}],
         "chosen_completion": None},
    ], "finish_reason": "found_error"},
}


def test_prm800k_fixture(tmp_path):
    path = write_jsonl(str(tmp_path / "prm800k.jsonl"), [PRM800K_ROW])
    out = tmp_path / "data"
    data_prep.main(["prm800k", path, "--out", str(out)])
    [row] = read_lines(str(out / "prm800k.jsonl"))
    assert row["steps"] == ["First, 1 + 2 = 3.", "Then 3 + 3 = 6.", "So the answer is 7."]
    assert row["labels"] == [True, True, False]  # 1 and 0 are good, -1 bad
    assert row["prompt"][0]["content"].startswith("What is $1 + 2 + 3$?")
    bad = dict(PRM800K_ROW, label={"steps": [{"completions": [{"text": "x", "rating": 1}], "chosen_completion": 3}]})
    with pytest.raises(UserError, match=r"bad.jsonl:1: field 'label.steps\[0\].chosen_completion'"):
        from_prm800k(write_jsonl(str(tmp_path / "bad.jsonl"), [bad]))


SHEPHERD_ROW = {
    "input": "Tom has 3 apples and buys 2 more. How many? Step 1: 3 + 2 = 5 ки\nStep 2: The answer is 6 ки",
    "label": "Tom has 3 apples and buys 2 more. How many? Step 1: 3 + 2 = 5 +\nStep 2: The answer is 6 -",
    "task": "GSM8K",
}


def test_math_shepherd_fixture(tmp_path):
    path = write_jsonl(str(tmp_path / "shepherd.jsonl"), [SHEPHERD_ROW])
    out = tmp_path / "data"
    data_prep.main(["math-shepherd", path, "--out", str(out), "--name", "ms"])
    [row] = read_lines(str(out / "ms.jsonl"))
    assert row["steps"] == ["Step 1: 3 + 2 = 5", "Step 2: The answer is 6"] and row["labels"] == [True, False]
    assert row["prompt"][0]["content"].startswith("Tom has 3 apples and buys 2 more. How many?\n")
    broken = dict(SHEPHERD_ROW, label=SHEPHERD_ROW["label"].replace("5 +", "5 ?"))
    with pytest.raises(UserError, match="bad.jsonl:1: field 'label' does not match 'input'.*step tag 1"):
        from_math_shepherd(write_jsonl(str(tmp_path / "bad.jsonl"), [broken]))


def test_reranking_arithmetic():
    extracted = ["5", "6", "6", None, "5.0"]
    correct = [True, False, False, False, True]
    scores = [0.9, 0.3, 0.35, 0.99, 0.2]
    groups = verifier.answer_groups(extracted)
    assert groups == [0, 1, 1, None, 0]  # 5.0 votes with 5
    full = verifier.rerank_at(groups, correct, scores, 5)
    # maj: "5" and "6" tie at 2 votes, the group seen first wins; best_of: 0.99 has no answer and is wrong;
    # weighted: 5 has 1.1, 6 has 0.65.
    assert full == {"maj": True, "pass": True, "best_of": False, "weighted_maj": True}
    assert verifier.rerank_at(groups, correct, scores, 1) == {"maj": True, "pass": True, "best_of": True,
                                                              "weighted_maj": True}
    assert verifier.rerank_at(groups[1:], correct[1:], scores[1:], 3)["best_of"] is False
    assert verifier.curve_ks(16) == [1, 2, 4, 8, 16] and verifier.curve_ks(6) == [1, 2, 4, 6]
    assert verifier.aggregate([0.5, 0.2, 0.9], "min") == 0.2
    assert verifier.aggregate([0.5, 0.2, 0.9], "prod") == pytest.approx(0.09)
    assert verifier.aggregate([0.5, 0.2, 0.9], "last") == 0.9


def test_a_prm_tells_a_good_step_from_a_bad_one_after_a_few_steps(toy, tmp_path):
    path, tokenizer = toy
    final = train.main(["--objective", "prm", "--data", path, "--out", str(tmp_path / "prm"), "--max-steps", "40",
                        "--batch-size", "16", "--save-every", "100", "--seed", "1"])
    model = Llama.from_pretrained(final).eval()
    prompt = [{"role": "user", "content": "Check problem 2."}]
    good_then_bad, bad_then_good = [GOOD_STEPS[1], BAD_STEPS[0]], [BAD_STEPS[1], GOOD_STEPS[0]]
    scores = verifier.score_steps(model, Tokenizer.from_pretrained(final), prompt, [good_then_bad, bad_then_good])
    assert all(0 <= s <= 1 for ss in scores for s in ss)
    assert scores[0][0] > scores[1][0] + 0.2 and scores[1][1] > scores[0][1] + 0.2


def test_two_processes_match_one_for_prm(toy, tmp_path):
    path, _ = toy
    common = ["--objective", "prm", "--data", path, "--max-steps", "2", "--lr", "1e-3", "--save-every", "100"]
    train.main([*common, "--out", str(tmp_path / "one"), "--batch-size", "10", "--grad-accum", "1"])
    env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               os.path.join(ROOT, "train.py"), *common, "--out", str(tmp_path / "two"), "--batch-size", "1",
               "--grad-accum", "5"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "FSDP2 over 2 processes" in result.stdout

    def losses(out):
        return [json.loads(line)["loss"] for line in open(tmp_path / out / "metrics.jsonl")]
    assert losses("one") == pytest.approx(losses("two"), rel=1e-5)


def test_the_chain_sample_steps_train_evaluate(tmp_path):
    checkpoint = make_checkpoint(str(tmp_path / "policy"))
    tasks = write_jsonl(str(tmp_path / "tasks.jsonl"), TASKS)
    samples = str(tmp_path / "samples.jsonl")
    sample.sample(["--model", checkpoint, "--tasks", tasks, "--out", samples, "--n", "2", "--temperature", "1.0",
                   "--max-new-tokens", "12", "--quiet"])
    data_prep.main(["verifier", samples, "--outcome", "--name", "orm", "--out", str(tmp_path / "data")])
    rows = read_lines(str(tmp_path / "data" / "orm.jsonl"))
    assert len(rows) == 2 * len(TASKS)
    assert all(len(r["steps"]) == len(r["labels"]) and all(isinstance(v, bool) for v in r["labels"]) for r in rows)
    final = train.main(["--objective", "prm", "--data", str(tmp_path / "data" / "orm.jsonl"), "--model", checkpoint,
                        "--out", str(tmp_path / "orm"), "--max-steps", "2", "--dtype", "fp32", "--max-seq-len", "256",
                        "--batch-size", "4", "--grad-accum", "1"])
    os.makedirs(tmp_path / "bench")
    write_jsonl(str(tmp_path / "bench" / "tiny.jsonl"), TASKS)
    argv = ["--model", checkpoint, "--bench", str(tmp_path / "bench" / "tiny.jsonl"), "--out", str(tmp_path / "eval"),
            "--n", "4", "--temperature", "1.0", "--max-new-tokens", "12", "--batch-size", "3", "--quiet",
            "--verifier", final, "--verifier-agg", "last"]
    summary = evaluate.evaluate_command(argv)["tiny"]
    assert summary["verifier"] == final and summary["verifier_agg"] == "last"
    for key in ("best_of@4", "weighted_maj@4", "maj@4"):
        assert 0 <= summary[key] <= summary["pass@4"]
    assert list(summary["curves"]) == ["1", "2", "4"]
    assert summary["curves"]["4"]["best_of@4"] == summary["best_of@4"]
    assert summary["curves"]["4"]["maj@4"] == summary["maj@4"]
    for k, curve in summary["curves"].items():
        assert curve[f"best_of@{k}"] <= curve[f"pass@{k}"] and curve[f"weighted_maj@{k}"] <= curve[f"pass@{k}"]
    eval_rows = read_lines(str(tmp_path / "eval" / "tiny.jsonl"))
    for row in eval_rows:
        assert len(row["scores"]) == 4 and all(0 <= s <= 1 for s in row["scores"])
        assert row["scores"] == [s[-1] for s in row["step_scores"]]  # last: the ORM's last verdict
        best = max(range(4), key=lambda i: (row["scores"][i], -i))
        assert row["best_of"] == row["correct"][best]
    assert "best_of@4" in open(tmp_path / "eval" / "summary.md").read()
    # A rerun resumes (nothing to do) and reports the same; another aggregation is another run's rows.
    assert evaluate.evaluate_command(argv)["tiny"] == summary
    with pytest.raises(UserError, match="verifier_agg"):
        evaluate.evaluate_command(argv[:-1] + ["min"])
    # Scoring saved samples (--samples) gives what generating and scoring gave, whether the samples are
    # sample.py's (same seed and settings draw the same responses) or the evaluation's own rows.
    drawn = str(tmp_path / "drawn.jsonl")
    sample.sample(["--model", checkpoint, "--tasks", str(tmp_path / "bench" / "tiny.jsonl"), "--out", drawn, "--n", "4",
                   "--temperature", "1.0", "--top-p", "1.0", "--seed", "0", "--max-new-tokens", "12", "--quiet"])
    assert [r["samples"] for r in read_lines(drawn)] == [r["responses"] for r in eval_rows]
    os.makedirs(tmp_path / "saved")
    rows_copy = write_jsonl(str(tmp_path / "saved" / "rows.jsonl"), eval_rows)
    scored = ["--bench", str(tmp_path / "bench" / "tiny.jsonl"), "--quiet", "--verifier", final, "--verifier-agg", "last",
              "--batch-size", "3"]  # the same batches as above: the same scores to the last bit
    drop = ("model", "samples", "temperature")
    for i, path in enumerate((drawn, rows_copy)):
        again = evaluate.evaluate_command([*scored, "--samples", path, "--out", str(tmp_path / f"scored{i}")])["tiny"]
        assert {k: v for k, v in again.items() if k not in drop} == {k: v for k, v in summary.items() if k not in drop}
        assert read_lines(str(tmp_path / f"scored{i}" / "tiny.jsonl")) == eval_rows
    assert again["model"] is None and evaluate.samples_origin(drawn)[0] == checkpoint
    # Samples of other problems, or of the same ids with another answer, are refused by file and line.
    wrong = write_jsonl(str(tmp_path / "saved" / "wrong.jsonl"), [{**eval_rows[0], "answer": "999"}] + eval_rows[1:])
    with pytest.raises(UserError, match=r"wrong.jsonl:1: field 'answer' differs"):
        evaluate.evaluate_command([*scored, "--samples", wrong, "--out", str(tmp_path / "bad")])
    short = write_jsonl(str(tmp_path / "saved" / "short.jsonl"), eval_rows[1:])
    with pytest.raises(UserError, match=r"short.jsonl: no responses for 1 of"):
        evaluate.evaluate_command([*scored, "--samples", short, "--out", str(tmp_path / "bad")])


def test_auc_by_hand():
    # Positives 0.9, 0.5, 0.5; negatives 0.5, 0.1. Pairs (pos, neg): 0.9 beats both (2), each 0.5 ties the
    # 0.5 (0.5 each) and beats 0.1 (1 each): (2 + 1.5 + 1.5) / (3 x 2) = 5/6.
    assert verifier.auc([0.9, 0.5, 0.5, 0.5, 0.1], [True, True, True, False, False]) == pytest.approx(5 / 6)
    assert verifier.auc([0.1, 0.2, 0.3], [False, True, True]) == 1.0
    assert verifier.auc([0.1, 0.2, 0.3], [True, False, False]) == 0.0
    assert verifier.auc([0.4, 0.4, 0.4], [True, False, True]) == 0.5  # a constant score ranks nothing
    assert verifier.auc([0.4, 0.7], [True, True]) != verifier.auc([0.4, 0.7], [True, True])  # nan: no negative


def test_oprm_rows_and_balance(tmp_path):
    task = miniworld.Task(17, (miniworld.Step("*", 3), miniworld.Step("+", 16)))
    problem = miniworld.render_problem(task, miniworld.sample_phrasing(random.Random(0), task))
    right = miniworld.correct_solution(task)
    slip = "17 * 3 = 51\n51 + 16 = 68\nThe answer is \\boxed{68}"  # wrong at step 2
    samples = write_jsonl(str(tmp_path / "samples.jsonl"), [
        {"id": "w1", "problem": problem, "answer": "67", "samples": [right, slip], "correct": [True, False]}])
    from w2s.data.selection.verifier_rows import balance_rows, oprm_rows
    rows, report = oprm_rows(samples)
    assert [r["id"] for r in rows] == ["w1/s0", "w1/s1", "w1/s0/outcome", "w1/s1/outcome"]
    assert [r["labels"] for r in rows] == [[True] * 3, [True, False, False], [True] * 3, [False] * 3]
    assert report["steps"] == 6 and report["outcome-labelled good steps"] == 3

    # Seven all-good rows of 2 steps and three rows [good, bad, bad]: 17 good, 6 bad. Dropping an all-good
    # row removes 2 of the excess 11; five of them leave 7 good and 6 bad, and a sixth would cross over.
    many = [{"id": f"g{i}", "labels": [True, True]} for i in range(7)] + \
           [{"id": f"b{i}", "labels": [True, False, False]} for i in range(3)]
    kept, balance = balance_rows(many, seed=3)
    assert balance["rows dropped"] == 5 and balance["steps dropped"] == 10
    assert (balance["good steps after"], balance["bad steps after"]) == (7, 6)
    assert {r["id"] for r in kept} >= {"b0", "b1", "b2"}  # rows leaning to the rare label are never dropped
    assert balance_rows(many, seed=3)[0] == kept and balance_rows(many, seed=4)[0] != kept  # the seed decides which
    assert balance_rows(many[:7])[0] == many[:7]  # good steps only: nothing to balance against, nothing dropped

    # Through data_prep.py: samples [right, right, slip] make OPRM rows of 13 good and 5 bad steps; two
    # all-good rows (3 steps each) go, and a third would cross over: 7 good, 5 bad.
    three = write_jsonl(str(tmp_path / "three.jsonl"), [
        {"id": "w1", "problem": problem, "answer": "67", "samples": [right, right, slip], "correct": [True, True, False]}])
    data_prep.main(["verifier", three, "--oprm", "--balance", "--name", "oprm", "--out", str(tmp_path / "data")])
    written = read_lines(str(tmp_path / "data" / "oprm.jsonl"))
    good = sum(sum(r["labels"]) for r in written)
    assert (len(written), good, sum(len(r["labels"]) for r in written) - good) == (4, 7, 5)
    with pytest.raises(UserError, match="--oprm already holds"):
        data_prep.step_rows_command(data_prep.parse_args(["verifier", three, "--oprm", "--outcome"]))


def test_mean_aggregation_does_not_reward_fewer_verdicts():
    assert verifier.aggregate([0.5, 0.2, 0.9], "mean") == pytest.approx(1.6 / 3)
    assert "mean" in verifier.AGGREGATIONS
    # A premature answer (two verdicts, both fairly sure) against a whole solution with one doubtful
    # step: min ranks the short one first, mean the whole one.
    short, whole = [0.9, 0.9], [0.95, 0.95, 0.95, 0.85]
    assert verifier.aggregate(short, "min") > verifier.aggregate(whole, "min")
    assert verifier.aggregate(short, "mean") < verifier.aggregate(whole, "mean")


def world_samples(problems: int = 12, k: int = 8, seed: int = 0) -> list[dict]:
    """sample.py-shaped rows for built-in world problems: per problem a shuffled mix of its correct
    solution, weak teachers' wrong ones, and a premature answer (its first two steps, then that amount)."""
    rng = random.Random(seed)
    world = miniworld.build_world(seed, num_hard=problems, num_foundation=0, num_test=0, num_long_test=0)
    rows = []
    for problem in world.hard:
        lines = miniworld.correct_lines(problem.task)
        responses = [miniworld.correct_solution(problem.task), miniworld.solution_text(lines[:2])]
        while len(responses) < k:
            responses.append(miniworld.weak_solution(problem.task, rng.choice(miniworld.PROFILES), rng).text)
        rng.shuffle(responses)
        rows.append({"id": problem.id, "problem": problem.text, "answer": str(problem.task.answer),
                     "samples": responses})
    return rows


def test_the_world_oracle_never_loses_to_its_first_sample(tmp_path):
    rows = world_samples()
    bench = write_jsonl(str(tmp_path / "bench.jsonl"), [{k: r[k] for k in ("id", "problem", "answer")} for r in rows])
    samples = write_jsonl(str(tmp_path / "samples.jsonl"), rows)
    summary = evaluate.evaluate_command(["--bench", bench, "--samples", samples, "--verifier", verifier.WORLD,
                                         "--out", str(tmp_path / "eval"), "--quiet"])["bench"]
    assert summary["verifier"] == verifier.WORLD
    curves = summary["curves"]
    assert curves["1"]["best_of@1"] < 1.0  # the first sample is sometimes wrong: there is something to re-rank
    for k in ("2", "4", "8"):
        assert curves[k][f"best_of@{k}"] == curves[k][f"pass@{k}"] >= curves["1"]["best_of@1"]
    for row in read_lines(str(tmp_path / "eval" / "bench.jsonl")):
        assert row["scores"] == [float(c) for c in row["correct"]]  # here: no right answer has a wrong step
        premature = [i for i, r in enumerate(row["responses"]) if len(r.splitlines()) == 3 and not row["correct"][i]]
        assert premature and all(row["step_scores"][i] == [1.0, 1.0, 0.0] for i in premature)


def test_the_log_prob_baseline_is_the_policys_mean_token_log_prob(tmp_path):
    """evaluate.py --verifier logprob:DIR against transformers' Llama on the same ids: the prompt as the
    policy is asked, then the response as one text; the score is exp(mean log-prob of its tokens)."""
    transformers = pytest.importorskip("transformers")
    checkpoint = make_checkpoint(str(tmp_path / "policy"))
    rows = world_samples(problems=3, k=4)
    bench = write_jsonl(str(tmp_path / "bench.jsonl"), [{k: r[k] for k in ("id", "problem", "answer")} for r in rows])
    samples = write_jsonl(str(tmp_path / "samples.jsonl"), rows)
    summary = evaluate.evaluate_command(["--bench", bench, "--samples", samples, "--verifier", f"logprob:{checkpoint}",
                                         "--out", str(tmp_path / "eval"), "--quiet"])["bench"]
    assert summary["verifier"].endswith("policy")
    reference = transformers.LlamaForCausalLM.from_pretrained(checkpoint).eval()
    tokenizer = Tokenizer.from_pretrained(checkpoint)
    for row in read_lines(str(tmp_path / "eval" / "bench.jsonl")):
        prompt = tokenizer.encode_chat([{"role": "user", "content": user_message(row["problem"])}],
                                       add_generation_prompt=True)
        for response, score, steps in zip(row["responses"], row["scores"], row["step_scores"]):
            ids = prompt + tokenizer.encode(response)
            with torch.no_grad():
                logp = reference(torch.tensor([ids])).logits[0, :-1].log_softmax(-1)
            expected = logp[len(prompt) - 1:].gather(-1, torch.tensor(ids[1:])[len(prompt) - 1:, None]).mean().exp()
            assert score == pytest.approx(expected.item(), rel=1e-4)
            assert len(steps) == len(split_steps(response)) and all(0 < s <= 1 for s in steps)
    with pytest.raises(UserError, match="no such checkpoint"):
        evaluate.evaluate_command(["--bench", bench, "--samples", samples, "--verifier", "logprob:/nonexistent",
                                   "--out", str(tmp_path / "bad"), "--quiet"])
