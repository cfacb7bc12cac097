"""evaluate.py: per-problem rows, summary JSON and markdown, resuming, maj@K / pass@K, grouping fields."""
import json
import os

import pytest

import evaluate
from w2s import evaluation, runtime
from w2s import generation
from w2s.generation import Sampling
from w2s.data import jsonl
from w2s.data.tasks import load_tasks
from tests.tiny_checkpoint import TASKS, make_checkpoint, read_lines, write_jsonl


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_checkpoint(str(tmp_path_factory.mktemp("ckpt")))


@pytest.fixture
def bench_dir(tmp_path):
    os.makedirs(tmp_path / "data" / "test")
    write_jsonl(str(tmp_path / "data" / "test" / "tiny.jsonl"), TASKS)
    return tmp_path


def run(checkpoint, bench_dir, *extra):
    """evaluate.py's work, with its errors as exceptions (the command line's one-line errors: test_errors.py)."""
    return evaluate.evaluate_command(["--model", checkpoint, "--bench", "tiny", "--data-dir", str(bench_dir / "data"),
                          "--out", str(bench_dir / "eval"), "--max-new-tokens", "10", "--batch-size", "3",
                          "--quiet", *extra])


def test_rows_summary_and_resume_on_a_tiny_model(checkpoint, bench_dir, monkeypatch):
    summaries = run(checkpoint, bench_dir)
    rows_path = bench_dir / "eval" / "tiny.jsonl"
    rows = read_lines(rows_path)
    assert [r["id"] for r in rows] == [t["id"] for t in TASKS]
    for row in rows:
        assert row["prompt"].startswith("<|begin_of_text|><|start_header_id|>user")
        assert len(row["responses"]) == len(row["extracted"]) == len(row["correct"]) == 1
        assert row["verdict"] == row["correct"][0]
    summary = json.load(open(bench_dir / "eval" / "summary.json"))["tiny"]
    assert summary == summaries["tiny"] and summary["problems"] == 5
    assert summary["accuracy"] == sum(r["verdict"] for r in rows) / 5
    assert set(summary["by"]) == {"level", "subject"} and list(summary["by"]["level"]) == ["1", "2", "3"]
    assert summary["by"]["subject"]["algebra"]["problems"] == 2
    table = open(bench_dir / "eval" / "summary.md").read()
    assert "| tiny | 5 |" in table and "| level |" in table and "| algebra | 2 |" in table

    # Kill after two problems (the third half written), resume: same rows, nothing redone twice.
    whole = open(rows_path).read()
    os.remove(rows_path)
    real_append, written = jsonl.append_row, []

    def killed(f, row):
        if len(written) == 2:
            f.write(json.dumps(row)[:30])
            raise KeyboardInterrupt
        written.append(row["id"])
        real_append(f, row)

    monkeypatch.setattr(evaluation, "append_row", killed)
    with pytest.raises(KeyboardInterrupt):
        run(checkpoint, bench_dir)
    monkeypatch.setattr(evaluation, "append_row", real_append)
    done_before = [r["id"] for r in read_lines_complete(rows_path)]
    assert done_before == ["t1", "t2"]
    generated, real_sample_tasks = [], evaluation.sample_tasks

    def recording_sample_tasks(model, tokenizer, tasks, **kwargs):
        generated.append([t["id"] for t in tasks])
        return real_sample_tasks(model, tokenizer, tasks, **kwargs)

    monkeypatch.setattr(evaluation, "sample_tasks", recording_sample_tasks)
    assert run(checkpoint, bench_dir)["tiny"] == summaries["tiny"]
    assert generated == [["t3", "t4", "t5"]]
    assert open(rows_path).read() == whole


def read_lines_complete(path):
    return [json.loads(line) for line in open(path).read().split("\n")[:-1]]


def scripted_generate(responses: dict[str, list[str]], tokenizer):
    """A stand-in for w2s.sampler.generate that answers each problem with scripted responses, in turn."""
    served = {}

    def fake(model, prompts, *, max_new_tokens, seed, **kwargs):
        out = []
        for prompt in prompts:
            problem = next(p for p in responses if p in tokenizer.decode(prompt))
            k = served[problem] = served.get(problem, -1) + 1
            out.append(tokenizer.encode(responses[problem][k])[:max_new_tokens])  # generate's limit
        return out

    return fake


def test_maj_and_pass_at_k_with_scripted_responses(checkpoint, tmp_path, monkeypatch):
    from w2s.tokenizer import Tokenizer

    tokenizer = Tokenizer.from_pretrained(checkpoint)
    tasks = [{"id": "a", "problem": "What is 2 + 3?", "answer": "5", "level": 1},
             {"id": "b", "problem": "What is half of 9?", "answer": "\\frac{9}{2}", "level": 2},
             {"id": "c", "problem": "Solve 2x = 14 for x.", "answer": "7", "level": 2}]
    responses = {
        # majority right (2 of 3; 5 and 5.0 vote together), pass
        "2 + 3": ["so \\boxed{5}", "\\boxed{4}", "it is \\boxed{5.0}"],
        # majority wrong (4 twice), but one right: pass, not maj
        "half of 9": ["\\boxed{4}", "\\boxed{4.5}", "The answer is 4"],
        # no answer at all twice, a wrong one: neither
        "2x = 14": ["I do not know", "\\boxed{8}", "\\boxed{"],
    }
    monkeypatch.setattr(generation, "generate", scripted_generate(responses, tokenizer))
    model, _ = runtime.load_model_and_tokenizer(checkpoint)
    summary = evaluation.evaluate(model, tokenizer, tasks, Sampling(n=3, temperature=0.8, max_new_tokens=40, batch_size=4),
                                  progress=False)
    assert summary["cut_off"] == 0
    assert summary["maj@3"] == summary["accuracy"] == pytest.approx(1 / 3)
    assert summary["pass@3"] == pytest.approx(2 / 3)
    assert summary["sample_accuracy"] == pytest.approx(3 / 9)
    assert summary["no_answer"] == pytest.approx(2 / 9)
    assert summary["by"]["level"]["2"] == {"problems": 2, "accuracy": 0.0, "maj@3": 0.0, "pass@3": 0.5,
                                           "sample_accuracy": pytest.approx(1 / 6), "no_answer": pytest.approx(2 / 6),
                                           "responses": 6, "cut_off": 0, "cut_off_share": 0.0}


def test_a_reply_cut_off_at_the_limit_states_no_answer_and_casts_no_vote(checkpoint, tmp_path, monkeypatch):
    """Issue 20: a reply that reached --max-new-tokens without a stop token is never graded as an answer,
    even when its text holds the gold one ("...feed 20 chickens..."); evaluate.py counts the cut-off replies."""
    from w2s.tokenizer import Tokenizer

    tokenizer = Tokenizer.from_pretrained(checkpoint)
    cut = "The answer is \\boxed{5}. So x = 3 and y = 4. " * 4  # longer than the limit: cut after the answer
    assert len(tokenizer.encode(cut)) > 20 and evaluation.grade(tokenizer.decode(tokenizer.encode(cut)[:20]), "5")
    responses = {"2 + 3": [cut, cut, "\\boxed{4}"]}
    monkeypatch.setattr(generation, "generate", scripted_generate(responses, tokenizer))
    model, _ = runtime.load_model_and_tokenizer(checkpoint)
    out = str(tmp_path / "rows.jsonl")
    summary = evaluation.evaluate(model, tokenizer, [{"id": "a", "problem": "What is 2 + 3?", "answer": "5"}],
                                  Sampling(n=3, temperature=0.8, max_new_tokens=20, batch_size=4), progress=False,
                                  out_path=out)
    row = read_lines(out)[0]
    assert row["finish_reasons"] == ["length", "length", "stop"]
    assert row["correct"] == [False, False, False] and row["extracted"] == [None, None, "4"]
    assert row["majority"] == "4" and row["verdict"] is False  # the two cut-off 5s cast no vote
    assert summary["pass@3"] == 0 and summary["cut_off"] == 2 and summary["cut_off_share"] == pytest.approx(2 / 3)


def test_majority_vote_groups_equivalent_answers():
    assert evaluation.majority_vote(["3", "\\frac{1}{2}", "0.5", None, "3", "1/2"]) == 1
    assert evaluation.majority_vote(["3", "4"]) == 0  # a tie goes to the answer seen first
    assert evaluation.majority_vote([None, None]) is None


def test_grouping_fields_are_found_in_the_rows():
    rows = [{"id": str(i), "problem": "p" * 100, "answer": "1", "level": i % 3, "source": "math",
             "notes": "x" * 100 + str(i), "tags": ["a"]} for i in range(6)]
    assert evaluation.grouping_fields(rows) == ["level"]  # one-valued, long-text and list fields group nothing


def test_bad_invocations_are_clear(checkpoint, bench_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no benchmark 'math500'; known in .*: tiny"):
        evaluation.resolve_bench("math500", str(bench_dir / "data"))
    with pytest.raises(ValueError, match="set a temperature > 0"):
        run(checkpoint, bench_dir, "--n", "4")
    no_answers = write_jsonl(str(tmp_path / "no_answers.jsonl"), [{"id": "a", "problem": "Name a prime."}])
    model, tokenizer = runtime.load_model_and_tokenizer(checkpoint)
    with pytest.raises(ValueError, match="task 'a': field 'answer' is missing"):
        evaluation.evaluate(model, tokenizer, load_tasks(no_answers))


def test_max_new_tokens_defaults_to_what_the_context_leaves(checkpoint, bench_dir, monkeypatch, capsys):
    seen, real_generate = [], generation.generate

    def recording(model, prompts, *, max_new_tokens, **kwargs):
        seen.append(max_new_tokens)
        return real_generate(model, prompts, max_new_tokens=max_new_tokens, **kwargs)

    monkeypatch.setattr(generation, "generate", recording)
    evaluate.main(["--model", checkpoint, "--bench", "tiny", "--data-dir", str(bench_dir / "data"),
                   "--out", str(bench_dir / "eval"), "--batch-size", "3", "--quiet"])
    model, tokenizer = runtime.load_model_and_tokenizer(checkpoint)
    longest = max(len(generation.build_prompt(tokenizer, task["problem"])[1]) for task in TASKS)
    room = model.args.max_seq_len - longest
    assert room < generation.DEFAULT_MAX_NEW_TOKENS and seen == [room, room]  # two batches of at most 3
    assert f"max new tokens: {room} " in capsys.readouterr().err
    # Given, it is used as is; a long context keeps the default; no room at all is an error.
    assert generation.fit_max_new_tokens(model, tokenizer, TASKS, "chat", 7) == 7
    model.args.max_seq_len = 4096
    assert generation.fit_max_new_tokens(model, tokenizer, TASKS, "chat", None) == generation.DEFAULT_MAX_NEW_TOKENS
    model.args.max_seq_len = longest
    with pytest.raises(ValueError, match=f"longest prompt \\({longest} tokens\\) leaves no room"):
        generation.fit_max_new_tokens(model, tokenizer, TASKS, "chat", None)
