"""The PRM objective (train.py --objective prm): a verifier learns to write a verdict token after each
step of a solution (w2s/verifier.py explains the layout, and scores and re-ranks with the result).

Reading order: step rows (the data format) read and checked; the training examples and their reader;
`prm_loss`; `PRM`, the objective (w2s/objectives.py's contract). An outcome reward model (ORM) is the
same objective on rows of one step, the whole solution, labelled with its outcome.
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from w2s.data.jsonl import check_object_with_id, read_rows_with_unique_ids
from w2s.errors import UserError
from w2s.objectives import COUNT, Objective
from w2s.verifier import layout, verdict_ids, verdict_logits


# ---------------------------------------------------------------------------------------------
# Step rows {"id", "prompt": [user message], "steps": [str, ...], "labels": [bool, ...]}


def check_step_row(row: object, where: str) -> dict:
    """One step row; `where` is "file:line". Steps and labels must be aligned, one boolean per step."""
    check_object_with_id(row, where, "a step row")
    prompt = row.get("prompt")
    if (not isinstance(prompt, list) or not prompt or
            not all(isinstance(m, dict) and isinstance(m.get("content"), str) and m.get("role") in ("system", "user")
                    for m in prompt)):
        raise UserError(f"{where}: field 'prompt' must be a list of {{\"role\": \"user\", \"content\": str}} "
                        f"messages, got {prompt!r}"[:300])
    steps, labels = row.get("steps"), row.get("labels")
    if not isinstance(steps, list) or not steps or not all(isinstance(s, str) for s in steps):
        raise UserError(f"{where}: field 'steps' must be a non-empty list of strings")
    if not isinstance(labels, list) or not all(isinstance(v, bool) for v in labels):
        raise UserError(f"{where}: field 'labels' must be a list of booleans (true: a good step)")
    if len(labels) != len(steps):
        raise UserError(f"{where}: field 'labels' has {len(labels)} entries but 'steps' has {len(steps)}; "
                        "give one label per step")
    return row


def load_step_rows(path: str) -> list[dict]:
    """Read and check a step-row JSONL file (file:line:field errors; unique ids)."""
    return read_rows_with_unique_ids(path, check_step_row, "step rows")


# ---------------------------------------------------------------------------------------------
# Training examples and their reader


@dataclass
class StepExample:
    input_ids: list[int]
    positions: list[int]  # one per (kept) step: where its verdict is predicted
    targets: list[int]  # aligned with positions: the verdict token id ("+" for a good step, "-" for a bad one)

    @property
    def length(self) -> int:
        return len(self.input_ids)

    @property
    def count(self) -> int:  # the loss sums over verdicts
        return len(self.positions)

    @property
    def sequence_lengths(self) -> tuple[int]:
        return (len(self.input_ids),)


def tokenize_step_rows(rows: list[dict], tokenizer, max_seq_len: int) -> tuple[list[StepExample], dict]:
    """Step rows -> examples. A row longer than max_seq_len keeps the steps whose verdicts fit (counted as
    truncated); one whose first verdict does not fit is left out (counted as dropped)."""
    _, good, bad = verdict_ids(tokenizer)
    report = {"examples": len(rows), "kept": 0, "truncated": 0, "dropped": 0, "tokens": 0, "verdicts": 0,
              "good": 0, "bad": 0}
    examples = []
    for row in rows:
        ids, positions = layout(tokenizer, row["prompt"], row["steps"])
        labels = list(row["labels"])
        if len(ids) > max_seq_len:
            keep = sum(p < max_seq_len for p in positions)
            if keep == 0:
                report["dropped"] += 1
                continue
            ids, positions, labels = ids[:positions[keep - 1] + 1], positions[:keep], labels[:keep]
            report["truncated"] += 1
        examples.append(StepExample(ids, positions, [good if label else bad for label in labels]))
        report["tokens"] += len(ids)
        report["verdicts"] += len(positions)
        report["good"] += sum(labels)
        report["bad"] += len(labels) - sum(labels)
    report["kept"] = len(examples)
    report["loss_tokens"] = report["verdicts"]  # the readers' common name for the positions the loss is computed on
    return examples, report


def load_step_data(path: str, tokenizer, max_seq_len: int, write_cache: bool = True) -> tuple[list[StepExample], dict]:
    """train.py's reader for --objective prm. Step sets are small (thousands of rows, tokenized in
    seconds), so unlike SFT data they are not cached (write_cache is unused)."""
    examples, report = tokenize_step_rows(load_step_rows(path), tokenizer, max_seq_len)
    if not examples:
        raise UserError(f"{path}: no step row fits in {max_seq_len} tokens")
    return examples, report


# ---------------------------------------------------------------------------------------------
# The loss and the objective


def prm_loss(model: torch.nn.Module, examples: list[StepExample], pad_id: int,
             device: torch.device) -> tuple[torch.Tensor, dict[str, int]]:
    """(sum over every verdict position of the cross-entropy of its verdict token, {COUNT: how many
    positions}). Full-vocabulary cross-entropy in fp32: the model learns to write "+" or "-" at a tag."""
    logits = verdict_logits(model, [e.input_ids for e in examples], [e.positions for e in examples], pad_id, device)
    targets = torch.tensor([t for e in examples for t in e.targets], dtype=torch.long, device=device)
    return F.cross_entropy(logits, targets, reduction="sum"), {COUNT: len(targets)}


PRM = Objective("prm", read=load_step_data, loss=prm_loss,
                help="a verifier, the verdict token after each step of step rows")
