"""Every command turns a user's mistake into one line on stderr naming the file (and line and field),
exit status 2, no traceback; once under torchrun; evaluate.py never reports another model's rows.

Most cases call the scripts' main(argv) in-process (what `python X.py` runs, without starting Python
and torch again); two run the real command line as a subprocess.
"""
import json
import os
import shutil
import subprocess
import sys

import pytest

import data_prep
import evaluate
import sample
import train
from bench.addition_chains import synthetic_rows
from tests.tiny_checkpoint import TASKS, make_checkpoint, write_jsonl
from w2s.errors import UserError, run_main
from w2s.tokenizer import train_tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_checkpoint(str(tmp_path_factory.mktemp("ckpt")))


@pytest.fixture(scope="module")
def sft_dir(tmp_path_factory):
    """A directory with a tokenizer, where each test writes its own (bad) SFT file."""
    directory = tmp_path_factory.mktemp("sft")
    texts = [m["content"] for row in synthetic_rows(20) for m in row["messages"]]
    train_tokenizer(texts, vocab_size=300).save_pretrained(str(directory))
    return directory


def one_line_error(capsys, main, argv: list[str]) -> str:
    """Run main(argv), expecting a user error: exit status 2, one line on stderr, no traceback."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "error: " in lines[0] and "Traceback" not in err, err
    return lines[0]


def bad_file(path, text: str | bytes) -> str:
    (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)
    return str(path)


def sample_argv(checkpoint, tasks, out):
    return ["--model", checkpoint, "--tasks", tasks, "--out", out, "--max-new-tokens", "4", "--quiet"]


def test_bad_json_and_non_utf8_in_a_tasks_file(checkpoint, tmp_path, capsys):
    good = json.dumps(TASKS[0])
    tasks = bad_file(tmp_path / "tasks.jsonl", good + '\n{"id": "b", "problem": \n')
    line = one_line_error(capsys, sample.main, sample_argv(checkpoint, tasks, str(tmp_path / "out.jsonl")))
    assert f"{tasks}:2: bad JSON" in line
    tasks = bad_file(tmp_path / "tasks.jsonl", (good + "\n\n").encode() + b'{"id": "b", "problem": "caf\xe9"}\n')
    line = one_line_error(capsys, sample.main, sample_argv(checkpoint, tasks, str(tmp_path / "out.jsonl")))
    assert f"{tasks}:3: not UTF-8 text (byte 0xe9" in line


@pytest.mark.parametrize("lines, expected", [
    (lambda rows: rows[:2] + [b'{"id": "x", "messages": [{"role": "user", "content": "\xff"}]}'], ":3: not UTF-8 text"),
    (lambda rows: rows[:1] + [b'{"id": "x", "meta": {}}'], ":2: field 'messages' must be a non-empty list"),
    (lambda rows: rows[:3] + rows[1:2], ":4: field 'id': duplicate id 's1' (first on line 2)"),
])
def test_bad_sft_files_name_file_line_and_field(sft_dir, tmp_path, capsys, lines, expected):
    rows = [json.dumps(row).encode() for row in synthetic_rows(4)]
    data = bad_file(sft_dir / f"bad_{len(os.listdir(sft_dir))}.jsonl", b"\n".join(lines(rows)) + b"\n")
    line = one_line_error(capsys, train.main, ["--data", data, "--out", str(tmp_path / "run"), "--max-steps", "1"])
    assert line.startswith("train.py: error: ") and data + expected in line


def test_missing_folders_and_checkpoint_files(checkpoint, tmp_path, capsys, monkeypatch):
    bench = write_jsonl(str(tmp_path / "bench.jsonl"), TASKS[:2])
    argv = ["--bench", bench, "--out", str(tmp_path / "eval"), "--max-new-tokens", "4", "--quiet"]
    monkeypatch.chdir(tmp_path)
    os.makedirs("runs")
    # "runs/nosuch" has the shape of a hub id, but runs/ is a local folder: a missing run, no network.
    assert "runs/nosuch: no such checkpoint folder" in one_line_error(capsys, evaluate.main, ["--model", "runs/nosuch", *argv])
    assert "train.py: error: --model runs/nosuch: no such folder" in one_line_error(
        capsys, train.main, ["--model", "runs/nosuch", "--data", "x.jsonl", "--out", "r"])
    broken = str(tmp_path / "broken")
    shutil.copytree(checkpoint, broken)
    weights = os.path.join(broken, "model.safetensors")
    with open(weights, "r+b") as f:
        f.truncate(os.path.getsize(weights) // 2)
    assert f"{weights}: " in one_line_error(capsys, evaluate.main, ["--model", broken, *argv])
    with open(weights, "wb") as f:
        f.write(b"\x00" * 4)  # not even a header
    assert f"{weights}: not a readable safetensors file" in one_line_error(capsys, evaluate.main, ["--model", broken, *argv])
    os.remove(os.path.join(broken, "config.json"))
    assert "config.json: missing config.json" in one_line_error(capsys, evaluate.main, ["--model", broken, *argv])


def test_unknown_benchmark_and_duplicate_ids(checkpoint, tmp_path, capsys):
    os.makedirs(tmp_path / "data" / "test")
    write_jsonl(str(tmp_path / "data" / "test" / "tiny.jsonl"), TASKS)
    argv = ["--model", checkpoint, "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "eval"), "--quiet"]
    assert "no benchmark 'nosuch'; known in" in one_line_error(capsys, evaluate.main, [*argv, "--bench", "nosuch"])
    dup = write_jsonl(str(tmp_path / "dup.jsonl"), TASKS[:2] + TASKS[:1])
    assert f"{dup}:3: field 'id': duplicate id 't1'" in one_line_error(capsys, evaluate.main, [*argv, "--bench", dup])


def test_evaluate_never_reports_another_models_rows(checkpoint, tmp_path, capsys):
    other = make_checkpoint(str(tmp_path / "other"), seed=1)  # same shapes and paths' kind, other weights
    bench = write_jsonl(str(tmp_path / "tiny.jsonl"), TASKS[:3])
    out, out_other = str(tmp_path / "eval"), str(tmp_path / "eval_other")
    argv = ["--bench", bench, "--out", out, "--max-new-tokens", "6", "--quiet"]
    argv_other = ["--bench", bench, "--out", out_other, "--max-new-tokens", "6", "--quiet"]
    evaluate.main(["--model", checkpoint, *argv])
    rows_before = open(os.path.join(out, "tiny.jsonl")).read()
    line = one_line_error(capsys, evaluate.main, ["--model", other, *argv])
    assert "tiny.jsonl.settings.json" in line and "model:" in line and "another --out" in line
    # The same folder rewritten with other weights is another model too, even under the same path.
    shutil.rmtree(other)
    shutil.copytree(checkpoint, other)
    evaluate.main(["--model", other, *argv_other])
    make_checkpoint(other, seed=2)
    line = one_line_error(capsys, evaluate.main, ["--model", other, *argv_other])
    assert "model_fingerprint" in line
    line = one_line_error(capsys, evaluate.main, ["--model", checkpoint, *argv, "--seed", "3"])  # other settings
    assert "seed: recorded 0, now 3" in line
    assert open(os.path.join(out, "tiny.jsonl")).read() == rows_before
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert summary["tiny"]["model"] == checkpoint
    capsys.readouterr()
    evaluate.main(["--model", checkpoint, *argv])  # the same run again: resumes (nothing to do)
    assert open(os.path.join(out, "tiny.jsonl")).read() == rows_before


def test_only_rank_zero_prints_and_programming_errors_keep_their_traceback(capsys, monkeypatch):
    def bad_input(argv):
        raise UserError("f.jsonl:3: field 'id' is missing")

    monkeypatch.setenv("RANK", "1")
    with pytest.raises(SystemExit) as exit_info:
        run_main(bad_input, [], "x.py")
    assert exit_info.value.code == 2 and capsys.readouterr().err == ""
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(SystemExit):
        run_main(bad_input, [], "x.py")
    assert capsys.readouterr().err == "x.py: error: f.jsonl:3: field 'id' is missing\n"

    def bug(argv):
        return {}["no such key"]

    with pytest.raises(KeyError):  # not a user's mistake: the traceback stays
        run_main(bug, [], "x.py")


def test_command_line_one_line_error_and_help(tmp_path):
    """The real command lines: a hub-shaped id the hub cannot provide offline is a missing folder,
    and --help shows defaults."""
    env = {**os.environ, "PYTHONPATH": ROOT, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    (tmp_path / "b.jsonl").write_text(json.dumps(TASKS[0]) + "\n")
    result = subprocess.run([sys.executable, os.path.join(ROOT, "evaluate.py"), "--model", "nosuchorg/nosuchmodel",
                             "--bench", str(tmp_path / "b.jsonl"), "--out", str(tmp_path / "eval")],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "nosuchorg/nosuchmodel: no such folder, and the Hugging Face Hub could not provide it" in result.stderr
    result = subprocess.run([sys.executable, os.path.join(ROOT, "sample.py"), "--help"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "(default: 0.7)" in result.stdout and "(default: 42)" in result.stdout


def test_data_prep_errors_are_one_line(tmp_path, capsys):
    samples = bad_file(tmp_path / "s.jsonl", '{"id": "a", "problem": "p", "answer": "1", "samples": "x"}\n')
    line = one_line_error(capsys, data_prep.main, ["from-samples", samples, "--out", str(tmp_path / "out")])
    assert line.startswith("data_prep.py: error: ") and f"{samples}:1: field 'samples'" in line


@pytest.mark.parametrize("damage", [".metadata", "trainer_state.json"])
def test_a_damaged_checkpoint_is_one_line_naming_its_folder(sft_dir, tmp_path, capsys, damage):
    data = str(sft_dir / "good.jsonl")
    write_jsonl(data, synthetic_rows(8))
    out = str(tmp_path / "run")
    argv = ["--data", data, "--out", out, "--max-steps", "2", "--save-every", "1", "--batch-size", "4"]
    train.main(argv)
    # What a run killed before its end leaves: checkpoints, no summary or final export.
    os.remove(os.path.join(out, "summary.json"))
    shutil.rmtree(os.path.join(out, "final"))
    folder = os.path.join(out, "checkpoints", "step_000002")
    with open(os.path.join(folder, damage), "wb") as f:
        f.write(b"\x00garbage")
    line = one_line_error(capsys, train.main, argv)
    assert line.startswith(f"train.py: error: {folder}: a damaged checkpoint") and "delete this folder" in line
