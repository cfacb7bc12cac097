"""The DPO objective (Rafailov et al. 2023): preference pairs -> token ids (cached), the reference
log-probs computed once before training (cached), and the loss with TRL's per-step metrics.

Reading order: pair rows read and checked (TRL's conversational preference format); the tokenized
pair; tokenization and the on-disk cache (`load_dpo_data`); log-probs of responses; `reference_pass`,
the one pass with the starting weights that stores each pair's reference log-probs; `dpo_loss`; `DPO`,
the objective (w2s/objectives.py's contract) that train.py --objective dpo trains with. Which pairs a set holds
is chosen elsewhere: w2s/data/selection/samples.py (`confidence_pairs`, weak-to-strong stage II).

Why a pre-pass: DPO compares the policy with a frozen reference, here the model training starts
from (--init). Computing the reference's log-probs once, before the first step, means training
holds one model, not two, and costs one forward per pair instead of one per pair per epoch. The
numbers are cached beside the data, keyed by the tokens and the starting weights, so a resumed run
(or another seed on the same data) reads them instead of recomputing.

A reward is beta * (policy - reference) log-prob of a response, summed over the response's tokens
(its assistant turn and end-of-turn token, never the prompt). The loss of a pair is
-log sigmoid(reward(chosen) - reward(rejected)): ln 2 at the first step, when policy = reference.

Why an NLL term (--rpo-alpha, RPO: Pang et al. 2024): DPO only widens the margin, and may do so by
lowering the chosen response's log-prob less than the rejected one's, even where the chosen one is
gold. rpo_alpha * the chosen responses' NLL holds the chosen log-prob up; logps/chosen (logged each
step, beside rewards/* and, when on, nll_loss) shows which way it goes.

The loss, its gradients and its metrics equal TRL 1.16.0's DPOTrainer (tests/test_dpo_trl.py) with
loss_type=["sigmoid"] (f_divergence_type "reverse_kl", no label smoothing), and with rpo_alpha > 0
loss_type=["sigmoid", "sft"], loss_weights=[1.0, rpo_alpha]: what earlier TRL versions called rpo_alpha.
"""
import hashlib
import math
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from w2s.cache import cache_path, load_cache, save_cache, tokenized_key
from w2s.data.jsonl import check_meta, check_object_with_id, read_rows_with_unique_ids
from w2s.errors import UserError
from w2s.objectives import COUNT, Objective, Option
from w2s.sft import IGNORE_INDEX

DEFAULT_BETA = 0.1  # TRL's DPOConfig default, and the value Yang et al. used


# ---------------------------------------------------------------------------------------------
# Pair rows: {"id", "prompt": [user message], "chosen": [assistant message], "rejected": [...], "meta"?}


def _check_messages(row: dict, field: str, roles: tuple[str, ...], where: str) -> None:
    messages = row.get(field)
    if not isinstance(messages, list) or not messages:
        raise UserError(f"{where}: field '{field}' must be a non-empty list of messages, got {messages!r}"[:300])
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in roles:
            raise UserError(f"{where}: field '{field}[{i}].role' must be one of {roles}, "
                            f"got {message.get('role') if isinstance(message, dict) else message!r}"[:300])
        if not isinstance(message.get("content"), str) or not message["content"].strip():
            raise UserError(f"{where}: field '{field}[{i}].content' must be a non-empty string")


def validate_pair_row(row: object, where: str) -> dict:
    """Check one preference pair in TRL's conversational format; `where` is "file:line"."""
    check_object_with_id(row, where, "a pair")
    _check_messages(row, "prompt", ("system", "user"), where)
    for field in ("chosen", "rejected"):
        _check_messages(row, field, ("assistant",), where)
        if len(row[field]) != 1:
            raise UserError(f"{where}: field '{field}' must hold one assistant message, got {len(row[field])}")
    return check_meta(row, where)


def load_pair_rows(path: str) -> list[dict]:
    """Read and check a pairs JSONL file; any bad row fails with file, line and field; ids are unique."""
    return read_rows_with_unique_ids(path, validate_pair_row, "pairs")


# ---------------------------------------------------------------------------------------------
# A tokenized pair


@dataclass
class PairExample:
    chosen_ids: list[int]
    chosen_mask: list[bool]  # True on response tokens (what the log-prob sums over)
    rejected_ids: list[int]
    rejected_mask: list[bool]
    # The reference's summed log-probs of each response: set by reference_pass before training.
    ref_chosen: float = math.nan
    ref_rejected: float = math.nan

    # What train.py's loop asks of any objective's examples: tokens processed (both sequences go
    # through the model) and the count the loss sums over (pairs).
    @property
    def length(self) -> int:
        return len(self.chosen_ids) + len(self.rejected_ids)

    @property
    def count(self) -> int:
        return 1

    @property
    def sequence_lengths(self) -> tuple[int, int]:  # two sequences: attention costs each one's square
        return len(self.chosen_ids), len(self.rejected_ids)


def tokenize_pairs(rows: list[dict], tokenizer, max_seq_len: int) -> tuple[list[PairExample], dict]:
    """Pair rows -> token ids and response masks under the chat template.

    A sequence longer than `max_seq_len` is cut at the end (counted under "truncated"); a pair
    whose chosen or rejected response keeps no token is left out (counted under "dropped").
    Report keys (as SFT's, so train.py logs them alike): examples, kept, truncated, dropped,
    tokens, loss_tokens (the response tokens the log-probs sum over).
    """
    if max_seq_len < 2:
        raise ValueError(f"max_seq_len must be at least 2, got {max_seq_len}")
    out, report = [], {"examples": len(rows), "kept": 0, "truncated": 0, "dropped": 0, "tokens": 0, "loss_tokens": 0}
    for row in rows:
        sides, truncated = [], False
        for field in ("chosen", "rejected"):
            ids, mask = tokenizer.encode_chat_for_training(row["prompt"] + row[field])
            if len(ids) > max_seq_len:
                ids, mask, truncated = ids[:max_seq_len], mask[:max_seq_len], True
            sides.append((list(ids), list(mask)))
        if not all(any(mask[1:]) for _, mask in sides):
            report["dropped"] += 1
            continue
        report["truncated"] += truncated
        out.append(PairExample(sides[0][0], sides[0][1], sides[1][0], sides[1][1]))
        report["tokens"] += out[-1].length
        report["loss_tokens"] += sum(sum(mask[1:]) for _, mask in sides)
    report["kept"] = len(out)
    return out, report


def load_dpo_data(data_path: str, tokenizer, max_seq_len: int,
                  write_cache: bool = True) -> tuple[list[PairExample], dict]:
    """The pairs of a JSONL file, tokenized, and tokenize_pairs's report, through a cache beside the
    file (w2s/cache.py), keyed like SFT's: the file, the length, the tokenizer, this code."""
    cache = cache_path(data_path, "pairs", tokenized_key(data_path, tokenizer, max_seq_len, [__file__]))
    cached = load_cache(cache)
    if cached is not None:
        arrays, report = cached
        ids, mask, offsets = arrays["ids"].tolist(), arrays["mask"].astype(bool).tolist(), arrays["offsets"].tolist()
        spans = list(zip(offsets, offsets[1:]))
        examples = [PairExample(ids[a:b], mask[a:b], ids[c:d], mask[c:d])
                    for (a, b), (c, d) in zip(spans[0::2], spans[1::2])]
        return examples, report
    examples, report = tokenize_pairs(load_pair_rows(data_path), tokenizer, max_seq_len)
    if not examples:
        raise UserError(f"{data_path}: no pair keeps a response token within --max-seq-len {max_seq_len}")
    if write_cache:
        sequences = [s for e in examples for s in ((e.chosen_ids, e.chosen_mask), (e.rejected_ids, e.rejected_mask))]
        save_cache(cache, {"ids": np.array([t for ids, _ in sequences for t in ids], dtype=np.int32),
                           "mask": np.array([m for _, mask in sequences for m in mask], dtype=np.uint8),
                           "offsets": np.cumsum([0] + [len(ids) for ids, _ in sequences], dtype=np.int64)}, report)
    return examples, report


# ---------------------------------------------------------------------------------------------
# Log-probs of responses


def response_logps(model: torch.nn.Module, sequences: list[tuple[list[int], list[bool]]], pad_id: int,
                   device: torch.device) -> torch.Tensor:
    """[N] summed log-probs of each sequence's response tokens, in one right-padded forward (fp32)."""
    width = max(len(ids) for ids, _ in sequences)
    tokens = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    labels = torch.full((len(sequences), width), IGNORE_INDEX, dtype=torch.long)
    for row, (ids, mask) in enumerate(sequences):
        tokens[row, :len(ids)] = torch.tensor(ids, dtype=torch.long)
        labels[row, :len(ids)] = torch.tensor([t if m else IGNORE_INDEX for t, m in zip(ids, mask)], dtype=torch.long)
    tokens, labels = tokens.to(device, non_blocking=True), labels.to(device, non_blocking=True)
    logits = model(tokens)
    targets = F.pad(labels[:, 1:], (0, 1), value=IGNORE_INDEX)  # position t predicts token t+1
    token_logps = -F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE_INDEX,
                                   reduction="none")  # 0 where ignored
    return token_logps.view(len(sequences), width).sum(dim=1)


def _pair_sequences(examples: list[PairExample]) -> list[tuple[list[int], list[bool]]]:
    """Chosen responses first, then rejected: one forward for the whole micro-batch."""
    return [(e.chosen_ids, e.chosen_mask) for e in examples] + [(e.rejected_ids, e.rejected_mask) for e in examples]


# ---------------------------------------------------------------------------------------------
# The reference pass (train.py runs it once, with the starting weights, before the first step)


@torch.no_grad()
def reference_pass(model: torch.nn.Module, examples: list[PairExample], pad_id: int, device: torch.device, *,
                   data_path: str, start: str, batch_size: int) -> str:
    """Set every example's ref_chosen / ref_rejected from `model` as it is now (the starting
    weights); returns a line for the log.

    Cached beside the data, keyed by the pairs' tokens and `start` (a fingerprint of the starting
    weights and the compute dtype). Otherwise each rank computes every world_size-th pair (batches
    of `batch_size` pairs; every rank runs the same number of forwards, since FSDP's are
    collective) and the ranks sum their shares, so all ranks end with every pair's numbers.
    """
    key = hashlib.sha256(start.encode())
    for e in examples:
        key.update(np.asarray(e.chosen_ids + [-1] + e.rejected_ids + [-2], dtype=np.int64).tobytes())
        key.update(np.asarray(e.chosen_mask + e.rejected_mask, dtype=np.uint8).tobytes())
    cache = cache_path(data_path, "reference", key.hexdigest())
    rank, world_size = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    # Rank 0 decides and reads, the others receive: ranks that looked for the file themselves could
    # disagree (one seeing it written, another not) and then wait for each other's forwards forever.
    cached = torch.tensor([rank == 0 and os.path.exists(cache)], dtype=torch.int64, device=device)
    if world_size > 1:
        dist.broadcast(cached, 0)
    values_t = torch.zeros(len(examples), 2, dtype=torch.float64, device=device)
    if cached.item():
        if rank == 0:
            values_t = torch.from_numpy(load_cache(cache)[0]["logps"]).to(device)
        if world_size > 1:
            dist.broadcast(values_t, 0)
        source = f"read from {cache}"
    else:
        mine = list(range(rank, len(examples), world_size))
        forwards = math.ceil(math.ceil(len(examples) / world_size) / batch_size)
        for k in range(forwards):
            indices = mine[k * batch_size:(k + 1) * batch_size]
            batch = [examples[i] for i in indices] or [examples[0]]  # a rank with none left still joins
            logps = response_logps(model, _pair_sequences(batch), pad_id, device).double().view(2, -1).T
            if indices:
                values_t[indices] = logps
        if world_size > 1:
            dist.all_reduce(values_t)
        if rank == 0:
            save_cache(cache, {"logps": values_t.cpu().numpy()})
        source = f"computed in {forwards} forwards per process, cached in {cache}"
    values = values_t.cpu().numpy()
    for e, (chosen, rejected) in zip(examples, values.tolist()):
        e.ref_chosen, e.ref_rejected = chosen, rejected
    return f"reference log-probs of {len(examples)} pairs: {source}"


# ---------------------------------------------------------------------------------------------
# The objective


def dpo_loss(model: torch.nn.Module, examples: list[PairExample], pad_id: int, device: torch.device,
             beta: float = DEFAULT_BETA, rpo_alpha: float = 0.0) -> tuple[torch.Tensor, dict[str, torch.Tensor | int]]:
    """(sum over pairs of -log sigmoid(beta * margin of log-ratios), metric sums with COUNT: the pairs).

    The metric sums are over the pairs of this micro-batch; train.py sums them over the global
    batch and divides by its pairs, giving TRL's per-step means: rewards/chosen, rewards/rejected,
    rewards/accuracies (the share of pairs whose chosen reward is strictly higher), rewards/margins,
    and logps/chosen, logps/rejected (the policy's summed log-probs).

    rpo_alpha > 0 adds rpo_alpha * the NLL of the chosen responses (RPO), as TRL's "sft" loss
    averages it: over all chosen tokens of the micro-batch, not per pair. Each pair adds that
    micro-batch mean, so the loop's division by the pairs gives TRL's loss for a global batch of
    one micro-batch, and, for micro-batches of equal size, TRL's mean over accumulated ones. The
    NLL (without rpo_alpha) is logged as nll_loss.
    """
    if any(math.isnan(e.ref_chosen) or math.isnan(e.ref_rejected) for e in examples):
        raise RuntimeError("dpo_loss needs reference log-probs: run reference_pass first")
    logps = response_logps(model, _pair_sequences(examples), pad_id, device)
    chosen, rejected = logps[:len(examples)], logps[len(examples):]
    ref = torch.tensor([[e.ref_chosen, e.ref_rejected] for e in examples], dtype=torch.float32, device=device)
    chosen_rewards, rejected_rewards = beta * (chosen - ref[:, 0]), beta * (rejected - ref[:, 1])
    loss = -F.logsigmoid(chosen_rewards - rejected_rewards).sum()
    chosen_rewards, rejected_rewards = chosen_rewards.detach(), rejected_rewards.detach()
    metrics = {"rewards/chosen": chosen_rewards.sum(), "rewards/rejected": rejected_rewards.sum(),
               "rewards/accuracies": (chosen_rewards > rejected_rewards).float().sum(),
               "rewards/margins": (chosen_rewards - rejected_rewards).sum(),
               "logps/chosen": chosen.detach().sum(), "logps/rejected": rejected.detach().sum(), COUNT: len(examples)}
    if rpo_alpha > 0:
        chosen_tokens = sum(sum(e.chosen_mask[1:]) for e in examples)  # the positions response_logps sums over
        nll_sum = -chosen.sum() / chosen_tokens * len(examples)  # the micro-batch's token mean, once per pair
        loss = loss + rpo_alpha * nll_sum
        metrics["nll_loss"] = nll_sum.detach()
    return loss, metrics


DPO = Objective("dpo", read=load_dpo_data, loss=dpo_loss, prepare=reference_pass,
                options=(Option("beta", DEFAULT_BETA, "weight of the KL penalty, the reward's scale"),
                         Option("rpo_alpha", 0.0, "weight of an NLL term on the chosen responses (RPO; 0: off)")),
                help="preference pairs, the starting model being the reference")
