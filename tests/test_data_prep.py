"""data_prep.py (w2s/data/datadir.py, w2s/data/world/quality.py): the built-in world's data directory, set names, --stats, and the paper's data on a fixture."""
import json
import os
import random
import shutil

import pytest

import data_prep
from w2s.data.datadir import build_builtin
from w2s.data.jsonl import read_jsonl
from w2s.data.rows import load_sft_examples, problem_from_user_message
from w2s.data.world import miniworld as mw
from w2s.data.world import quality
from w2s.data.world.sets import builtin_set_args, set_names
from w2s.grader import grade
from w2s.tokenizer import Tokenizer

SMALL = ["--num-hard", "300", "--num-foundation", "100", "--num-test", "200", "--num-long-test", "50"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("data"))
    data_prep.main(["--out", out] + SMALL)
    data_prep.main(["--out", out, "--hard-error", "0.5", "0.9", "--step-profile", "low", "high"] + SMALL)
    return out


def solution(row):
    return row["messages"][1]["content"]


def problem(row):
    return problem_from_user_message(row["messages"][0]["content"])


def test_builtin_directory_layout(built):
    names = set(os.listdir(built))
    assert {f"{s}.jsonl" for s in data_prep.BUILTIN_SETS} <= names
    assert {"hard_full_e0.9_low.jsonl", "hard_full_e0.9_high.jsonl", "hard_full_e0.5_low+easy_sub.jsonl",
            "hard_full_e0.9_high+paraphrase.jsonl", "hard_full_e0.9_low_x2.jsonl", "tokenizer.json", "manifest.json"} <= names
    assert sorted(os.listdir(os.path.join(built, "test"))) == ["miniworld.jsonl", "miniworld_long.jsonl"]
    tokenizer = Tokenizer.from_pretrained(built)
    row = load_sft_examples(os.path.join(built, "hard_full.jsonl"))[0]
    assert tokenizer.decode(tokenizer.encode(solution(row))) == solution(row)
    assert {"task_id", "kind", "answer", "correct", "step_error_rate"} <= set(row["meta"])


@pytest.mark.parametrize("name, outcome, step_rate", [
    ("hard_full", 0.0, lambda e: e == 0),
    ("easy_sub", 0.0, lambda e: e == 0),
    ("easy_sub_prefix", 0.0, lambda e: e == 0),
    ("foundation", 0.0, lambda e: e == 0),
    ("hard_full_e0.5_low", 0.5, lambda e: 0.1 < e < 0.2),  # one late slip: 1/3..1/5 of the steps
    ("hard_full_e0.9_low", 0.9, lambda e: 0.18 < e < 0.3),
    ("hard_full_e0.9_high", 0.9, lambda e: abs(e - 0.9) < 0.02),  # every step of every wrong solution
])
def test_measured_error_rates_equal_the_requested(built, name, outcome, step_rate):
    rows = load_sft_examples(os.path.join(built, f"{name}.jsonl"))
    wrong = sum(not grade(solution(r), r["meta"]["answer"]) for r in rows)
    assert abs(wrong - outcome * len(rows)) <= 1
    errors = [mw.step_errors(solution(r), problem(r)) for r in rows]
    assert step_rate(sum(map(sum, errors)) / sum(map(len, errors)))
    stats = quality.measure(rows, recheck_steps=True)
    assert abs(stats["outcome_error"] - outcome) <= 1 / len(rows) and step_rate(stats["step_error"])


def test_low_and_high_differ_only_in_the_errors(built):
    low, high = (read_jsonl(os.path.join(built, f"hard_full_e0.9_{p}.jsonl")) for p in ("low", "high"))
    assert [r["messages"][0] for r in low] == [r["messages"][0] for r in high]  # same problems
    assert [r["meta"]["correct"] for r in low] == [r["meta"]["correct"] for r in high]  # same tasks wrong


def test_no_test_problem_in_any_training_set(built):
    tests = [r for name in ("miniworld", "miniworld_long") for r in read_jsonl(os.path.join(built, "test", f"{name}.jsonl"))]
    assert len(tests) == 250 and all(set(r) >= {"id", "problem", "answer"} for r in tests)
    assert all(str(mw.parse_problem(r["problem"]).answer) == r["answer"] for r in tests)
    test_tasks = {mw.signature(mw.parse_problem(r["problem"])) for r in tests}
    for name in os.listdir(built):
        if name.endswith(".jsonl"):
            train_tasks = {mw.signature(mw.parse_problem(problem(r))) for r in read_jsonl(os.path.join(built, name))}
            assert not train_tasks & test_tasks, name


def test_set_names_round_trip_through_builtin_set_args(built):
    for name in [f[:-6] for f in os.listdir(built) if f.endswith(".jsonl")]:
        args = builtin_set_args(name)
        assert args is not None, name
        names = set_names(args["hard_errors"][0], args["sub_errors"][0], args["profiles"][0])
        assert names[args["kinds"][0]] == name
    for name in ["hard_full_e0.90", "hard_full_e2", "easy_sub_x2", "weak_gpt", "hard_full_e0_low", "hard_full_e0.9_low+easy_sub_e0.5_high"]:
        assert builtin_set_args(name) is None, name


def test_easy_sub_prefix_poses_the_first_steps_in_the_whole_problem(built):
    hard = {r["id"]: r for r in read_jsonl(os.path.join(built, "hard_full.jsonl"))}
    rows = read_jsonl(os.path.join(built, "easy_sub_prefix.jsonl"))
    assert len(rows) == 2 * len(hard) == len(read_jsonl(os.path.join(built, "easy_sub.jsonl")))
    for row in rows:
        meta, parent = row["meta"], hard[row["meta"]["parent_id"]]
        j = meta["steps"]
        assert row["id"] == meta["task_id"] == f"{parent['id']}-pre{j}" and meta["span"] == [0, j - 1]
        assert meta["kind"] == "easy_sub_prefix" and meta["correct"] and meta["step_error_rate"] == 0.0
        # the parent's whole story, asking after its first j steps; the solution is those steps
        assert problem(row).rsplit(". ", 1)[0] == problem(parent).rsplit(". ", 1)[0]
        assert solution(row).splitlines()[:j] == solution(parent).splitlines()[:j]
        assert meta["answer"] == str(mw.final_answer(solution(row))) and grade(solution(row), meta["answer"])
        assert mw.step_errors(solution(row), problem(row)) == [False] * j
    assert sorted({r["meta"]["steps"] for r in rows}) == [1, 2]


TINY = ["--num-hard", "20", "--num-foundation", "10", "--num-test", "10", "--num-long-test", "5"]


def test_existing_sets_are_unchanged_by_prefix_subtasks(tmp_path):
    # Stored from the same build before easy_sub_prefix existed (commit e272d3d, --sets hard_full easy_sub):
    # building the new kind beside them changes no byte of the existing kinds.
    import hashlib
    out = str(tmp_path)
    data_prep.main(["--out", out, "--hard-error", "0", "0.5", "--sub-error", "0", "0.5",
                    "--sets", "hard_full", "easy_sub", "easy_sub_prefix"] + TINY)
    expected = {"hard_full": "91b88b0a71485f7f176e6aa67dc78ae4edb31a44bd75b73a079b5b277969873a",
                "hard_full_e0.5": "4675f43f256d3b85af3bae06824a6f9a4b67995e5147f9eae54e1e360fed2962",
                "easy_sub": "cca7c7b459ea54b7c3f168bf1a1cd86bb37f9bb81c4dc7a44700237089025f45",
                "easy_sub_e0.5": "823efd1ba0c467e141d1b3e84aa26552aef1692c1d42854ee5cb4fbbff7b2c2e"}
    for name, digest in expected.items():
        with open(os.path.join(out, f"{name}.jsonl"), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == digest, name
    # the noisy prefix set: sub_error of its rows wrong, its meta's step errors those the checker finds
    rows = read_jsonl(os.path.join(out, "easy_sub_prefix_e0.5.jsonl"))
    assert len(rows) == 40 and sum(not r["meta"]["correct"] for r in rows) == 20
    by_meta, rechecked = quality.measure(rows), quality.measure(rows, recheck_steps=True)
    assert by_meta["step_error"] == rechecked["step_error"] > 0 and rechecked["unknown_step_error"] == 0


def test_a_missing_variant_is_built_with_the_directorys_settings(built):
    # What train.py does for a set name that is not there yet: no sizes given, the manifest's are used.
    build_builtin(built, {}, **builtin_set_args("hard_full_e0.2_high"))
    rows = load_sft_examples(os.path.join(built, "hard_full_e0.2_high.jsonl"))
    assert len(rows) == 300 and sum(not r["meta"]["correct"] for r in rows) == 60
    assert not os.path.exists(os.path.join(built, "hard_full_e0.2_high+easy_sub.jsonl"))  # only the set asked for


def test_a_directory_holds_one_world(built):
    with pytest.raises(ValueError, match="other settings"):
        data_prep.prepare(["--out", built, "--seed", "1"] + SMALL)


def test_stats_report(built, capsys):
    stats = data_prep.stats_command(os.path.join(built, "hard_full_e0.9_high.jsonl"), None)
    out = capsys.readouterr().out
    assert stats["examples"] == 300 and stats["grader_disagrees_with_meta"] == 0
    assert stats["outcome_error"] == stats["outcome_error_by_grader"] == pytest.approx(0.9)
    assert abs(stats["step_error"] - 0.9) < 0.02 and "length in tokens" in out


def test_the_old_flag_forms_still_run_with_a_notice(built, capsys):
    # One round of grace for the flag-chosen modes: the same report, and one line saying the new form.
    path = os.path.join(built, "hard_full_e0.9_high.jsonl")
    data_prep.main(["stats", path])
    new = capsys.readouterr()
    data_prep.main(["--stats", path, "--out", built])
    old = capsys.readouterr()
    assert old.out == new.out and new.err == ""
    assert old.err == "data_prep.py: --stats is now `data_prep.py stats` (the old form still runs, for now)\n"
    assert data_prep.old_form(["--source", "prm800k", "--input", "p.jsonl", "--name", "x"]) == ["prm800k", "p.jsonl", "--name", "x"]
    assert data_prep.old_form(["--hf-dir=r", "--hf-subset", "s"]) == ["hf", "--dir", "r", "--subset", "s"]
    assert data_prep.old_form(["--verifier-from-samples", "s.jsonl", "--verifier-split", "blank"]) == \
        ["verifier", "s.jsonl", "--split", "blank"]
    assert data_prep.old_form(["--source", "gair", "--gair-dir", "r", "--out", "d"]) == ["gair", "r", "--out", "d"]
    assert data_prep.old_form(["--out", "d", "--hard-error", "0.5"]) is None  # no mode flag: the world, as before
    assert "--source gair is now `data_prep.py gair` (the old form still runs, for now)" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- the paper's data


def sol(answer, wrong=False):
    return f"Some reasoning.\nSo the result is $\\boxed{{{answer + 1 if wrong else answer}}}$."


def write_release(root, rows):
    """A miniature of hexuan21/weak-to-strong in its released layout (JSON lists, indented)."""
    def dump(rel, rows):
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump(rows, f, indent=4)

    dump("task_sol_pairs/math/full_sub_pairs_0.json", rows)
    dump("paraphrase/math/full_0.json", [{"ori_id": r["ori_id"], "task": "Reworded: " + r["original"]["task"],
                                          "pos_ans": r["original"]["pos_ans"], "neg_ans": r["original"]["neg_ans"]} for r in clean_task_rows()[:6]]
         + [{"ori_id": "nowhere", "task": "orphan", "pos_ans": sol(1), "neg_ans": sol(1, True)}])
    dump("weaker_sampling/gpt-3.5-turbo/math_sft_full_gpt-3.5-turbo_checked_0.json",
         [{"ori_id": f"w{i}", "task": f"What is {i} + {i}?", "ground_truth": sol(2 * i),
           "sample1": sol(2 * i), "judge1": 1, "sample2": sol(2 * i, True), "judge2": 0} for i in range(4)]
         + [{"ori_id": "w4", "task": "What is 4 + 4?", "ground_truth": "8", "sample1": sol(8), "sample2": sol(8, True), "sample3": ""}])
    dump("test_data/MATH_test500.json", [{"question": f"What is {i} squared?", "ground_truth": f"It is $\\boxed{{{i * i}}}$.",
                                          "level": "Level 5"} for i in range(7)])
    dump("test_data/olympic_arena.json", [{"question": "Find x.", "ground_truth": "3"}])


def clean_task_rows(n=20):
    return [{"ori_id": f"q{i}", "original": {"task": f"Hard problem {i}", "pos_ans": sol(i), "neg_ans": sol(i, True)},
             "subtask_1": {"task": f"Part one of {i}", "pos_ans": sol(i + 100), "neg_ans": sol(i + 100, True)},
             "subtask_2": {"task": f"Part two of {i}", "pos_ans": sol(i + 200), "neg_ans": ""}} for i in range(n)]


def test_hf_converter_on_a_fixture(tmp_path):
    root, out = str(tmp_path / "release"), str(tmp_path / "out")
    write_release(root, clean_task_rows())
    data_prep.main(["hf", "--out", out, "--dir", root, "--hard-error", "0", "0.5"])
    hard = load_sft_examples(os.path.join(out, "hard_full.jsonl"))
    assert len(hard) == 20 and all(r["meta"]["correct"] and grade(solution(r), r["meta"]["answer"]) for r in hard)
    assert hard[3]["messages"][0]["content"].startswith("Hard problem 3\n") and hard[3]["meta"]["answer"] == "3"
    half = load_sft_examples(os.path.join(out, "hard_full_e0.5.jsonl"))
    assert sum(not r["meta"]["correct"] for r in half) == 10 == sum(not grade(solution(r), r["meta"]["answer"]) for r in half)
    easy = load_sft_examples(os.path.join(out, "easy_sub.jsonl"))
    assert len(easy) == 40 and {r["meta"]["answer"] for r in easy} >= {"100", "219"}
    para = load_sft_examples(os.path.join(out, "hard_full_e0.5+paraphrase.jsonl"))
    assert len(para) == 26  # the orphan paraphrase has no task: skipped and reported
    assert all(r["meta"]["correct"] == next(h for h in half if h["id"] == r["meta"]["parent_id"])["meta"]["correct"]
               for r in para[20:])
    assert len(load_sft_examples(os.path.join(out, "hard_full_x2.jsonl"))) == 40
    weak = load_sft_examples(os.path.join(out, "weak_gpt-3.5-turbo.jsonl"))
    assert [r["meta"]["correct"] for r in weak] == [True, False] * 5  # the last two by the grader (no judge fields)
    assert [r["meta"]["correct_by"] for r in weak[-2:]] == ["grader"] * 2 and len({r["id"] for r in weak}) == 10
    math = read_jsonl(os.path.join(out, "test", "math500.jsonl"))
    assert [r["answer"] for r in math] == [str(i * i) for i in range(7)] and math[2]["problem"] == "What is 2 squared?"
    assert math[2]["level"] == "Level 5" and math[2]["solution"] == "It is $\\boxed{4}$."  # extra fields kept
    assert read_jsonl(os.path.join(out, "test", "olympic_arena.jsonl"))[0]["answer"] == "3"


def test_hf_sub_error_needs_incorrect_solutions(tmp_path):
    root = str(tmp_path / "release")
    write_release(root, clean_task_rows())
    with pytest.raises(ValueError, match="only 20 of 40"):  # subtask_2 has no neg_ans
        data_prep.prepare(["hf", "--out", str(tmp_path / "out"), "--dir", root, "--sub-error", "0.9"])


@pytest.mark.parametrize("breakage, message", [
    (lambda rows: rows[2]["original"].pop("pos_ans"), r"full_sub_pairs_0\.json:\d+: missing field 'original.pos_ans'"),
    (lambda rows: rows[1].pop("ori_id"), r"full_sub_pairs_0\.json:\d+: missing field 'ori_id'"),
    (lambda rows: rows[0]["subtask_1"].update(task=""), r"full_sub_pairs_0\.json:\d+: field 'subtask_1.task' must be"),
    (lambda rows: rows[4]["original"].update(pos_ans="no boxed answer"), r"full_sub_pairs_0\.json:\d+: field 'original.pos_ans' has no final answer"),
])
def test_hf_bad_rows_fail_with_file_line_and_field(tmp_path, breakage, message):
    rows = clean_task_rows(6)
    breakage(rows)
    root = str(tmp_path / "release")
    write_release(root, rows)
    with pytest.raises(ValueError, match=message) as error:
        data_prep.prepare(["hf", "--out", str(tmp_path / "out"), "--dir", root])
    # The line number points at the broken object's opening brace in the indented JSON list.
    line = int(str(error.value).split(".json:")[1].split(":")[0])
    text = open(os.path.join(root, "task_sol_pairs/math/full_sub_pairs_0.json")).read().splitlines()
    starts = [i + 1 for i, t in enumerate(text) if t == "    {"]
    bad = next(i for i, r in enumerate(rows) if r != clean_task_rows(6)[i])
    assert line == starts[bad]


def test_hf_download_failure_says_what_to_do(monkeypatch, tmp_path):
    import huggingface_hub

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(ValueError, match="data_prep.py hf --dir"):
        data_prep.prepare(["hf", "--out", str(tmp_path / "out")])


def test_a_model_teachers_samples_become_a_measured_set(built, tmp_path):
    tasks = read_jsonl(os.path.join(built, "tasks", "hard_full.jsonl"))
    assert len(tasks) == 300 and {"id", "problem", "answer"} <= set(tasks[0])
    rows = []
    for i, t in enumerate(tasks[:20]):
        task = mw.parse_problem(t["problem"])
        right, wrong = mw.correct_solution(task), mw.weak_solution(task, "high", random.Random(i)).text
        rows.append({**t, "samples": [right, wrong, ""], "correct": [True, False, False]})  # as sample.py writes them
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    data_prep.main(["from-samples", str(samples), "--out", str(tmp_path / "out"), "--name", "weak_model"])
    out = load_sft_examples(str(tmp_path / "out" / "weak_model.jsonl"))
    assert len(out) == 40  # the 20 empty samples are skipped (and counted)
    assert [r["meta"]["correct"] for r in out] == [True, False] * 20
    assert [r["meta"]["step_error_rate"] for r in out] == [0.0, 1.0] * 20
    samples.write_text(json.dumps({**rows[0], "correct": [True]}) + "\n")
    with pytest.raises(ValueError, match=r"samples\.jsonl:1: field 'correct'"):
        data_prep.prepare(["from-samples", str(samples), "--out", str(tmp_path / "out")])


def test_train_builds_a_missing_set_in_process_with_the_directorys_world(built, tmp_path, capsys):
    """train.py --data NAME, NAME not built yet: built in the directory's world (its manifest's sizes),
    in this process (no data_prep.py subprocess), and then trained on."""
    import train

    data_dir = str(tmp_path / "data")
    shutil.copytree(built, data_dir)
    train.main(["--data", "hard_full_e0.3", "--data-dir", data_dir, "--out", str(tmp_path / "run"), "--max-steps", "1"])
    out = capsys.readouterr().out
    assert "hard_full_e0.3.jsonl not found: building it" in out and "done: 1 steps" in out
    rows = load_sft_examples(os.path.join(data_dir, "hard_full_e0.3.jsonl"))
    assert len(rows) == 300 and sum(not r["meta"]["correct"] for r in rows) == 90
    assert {name for name in os.listdir(data_dir) if name.endswith(".jsonl")} == \
        {name for name in os.listdir(built) if name.endswith(".jsonl")} | {"hard_full_e0.3.jsonl"}
