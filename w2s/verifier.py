"""Verifiers (Sun et al. 2024, "Easy-to-Hard Generalization"): a plain Llama checkpoint that judges each
step of a solution, trained with train.py --objective prm and used by evaluate.py --verifier to re-rank
samples.

Reading order: the layout, the one function that turns a problem and its steps into token ids and
verdict positions (training and scoring both go through it); the logits at the verdict positions; scoring
responses; aggregating step scores; re-ranking K samples (best-of-K, weighted majority, and the curves
over the first k). Training (step rows, examples, the loss) is w2s/prm.py; how a response splits into
steps is w2s/data/rows.py.

The verdict, after Math-Shepherd: the causal LM reads a step tag after each step and predicts, at the
tag, a verdict token: "+" (a good step) or "-" (a bad one). The loss is the full-vocabulary cross-entropy
on those positions only, so the checkpoint stays a causal LM that loads anywhere a Llama loads. The
step's score is the softmax over just those two logits: P(good) in [0, 1]. The tag is a newline, and the
two verdict tokens are "+" and "-": each is one token in Llama-3's tokenizer and in the built-in world's
byte-level one (`verdict_ids` checks it). The tag being a newline means a solution written one step per
line (the built-in world's) is laid out exactly as written.

An outcome reward model (ORM) is the same model trained on rows with one step, the whole solution, and
its outcome label; it is used with its last verdict (`--verifier-agg last`).
"""
import torch

from w2s.data.rows import SPLITS, split_steps, user_message
from w2s.data.selection.verifier_rows import world_step_labels
from w2s.data.world import miniworld
from w2s.errors import UserError
from w2s.grader import answer_groups
from w2s.runtime import load_model_and_tokenizer

STEP_TAG = "\n"  # read after every step; the verdict is predicted at it
GOOD, BAD = "+", "-"  # the verdict tokens (Math-Shepherd's labels)
AGGREGATIONS = ("min", "prod", "last", "mean")
WORLD = "world"  # evaluate.py --verifier world: the built-in world's exact step checker as an oracle
LOGPROB = "logprob:"  # evaluate.py --verifier logprob:DIR: DIR's own length-normalised log-prob, a baseline


# ---------------------------------------------------------------------------------------------
# The layout: one function for training and scoring


def verdict_ids(tokenizer) -> tuple[int, int, int]:
    """(tag id, good id, bad id); each must be one token of this tokenizer."""
    ids = []
    for what, text in (("step tag", STEP_TAG), ("good verdict", GOOD), ("bad verdict", BAD)):
        encoded = tokenizer.encode(text)
        if len(encoded) != 1:
            raise UserError(f"{tokenizer.source}: the {what} {text!r} is {len(encoded)} tokens in this tokenizer; "
                            "a verifier needs it to be one (see w2s/verifier.py)")
        ids.append(encoded[0])
    return tuple(ids)


def layout(tokenizer, prompt: list[dict], steps: list[str]) -> tuple[list[int], list[int]]:
    """Token ids of a problem and its steps, and the position of each step's verdict.

    The prompt is the chat template's user turn and assistant header (what the policy was asked with);
    then each step (stripped), tokenized on its own, followed by the step tag. The verdict for step i is
    predicted by the logits at its tag: exactly one position per step, by construction."""
    tag, _, _ = verdict_ids(tokenizer)
    ids = tokenizer.encode_chat(prompt, add_generation_prompt=True)
    positions = []
    for step in steps:
        ids += tokenizer.encode(step.strip()) + [tag]
        positions.append(len(ids) - 1)
    return ids, positions


# ---------------------------------------------------------------------------------------------
# One forward, the logits at every verdict position (training, w2s/prm.py, and scoring)


def pad_batch(sequences: list[list[int]], pad_id: int) -> torch.Tensor:
    """Right-padded ids [B, T]. Causal attention: a real token never sees the padding after it."""
    input_ids = torch.full((len(sequences), max(map(len, sequences))), pad_id, dtype=torch.long)
    for b, ids in enumerate(sequences):
        input_ids[b, :len(ids)] = torch.tensor(ids, dtype=torch.long)
    return input_ids


def verdict_logits(model: torch.nn.Module, sequences: list[list[int]], positions: list[list[int]], pad_id: int,
                   device: torch.device) -> torch.Tensor:
    """One forward over the batch; the logits [N, V] (fp32) at every verdict position, flattened in order."""
    rows = torch.tensor([b for b, ps in enumerate(positions) for _ in ps], dtype=torch.long, device=device)
    cols = torch.tensor([p for ps in positions for p in ps], dtype=torch.long, device=device)
    logits = model(pad_batch(sequences, pad_id).to(device, non_blocking=True))
    return logits[rows, cols].float()


# ---------------------------------------------------------------------------------------------
# Scoring responses


@torch.no_grad()
def score_steps(model: torch.nn.Module, tokenizer, prompt: list[dict], step_lists: list[list[str]],
                batch_size: int = 32) -> list[list[float]]:
    """P(good) of every step of every response to one prompt: one forward per batch of responses (no
    KV cache: each response is read once). A response longer than the verifier's context is scored on
    the steps that fit."""
    _, good, bad = verdict_ids(tokenizer)
    context = model.args.max_seq_len
    device = next(model.parameters()).device
    laid_out = []
    for steps in step_lists:
        ids, positions = layout(tokenizer, prompt, steps)
        positions = [p for p in positions if p < context]
        if not positions:
            raise UserError(f"the verifier's {context}-token context cannot hold the prompt and a first step "
                            f"({len(ids)} tokens laid out)")
        laid_out.append((ids[:positions[-1] + 1], positions))
    scores = []
    for start in range(0, len(laid_out), batch_size):
        batch = laid_out[start:start + batch_size]
        logits = verdict_logits(model, [ids for ids, _ in batch], [ps for _, ps in batch], tokenizer.pad_id, device)
        p_good = logits[:, [good, bad]].softmax(-1)[:, 0].tolist()
        for _, positions in batch:
            scores.append(p_good[:len(positions)])
            p_good = p_good[len(positions):]
    return scores


def aggregate(step_scores: list[float], how: str = "min") -> float:
    """A response's score from its steps': the weakest step (min, the PRM default), all steps good (prod),
    the last verdict (last: an ORM, whose one verdict follows the whole solution), or the average step
    (mean: unlike min and prod, a solution gains nothing from writing fewer steps)."""
    if how == "min":
        return min(step_scores)
    if how == "prod":
        product = 1.0
        for s in step_scores:
            product *= s
        return product
    if how == "last":
        return step_scores[-1]
    if how == "mean":
        return sum(step_scores) / len(step_scores)
    raise ValueError(f"unknown aggregation {how!r}; choose from {', '.join(AGGREGATIONS)}")


class Verifier:
    """A verifier checkpoint ready to score responses: its model, tokenizer, aggregation and step split."""

    def __init__(self, path: str, agg: str = "min", split: str = "lines", dtype: str = "auto",
                 device: str | None = None, batch_size: int = 32):
        if agg not in AGGREGATIONS:
            raise UserError(f"--verifier-agg {agg!r}: choose from {', '.join(AGGREGATIONS)}")
        if split not in SPLITS:
            raise UserError(f"--verifier-split {split!r}: choose from {', '.join(SPLITS)}")
        self.path, self.agg, self.split, self.batch_size = path, agg, split, batch_size
        self.model, self.tokenizer = load_model_and_tokenizer(path, None, dtype, device)
        verdict_ids(self.tokenizer)  # refuse a tokenizer without one-token verdicts before any work

    def rerank(self, problem: str, row: dict) -> dict:
        """What re-ranking adds to an evaluation row (see `rerank_fields`)."""
        prompt = [{"role": "user", "content": user_message(problem)}]
        step_scores = score_steps(self.model, self.tokenizer, prompt,
                                  [split_steps(r, self.split) for r in row["responses"]], self.batch_size)
        return rerank_fields(row["extracted"], row["correct"], [aggregate(s, self.agg) for s in step_scores],
                             step_scores)


class WorldVerifier:
    """An oracle for the built-in world's problems: its exact step checker in a verifier's place. Each
    step's score is its exact label (1.0 good, 0.0 bad; `world_step_labels`); a response scores 1.0 only
    when every step is good and its outcome is right, so a wrong answer, a skipped step (a premature
    answer's answer line is wrong) or a missing answer line scores 0.0. Re-ranking with it shows what a
    perfect verifier would get from the same samples: best-of-k is then pass@k where no right answer has
    a wrong step."""

    path, agg, split = WORLD, "min", "lines"

    def rerank(self, problem: str, row: dict) -> dict:
        step_scores, scores = world_scores(miniworld.parse_problem(problem), row["responses"], row["correct"],
                                           self.split)
        return rerank_fields(row["extracted"], row["correct"], scores, step_scores)


def world_scores(task: miniworld.Task, responses: list[str], correct: list[bool],
                 split: str = "lines") -> tuple[list[list[float]], list[float]]:
    """The world's exact checker as a verifier (WorldVerifier, and GRPO's --reward world): each step's
    exact label (1.0 / 0.0), and each response's score, 1.0 only when every step is good and it is right."""
    # split_steps is never empty, and world_step_labels labels every step
    step_scores = [[float(label) for label in world_step_labels(split_steps(r, split), task, c)]
                   for r, c in zip(responses, correct)]
    return step_scores, [min(steps + [float(c)]) for steps, c in zip(step_scores, correct)]


class LogProbVerifier:
    """The baseline every trained verifier should beat: a policy's own confidence in a response, its mean
    token log-prob (length-normalised, so a short wrong answer gains nothing from being short). A step's
    score is exp(mean log-prob) of its tokens and its tag, laid out as `layout` lays out a verifier's
    input (one line per step, as the built-in world's responses are written); the response's score is
    exp(mean log-prob) over all of them (--verifier-agg does not apply)."""

    agg, split = "token mean", "lines"

    def __init__(self, path: str, dtype: str = "auto", device: str | None = None):
        self.path = path
        self.model, self.tokenizer = load_model_and_tokenizer(path, None, dtype, device)

    @torch.no_grad()
    def rerank(self, problem: str, row: dict) -> dict:
        prompt = [{"role": "user", "content": user_message(problem)}]
        prompt_length = len(self.tokenizer.encode_chat(prompt, add_generation_prompt=True))
        device = next(self.model.parameters()).device
        context = self.model.args.max_seq_len
        laid_out = [layout(self.tokenizer, prompt, split_steps(r, self.split)) for r in row["responses"]]
        if prompt_length >= context:
            raise UserError(f"{self.path}: its {context}-token context cannot hold the prompt and a response")
        # one forward for the row's responses, right-padded (causal: padding after a token never reaches it)
        sequences = [ids[:context] for ids, _ in laid_out]  # a response past the context: scored on what fits
        logits = self.model(pad_batch(sequences, self.tokenizer.pad_id).to(device)).float()
        step_scores, scores = [], []
        for b, (ids, (_, tags)) in enumerate(zip(sequences, laid_out)):
            tags = [t for t in tags if t < len(ids)] or [len(ids) - 1]
            # token t is predicted by the logits at t - 1
            logp = logits[b, :len(ids) - 1].log_softmax(-1).gather(
                -1, torch.tensor(ids[1:], device=device)[:, None])[:, 0]
            # step i is the tokens after bounds[i], up to and with its tag at bounds[i + 1]; the last step's
            # tag is left out: the policy ended its response there, it never wrote that newline
            bounds = [prompt_length - 1] + tags[:-1] + [tags[-1] - 1]
            step_scores.append([logp[lo:max(hi, lo + 1)].mean().exp().item() for lo, hi in zip(bounds, bounds[1:])])
            scores.append(logp[prompt_length - 1:bounds[-1]].mean().exp().item())
        return rerank_fields(row["extracted"], row["correct"], scores, step_scores)


# ---------------------------------------------------------------------------------------------
# Re-ranking K samples: best-of-K and weighted majority, and the same over the first k of them


def _vote(groups: list[int | None], weights: list[float]) -> int | None:
    """Index of the first response of the group with the most weight (ties: the group seen first)."""
    totals: dict[int, float] = {}
    first: dict[int, int] = {}
    for i, (g, w) in enumerate(zip(groups, weights)):
        if g is not None:
            totals[g] = totals.get(g, 0.0) + w
            first.setdefault(g, i)
    if not totals:
        return None
    return first[max(totals, key=lambda g: (totals[g], -g))]


def rerank_at(groups: list[int | None], correct: list[bool], scores: list[float], k: int) -> dict[str, bool]:
    """Verdicts over the first k responses: majority vote, any right (pass), the highest-scored one
    (best_of; ties: the first), and the weighted majority (each answer voted by its responses' scores)."""
    groups, correct, scores = groups[:k], correct[:k], scores[:k]
    voted, weighted = _vote(groups, [1.0] * k), _vote(groups, scores)
    best = max(range(k), key=lambda i: (scores[i], -i))
    return {"maj": voted is not None and correct[voted], "pass": any(correct), "best_of": correct[best],
            "weighted_maj": weighted is not None and correct[weighted]}


def rerank_fields(extracted: list[str | None], correct: list[bool], scores: list[float],
                  step_scores: list[list[float]]) -> dict:
    """Fields of an evaluation row with a verifier: "scores" (one per response, in [0, 1]), "step_scores",
    "answer_groups", "best_of" / "weighted_verdict" (is the chosen answer right), "weighted_majority"."""
    groups = answer_groups(extracted)
    weighted = _vote(groups, scores)
    verdicts = rerank_at(groups, correct, scores, len(scores))
    return {"scores": scores, "step_scores": step_scores, "answer_groups": groups, "best_of": verdicts["best_of"],
            "weighted_majority": extracted[weighted] if weighted is not None else None,
            "weighted_verdict": verdicts["weighted_maj"]}


def curve_ks(n: int) -> list[int]:
    """1, 2, 4, ... up to n, and n itself."""
    ks = [k for k in (2 ** i for i in range(n.bit_length())) if k <= n]
    return ks + ([n] if ks[-1] != n else [])


def rerank_curves(rows: list[dict], ks: list[int]) -> dict[str, dict[str, float]]:
    """Accuracy over the first k responses of every row, for each k: {"k": {"maj@k", "pass@k",
    "best_of@k", "weighted_maj@k"}}. Rows need "answer_groups", "correct" and "scores"."""
    curves = {}
    for k in ks:
        verdicts = [rerank_at(r["answer_groups"], r["correct"], r["scores"], k) for r in rows]
        curves[str(k)] = {f"{name}@{k}": sum(v[name] for v in verdicts) / len(rows)
                          for name in ("maj", "pass", "best_of", "weighted_maj")}
    return curves


def average_ranks(values: list[float]) -> list[float]:
    """Each value's rank from 1 (smallest) to n, tied values sharing their average rank (as AUC and
    Spearman's correlation need)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def auc(scores: list[float], labels: list[bool]) -> float:
    """Area under the ROC curve: the chance that a random positive scores above a random negative, a tie
    counting half (Mann-Whitney's U over the two counts; average ranks for tied scores). nan when one
    class is absent, since the question then has no answer."""
    positives = sum(labels)
    negatives = len(labels) - positives
    if not positives or not negatives:
        return float("nan")
    rank_sum = sum(r for r, label in zip(average_ranks(scores), labels) if label)
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)
