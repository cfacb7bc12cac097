"""w2s/data/rows.py, w2s/data/world/sets.py: reading and validating rows, loss masks, error-rate mixtures, batching."""
import json
import random
from collections import Counter

import pytest
import torch

from w2s.batches import global_batches, split_global_batch
from w2s.data.jsonl import read_jsonl
from w2s.data.rows import INSTRUCTION, load_sft_examples, problem_from_user_message, user_message
from w2s.data.world import miniworld as mw
from w2s.data.world.sets import build_sets, choose_incorrect
from w2s.grader import grade
from w2s.sft import IGNORE_INDEX, TokenizedExample, collate, tokenize_sft
from w2s.tokenizer import EOT, train_tokenizer


@pytest.fixture(scope="module")
def world():
    return mw.build_world(seed=0, num_hard=400, num_foundation=10, num_test=20, num_long_test=5)


@pytest.fixture(scope="module")
def tokenizer(world):
    return train_tokenizer(list(mw.corpus(world)), 400)


def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines))
    return str(path)


def chat(user, assistant, row_id="a"):
    return {"id": row_id, "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}], "meta": {}}


# ---------------------------------------------------------------------------------------------- reading


def test_user_message_round_trip():
    assert user_message(" Ann has 3 coins. ").endswith("\n" + INSTRUCTION)
    assert problem_from_user_message(user_message("Ann has 3 coins.")) == "Ann has 3 coins."


def test_read_jsonl_names_file_and_line(tmp_path):
    path = write_lines(tmp_path / "x.jsonl", ['{"a": 1}', "", '{"a": 2', '{"a": 3}'])
    with pytest.raises(ValueError, match=r"x\.jsonl:3: bad JSON"):
        read_jsonl(path)
    assert read_jsonl(write_lines(tmp_path / "y.jsonl", ['{"a": 1}', "", '{"a": 2}'])) == [{"a": 1}, {"a": 2}]


@pytest.mark.parametrize("row, field", [
    ('{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}', "'id'"),
    ('{"id": "b", "messages": []}', "'messages'"),
    ('{"id": "b", "messages": [{"role": "user", "content": "q"}, {"role": "bot", "content": "a"}]}', r"'messages\[1\]\.role'"),
    ('{"id": "b", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": 7}]}', r"'messages\[1\]\.content'"),
    ('{"id": "b", "messages": [{"role": "user", "content": "q"}]}', "no assistant turn"),
    ('{"id": "b", "messages": [{"role": "assistant", "content": "a"}], "meta": []}', "'meta'"),
    ('{"id": "a", "messages": [{"role": "assistant", "content": "a"}]}', "'id': duplicate"),
    ('[1, 2]', "must be a JSON object"),
])
def test_bad_rows_fail_with_file_line_and_field(tmp_path, row, field):
    good = json.dumps(chat("q", "a"))
    path = write_lines(tmp_path / "bad.jsonl", [good, row])
    with pytest.raises(ValueError, match=rf"bad\.jsonl:2: .*{field}"):
        load_sft_examples(path)


# ---------------------------------------------------------------------------------------------- loss masks


def test_labels_cover_exactly_the_assistant_tokens(tokenizer):
    answer = "17 * 3 = 51\nThe answer is \\boxed{51}"
    rows = [chat(user_message("Ann has 17 coins. She multiplies them by 3. How many now?"), answer),
            {"id": "two", "meta": {}, "messages": [
                {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Ann has 2 coins."},
                {"role": "assistant", "content": "2 + 0 = 2"}, {"role": "user", "content": "And now?"},
                {"role": "assistant", "content": "The answer is \\boxed{2}"}]}]
    examples, report = tokenize_sft(rows, tokenizer, max_seq_len=512)
    assert report == {"examples": 2, "kept": 2, "truncated": 0, "dropped": 0,
                      "tokens": sum(len(e.input_ids) for e in examples), "loss_tokens": sum(e.num_targets for e in examples)}
    first = examples[0]
    assert len(first.labels) == len(first.input_ids)
    kept = [t for t, label in zip(first.input_ids, first.labels) if label != IGNORE_INDEX]
    assert all(label in (IGNORE_INDEX, t) for t, label in zip(first.input_ids, first.labels))
    assert tokenizer.decode(kept) == answer + EOT  # the answer and its closing <|eot_id|>, nothing else
    assert first.labels[-len(kept):] == kept  # and they are the last tokens (nothing of the prompt)
    # Two assistant turns: both are trained on, the user turn between them is not.
    second = examples[1]
    pieces, run = [], []
    for t, label in zip(second.input_ids, second.labels):
        if label != IGNORE_INDEX:
            run.append(t)
        elif run:
            pieces, run = pieces + [tokenizer.decode(run)], []
    pieces += [tokenizer.decode(run)] if run else []
    assert pieces == ["2 + 0 = 2" + EOT, "The answer is \\boxed{2}" + EOT]


def test_overlong_examples_are_truncated_or_dropped_and_counted(tokenizer):
    rows = [chat(user_message("Ann has 1 coin."), "1 + 1 = 2\nThe answer is \\boxed{2}", "short"),
            chat(user_message("Ann has 1 coin."), "1 + 1 = 2\n2 + 1 = 3\n3 + 1 = 4\nThe answer is \\boxed{4}", "long"),
            chat(user_message("Ann has 1 coin. " * 40), "1 + 1 = 2", "prompt-only")]
    lengths = [len(tokenizer.encode_chat_for_training(r["messages"])[0]) for r in rows]
    limit = lengths[0] + 5
    assert lengths[1] > limit and lengths[2] > limit
    examples, report = tokenize_sft(rows, tokenizer, limit, overflow="truncate")
    assert report["truncated"] == 1 and report["dropped"] == 1 and report["kept"] == 2  # "prompt-only" keeps no answer token
    assert [len(e.input_ids) for e in examples] == [lengths[0], limit]
    examples, report = tokenize_sft(rows, tokenizer, limit, overflow="drop")
    assert report["dropped"] == 2 and report["truncated"] == 0 and len(examples) == 1
    with pytest.raises(ValueError, match="overflow"):
        tokenize_sft(rows, tokenizer, limit, overflow="wrap")


def test_collate_pads_right_and_masks_padding():
    examples = [TokenizedExample([5, 6, 7], [IGNORE_INDEX, 6, 7]), TokenizedExample([8], [8])]
    input_ids, labels = collate(examples, pad_id=0)
    assert input_ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert labels.tolist() == [[IGNORE_INDEX, 6, 7], [8, IGNORE_INDEX, IGNORE_INDEX]]
    assert input_ids.dtype == labels.dtype == torch.long


# ---------------------------------------------------------------------------------------------- batching


@pytest.mark.parametrize("group_by_length", [False, True])
def test_global_batches_cover_an_epoch_deterministically(group_by_length):
    rng = random.Random(0)
    lengths = [rng.randint(20, 200) for _ in range(1000)]
    batches = global_batches(lengths, 64, seed=1, epoch=0, group_by_length=group_by_length)
    assert sorted(i for b in batches for i in b) == list(range(1000))
    assert [len(b) for b in batches] == [64] * 15 + [40]  # the last partial batch is kept, at the end
    assert batches == global_batches(lengths, 64, seed=1, epoch=0, group_by_length=group_by_length)
    assert batches != global_batches(lengths, 64, seed=1, epoch=1, group_by_length=group_by_length)
    assert batches != global_batches(lengths, 64, seed=2, epoch=0, group_by_length=group_by_length)


def _padding(lengths, batches):
    return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)


def test_default_batches_mix_lengths_and_grouping_is_the_explicit_choice():
    # Three kinds of example (think 3, 4 and 5 step tasks), equally common.
    rng = random.Random(0)
    lengths = [rng.choice([60, 80, 100]) + rng.randint(0, 5) for _ in range(3000)]
    kind = [(n - 60) // 20 for n in lengths]

    def majority_share(batches):  # share of a batch taken by its most common kind, averaged
        full = [b for b in batches if len(b) == 64]
        return sum(max(Counter(kind[i] for i in b).values()) / len(b) for b in full) / len(full)

    mixed = global_batches(lengths, 64, seed=1, epoch=0)
    grouped = global_batches(lengths, 64, seed=1, epoch=0, group_by_length=True)
    assert majority_share(mixed) < 0.5  # about 1/3 each, as in the whole set
    assert majority_share(grouped) > 0.9  # one kind per batch: what slowed learning
    assert _padding(lengths, grouped) < 0.2 * _padding(lengths, mixed)  # what grouping buys


@pytest.mark.parametrize("world_size, micro", [(1, 4), (2, 4), (3, 2), (4, 1), (8, 8)])
def test_split_global_batch_partitions_the_batch(world_size, micro):
    rng = random.Random(world_size)
    lengths = [rng.randint(5, 50) for _ in range(100)]
    batch = global_batches(lengths, 30, seed=0, epoch=0)[0]
    splits = [split_global_batch(batch, lengths, world_size, rank, micro) for rank in range(world_size)]
    flat = [i for split in splits for mb in split for i in mb]
    assert sorted(flat) == sorted(batch)  # disjoint, and together exactly the batch
    assert all(1 <= len(mb) <= micro for split in splits for mb in split)
    assert len(splits[0]) == max(len(s) for s in splits)  # every rank can learn the micro-step count from rank 0
    assert splits == [split_global_batch(batch, lengths, world_size, rank, micro) for rank in range(world_size)]
    with pytest.raises(ValueError):
        split_global_batch(batch, lengths, world_size, world_size, micro)


# ---------------------------------------------------------------------------------------------- error-rate mixtures


def test_choose_incorrect_is_exact_and_nested():
    ids = [f"t{i}" for i in range(101)]
    chosen = {rate: choose_incorrect(ids, rate, seed=0, key="k") for rate in (0, 0.2, 0.5, 0.9, 1.0)}
    assert {r: len(c) for r, c in chosen.items()} == {0: 0, 0.2: 20, 0.5: 51, 0.9: 91, 1.0: 101}
    assert chosen[0.2] <= chosen[0.5] <= chosen[0.9]
    assert choose_incorrect(ids, 0.5, seed=1, key="k") != chosen[0.5]
    with pytest.raises(ValueError, match="only 3 of 101"):
        choose_incorrect(ids, 0.5, seed=0, key="k", eligible=[i < 3 for i in range(101)])


@pytest.mark.parametrize("profile", ["mixed", "low", "high"])
def test_built_sets_have_the_requested_error_rates(world, profile):
    pool = mw.to_pool(world.hard, 0, profile, profile)
    for hard_error, sub_error in [(0.0, 0.0), (0.5, 0.2), (0.9, 0.0)]:
        sets, _ = build_sets(pool, hard_error, sub_error, seed=0)
        hard, easy = sets["hard_full"], sets["easy_sub"]
        for rows, rate in [(hard, hard_error), (easy, sub_error)]:
            graded = [grade(r["messages"][1]["content"], r["meta"]["answer"]) for r in rows]
            assert graded == [r["meta"]["correct"] for r in rows]
            assert abs(graded.count(False) - rate * len(rows)) <= 1  # within one example
            steps = [mw.step_errors(r["messages"][1]["content"], problem_from_user_message(r["messages"][0]["content"])) for r in rows]
            assert [sum(s) / len(s) for s in steps] == [r["meta"]["step_error_rate"] for r in rows]
        if profile == "high":  # every step of every incorrect solution is wrong
            assert all(r["meta"]["step_error_rate"] == (0.0 if r["meta"]["correct"] else 1.0) for r in hard)
        assert sets["hard_full+easy_sub"] == hard + easy
        assert len(sets["hard_full_x2"]) == 2 * len(hard) and len({r["id"] for r in sets["hard_full_x2"]}) == 2 * len(hard)
        # a paraphrase takes its task's side: same outcome, other words
        by_id = {r["id"]: r for r in hard}
        for para in sets["hard_full+paraphrase"][len(hard):]:
            original = by_id[para["meta"]["parent_id"]]
            assert para["meta"]["correct"] == original["meta"]["correct"]
            assert para["messages"][1] == original["messages"][1]  # the same solution, errors and all
            assert para["messages"][0]["content"] != original["messages"][0]["content"]
    assert all(r["meta"]["kind"] == "easy_sub" and r["meta"]["correct"] for r in build_sets(pool, 0.9, 0.0, 0)[0]["easy_sub"])
