"""w2s.sampler.generate: parity with transformers' greedy generate, independence from batch mates,
top-k / top-p on a hand-made distribution, per-row stopping, and the refusals."""
import random
import shutil

import pytest
import torch

from w2s.model import Llama, ModelArgs
from w2s.sampler import _pick_tokens, _prefill_groups, compile_decoding, generate, sampling_probs

VOCAB = 300


def random_model(seed: int = 0, dtype=torch.float32, **overrides) -> Llama:
    # A large init_std gives peaked next-token distributions, so greedy choices are not near-ties
    # that rounding differences between two implementations could flip.
    torch.manual_seed(seed)
    args = ModelArgs.preset("tiny", vocab_size=VOCAB, n_kv_heads=2, init_std=0.1, **overrides)
    return Llama(args).to(dtype).eval()


def ragged_prompts(lengths, seed: int = 1) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(5, VOCAB, (n,), generator=g).tolist() for n in lengths]


LENGTHS = [3, 17, 9, 1, 12, 30]


def test_greedy_matches_transformers_generate(tmp_path):
    transformers = pytest.importorskip("transformers", reason="compares with transformers (requirements-dev.txt)")
    model = random_model()
    model.save_pretrained(str(tmp_path))
    hf = transformers.LlamaForCausalLM.from_pretrained(str(tmp_path), dtype=torch.float32).eval()
    prompts, new_tokens = ragged_prompts(LENGTHS), 12
    width = max(LENGTHS)
    ids = torch.zeros(len(prompts), width, dtype=torch.long)
    mask = torch.zeros(len(prompts), width, dtype=torch.long)
    for i, p in enumerate(prompts):  # transformers wants left padding
        ids[i, width - len(p):] = torch.tensor(p)
        mask[i, width - len(p):] = 1
    with torch.no_grad():
        expected = hf.generate(input_ids=ids, attention_mask=mask, max_new_tokens=new_tokens, do_sample=False,
                               pad_token_id=0, eos_token_id=None)[:, width:].tolist()
    assert generate(model, prompts, max_new_tokens=new_tokens) == expected


def test_greedy_matches_decoding_without_cache():
    model = random_model(seed=3)
    prompts = ragged_prompts([4, 11])
    out = generate(model, prompts, max_new_tokens=8)
    for prompt, completion in zip(prompts, out):
        seq = list(prompt)
        with torch.no_grad():
            for _ in range(8):
                seq.append(int(model(torch.tensor([seq]))[0, -1].argmax()))
        assert completion == seq[len(prompt):]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_same_prompt_gives_same_output_alone_and_in_a_batch(dtype):
    model = random_model(dtype=dtype)
    prompts = ragged_prompts(LENGTHS)
    batch = generate(model, prompts, max_new_tokens=10)
    assert all(len(c) == 10 for c in batch)
    for i in (0, 1, 3):
        assert generate(model, [prompts[i]], max_new_tokens=10)[0] == batch[i]
    if dtype != torch.float32:
        return  # bf16 rounding depends on the batch's shapes: sampled tokens near a boundary can differ
    # Seeded sampling: one seed per prompt, or one seed for the call (rows seeded by their prompt).
    settings = dict(max_new_tokens=10, temperature=1.0, top_p=0.95, top_k=50)
    seeds = [101, 102, 103, 104, 105, 106]
    sampled = generate(model, prompts, seed=seeds, **settings)
    assert sampled != batch  # really sampled, not greedy
    assert generate(model, [prompts[4]], seed=[105], **settings)[0] == sampled[4]
    assert generate(model, [prompts[2], prompts[0]], seed=[103, 101], **settings) == [sampled[2], sampled[0]]
    by_call_seed = generate(model, prompts, seed=7, **settings)
    assert generate(model, [prompts[5], prompts[1]], seed=7, **settings) == [by_call_seed[5], by_call_seed[1]]
    assert generate(model, prompts, seed=7, **settings) == by_call_seed  # reproducible
    # n copies of one prompt under one seed are n different samples.
    copies = generate(model, [prompts[1]] * 3, seed=7, **settings)
    assert copies[0] == by_call_seed[1] and len({tuple(c) for c in copies}) == 3


# A hand-made distribution, deliberately not in vocabulary order.
#                 token:   0     1     2     3     4     5
HAND_MADE = torch.tensor([0.10, 0.50, 0.05, 0.15, 0.20, 0.0])


def kept(probs: torch.Tensor) -> set[int]:
    return set(torch.nonzero(probs[0]).flatten().tolist())


def test_top_k_and_top_p_keep_exactly_the_right_tokens():
    logits = torch.log(HAND_MADE)[None]
    assert kept(sampling_probs(logits)) == {0, 1, 2, 3, 4}
    assert kept(sampling_probs(logits, top_k=2)) == {1, 4}
    assert kept(sampling_probs(logits, top_k=1)) == {1}
    # top-p keeps the shortest prefix (by probability) whose mass reaches top_p: 0.5, 0.2, 0.15, ...
    assert kept(sampling_probs(logits, top_p=0.3)) == {1}
    assert kept(sampling_probs(logits, top_p=0.6)) == {1, 4}
    assert kept(sampling_probs(logits, top_p=0.8)) == {1, 4, 3}
    assert kept(sampling_probs(logits, top_p=0.9)) == {1, 4, 3, 0}
    # top-k first, then top-p on the renormalized top-k mass: [0.5, 0.2, 0.15] / 0.85 -> 0.59, 0.24, 0.18;
    # 0.8 is reached after two tokens (without top-k it takes three, see above).
    assert kept(sampling_probs(logits, top_k=3, top_p=0.8)) == {1, 4}
    probs = sampling_probs(logits, top_k=3)
    torch.testing.assert_close(probs[0, [1, 4, 3]], torch.tensor([0.5, 0.2, 0.15]) / 0.85)
    # Temperature sharpens before the cut: at T=0.5 the probabilities go as p^2.
    sharp = sampling_probs(logits, temperature=0.5)
    torch.testing.assert_close(sharp[0], HAND_MADE ** 2 / (HAND_MADE ** 2).sum())


def test_draws_follow_the_kept_distribution():
    logits = torch.log(HAND_MADE)[None].repeat(4000, 1)
    rngs = [random.Random(i) for i in range(4000)]
    tokens = _pick_tokens(logits, 1.0, 0, 0.8, rngs)
    counts = torch.bincount(tokens, minlength=6).float() / 4000
    assert set(torch.nonzero(counts).flatten().tolist()) == {1, 3, 4}
    torch.testing.assert_close(counts[[1, 4, 3]], torch.tensor([0.5, 0.2, 0.15]) / 0.85, atol=0.03, rtol=0)


def test_rows_stop_independently_and_leave_the_batch():
    model = random_model()
    prompts = ragged_prompts(LENGTHS)
    free = generate(model, prompts, max_new_tokens=12)
    stop = free[0][3]  # row 0 stops at its 4th token; other rows stop where (if) they produce it
    batch_sizes = []
    hook = model.register_forward_pre_hook(lambda module, args: batch_sizes.append(args[0].shape[0]))
    try:
        stopped = generate(model, prompts, max_new_tokens=12, stop_ids=[stop])
    finally:
        hook.remove()
    for free_row, stopped_row in zip(free, stopped):
        assert stopped_row == (free_row[:free_row.index(stop)] if stop in free_row else free_row)
    assert stopped[0] == free[0][:3]
    # After step s, the rows still going are those with more than s tokens; each decode forward has
    # exactly those, after the prefill forwards (which together hold every row once).
    rows_left = [sum(1 for row in stopped if len(row) > step) for step in range(11)]
    expected = [n for n in rows_left if n > 0]
    assert batch_sizes[-len(expected):] == expected
    assert sum(batch_sizes[:-len(expected)]) == len(prompts)
    assert expected[-1] < len(prompts)
    # Every row stops at its first token: no decode step runs at all.
    batch_sizes.clear()
    hook = model.register_forward_pre_hook(lambda module, args: batch_sizes.append(args[0].shape[0]))
    try:
        assert generate(model, prompts, max_new_tokens=12, stop_ids=[row[0] for row in free]) == [[]] * len(prompts)
    finally:
        hook.remove()
    assert sum(batch_sizes) == len(prompts)  # the prefill forwards only


@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None,
                    reason="torch.compile's CPU backend needs a C++ compiler")
def test_compiled_decode_step_matches_eager():
    # A compiled step attends over the whole cache (a static shape) and is compiled with dynamic shapes,
    # so rows leaving the batch mid-generation must not change a token. Sampled too: the compiled
    # logits feed the same per-row draws.
    model = random_model(seed=5)
    prompts = ragged_prompts(LENGTHS)
    free = generate(model, prompts, max_new_tokens=10)
    stop = [free[0][2], free[3][6]]
    stopped = generate(model, prompts, max_new_tokens=10, stop_ids=stop)
    assert len(stopped[0]) <= 2 and len(set(map(len, stopped))) > 1  # rows leave the batch at different steps
    sampled = dict(max_new_tokens=10, temperature=0.8, top_p=0.9, seed=7)
    eager_sampled = generate(model, prompts, **sampled)
    compile_decoding(model)
    try:
        assert generate(model, prompts, max_new_tokens=10, stop_ids=stop) == stopped
        assert generate(model, prompts, **sampled) == eager_sampled
    finally:
        compile_decoding(model, enabled=False)


def test_prefill_groups_bound_padding():
    lengths = [120, 118, 100, 64, 60, 20, 19, 3]
    groups = _prefill_groups(lengths)
    assert groups[0][0] == 0 and groups[-1][1] == len(lengths)
    assert all(a[1] == b[0] for a, b in zip(groups, groups[1:]))
    for start, stop in groups:
        real = sum(lengths[start:stop])
        assert (stop - start) * lengths[start] <= 1.125 * real or stop - start == 1
    assert _prefill_groups([7, 7, 7]) == [(0, 3)]


def test_refusals_are_clear():
    model = random_model()  # tiny: max_seq_len 512
    with pytest.raises(ValueError, match=r"longest prompt \(500 tokens\) \+ max_new_tokens \(20\) = 520 exceeds "
                                         r"the model's maximum length of 512"):
        generate(model, [[1] * 10, [1] * 500], max_new_tokens=20)
    with pytest.raises(ValueError, match="prompt 1 has token id 300, outside the model's vocabulary of 300"):
        generate(model, [[1, 2], [3, 300]], max_new_tokens=2)
    with pytest.raises(ValueError, match="prompt 0 is empty"):
        generate(model, [[]], max_new_tokens=2)
    with pytest.raises(ValueError, match="top_p must be in"):
        generate(model, [[1]], max_new_tokens=2, temperature=1.0, top_p=0.0)
    with pytest.raises(ValueError, match="seed has 1 entries for 2 prompts"):
        generate(model, [[1], [2]], max_new_tokens=2, temperature=1.0, seed=[1])
    assert generate(model, [[1, 2]], max_new_tokens=0) == [[]]
    assert generate(model, [], max_new_tokens=5) == []
