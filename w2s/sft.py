"""The SFT objective: chat rows -> token ids with assistant-only labels (cached on disk), padding,
and the loss, a sum over assistant tokens with its count.

Reading order: the tokenized example; tokenization; the on-disk cache that `load_sft_data` reads
through; padding a micro-batch; `sft_loss`; `SFT`, the objective (w2s/objectives.py's contract) that
train.py --objective sft trains with. train.py's loop divides the summed loss by the count over the whole global
batch, so every assistant token weighs the same however examples fall into micro-batches and ranks.
"""
import sys
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from w2s.cache import cache_path, load_cache, save_cache, tokenized_key
from w2s.data.rows import load_sft_examples
from w2s.objectives import COUNT, Objective

IGNORE_INDEX = -100  # label of a position the loss skips (PyTorch cross_entropy's default ignore_index)


@dataclass
class TokenizedExample:
    input_ids: list[int]
    # Same length as input_ids: labels[t] = input_ids[t] where token t is an assistant token
    # (content and its end-of-turn token, <|eot_id|> for Llama-3), else IGNORE_INDEX. The loss predicts labels[t] from
    # position t-1, so the shift happens in the loss, not here.
    labels: list[int]

    @property
    def num_targets(self) -> int:
        """Tokens this example contributes to the loss (for token-weighted means across micro-batches)."""
        return sum(label != IGNORE_INDEX for label in self.labels[1:])

    # What train.py's loop asks of any objective's examples (w2s/objectives.py's Example).
    @property
    def length(self) -> int:
        return len(self.input_ids)

    @property
    def count(self) -> int:
        return self.num_targets

    @property
    def sequence_lengths(self) -> tuple[int]:
        return (len(self.input_ids),)


def tokenize_sft(rows: list[dict], tokenizer, max_seq_len: int,
                 overflow: str = "truncate") -> tuple[list[TokenizedExample], dict]:
    """Chat rows -> token ids and assistant-only labels.

    Examples longer than `max_seq_len` are cut at the end ("truncate") or left out ("drop"); both
    are counted in the returned report. A truncated example that keeps no assistant token is left
    out too (it would add nothing to the loss) and counted under "dropped".
    Report keys: examples (rows in), kept, truncated, dropped, tokens, loss_tokens (the assistant tokens).
    """
    if overflow not in ("truncate", "drop"):
        raise ValueError(f"overflow must be 'truncate' or 'drop', got {overflow!r}")
    if max_seq_len < 2:
        raise ValueError(f"max_seq_len must be at least 2, got {max_seq_len}")
    out, report = [], {"examples": len(rows), "kept": 0, "truncated": 0, "dropped": 0, "tokens": 0, "loss_tokens": 0}
    for row in rows:
        ids, mask = tokenizer.encode_chat_for_training(row["messages"])
        if len(ids) > max_seq_len:
            if overflow == "drop":
                report["dropped"] += 1
                continue
            ids, mask = ids[:max_seq_len], mask[:max_seq_len]
            if not any(mask[1:]):
                report["dropped"] += 1
                continue
            report["truncated"] += 1
        labels = [token if keep else IGNORE_INDEX for token, keep in zip(ids, mask)]
        example = TokenizedExample(input_ids=list(ids), labels=labels)
        out.append(example)
        report["tokens"] += len(ids)
        report["loss_tokens"] += example.num_targets
    report["kept"] = len(out)
    return out, report


# ---------------------------------------------------------------------------------------------
# The data reader: tokenized once per (file, tokenizer, max length), then cached beside the file
# (w2s/cache.py says why).


def load_sft_data(data_path: str, tokenizer, max_seq_len: int,
                  write_cache: bool = True) -> tuple[list[TokenizedExample], dict]:
    """The examples of an SFT JSONL file and tokenize_sft's report, through the cache."""
    key = tokenized_key(data_path, tokenizer, max_seq_len,
                        [__file__, sys.modules[load_sft_examples.__module__].__file__])
    cache = cache_path(data_path, "sft", key)
    cached = load_cache(cache)
    if cached is not None:
        arrays, report = cached
        ids, labels, offsets = arrays["input_ids"].tolist(), arrays["labels"].tolist(), arrays["offsets"].tolist()
        examples = [TokenizedExample(ids[a:b], labels[a:b]) for a, b in zip(offsets, offsets[1:])]
        return examples, report
    examples, report = tokenize_sft(load_sft_examples(data_path), tokenizer, max_seq_len, overflow="truncate")
    if write_cache:
        arrays = {"input_ids": np.array([t for e in examples for t in e.input_ids], dtype=np.int32),
                  "labels": np.array([t for e in examples for t in e.labels], dtype=np.int32),
                  "offsets": np.cumsum([0] + [len(e.input_ids) for e in examples], dtype=np.int64)}
        save_cache(cache, arrays, report)
    return examples, report


# ---------------------------------------------------------------------------------------------
# A micro-batch and its loss


def collate(examples: list[TokenizedExample], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to the longest example: input_ids [B, T] (pad_id) and labels [B, T] (IGNORE_INDEX on padding)."""
    if not examples:
        raise ValueError("collate needs at least one example")
    width = max(len(e.input_ids) for e in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example.input_ids)
        input_ids[row, :n] = torch.tensor(example.input_ids, dtype=torch.long)
        labels[row, :n] = torch.tensor(example.labels, dtype=torch.long)
    return input_ids, labels


def sft_loss(model: torch.nn.Module, examples: list[TokenizedExample], pad_id: int,
             device: torch.device) -> tuple[torch.Tensor, dict[str, int]]:
    """The objective: (sum of the cross-entropies of every assistant token of `examples`, {COUNT: how
    many there are}). Position t predicts token t+1: the labels are shifted left (not the logits, which
    would copy them), the last position predicting nothing. The loss is computed in fp32 whatever
    the compute dtype."""
    input_ids, labels = collate(examples, pad_id)
    input_ids, labels = input_ids.to(device, non_blocking=True), labels.to(device, non_blocking=True)
    logits = model(input_ids)
    targets = F.pad(labels[:, 1:], (0, 1), value=IGNORE_INDEX)
    loss_sum = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE_INDEX,
                               reduction="sum")
    return loss_sum, {COUNT: sum(e.num_targets for e in examples)}


SFT = Objective("sft", read=load_sft_data, loss=sft_loss, help="next-token loss on assistant turns")
