"""sample.py --few-shot FILE --shots K (weak-ICL): K solved examples drawn by the seed, the same for
every task and never the task itself, in the chat or the plain template."""
import json

import pytest

import sample
from tests.tiny_checkpoint import TASKS, make_checkpoint, write_jsonl
from w2s.data.rows import user_message
from w2s.data.tasks import choose_shots, load_few_shot, shots_for
from w2s.generation import Sampling, build_prompt, sample_tasks
from w2s.runtime import load_model_and_tokenizer

SOLVED = [{"id": t["id"], "problem": t["problem"], "solution": f"So it is \\boxed{{{t['answer']}}}."} for t in TASKS]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_checkpoint(str(tmp_path_factory.mktemp("ckpt")))


def test_shots_are_drawn_by_seed_whatever_the_order_and_never_the_task():
    chosen = choose_shots(SOLVED, 2, seed=7)
    assert chosen == choose_shots(SOLVED[::-1], 2, seed=7) and len(chosen) == 3
    assert any(choose_shots(SOLVED, 2, seed=s) != chosen for s in range(8))
    outsider = {"id": "new", "problem": "What is 1 + 1?"}
    assert shots_for(outsider, chosen, 2) == chosen[:2]
    inside = next(t for t in TASKS if t["id"] == chosen[0]["id"])
    assert shots_for(inside, chosen, 2) == chosen[1:3]
    same_problem = {"id": "other-id", "problem": chosen[1]["problem"]}
    assert shots_for(same_problem, chosen, 2) == [chosen[0], chosen[2]]


def test_prompts_show_the_shots_first(checkpoint):
    _, tokenizer = load_model_and_tokenizer(checkpoint)
    shots = SOLVED[:2]
    text, ids = build_prompt(tokenizer, "What is 9 - 4?", "chat", shots)
    messages = [{"role": "user", "content": user_message(SOLVED[0]["problem"])},
                {"role": "assistant", "content": SOLVED[0]["solution"]},
                {"role": "user", "content": user_message(SOLVED[1]["problem"])},
                {"role": "assistant", "content": SOLVED[1]["solution"]},
                {"role": "user", "content": user_message("What is 9 - 4?")}]
    assert text == tokenizer.render_chat(messages) and ids == tokenizer.encode_chat(messages)
    text, _ = build_prompt(tokenizer, "What is 9 - 4?", "plain", shots)
    assert text == (f"Question: {user_message(SOLVED[0]['problem'])}\nAnswer: {SOLVED[0]['solution']}\n\n"
                    f"Question: {user_message(SOLVED[1]['problem'])}\nAnswer: {SOLVED[1]['solution']}\n\n"
                    f"Question: {user_message('What is 9 - 4?')}\nAnswer:")
    assert build_prompt(tokenizer, "x?", "plain", [])[0] == build_prompt(tokenizer, "x?", "plain")[0]


def test_few_shot_files_of_three_shapes(tmp_path):
    sft = write_jsonl(str(tmp_path / "sft.jsonl"), [{"id": "a", "messages": [
        {"role": "user", "content": user_message("What is 2 + 3?")}, {"role": "assistant", "content": "\\boxed{5}"}]}])
    samples = write_jsonl(str(tmp_path / "samples.jsonl"), [{"id": "b", "problem": "P?", "samples": ["one", "two"]}])
    plain = write_jsonl(str(tmp_path / "plain.jsonl"), [{"problem": "Q?", "solution": "S"}])
    assert load_few_shot(sft) == [{"id": "a", "problem": "What is 2 + 3?", "solution": "\\boxed{5}"}]
    assert load_few_shot(samples) == [{"id": "b", "problem": "P?", "solution": "one"}]
    assert load_few_shot(plain) == [{"id": "line1", "problem": "Q?", "solution": "S"}]
    bad = write_jsonl(str(tmp_path / "bad.jsonl"), [{"problem": "Q?", "solution": "S"}, {"problem": "R?"}])
    with pytest.raises(ValueError, match="bad.jsonl:2: field 'solution'"):
        load_few_shot(bad)


def test_sample_with_few_shot_prompts_and_records_it(checkpoint, tmp_path):
    model, tokenizer = load_model_and_tokenizer(checkpoint)
    chosen = choose_shots(SOLVED, 2, seed=5)
    for task, prompt, _, _ in sample_tasks(model, tokenizer, TASKS, Sampling(n=1, max_new_tokens=4), few_shot=chosen,
                                         shots=2):
        shown = shots_for(task, chosen, 2)
        assert len(shown) == 2 and all(s["solution"] in prompt for s in shown)
        assert prompt.count(task["problem"]) == 1  # the task is asked once, never shown solved
    tasks_file = write_jsonl(str(tmp_path / "tasks.jsonl"), TASKS)
    few_shot = write_jsonl(str(tmp_path / "shots.jsonl"), SOLVED)
    out = str(tmp_path / "out.jsonl")
    sample.sample(["--model", checkpoint, "--tasks", tasks_file, "--out", out, "--n", "1", "--max-new-tokens", "4",
                   "--few-shot", few_shot, "--shots", "2", "--quiet"])
    settings = json.load(open(out + ".settings.json"))
    assert settings["few_shot"] == few_shot and settings["shots"] == 2
    with pytest.raises(ValueError, match="other settings"):  # resuming with other shots is refused
        sample.sample(["--model", checkpoint, "--tasks", tasks_file, "--out", out, "--n", "1", "--max-new-tokens", "4",
                       "--few-shot", few_shot, "--shots", "3", "--quiet"])
