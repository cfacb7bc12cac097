"""data_prep.py --source gair --gair-dir DIR on small fixtures shaped like the release's files
(GAIR-NLP/weak-to-strong-reasoning; no download here)."""
import json
import os

import pytest

import data_prep
from w2s.data import load_sft_examples, user_message
from w2s.dpo import load_pair_rows
from w2s.tasks import load_tasks


def jsonl(path, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)


def json_list(path, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(rows, f, indent=2)


@pytest.fixture
def release(tmp_path):
    root = tmp_path / "weak-to-strong-reasoning"
    data = root / "data"
    jsonl(data / "test" / "gsm8k.jsonl", [
        {"source": "gsm8k", "question": "Tom has 3 apples and buys 4. How many?", "solution": "3 + 4 = 7\n#### 7",
         "answer": "7", "tag": {}},
        {"source": "gsm8k", "question": "Half of 10?", "solution": "5", "answer": 5}])
    jsonl(data / "test" / "math.jsonl", [
        {"source": "math", "question": "What is $1/2 + 1/2$?", "solution": "It is $\\boxed{1}$.", "answer": "1",
         "tag": {"level": 1, "subject": "Prealgebra", "unique_id": "test/prealgebra/1.json"}},
        {"source": "math", "question": "Solve $x^2=4$, $x>0$.", "solution": "$\\boxed{2}$", "answer": "2",
         "tag": {"level": 3, "subject": "Algebra", "unique_id": "test/algebra/7.json"}}])
    jsonl(data / "raw" / "gsm8k" / "train_1.jsonl", [
        {"question": "2 + 2?", "solution": "2 + 2 = 4\nThe answer is \\boxed{4}", "answer": "4"}])
    jsonl(data / "raw" / "gsm8k" / "train_2.jsonl", [{"question": "5 + 6?", "solution": "11", "answer": "11"},
                                                     {"question": "9 - 3?", "answer": "6"}])
    json_list(data / "llama_factory" / "gsm8k_weak_sft.json", [
        {"instruction": "2 + 3?", "input": "", "output": "The answer is \\boxed{5}"}])
    jsonl(data / "llama_factory" / "gsm8k_hybrid.jsonl", [
        {"instruction": "Answer this.", "input": "4 + 4?", "output": "\\boxed{8}"}])
    json_list(data / "llama_factory" / "gsm8k_dpo_paired.json", [
        {"instruction": "7 - 2?", "input": "", "output": ["7 - 2 = 5 \\boxed{5}", "7 - 2 = 4 \\boxed{4}"]}])
    json_list(data / "llama_factory" / "dataset_info.json", [])
    return root


def test_the_release_converts_to_tests_sets_tasks_and_pairs(release, tmp_path):
    out = tmp_path / "out"
    data_prep.main(["--source", "gair", "--gair-dir", str(release), "--out", str(out)])
    math500 = load_tasks(str(out / "test" / "math500.jsonl"))
    assert math500[0] == {"id": "test/prealgebra/1.json", "problem": "What is $1/2 + 1/2$?", "answer": "1",
                          "level": 1, "subject": "Prealgebra", "source": "math"}
    gsm8k = load_tasks(str(out / "test" / "gsm8k.jsonl"))
    assert [t["id"] for t in gsm8k] == ["gsm8k-0", "gsm8k-1"] and gsm8k[1]["answer"] == "5" and "level" not in gsm8k[0]
    gold = load_sft_examples(str(out / "gair_gsm8k_gold.jsonl"))
    assert gold[0]["messages"][0]["content"] == user_message("2 + 2?") and gold[0]["meta"]["answer"] == "4"
    tasks = load_tasks(str(out / "tasks" / "gair_gsm8k.jsonl"))
    assert [(t["problem"], t["answer"]) for t in tasks] == [("5 + 6?", "11"), ("9 - 3?", "6")]
    weak = load_sft_examples(str(out / "gair_lf_gsm8k_weak_sft.jsonl"))
    assert weak[0]["messages"][1]["content"] == "The answer is \\boxed{5}"
    hybrid = load_sft_examples(str(out / "gair_lf_gsm8k_hybrid.jsonl"))
    assert hybrid[0]["messages"][0]["content"] == user_message("Answer this.\n\n4 + 4?")
    pairs = load_pair_rows(str(out / "gair_lf_gsm8k_dpo_paired.jsonl"))
    assert pairs[0]["chosen"][0]["content"].endswith("\\boxed{5}") and pairs[0]["rejected"][0]["content"].endswith("\\boxed{4}")
    assert not (out / "gair_lf_dataset_info.jsonl").exists()


@pytest.mark.parametrize("relative, rows, message", [
    ("data/llama_factory/x_paired.jsonl", [{"instruction": "q", "output": "only one"}],
     "x_paired.jsonl:1: field 'output' must be [chosen, rejected]"),
    ("data/test/math.jsonl", [{"question": "q", "answer": "1"}, {"question": "q2"}], "math.jsonl:2: missing field 'answer'"),
    ("data/raw/math/train_1.jsonl", [{"question": "q", "answer": "1"}], "train_1.jsonl:1: missing field 'solution'"),
])
def test_bad_release_rows_name_file_line_and_field(release, tmp_path, capsys, relative, rows, message):
    jsonl(release / relative, rows)
    with pytest.raises(SystemExit) as exit_info:
        data_prep.main(["--gair-dir", str(release), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_folder_that_is_not_the_release_is_refused(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit):
        data_prep.main(["--gair-dir", str(tmp_path / "empty"), "--out", str(tmp_path / "out")])
    assert "not a copy of GAIR-NLP/weak-to-strong-reasoning" in capsys.readouterr().err
