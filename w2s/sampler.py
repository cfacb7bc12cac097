"""KV-cached batched generation: one prefill forward, then one token per step.

The loop, in the style of gpt-fast:

1. Plan the cache from the batch: `longest prompt + max_new_tokens` slots per row (refused up front
   if that exceeds the model's maximum length, rather than failing mid-generation).
2. Prefill: each prompt goes through the model once. Rows are sorted by length and prefilled in a
   few groups, each right-padded to its longest prompt (padding a whole ragged batch to its longest
   would waste ~40% of the prefill on typical prompts). Row b's token at position p is written to
   cache slot p; padding lands past the row's end and is overwritten by the row's own generated
   tokens before any query can see it. Only each prompt's last position goes through the head.
3. Decode: each step feeds one token per row at that row's own position and reads everything else
   from the cache, so a prompt's output does not depend on its batch mates (exactly, in fp32; in
   bf16 a batch's shapes can change the rounding, so a near-tie may go the other way).
4. Rows stop on their own (a stop token, or `max_new_tokens`). Finished rows are dropped from the
   batch and the cache, so they stop costing compute; the loop ends when no row is left.

Sampling: temperature, then top-k, then top-p (the order transformers uses). Each row draws its
random numbers from its own generator on the host (one uniform per step, turned into a token by
inverting the row's cumulative distribution), so a seeded row samples the same tokens alone or in
any batch, and a resumed or re-batched run reproduces it.
"""
import random
import weakref
from typing import Sequence

import torch

from w2s.model import KVCache, Llama

Seed = int | str


def _check_sampling(temperature: float, top_p: float, top_k: int) -> None:
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature}")
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    if top_k < 0:
        raise ValueError(f"top_k must be >= 0 (0 = no top-k), got {top_k}")


def _sorted_kept_probs(logits: torch.Tensor, temperature: float, top_k: int, top_p: float):
    """Probabilities sorted in descending order, zero outside the kept set, and the token id of each.

    Top-k and top-p both keep a prefix of the sorted order: top-k its first k entries, top-p the
    shortest prefix whose mass (after top-k, renormalized) reaches top_p, i.e. every token whose
    mass *before* it is still below top_p. The first token is always kept.
    """
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    probs, token_ids = probs.sort(dim=-1, descending=True)
    if 0 < top_k < probs.shape[-1]:
        probs[:, top_k:] = 0.0
    if top_p < 1.0:
        mass_before = probs.cumsum(dim=-1) - probs
        probs = probs.masked_fill(mass_before >= top_p * probs.sum(dim=-1, keepdim=True), 0.0)
    return probs, token_ids


def sampling_probs(logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """The distribution `generate` samples from, for logits [B, V]: probabilities [B, V] in vocabulary
    order, exactly zero on every token that temperature / top-k / top-p rule out."""
    _check_sampling(temperature, top_p, top_k)
    if temperature == 0:
        raise ValueError("temperature 0 is greedy decoding: there is no distribution to sample")
    probs, token_ids = _sorted_kept_probs(logits, temperature, top_k, top_p)
    probs = probs / probs.sum(dim=-1, keepdim=True)
    return torch.zeros_like(probs).scatter_(-1, token_ids, probs)


def _pick_tokens(logits: torch.Tensor, temperature: float, top_k: int, top_p: float,
                 rngs: list[random.Random]) -> torch.Tensor:
    """Next token per row [B] from logits [B, V]: argmax at temperature 0, else an inverse-CDF draw
    with one uniform per row from that row's own generator."""
    if temperature == 0:
        return logits.float().argmax(dim=-1)  # fp32 argmax: faster than bf16 on CPUs, same ties as transformers
    probs, token_ids = _sorted_kept_probs(logits, temperature, top_k, top_p)
    cdf = probs.cumsum(dim=-1)
    uniforms = torch.tensor([rng.random() for rng in rngs], device=logits.device, dtype=cdf.dtype)
    # First sorted position whose cumulative mass exceeds u * total: position i is hit with
    # probability probs[i] / total. `right=True` never lands on a zero-probability entry; the clamp
    # covers u * total rounding up to the total.
    position = torch.searchsorted(cdf, uniforms[:, None] * cdf[:, -1:], right=True)
    position = torch.minimum(position, (probs > 0).sum(dim=-1, keepdim=True) - 1)
    return token_ids.gather(-1, position)[:, 0]


def _row_generators(prompts: list[list[int]], seed) -> list[random.Random]:
    """One generator per row.

    seed None: fresh randomness. An int or str: row seeded from (seed, its prompt, which copy of
    that prompt it is), so a prompt samples the same tokens wherever it sits in the batch, and n
    copies of one prompt give n different samples. A sequence: one seed per prompt, for callers
    that need streams stable across calls (sample.py seeds each (task id, sample index)).
    """
    if seed is None:
        return [random.Random() for _ in prompts]
    if isinstance(seed, (int, str)):
        copies: dict[tuple, int] = {}
        rngs = []
        for prompt in prompts:
            key = tuple(prompt)
            copy_index = copies[key] = copies.get(key, -1) + 1
            # str seeds go through sha512 in `random`: stable across runs and machines.
            rngs.append(random.Random(f"{seed}/{copy_index}/{','.join(map(str, prompt))}"))
        return rngs
    seeds = list(seed)
    if len(seeds) != len(prompts):
        raise ValueError(f"seed has {len(seeds)} entries for {len(prompts)} prompts (one per prompt)")
    return [random.Random(f"row/{s}") for s in seeds]


# Prefill groups may pad up to this share of their real tokens. Left-padding a whole ragged batch
# (what transformers does) wastes ~40% of the prefill for prompts of 16..128 tokens.
PREFILL_PADDING = 0.125


def _prefill_groups(lengths: list[int]) -> list[tuple[int, int]]:
    """Split rows sorted by descending length into runs [start, stop) whose padding to their
    longest row stays within PREFILL_PADDING of their real tokens."""
    groups, start, tokens = [], 0, 0
    for row, length in enumerate(lengths):
        if row > start and (row - start + 1) * lengths[start] > (1 + PREFILL_PADDING) * (tokens + length):
            groups.append((start, row))
            start, tokens = row, 0
        tokens += length
    groups.append((start, len(lengths)))
    return groups


def _prefill(model: Llama, prompts: list[list[int]], cache: KVCache) -> torch.Tensor:
    """Run prompts (right-padded to the longest) through the model, filling `cache`; logits [B, V] of
    each prompt's last token. Pad id 0 is arbitrary: padded slots are overwritten before they are read."""
    device = cache.k.device
    longest = max(len(p) for p in prompts)
    padded = torch.tensor([p + [0] * (longest - len(p)) for p in prompts], device=device)
    positions = torch.arange(longest, device=device).expand(len(prompts), longest)
    last = torch.tensor([len(p) - 1 for p in prompts], device=device)
    return model(padded, positions=positions, cache=cache, attend_len=longest, logits_at=last)[:, -1]


def _decode_step(model: Llama, tokens: torch.Tensor, positions: torch.Tensor, cache: KVCache,
                 attend_len: int | None) -> torch.Tensor:
    """Logits [B, V] for one new token per row at `positions` [B]."""
    return model(tokens[:, None], positions=positions[:, None], cache=cache, attend_len=attend_len)[:, -1]


_compiled_steps: "weakref.WeakKeyDictionary[Llama, object]" = weakref.WeakKeyDictionary()


def _compiled_decode_step(model: Llama):
    # Compiled once per model and reused across calls. dynamic=True: the batch shrinks as rows
    # finish and the cache length follows each batch, so shapes vary; one symbolic graph covers them.
    if model not in _compiled_steps:
        _compiled_steps[model] = torch.compile(_decode_step, dynamic=True)
    return _compiled_steps[model]


@torch.inference_mode()
def generate(
    model: Llama,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
    top_k: int = 0,
    stop_ids: Sequence[int] = (),
    seed: Seed | Sequence[Seed] | None = None,
    compile: bool = False,
) -> list[list[int]]:
    """Complete each prompt (a list of token ids); returns the new tokens of each, without the stop token.

    temperature 0 is greedy; otherwise temperature, top-k (0 = off), top-p (1 = off). A row ends at
    its first token in `stop_ids` or after `max_new_tokens`. `seed`: see `_row_generators`.
    `compile=True` runs the decode step through torch.compile (meant for CUDA; it then attends over
    the whole cache, a static shape, instead of the slots written so far).
    """
    _check_sampling(temperature, top_p, top_k)
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    prompts = [list(p) for p in prompts]
    if not prompts or max_new_tokens == 0:
        return [[] for _ in prompts]
    vocab_size, max_seq_len = model.args.vocab_size, model.args.max_seq_len
    for i, prompt in enumerate(prompts):
        if not prompt:
            raise ValueError(f"prompt {i} is empty: generation needs at least one token (e.g. <|begin_of_text|>)")
        if min(prompt) < 0 or max(prompt) >= vocab_size:
            bad = next(t for t in prompt if not 0 <= t < vocab_size)
            raise ValueError(f"prompt {i} has token id {bad}, outside the model's vocabulary of {vocab_size}")
    lengths = [len(p) for p in prompts]
    longest = max(lengths)
    if longest + max_new_tokens > max_seq_len:
        raise ValueError(f"the longest prompt ({longest} tokens) + max_new_tokens ({max_new_tokens}) = "
                         f"{longest + max_new_tokens} exceeds the model's maximum length of {max_seq_len}; "
                         "shorten the prompts or lower max_new_tokens")

    weight = model.embed_tokens.weight
    device, dtype = weight.device, weight.dtype
    batch = len(prompts)
    rngs = _row_generators(prompts, seed) if temperature > 0 else []
    stop_tokens = set(int(t) for t in stop_ids)
    step_fn = _compiled_decode_step(model) if compile else _decode_step

    # Cache rows hold the prompts longest first, so prompts of similar length sit side by side and
    # can be prefilled together with little padding; `active` maps cache rows back to prompts.
    active = sorted(range(batch), key=lambda i: -lengths[i])  # prompt index of each row still in the batch
    cache = KVCache(model.args, batch, longest + max_new_tokens, device=device, dtype=dtype)
    logits = torch.cat([_prefill(model, [prompts[i] for i in active[start:stop]], cache.rows(start, stop))
                        for start, stop in _prefill_groups([lengths[i] for i in active])])  # [B, V]
    rngs = [rngs[i] for i in active] if rngs else rngs
    positions = torch.tensor([lengths[i] for i in active], device=device)  # [B]: where each row's next token goes

    outputs: list[list[int]] = [[] for _ in prompts]
    longest_active = longest
    for step in range(max_new_tokens):
        tokens = _pick_tokens(logits, temperature, top_k, top_p, rngs)
        keep = []
        for row, token in enumerate(tokens.tolist()):  # the one host sync per step: stops need the values
            if token in stop_tokens:
                continue
            outputs[active[row]].append(token)
            keep.append(row)
        if not keep or step == max_new_tokens - 1:
            break
        if len(keep) < len(active):  # drop finished rows from the batch and the cache
            index = torch.tensor(keep, device=device)
            cache.keep_rows(index)
            tokens, positions = tokens[index], positions[index]
            active = [active[row] for row in keep]
            rngs = [rngs[row] for row in keep] if rngs else rngs
            longest_active = max(lengths[i] for i in active)
        # Eager mode reads only the slots written so far (known on the host, so no sync);
        # a compiled step reads the whole cache, a shape that does not change every step.
        attend_len = None if compile else longest_active + step + 1
        logits = step_fn(model, tokens, positions, cache, attend_len)
        positions = positions + 1
    return outputs
