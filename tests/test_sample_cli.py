"""sample.py: rows with samples and verdicts, resuming after a kill (with the same settings only), torchrun's
shares merged, bad task rows."""
import json
import os
import subprocess
import sys

import pytest

import sample
from w2s.data import jsonl
from w2s.data.tasks import load_tasks
from tests.tiny_checkpoint import TASKS, make_checkpoint, read_lines, write_jsonl
from w2s.data.provenance import file_fingerprint
from w2s.grader import grade
from w2s.hf_io import model_fingerprint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_checkpoint(str(tmp_path_factory.mktemp("ckpt")))


def run(checkpoint, tasks, out, *extra):
    """sample.py's work, with its errors as exceptions (the command line's one-line errors: test_errors.py)."""
    sample.sample(["--model", checkpoint, "--tasks", tasks, "--out", out, "--n", "3", "--temperature", "1.0",
                 "--top-p", "0.95", "--max-new-tokens", "12", "--batch-size", "4", "--seed", "5", "--quiet", *extra])


def test_rows_have_samples_verdicts_and_the_error_rate(checkpoint, tmp_path, capsys):
    tasks = TASKS[:3] + [{"id": "no-answer", "problem": "Name a prime."}]
    out = str(tmp_path / "samples.jsonl")
    run(checkpoint, write_jsonl(str(tmp_path / "tasks.jsonl"), tasks), out)
    rows = read_lines(out)
    assert [r["id"] for r in rows] == [t["id"] for t in tasks]
    for task, row in zip(tasks, rows):
        assert {k: row[k] for k in task} == task  # every task field kept
        assert len(row["samples"]) == 3 and len(set(row["samples"])) > 1  # seeded, but 3 different samples
        if "answer" in task:
            assert row["correct"] == [grade(s, task["answer"]) for s in row["samples"]]
        else:
            assert "correct" not in row
    wrong = sum(v is False for r in rows for v in r.get("correct", []))
    assert f"outcome error rate: {wrong / 9:.1%} ({wrong} of 9 samples wrong" in capsys.readouterr().out


def test_resume_after_a_kill_gives_the_same_file(checkpoint, tmp_path, monkeypatch):
    tasks = write_jsonl(str(tmp_path / "tasks.jsonl"), TASKS)
    whole = str(tmp_path / "whole.jsonl")
    run(checkpoint, tasks, whole)

    resumed = str(tmp_path / "resumed.jsonl")
    real_append, calls = jsonl.append_row, []

    def killed_after_two_rows(f, row):
        if len(calls) == 2:
            f.write(json.dumps(row)[:25])  # killed in the middle of writing the third row
            f.flush()
            raise KeyboardInterrupt
        calls.append(row["id"])
        real_append(f, row)

    monkeypatch.setattr(sample, "append_row", killed_after_two_rows)
    with pytest.raises(KeyboardInterrupt):
        run(checkpoint, tasks, resumed, "--batch-size", "2")  # other batches than the whole run
    monkeypatch.setattr(sample, "append_row", real_append)
    assert len(open(resumed).read().splitlines()) == 3  # two rows and a broken one
    run(checkpoint, tasks, resumed, "--batch-size", "7")  # the batch size does not decide the samples: allowed
    assert open(resumed).read() == open(whole).read()
    assert open(resumed + ".settings.json").read() == open(whole + ".settings.json").read()
    run(checkpoint, tasks, resumed)  # nothing left to do: the file stays as it is
    assert open(resumed).read() == open(whole).read()


def test_resume_refuses_another_runs_output(checkpoint, tmp_path):
    tasks = write_jsonl(str(tmp_path / "tasks.jsonl"), TASKS[:2])
    out = str(tmp_path / "samples.jsonl")
    write_jsonl(out, [{"id": "t1", "samples": ["a", "b"]}])
    with pytest.raises(ValueError, match=r"samples\.jsonl:1: field 'samples' has 2 entries but --n is 3"):
        run(checkpoint, tasks, out)
    write_jsonl(out, [{"id": "zzz", "samples": ["a", "b", "c"]}])
    with pytest.raises(ValueError, match=r"samples\.jsonl:1: field 'id': 'zzz' is not among the tasks"):
        run(checkpoint, tasks, out)


def test_resume_with_other_settings_fails_before_loading_the_model(checkpoint, tmp_path, monkeypatch):
    out = str(tmp_path / "samples.jsonl")
    tasks = write_jsonl(str(tmp_path / "tasks.jsonl"), TASKS)
    run(checkpoint, tasks, out)
    with open(out) as f:
        first_two = f.readlines()[:2]
    with open(out, "w") as f:  # as if killed after two tasks: three left to do
        f.writelines(first_two)
    assert json.load(open(out + ".settings.json")) == {
        "model": checkpoint, "model_fingerprint": model_fingerprint(checkpoint), "tokenizer": None,
        "tasks_fingerprint": file_fingerprint(tasks), "n": 3, "temperature": 1.0, "top_p": 0.95, "top_k": 0,
        "max_new_tokens": 12, "seed": 5, "template": "chat", "dtype": "fp32", "few_shot": None, "shots": None,
        "few_shot_fingerprint": None}
    before = {path: open(path).read() for path in (out, out + ".settings.json")}

    def must_not_load(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(sample, "load_model_and_tokenizer", must_not_load)
    with pytest.raises(ValueError, match=r"samples\.jsonl\.settings\.json: .*samples\.jsonl was made with other "
                                         r"settings or inputs \(temperature: recorded 1\.0, now 0\.5; seed: recorded 5, "
                                         r"now 6\); rerun with the recorded ones to resume, use another --out, or pass "
                                         r"--overwrite"):
        run(checkpoint, tasks, out, "--temperature", "0.5", "--seed", "6")
    assert {path: open(path).read() for path in before} == before
    # A new file may use new settings, even where an old settings file is left.
    monkeypatch.undo()
    os.remove(out)
    run(checkpoint, tasks, out, "--temperature", "0.5")
    assert json.load(open(out + ".settings.json"))["temperature"] == 0.5


def test_an_older_output_without_settings_resumes_with_a_warning(checkpoint, tmp_path, capsys):
    tasks = write_jsonl(str(tmp_path / "tasks.jsonl"), TASKS[:3])
    whole, old = str(tmp_path / "whole.jsonl"), str(tmp_path / "old.jsonl")
    run(checkpoint, tasks, whole)
    with open(old, "w") as f:  # what an older sample.py left: one row, no settings file
        f.write(open(whole).readline())
    capsys.readouterr()
    run(checkpoint, tasks, old)
    assert f"{old}: no {old}.settings.json (written by an older sample.py): cannot check" in capsys.readouterr().err
    assert open(old).read() == open(whole).read()
    assert open(old + ".settings.json").read() == open(whole + ".settings.json").read()


@pytest.mark.parametrize("line, message", [
    ('{"id": "a", "problem": "1+1?"}\n{"problem": "2+2?"}', r"tasks\.jsonl:2: field 'id' must be a non-empty string"),
    ('{"id": "a", "problem": ""}', r"tasks\.jsonl:1: field 'problem' must be a non-empty string"),
    ('{"id": "a", "problem": "1+1?", "answer": null}', r"tasks\.jsonl:1: field 'answer' must be a non-empty string"),
    ('{"id": "a", "problem": "1+1?"}\n\n{"id": "a", "problem": "2+2?"}', r"tasks\.jsonl:3: field 'id': duplicate id 'a' \(first on line 1\)"),
    ('{"id": "a", "problem": "1+1?"}\n{"id": "b", "problem": ', r"tasks\.jsonl:2: bad JSON"),
    ('["a"]', r"tasks\.jsonl:1: a task must be a JSON object"),
])
def test_bad_task_rows_name_file_line_and_field(tmp_path, line, message):
    path = tmp_path / "tasks.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(ValueError, match=message):
        load_tasks(str(path))


def test_numeric_answers_become_strings(tmp_path):
    path = write_jsonl(str(tmp_path / "tasks.jsonl"), [{"id": "a", "problem": "1+1?", "answer": 2}])
    assert load_tasks(path)[0]["answer"] == "2"


def test_torchrun_shares_merge_into_the_single_process_file(checkpoint, tmp_path):
    tasks = write_jsonl(str(tmp_path / "tasks.jsonl"), TASKS)
    single, parallel = str(tmp_path / "single.jsonl"), str(tmp_path / "parallel.jsonl")
    run(checkpoint, tasks, single)
    # A leftover rank file from an earlier, killed 3-process run: merged, not redone, not duplicated.
    first = read_lines(single)[1]
    with open(parallel + ".rank2", "w") as f:
        f.write(json.dumps(first) + "\n" + '{"id": "t')
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ROOT}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               os.path.join(ROOT, "sample.py"), "--model", checkpoint, "--tasks", tasks, "--out", parallel,
               "--num-samples", "3", "--temperature", "1.0", "--top-p", "0.95", "--max-new-tokens", "12",
               "--batch-size", "4", "--seed", "5", "--quiet"]
    result = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert open(parallel).read() == open(single).read()
    assert open(parallel + ".settings.json").read() == open(single + ".settings.json").read()  # rank 0's
    assert not [p for p in os.listdir(tmp_path) if ".rank" in p or p.endswith(".tmp")]


def test_settings_recorded_then_but_absent_now_are_compared(tmp_path):
    from w2s.errors import UserError

    out = str(tmp_path / "samples.jsonl")
    jsonl.write_settings(out, {"model": "m", "seed": 1, "removed": 5, "unused": None})
    jsonl.check_settings(out, {"model": "m", "seed": 1, "removed": 5}, begun=True)  # None and absent agree
    jsonl.check_settings(out, {"model": "m", "seed": 1, "removed": 5, "unused": None, "added": None}, begun=True)
    with pytest.raises(UserError, match=r"removed: recorded 5, now null"):
        jsonl.check_settings(out, {"model": "m", "seed": 1}, begun=True)
