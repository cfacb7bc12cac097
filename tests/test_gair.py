"""`data_prep.py gair` on the real release: the copy of GAIR-NLP/weak-to-strong-reasoning's data/ tree in
../shared/gair-release (test sets and raw GSM8K train_1 whole, other files cut to 40 rows). Every converted row is
compared with the raw row read here with plain json, not with the converter's own reader."""
import json
import os
import shutil

import pytest

import data_prep
from w2s.data.rows import problem_from_user_message

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The repository's parent holds shared/ (in CI, a copy beside the fresh clone); W2S_GAIR_RELEASE names another copy.
RELEASE = os.environ.get("W2S_GAIR_RELEASE") or os.path.join(REPO, "..", "shared", "gair-release")
needs_release = pytest.mark.skipif(not os.path.isdir(os.path.join(RELEASE, "data")),
                                reason=f"the GAIR release copy is not at {os.path.abspath(RELEASE)} "
                                       "(the repository's ../shared/gair-release)")
DATA = os.path.join(RELEASE, "data")
LF = os.path.join(DATA, "llama_factory")
SPOTS = (0, 7, 19, 26, 39)  # five rows per kind, spread over the 40 each cut file keeps


def raw_rows(path: str) -> list:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return json.loads(text) if text.lstrip().startswith("[") else [json.loads(line) for line in text.splitlines() if line.strip()]


def out_rows(path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def release_text(target: str, ending: str | None) -> str:
    """The release's response from a target: the boxed closing statement replaced by the ending meta kept."""
    return target if ending is None else target[:target.rindex("The answer is: \\boxed{")] + ending


def scaffold_question(content: str) -> str:
    assert content.startswith("Question: ") and content.endswith("\nAnswer:"), content[:80]
    return content[len("Question: "):-len("\nAnswer:")]


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    out = tmp_path_factory.mktemp("gair") / "data"
    import contextlib
    import io

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        data_prep.main(["gair", RELEASE, "--out", str(out)])
    return out, printed.getvalue()


def lf_entries() -> dict:
    with open(os.path.join(LF, "dataset_info.json")) as f:
        return json.load(f)


@needs_release
def test_row_counts_match_the_raw_files(converted):
    out, report = converted
    assert len(out_rows(out / "test" / "gsm8k.jsonl")) == len(raw_rows(os.path.join(DATA, "test", "gsm8k.jsonl"))) == 1319
    assert len(out_rows(out / "test" / "math500.jsonl")) == len(raw_rows(os.path.join(DATA, "test", "math.jsonl"))) == 500
    assert len(out_rows(out / "gair_gsm8k_gold.jsonl")) == len(raw_rows(os.path.join(DATA, "raw", "gsm8k", "train_1.jsonl"))) == 7000
    assert len(out_rows(out / "tasks" / "gair_gsm8k.jsonl")) == len(raw_rows(os.path.join(DATA, "raw", "gsm8k", "train_2.jsonl")))
    present = 0
    for name, entry in lf_entries().items():
        path = os.path.join(RELEASE, entry["file_name"])
        if not os.path.isfile(path):  # three math pair files are named under gsm8k/ but sit in math/
            path = os.path.join(LF, "math", os.path.basename(entry["file_name"]))
        if os.path.isfile(path):
            present += 1
            assert len(out_rows(out / f"gair_{name}.jsonl")) == len(raw_rows(path)), name
    assert present == 42
    # The six *_wo_aug files dataset_info.json leaves out are converted too.
    for file_name in sorted(os.listdir(os.path.join(LF, "math"))):
        if "wo_aug" in file_name:
            name = file_name[len("train_"):-len(".json")]
            assert len(out_rows(out / f"gair_{name}.jsonl")) == len(raw_rows(os.path.join(LF, "math", file_name)))
    assert "files no reader took (0): none" in report and "rows skipped: 0" in report


@needs_release
def test_the_report_names_each_file_dataset_info_names_but_the_copy_lacks(converted):
    _, report = converted
    absent = [e["file_name"] for e in lf_entries().values() if not os.path.isfile(os.path.join(RELEASE, e["file_name"]))
              and not os.path.isfile(os.path.join(LF, "math", os.path.basename(e["file_name"])))]
    assert len(absent) == 9  # the release copy's README: 9 LLaMA-Factory sets left out
    line = next(line for line in report.splitlines() if "but absent" in line)
    assert "(9)" in line and all(name in line for name in absent)
    assert "names data/llama_factory/gsm8k/train_math_gemma_2b_iter1_hybrid_paired.json, found at " \
           "data/llama_factory/math/train_math_gemma_2b_iter1_hybrid_paired.json" in report


@needs_release
def test_benchmarks_are_whole_and_exact(converted):
    out, _ = converted
    for stem, bench in (("gsm8k", "gsm8k"), ("math", "math500")):
        raw, rows = raw_rows(os.path.join(DATA, "test", f"{stem}.jsonl")), out_rows(out / "test" / f"{bench}.jsonl")
        for i in (0, 1, 250, len(raw) // 2, len(raw) - 1):
            assert rows[i]["problem"] == raw[i]["question"] and rows[i]["answer"] == raw[i]["answer"]
            assert rows[i]["source"] == raw[i]["source"]
            for key in ("level", "subject"):
                assert rows[i].get(key) == raw[i]["tag"].get(key)
            if raw[i]["tag"].get("unique_id"):
                assert rows[i]["id"] == raw[i]["tag"]["unique_id"]
        assert [r["problem"] for r in rows] == [r["question"] for r in raw]  # whole, in order


@needs_release
def test_raw_gold_rows_carry_the_release_question_id_and_solution(converted):
    out, _ = converted
    raw = raw_rows(os.path.join(DATA, "raw", "gsm8k", "train_1.jsonl"))
    gair_own = raw_rows(os.path.join(LF, "gsm8k", "gsm8k_train_1.json"))  # GAIR's LLaMA-Factory copy of the same rows
    rows = out_rows(out / "gair_gsm8k_gold.jsonl")
    for i in SPOTS:
        row, meta = rows[i], rows[i]["meta"]
        assert problem_from_user_message(row["messages"][0]["content"]) == raw[i]["question"]
        assert meta["gair_id"] == raw[i]["id"] and row["id"].endswith("/" + raw[i]["id"])
        assert meta["answer"] == raw[i]["answer"].rsplit("#### ", 1)[1].replace(",", "")
        target = row["messages"][1]["content"]
        assert target.endswith("The answer is: \\boxed{%s}" % raw[i]["answer"].rsplit("#### ", 1)[1])
        assert "<<" not in target and meta["release_ending"] == "#### " + raw[i]["answer"].rsplit("#### ", 1)[1]
        # Without its calculator notes the release's solution is GAIR's own LLaMA-Factory target, character for character.
        assert scaffold_question(gair_own[i]["content"]) == raw[i]["question"]
        assert release_text(target, meta["release_ending"]) == gair_own[i]["output"]


@needs_release
def test_tasks_carry_the_release_question_id_and_answer(converted):
    out, _ = converted
    raw, rows = raw_rows(os.path.join(DATA, "raw", "gsm8k", "train_2.jsonl")), out_rows(out / "tasks" / "gair_gsm8k.jsonl")
    for i in SPOTS:
        assert rows[i] == {"id": f"gsm8k/train_2/{raw[i]['id']}", "problem": raw[i]["question"],
                           "answer": raw[i]["answer"].rsplit("#### ", 1)[1].replace(",", "")}


@needs_release
@pytest.mark.parametrize("name, file_name", [
    ("gsm8k_llama2_7b_iter1_weak", "gsm8k/train_gsm8k_llama2_7b_iter1_weak.json"),   # GSM8K: "#### N"
    ("math_gemma_2b_iter1_weak", "math/train_math_gemma_2b_iter1_weak.json"),         # MATH: gold, pred, result
    ("olympic_llama3_8b_instruct_iter1_icl", "olympicarena/train_olympic_llama3-8b-instruct_iter1_icl.json"),
])
def test_sft_rows_carry_the_release_response_question_and_id(converted, name, file_name):
    out, _ = converted
    raw, rows = raw_rows(os.path.join(LF, file_name)), out_rows(out / f"gair_{name}.jsonl")
    for i in SPOTS:
        row, meta, source = rows[i], rows[i]["meta"], raw[i]
        assert meta["gair_id"] == str(source["id"]) and row["id"].split("/", 1)[1].split("#")[0] == str(source["id"])
        question = problem_from_user_message(row["messages"][0]["content"])
        if name.startswith("olympic"):  # its own instructions stay; only the closing "Answer:" goes
            assert question == source["content"].rstrip()[:-len("Answer:")].strip()
        else:
            assert question == scaffold_question(source["content"]).strip()
        target = row["messages"][1]["content"]
        assert release_text(target, meta.get("release_ending")) == source["output"]
        assert "\\boxed{" in target or "release_ending" not in meta
        if "result" in source:
            assert (meta["answer"], meta["pred"], meta["correct"]) == (source["gold"], source["pred"], source["result"])


@needs_release
@pytest.mark.parametrize("name, file_name", [
    ("gsm8k_mistral_7b_iter2_hybrid_paired", "gsm8k/train_gsm8k_mistral_7b_iter2_hybrid_paired.json"),
    ("math_gemma_2b_iter1_hybrid_paired", "math/train_math_gemma_2b_iter1_hybrid_paired.json"),
])
def test_pair_rows_carry_the_release_chosen_and_rejected_answers(converted, name, file_name):
    out, _ = converted
    raw, rows = raw_rows(os.path.join(LF, file_name)), out_rows(out / f"gair_{name}.jsonl")
    assert len({r["id"] for r in rows}) == len(rows)  # MATH repeats an id per pair: still one id per row
    for i in SPOTS:
        row, source = rows[i], raw[i]
        assert row["meta"]["gair_id"] == str(source["id"])
        assert problem_from_user_message(row["prompt"][0]["content"]) == scaffold_question(source["instruction"]).strip()
        assert source["input"] == ""
        endings = row["meta"].get("release_endings", [None, None])
        assert release_text(row["chosen"][0]["content"], endings[0]) == source["output"][0]
        assert release_text(row["rejected"][0]["content"], endings[1]) == source["output"][1]


def lf_copy(tmp_path) -> str:
    """The copy's LLaMA-Factory folder alone (the raw sets are the slow part and are not needed here)."""
    root = tmp_path / "release"
    shutil.copytree(LF, root / "data" / "llama_factory")
    return str(root)


def element_line(path: str, index: int) -> int:
    """The line on which the index-th element of a 4-space-indented JSON list opens."""
    with open(path) as f:
        opens = [n for n, line in enumerate(f, 1) if line.rstrip() == "    {"]
    return opens[index]


@needs_release
def test_bad_rows_are_skipped_and_counted_with_their_places(tmp_path, capsys):
    root = lf_copy(tmp_path)
    pairs = os.path.join(root, "data", "llama_factory", "gsm8k", "train_gsm8k_mistral_7b_iter2_hybrid_paired.json")
    rows = raw_rows(pairs)
    rows[3]["output"][1] = ""  # as in the full release (row 1620, id 4824): an empty rejected answer
    rows[9]["output"] = rows[9]["output"][:1]
    with open(pairs, "w") as f:
        json.dump(rows, f, indent=4)
    sft = os.path.join(root, "data", "llama_factory", "gsm8k", "train_gsm8k_llama2_7b_iter1_weak.json")
    rows = raw_rows(sft)
    rows[5]["output"] = 42
    del rows[6]["content"]
    rows[7]["output"] = "   "
    rows[8]["output"] = ["a list"]
    with open(sft, "w") as f:
        json.dump(rows, f, indent=4)
    out = tmp_path / "out"
    data_prep.main(["gair", root, "--out", str(out)])
    report = capsys.readouterr().out
    assert len(out_rows(out / "gair_gsm8k_mistral_7b_iter2_hybrid_paired.jsonl")) == 38
    assert len(out_rows(out / "gair_gsm8k_llama2_7b_iter1_weak.jsonl")) == 36
    pair_line = next(line for line in report.splitlines() if "sft" not in line and "iter2_hybrid_paired:" in line and "mistral" in line)
    assert "38 rows" in pair_line and "2 skipped" in pair_line
    assert f"train_gsm8k_mistral_7b_iter2_hybrid_paired.json:{element_line(pairs, 3)} (the rejected answer is empty)" in pair_line
    assert f"hybrid_paired.json:{element_line(pairs, 9)} (field 'output' is not [chosen, rejected])" in pair_line
    sft_line = next(line for line in report.splitlines() if "gair_gsm8k_llama2_7b_iter1_weak:" in line)
    assert "4 skipped" in sft_line and sft_line.endswith(" ...")  # three places shown, then "..."
    assert f"iter1_weak.json:{element_line(sft, 5)} (field 'output' is a int, not a string)" in sft_line
    assert f"iter1_weak.json:{element_line(sft, 6)} (no field 'content')" in sft_line
    assert f"iter1_weak.json:{element_line(sft, 7)} (field 'output' is empty)" in sft_line
    assert "rows skipped: 6" in report
    assert os.path.exists(out / "manifest.json")


@needs_release
def test_a_file_no_reader_takes_is_named(tmp_path, capsys):
    root = lf_copy(tmp_path)
    with open(os.path.join(root, "data", "llama_factory", "NOTES.md"), "w") as f:
        f.write("not a set\n")
    data_prep.main(["gair", root, "--out", str(tmp_path / "out")])
    assert "files no reader took (1): data/llama_factory/NOTES.md" in capsys.readouterr().out


@pytest.mark.parametrize("source", ["gair", "prm800k"])
def test_a_git_lfs_pointer_gets_one_line_and_leaves_no_manifest(tmp_path, capsys, source):
    pointer = ("version https://git-lfs.github.com/spec/v1\n"
               "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n")
    if source == "gair":
        if not os.path.isdir(DATA):
            pytest.skip("the GAIR release copy is not at ../shared/gair-release")
        root = lf_copy(tmp_path)
        path = os.path.join(root, "data", "llama_factory", "math", "train_math_gemma_2b_iter1_weak.json")
        argv = ["gair", root]
    else:
        path = str(tmp_path / "phase2_train.jsonl")
        argv = ["prm800k", path]
    with open(path, "w") as f:
        f.write(pointer)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        data_prep.main(argv + ["--out", str(out)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "a Git LFS pointer, not the data: fetch the real file (git lfs pull)" in err
    assert os.path.basename(path) in err
    assert not os.path.exists(out / "manifest.json")


def test_a_folder_that_is_not_the_release_is_refused(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit):
        data_prep.main(["gair", str(tmp_path / "empty"), "--out", str(tmp_path / "out")])
    assert "not a copy of GAIR-NLP/weak-to-strong-reasoning" in capsys.readouterr().err


@needs_release
def test_every_converted_set_is_recorded_as_built_so_no_derived_set_replaces_it(converted):
    out, _ = converted
    with open(out / "manifest.json") as f:
        kinds = json.load(f)["sets"]
    pair_sets = [name for name in kinds if name.endswith("_paired")]
    assert pair_sets and {kinds[name] for name in pair_sets} == {"built"}
    assert kinds["gair_gsm8k_gold"] == "built"
