"""Issue 21: never stale, never overwritten. Every resumable output records what it came from (weights and
input files' fingerprints); a rerun whose inputs changed refuses in one line (exit 2) and --overwrite starts
fresh; built sets are protected; flags and output paths are checked before any model loads; Ctrl-C is one line
(exit 130); summary.json is valid JSON. Issue 20: finish reasons (a cut-off reply states no answer) and no
settings file left behind by a command that fails on its inputs.

Each test names the case of the issue it covers."""
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

import data_prep
import evaluate
import sample
import train
from tests.tiny_checkpoint import TASKS, make_checkpoint, read_lines, write_jsonl
from w2s import errors
from w2s import generation
from w2s.data.provenance import file_fingerprint, normalize_path
from w2s.data.selection import samples as selection
from w2s.data.selection.verifier_rows import step_rows_from_samples
from w2s.grader import grade
from w2s.tokenizer import Tokenizer, train_tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_checkpoint(str(tmp_path_factory.mktemp("ckpt")))


def sample_args(model, tasks, out, *extra):
    return ["--model", model, "--tasks", tasks, "--out", out, "--n", "2", "--temperature", "1.0",
            "--max-new-tokens", "6", "--batch-size", "4", "--seed", "5", "--quiet", *extra]


def eval_args(model, bench, out, *extra):
    return ["--model", model, "--bench", bench, "--out", out, "--max-new-tokens", "6", "--batch-size", "4",
            "--quiet", *extra]


def one_line_exit_2(capsys, call, *expected):
    """`call()` ends with exit status 2 and one line on stderr holding each of `expected`."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        call()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for text in expected:
        assert text in err, err
    return err


@pytest.fixture
def no_model_load(monkeypatch):
    """Fails a test that loads a model: every check here must come before that."""
    def must_not_load(*args, **kwargs):
        raise AssertionError("the model was loaded")

    for module in (sample, evaluate):
        monkeypatch.setattr(module, "load_model_and_tokenizer", must_not_load)


# ---------------------------------------------------------------------------------------------
# The six silent cases


def test_case1_sample_refuses_other_weights_at_the_same_model_path(checkpoint, tmp_path, capsys):
    model = shutil.copytree(checkpoint, str(tmp_path / "model"))
    tasks = write_jsonl(str(tmp_path / "tasks.jsonl"), TASKS)
    out = str(tmp_path / "samples.jsonl")
    sample.main(sample_args(model, tasks, out))  # finished: 5/5 tasks
    before = open(out).read()
    shutil.rmtree(model)
    make_checkpoint(model, seed=1)  # retrained or replaced at the same path
    one_line_exit_2(capsys, lambda: sample.main(sample_args(model, tasks, out)), "model_fingerprint", "--overwrite")
    assert open(out).read() == before  # nothing mixed in, nothing kept as if current
    sample.main(sample_args(model, tasks, out, "--overwrite"))  # starts fresh: the new model's rows only
    fresh = str(tmp_path / "fresh.jsonl")
    sample.main(sample_args(model, tasks, fresh))
    assert open(out).read() == open(fresh).read() != before


def test_case2_sample_refuses_tasks_rewritten_under_the_same_ids(checkpoint, tmp_path, capsys):
    tasks = write_jsonl(str(tmp_path / "tasks.jsonl"), TASKS[:2])
    out = str(tmp_path / "samples.jsonl")
    sample.main(sample_args(checkpoint, tasks, out))
    write_jsonl(tasks, [{**TASKS[0], "problem": "What is 9 + 9?", "answer": "18"}, TASKS[1]])
    one_line_exit_2(capsys, lambda: sample.main(sample_args(checkpoint, tasks, out)), "tasks_fingerprint",
                    "another --out", "--overwrite")


def test_case3_evaluate_refuses_a_benchmark_regenerated_at_the_same_path(checkpoint, tmp_path, capsys):
    bench = write_jsonl(str(tmp_path / "bench.jsonl"), TASKS[:2])
    out = str(tmp_path / "eval")
    evaluate.main(eval_args(checkpoint, bench, out))
    write_jsonl(bench, [{**TASKS[0], "answer": "6"}, TASKS[1]])  # regenerated: same ids, other content
    one_line_exit_2(capsys, lambda: evaluate.main(eval_args(checkpoint, bench, out)), "bench_fingerprint", "--overwrite")
    evaluate.main(eval_args(checkpoint, bench, out, "--overwrite"))
    assert [r["answer"] for r in read_lines(os.path.join(out, "bench.jsonl"))] == ["6", "42"]


def sft_rows(n: int, offset: int = 0) -> list[dict]:
    return [{"id": f"r{i}", "messages": [{"role": "user", "content": f"What is {i} + {offset}?"},
                                         {"role": "assistant", "content": f"The answer is \\boxed{{{i + offset}}}"}]}
            for i in range(n)]


@pytest.fixture
def sft_data(tmp_path):
    os.makedirs(tmp_path / "data")
    path = write_jsonl(str(tmp_path / "data" / "sft.jsonl"), sft_rows(16))
    train_tokenizer([m["content"] for r in sft_rows(16) + sft_rows(16, 7) for m in r["messages"]],
                    vocab_size=300).save_pretrained(str(tmp_path / "data"))
    return path


def train_args(data, out, *extra):
    return ["--data", data, "--out", out, "--max-steps", "2", "--batch-size", "8", "--save-every", "1", *extra]


def test_case4_train_refuses_to_resume_on_a_replaced_data_file(sft_data, tmp_path, capsys):
    out = str(tmp_path / "run")
    train.main(train_args(sft_data, out, "--max-steps", "1"))
    # As if killed: a checkpoint and no summary. Then the data file is replaced and the run rerun.
    os.remove(os.path.join(out, "summary.json"))
    write_jsonl(sft_data, sft_rows(16, 7))
    one_line_exit_2(capsys, lambda: train.main(train_args(sft_data, out, "--max-steps", "1")),
                    "data_fingerprint", "--overwrite")
    train.main(train_args(sft_data, out, "--max-steps", "1", "--overwrite"))
    assert json.load(open(os.path.join(out, "args.json")))["data_fingerprint"] == file_fingerprint(sft_data)


def test_case5_a_derived_set_never_overwrites_a_built_set(tmp_path, capsys):
    data = str(tmp_path / "data")
    os.makedirs(data)
    gold = write_jsonl(os.path.join(data, "hard_full.jsonl"), sft_rows(3))  # a built set (written before kinds were recorded)
    samples = write_jsonl(str(tmp_path / "s.jsonl"), [{"id": t["id"], "problem": t["problem"], "answer": t["answer"],
                                                       "samples": [f"\\boxed{{{t['answer']}}}"]} for t in TASKS])
    before = open(gold).read()
    one_line_exit_2(capsys, lambda: data_prep.main(["from-samples", samples, "--out", data, "--name", "hard_full"]),
                    "hard_full", "built set")
    one_line_exit_2(capsys, lambda: data_prep.main(["agree", samples, samples, "--out", data, "--name", "foundation"]),
                    "foundation", "built set")
    assert open(gold).read() == before and not os.path.exists(os.path.join(data, "foundation.jsonl"))
    # Derived sets are recorded by kind: rerunning one is fine, another kind under its name is refused.
    data_prep.main(["from-samples", samples, "--out", data, "--name", "weak"])
    data_prep.main(["from-samples", samples, "--out", data, "--name", "weak"])
    assert json.load(open(os.path.join(data, "manifest.json")))["sets"] == {"weak": "from_samples"}
    one_line_exit_2(capsys, lambda: data_prep.main(["agree", samples, samples, "--out", data, "--name", "weak"]),
                    "weak.jsonl is a set derived by from-samples")


def test_built_sets_are_recorded_as_built(tmp_path):
    data = str(tmp_path / "data")
    data_prep.main(["--out", data, "--num-hard", "20", "--num-foundation", "5", "--num-test", "5", "--num-long-test", "5",
                    "--sets", "hard_full", "foundation"])
    assert json.load(open(os.path.join(data, "manifest.json")))["sets"] == {"foundation": "built", "hard_full": "built"}


def test_case6_summary_after_final_was_lost_is_valid_json_from_the_metrics(sft_data, tmp_path):
    out = str(tmp_path / "run")
    train.main(train_args(sft_data, out))
    shutil.rmtree(os.path.join(out, "final"))  # killed during export
    train.main(train_args(sft_data, out))
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.loads(f.read(), parse_constant=lambda c: pytest.fail(f"summary.json holds {c}"))
    last = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))][-1]
    assert summary["final_loss"] == last["loss"] and summary["steps_this_invocation"] == 0
    assert os.path.exists(os.path.join(out, "final", "config.json"))


def test_a_corrupt_train_summary_finishes_the_run_again(sft_data, tmp_path):
    out = str(tmp_path / "run")
    train.main(train_args(sft_data, out))
    with open(os.path.join(out, "summary.json"), "w") as f:
        f.write('{"steps": 2, "final_lo')
    train.main(train_args(sft_data, out))
    assert json.load(open(os.path.join(out, "summary.json")))["steps"] == 2


# ---------------------------------------------------------------------------------------------
# The tracebacks: flags and output paths checked before the model loads


@pytest.mark.parametrize("flags, expected", [
    (["--temperature", "-1"], "--temperature must be >= 0"),
    (["--top-p", "0"], "--top-p must be in (0, 1]"),
    (["--top-p", "2"], "--top-p must be in (0, 1]"),
    (["--top-k", "-3"], "--top-k must be >= 0"),
    (["--max-new-tokens", "-5"], "--max-new-tokens must be >= 1"),
    (["--max-new-tokens", "0"], "--max-new-tokens must be >= 1"),
])
def test_bad_sampling_flags_are_one_line_before_the_model_loads(checkpoint, tmp_path, capsys, no_model_load,
                                                                flags, expected):
    tasks = write_jsonl(str(tmp_path / "tasks.jsonl"), TASKS)
    one_line_exit_2(capsys, lambda: sample.main(sample_args(checkpoint, tasks, str(tmp_path / "s.jsonl"), *flags)), expected)
    one_line_exit_2(capsys, lambda: evaluate.main(eval_args(checkpoint, tasks, str(tmp_path / "e"), *flags)), expected)
    assert not os.path.exists(tmp_path / "s.jsonl.settings.json") and not os.path.exists(tmp_path / "e")


def test_out_naming_a_folder_a_file_or_an_unwritable_place(checkpoint, sft_data, tmp_path, capsys, no_model_load):
    tasks = write_jsonl(str(tmp_path / "tasks.jsonl"), TASKS)
    a_file = write_jsonl(str(tmp_path / "a_file"), [{}])
    under_a_file = os.path.join(a_file, "x")
    one_line_exit_2(capsys, lambda: sample.main(sample_args(checkpoint, tasks, str(tmp_path))), "is a folder")
    one_line_exit_2(capsys, lambda: sample.main(sample_args(checkpoint, tasks, under_a_file)), "is a file, not a folder")
    one_line_exit_2(capsys, lambda: evaluate.main(eval_args(checkpoint, tasks, a_file)), "is a file; --out names a folder")
    one_line_exit_2(capsys, lambda: evaluate.main(eval_args(checkpoint, tasks, under_a_file)), "is a file, not a folder")
    one_line_exit_2(capsys, lambda: train.main(train_args(sft_data, a_file)), "is a file; --out names a folder")
    one_line_exit_2(capsys, lambda: data_prep.main(["--out", a_file]), "is a file; --out names a folder")
    one_line_exit_2(capsys, lambda: data_prep.main(["--out", under_a_file]), "is a file, not a folder")
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        one_line_exit_2(capsys, lambda: sample.main(sample_args(checkpoint, tasks, str(locked / "s.jsonl"))),
                        "permission denied")


def test_a_corrupt_evaluate_summary_is_one_line(checkpoint, tmp_path, capsys, no_model_load):
    bench = write_jsonl(str(tmp_path / "bench.jsonl"), TASKS[:2])
    os.makedirs(tmp_path / "eval")
    (tmp_path / "eval" / "summary.json").write_text('{"bench": {"accura')
    one_line_exit_2(capsys, lambda: evaluate.main(eval_args(checkpoint, bench, str(tmp_path / "eval"))),
                    "summary.json: not a summary file")


def test_ctrl_c_is_one_line_and_exit_130_on_every_rank(checkpoint, tmp_path, capsys, monkeypatch):
    tasks = write_jsonl(str(tmp_path / "tasks.jsonl"), TASKS)
    out = str(tmp_path / "s.jsonl")

    def interrupted(f, row):
        raise KeyboardInterrupt

    monkeypatch.setattr(sample, "append_row", interrupted)
    with pytest.raises(SystemExit) as exit_info:
        sample.main(sample_args(checkpoint, tasks, out))
    assert exit_info.value.code == 130
    assert capsys.readouterr().err.strip() == "sample.py: interrupted; rerun the same command to resume"
    monkeypatch.setenv("RANK", "1")  # another rank under torchrun: silent, same status
    with pytest.raises(SystemExit) as exit_info:
        errors.run_main(lambda argv: (_ for _ in ()).throw(KeyboardInterrupt), None, "train.py")
    assert exit_info.value.code == 130 and capsys.readouterr().err == ""


# ---------------------------------------------------------------------------------------------
# Smaller faults


def test_paths_are_compared_after_normalizing(checkpoint, tmp_path, monkeypatch, sft_data):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(checkpoint, "model")
    write_jsonl("tasks.jsonl", TASKS[:2])
    sample.main(sample_args("./model", "tasks.jsonl", "s.jsonl"))
    sample.main(sample_args("model/", "./tasks.jsonl", "s.jsonl"))  # the same run: resumes (nothing to do)
    assert json.load(open("s.jsonl.settings.json"))["model"] == "model"
    assert normalize_path("./runs//x/") == "runs/x"
    rel = os.path.relpath(sft_data)
    train.main(train_args(rel, "./run", "--max-steps", "1"))
    train.main(train_args("./" + rel, "run/", "--max-steps", "1"))  # the same run: done, not refused


def test_a_mistyped_data_dir_builds_no_world(tmp_path, capsys):
    missing = str(tmp_path / "dta")
    one_line_exit_2(capsys, lambda: train.main(["--data", "hard_full", "--data-dir", missing, "--out", str(tmp_path / "r")]),
                    "--data-dir", "no such directory")
    assert not os.path.exists(missing)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_device_cuda_without_a_gpu_is_one_line(checkpoint, tmp_path, capsys, no_model_load):
    tasks = write_jsonl(str(tmp_path / "tasks.jsonl"), TASKS)
    one_line_exit_2(capsys, lambda: sample.main(sample_args(checkpoint, tasks, str(tmp_path / "s.jsonl"), "--device", "cuda")),
                    "--device cuda", "no GPU")


def test_out_that_is_an_input_is_named_as_such(checkpoint, tmp_path, capsys, no_model_load):
    tasks = write_jsonl(str(tmp_path / "tasks.jsonl"), TASKS)
    err = one_line_exit_2(capsys, lambda: sample.main(sample_args(checkpoint, tasks, tasks)), "is the --tasks file")
    assert "older" not in err
    out = str(tmp_path / "eval")
    os.makedirs(out)
    bench = write_jsonl(os.path.join(out, "bench.jsonl"), TASKS)
    err = one_line_exit_2(capsys, lambda: evaluate.main(eval_args(checkpoint, bench, out)), "keep benchmarks outside --out")
    assert "delete" not in err
    assert len(read_lines(bench)) == len(TASKS)


def test_an_sft_model_as_verifier_and_an_unknown_group_by_field(checkpoint, tmp_path, capsys, no_model_load):
    bench = write_jsonl(str(tmp_path / "bench.jsonl"), TASKS)
    run = tmp_path / "sft_run"
    shutil.copytree(checkpoint, str(run / "final"))
    (run / "args.json").write_text(json.dumps({"objective": "sft"}))
    one_line_exit_2(capsys, lambda: evaluate.main(eval_args(checkpoint, bench, str(tmp_path / "e"), "--n", "2",
                                                           "--temperature", "0.7", "--verifier", str(run / "final"))),
                    "--objective sft", "not prm")
    one_line_exit_2(capsys, lambda: evaluate.main(eval_args(checkpoint, bench, str(tmp_path / "e"), "--group-by", "levle")),
                    "--group-by levle", "level", "subject")


def test_help_shows_every_default_worth_showing(capsys):
    for main, flags in ((sample.main, {"--top-k": "(default: 0)"}),
                        (evaluate.main, {"--temperature": "(default: 0.0)", "--seed": "(default: 0)", "--top-k": "(default: 0)"})):
        with pytest.raises(SystemExit):
            main(["--help"])
        text = " ".join(capsys.readouterr().out.split())
        text = text[text.index("options:"):]  # the flags' help, not the usage line
        for flag, default in flags.items():
            after = text[text.index(flag + " "):]
            assert default in after[:after.index(" --", 1)], (flag, after[:200])


@pytest.mark.parametrize("script", ["weak_to_strong.py", "easy_to_hard.py", "runner.py"])
def test_experiment_scripts_answer_help(script):
    result = subprocess.run([sys.executable, os.path.join(ROOT, "experiments", script), "--help"],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0 and "usage:" in result.stdout and "mini_study.py" in result.stdout


# ---------------------------------------------------------------------------------------------
# Issue 20: finish reasons, and no settings file left by a command that fails on its inputs


def scripted(replies: dict[str, str], tokenizer):
    """A stand-in for w2s.sampler.generate: each problem's scripted reply, cut at max_new_tokens as generate cuts."""
    def fake(model, prompts, *, max_new_tokens, **kwargs):
        texts = [tokenizer.decode(p) for p in prompts]
        return [tokenizer.encode(next(r for p, r in replies.items() if p in t))[:max_new_tokens] for t in texts]

    return fake


def test_sample_rows_record_prompt_and_finish_reasons(checkpoint, tmp_path, monkeypatch, capsys):
    tokenizer = Tokenizer.from_pretrained(checkpoint)
    long = "The answer is \\boxed{5}. So x = 3 and y = 4. " * 3
    monkeypatch.setattr(generation, "generate", scripted({"2 + 3": long, "7 * 6": "\\boxed{42}"}, tokenizer))
    tasks = write_jsonl(str(tmp_path / "tasks.jsonl"), TASKS[:2])
    out = str(tmp_path / "s.jsonl")
    sample.main(sample_args(checkpoint, tasks, out, "--max-new-tokens", "16"))
    cut, done = read_lines(out)
    assert grade(tokenizer.decode(tokenizer.encode(long)[:16]), "5")  # its text holds the gold answer
    assert cut["finish_reasons"] == ["length", "length"] and cut["correct"] == [False, False]
    assert done["finish_reasons"] == ["stop", "stop"] and done["correct"] == [True, True]
    assert cut["prompt"] == generation.build_prompt(tokenizer, TASKS[0]["problem"])[0]
    assert "cut off at --max-new-tokens: 2 of 4 samples (50.0%)" in capsys.readouterr().out


def samples_row(task_id, problem, answer, samples, reasons):
    return {"id": task_id, "problem": problem, "answer": answer, "samples": samples, "finish_reasons": reasons}


def test_data_made_from_samples_never_takes_a_cut_off_reply_as_an_answer(tmp_path):
    cut, stated = "The answer is \\boxed{5}, and then", "The answer is \\boxed{5}"
    rows = [samples_row("a", "What is 2 + 3?", "5", [cut, stated, cut], ["length", "stop", "length"])]
    path = write_jsonl(str(tmp_path / "s.jsonl"), rows)
    sft, report = selection.sft_from_samples(path, "t")
    assert [r["id"] for r in sft] == ["a/s1"] and report["cut-off samples (skipped)"] == 2
    steps, _ = step_rows_from_samples(path, outcome=True)
    assert [r["meta"]["correct"] for r in steps] == [False, True, False]
    # --agree: a cut-off first sample states no answer, so nothing agrees
    other = write_jsonl(str(tmp_path / "o.jsonl"), [samples_row("a", "What is 2 + 3?", "5", [stated], ["stop"])])
    hybrid, counts = selection.agreement_set(selection.load_samples(path), {"a": read_lines(other)[0]}, "x", "y")
    assert hybrid == [] and counts["no_answer"] == 1
    # --pairs: cut-off samples cast no vote (1 stated 5 of 3 samples is below the confidence needed)
    pairs, counts = selection.confidence_pairs(selection.load_samples(path), {"a": read_lines(other)[0]}, min_confidence=0.6)
    assert pairs == [] and counts["skip/low_confidence"] == 1
    with pytest.raises(ValueError, match=r"s2\.jsonl:1: field 'finish_reasons'"):
        selection.load_samples(write_jsonl(str(tmp_path / "s2.jsonl"),
                                           [samples_row("a", "What is 2 + 3?", "5", [cut], ["cut"])]))


def test_a_command_that_fails_on_its_inputs_leaves_no_settings_file(checkpoint, tmp_path, capsys):
    tasks = write_jsonl(str(tmp_path / "tasks.jsonl"), TASKS)
    out = str(tmp_path / "s.jsonl")
    one_line_exit_2(capsys, lambda: sample.main(sample_args(checkpoint, tasks, out, "--max-new-tokens", "100000")),
                    "exceeds the model's maximum length")
    assert not os.path.exists(out + ".settings.json")
    with pytest.raises(SystemExit, match="^2$"):
        evaluate.main(eval_args(checkpoint, tasks, str(tmp_path / "e"), "--max-new-tokens", "100000"))
    assert "exceeds the model's maximum length" in capsys.readouterr().err.splitlines()[-1]
    assert not os.path.exists(tmp_path / "e" / "tasks.jsonl.settings.json")
