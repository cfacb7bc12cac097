"""KV-cached batched generation: one prefill forward, then one token per step.

The loop, in the style of gpt-fast (`generate` calls each step by name):

1. Plan the cache from the batch: `longest prompt + max_new_tokens` slots per row (`_check_prompts`
   refuses up front a batch that exceeds the model's maximum length, rather than failing mid-generation).
2. `_prefill`: each prompt goes through the model once. Rows are sorted by length and prefilled in a
   few groups, each right-padded to its longest prompt (padding a whole ragged batch to its longest
   would waste ~40% of the prefill on typical prompts). Row b's token at position p is written to
   cache slot p; padding lands past the row's end and is overwritten by the row's own generated
   tokens before any query can see it. Only each prompt's last position goes through the head.
3. `_pick_tokens` turns each row's logits into its next token; `_decode_one_token` feeds one token per
   row at that row's own position and reads everything else from the cache, so a prompt's output does
   not depend on its batch mates (exactly, in fp32; in bf16 a batch's shapes can change the rounding,
   so a near-tie may go the other way). `compile_decoding(model)` runs this step through torch.compile.
4. `_keep_unstopped`: rows stop on their own (a stop token, or `max_new_tokens`). `_Rows.drop_finished`
   drops finished rows from the batch and the cache, so they stop costing compute; the loop ends when no
   row is left.

Sampling: temperature, then top-k, then top-p (the order transformers uses). Each row draws its
random numbers from its own generator on the host (one uniform per step, turned into a token by
inverting the row's cumulative distribution), so a seeded row samples the same tokens alone or in
any batch, and a resumed or re-batched run reproduces it.
"""
import random
import weakref
from dataclasses import dataclass
from typing import Callable, Sequence

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


def _check_prompts(model: Llama, prompts: list[list[int]], max_new_tokens: int) -> None:
    """Every prompt non-empty and inside the vocabulary, and the longest with room for max_new_tokens in the
    model's context: refused up front rather than failing mid-generation."""
    vocab_size, max_seq_len = model.args.vocab_size, model.args.max_seq_len
    for i, prompt in enumerate(prompts):
        if not prompt:
            raise ValueError(f"prompt {i} is empty: generation needs at least one token (e.g. <|begin_of_text|>)")
        if min(prompt) < 0 or max(prompt) >= vocab_size:
            bad = next(t for t in prompt if not 0 <= t < vocab_size)
            raise ValueError(f"prompt {i} has token id {bad}, outside the model's vocabulary of {vocab_size}")
    longest = max(len(p) for p in prompts)
    if longest + max_new_tokens > max_seq_len:
        raise ValueError(f"the longest prompt ({longest} tokens) + max_new_tokens ({max_new_tokens}) = "
                         f"{longest + max_new_tokens} exceeds the model's maximum length of {max_seq_len}; "
                         "shorten the prompts or lower max_new_tokens")


@dataclass
class _Rows:
    """The rows still generating, in cache order: the prompt each holds, its generator (none when greedy),
    where its next token goes, and the longest prompt among them (the eager decode step attends over that
    many slots plus the steps taken)."""
    prompt_index: list[int]
    rngs: list[random.Random]
    positions: torch.Tensor  # [B]
    longest_prompt: int
    cache: KVCache

    def drop_finished(self, keep: list[int], tokens: torch.Tensor, lengths: list[int]) -> torch.Tensor:
        """Drop finished rows from the batch and the cache, so they stop costing compute; returns the
        kept rows' `tokens`."""
        index = torch.tensor(keep, device=self.positions.device)
        self.cache.keep_rows(index)
        self.positions = self.positions[index]
        self.prompt_index = [self.prompt_index[row] for row in keep]
        self.rngs = [self.rngs[row] for row in keep] if self.rngs else self.rngs
        self.longest_prompt = max(lengths[i] for i in self.prompt_index)
        return tokens[index]


def _prefill_group(model: Llama, prompts: list[list[int]], cache: KVCache) -> torch.Tensor:
    """Run prompts (right-padded to the longest) through the model, filling `cache`; logits [B, V] of
    each prompt's last token. Pad id 0 is arbitrary: padded slots are overwritten before they are read."""
    device = cache.k.device
    longest = max(len(p) for p in prompts)
    padded = torch.tensor([p + [0] * (longest - len(p)) for p in prompts], device=device)
    positions = torch.arange(longest, device=device).expand(len(prompts), longest)
    last = torch.tensor([len(p) - 1 for p in prompts], device=device)
    return model(padded, positions=positions, cache=cache, attend_len=longest, logits_at=last)[:, -1]


def _prefill(model: Llama, prompts: list[list[int]], max_new_tokens: int,
             rngs: list[random.Random]) -> tuple[torch.Tensor, _Rows]:
    """A cache for every prompt and its new tokens, filled with the prompts; returns the logits [B, V]
    of each prompt's last token and the rows.

    Cache rows hold the prompts longest first, so prompts of similar length sit side by side and can
    be prefilled together with little padding; `_Rows.prompt_index` maps cache rows back to prompts."""
    weight = model.embed_tokens.weight
    lengths = [len(p) for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: -lengths[i])
    cache = KVCache(model.args, len(prompts), max(lengths) + max_new_tokens, device=weight.device, dtype=weight.dtype)
    logits = torch.cat([_prefill_group(model, [prompts[i] for i in order[start:stop]], cache.rows(start, stop))
                        for start, stop in _prefill_groups([lengths[i] for i in order])])  # [B, V]
    positions = torch.tensor([lengths[i] for i in order], device=weight.device)  # where each row's next token goes
    return logits, _Rows(order, [rngs[i] for i in order] if rngs else rngs, positions, max(lengths), cache)


def _decode_one_token(model: Llama, tokens: torch.Tensor, positions: torch.Tensor, cache: KVCache,
                      attend_len: int | None) -> torch.Tensor:
    """Logits [B, V] for one new token per row at `positions` [B]."""
    return model(tokens[:, None], positions=positions[:, None], cache=cache, attend_len=attend_len)[:, -1]


def _keep_unstopped(tokens: torch.Tensor, prompt_index: list[int], outputs: list[list[int]],
                    stop_tokens: set[int]) -> list[int]:
    """Append each row's token to its prompt's output unless it is a stop token; returns the rows that go on."""
    keep = []
    for row, token in enumerate(tokens.tolist()):  # the one host sync per step: stops need the values
        if token in stop_tokens:
            continue
        outputs[prompt_index[row]].append(token)
        keep.append(row)
    return keep


# Each model's compiled decode step, built once and kept while the model lives (wrapping it again would
# compile again), and the models whose generate calls use it.
_compiled_steps: "weakref.WeakKeyDictionary[Llama, Callable]" = weakref.WeakKeyDictionary()
_compiled_models: "weakref.WeakSet[Llama]" = weakref.WeakSet()


def compile_decoding(model: Llama, enabled: bool = True) -> None:
    """Make later `generate` calls on `model` run the decode step through torch.compile (meant for CUDA;
    the step then attends over the whole cache, a static shape, instead of the slots written so far);
    the tokens stay the same. enabled=False: back to the eager step."""
    if not enabled:
        _compiled_models.discard(model)
        return
    if model not in _compiled_steps:
        # dynamic=True: the batch shrinks as rows finish and the cache length follows each batch, so
        # shapes vary; one symbolic graph covers them.
        _compiled_steps[model] = torch.compile(_decode_one_token, dynamic=True)
    _compiled_models.add(model)


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
) -> list[list[int]]:
    """Complete each prompt (a list of token ids); returns the new tokens of each, without the stop token.

    temperature 0 is greedy; otherwise temperature, top-k (0 = off), top-p (1 = off). A row ends at
    its first token in `stop_ids` or after `max_new_tokens`. `seed`: see `_row_generators`. The decode
    step is compiled for a model passed to `compile_decoding`.
    """
    _check_sampling(temperature, top_p, top_k)
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    prompts = [list(p) for p in prompts]
    if not prompts or max_new_tokens == 0:
        return [[] for _ in prompts]
    _check_prompts(model, prompts, max_new_tokens)
    rngs = _row_generators(prompts, seed) if temperature > 0 else []
    stop_tokens = set(int(t) for t in stop_ids)
    compiled = model in _compiled_models
    decode_one_token = _compiled_steps[model] if compiled else _decode_one_token
    lengths = [len(p) for p in prompts]

    logits, rows = _prefill(model, prompts, max_new_tokens, rngs)
    outputs: list[list[int]] = [[] for _ in prompts]
    for step in range(max_new_tokens):
        tokens = _pick_tokens(logits, temperature, top_k, top_p, rows.rngs)
        keep = _keep_unstopped(tokens, rows.prompt_index, outputs, stop_tokens)
        if not keep or step == max_new_tokens - 1:
            break
        if len(keep) < len(rows.prompt_index):
            tokens = rows.drop_finished(keep, tokens, lengths)
        # Eager mode reads only the slots written so far (known on the host, so no sync);
        # a compiled step reads the whole cache, a shape that does not change every step.
        attend_len = None if compiled else rows.longest_prompt + step + 1
        logits = decode_one_token(model, tokens, rows.positions, rows.cache, attend_len)
        rows.positions = rows.positions + 1
    return outputs
