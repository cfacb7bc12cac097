"""The GRPO objective (Shao et al. 2024, DeepSeekMath), train.py --objective grpo: reinforcement learning
from a reward, in train.py's one loop.

Reading order: the options and why their defaults; task rows read into prompts (`load_grpo_data`); a
group of completions (`Group`); rewards (the answer graded against the gold one, a trained verifier's
verdicts, or the built-in world's exact step checker) and group-normalized advantages; `grpo_rollout`, the
objective's rollout (w2s/objectives.py); `grpo_loss`; `GRPO`, the objective; `check_grpo_inputs`, the
one-line errors train.py gives before work.

Each optimizer step (its prompts: the loop's global batch, --batch-size x --grad-accum x processes, so
--batch-size counts prompts and a micro-batch runs group_size times as many sequences), every rank takes
its prompts of the step and samples `group_size` completions of each from the current policy with the
project's KV-cached sampler (w2s/sampler.py), seeded by (run seed, step, task id, sample index): a run
killed mid-step redoes the step's rollouts exactly, and counts none twice (nothing of a step is kept
until its checkpoint). Each completion gets a reward; within a group, the advantage is (r - mean) / (std
+ 1e-4) (std with Bessel's correction, as TRL's nanstd). The loss of a completion token is -min(ratio *
A, clip(ratio, 1 - eps, 1 + eps) * A) + beta * KL, with the ratio against the rollout-time log-probs (one
update per rollout batch, TRL's default num_iterations=1, so those equal the current ones detached: the
ratio is 1 in value and the clip fraction 0, and the gradient is the policy gradient) and the k3
estimator KL = exp(ref - logp) - (ref - logp) - 1 to the frozen starting model, multiplied by the ratio
(1 in value, but it makes the KL's gradient the unbiased reverse-KL one: TRL 1.16's
use_bias_correction_kl, its default; DeepSeekMath's GRPO omits it). Log-probs are of the logits divided
by the rollout temperature, as TRL computes them (the distribution that was sampled). Token-level
aggregation: the loss sums over completion tokens (the stop token included, where it stopped) and the
loop divides by the global batch's count of them.

This is TRL 1.16.0's GRPOTrainer with loss_type="dapo" (its default: normalized by the active tokens of
the global accumulated batch), scale_rewards="group", importance_sampling_level="token", epsilon_high =
epsilon, use_bias_correction_kl=True, no delta, no entropy masks; tests/test_grpo_trl.py checks loss and
gradients against its own compute_loss. TRL's "grpo" loss_type (a mean per sequence first) weighs short
completions more.

Under torchrun with FSDP2, each rank samples from a gathered, unsharded copy of the current weights (the
sampler's forwards differ in number from rank to rank, which FSDP's collectives could not follow), and
computes the reference's log-probs with its own unsharded frozen copy of the starting weights: memory
for two more full copies per rank, simple and correct; the update itself stays one sharded global step.
"""
import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
from torch.distributed.fsdp import FSDPModule

from w2s.data.jsonl import read_jsonl_numbered
from w2s.data.rows import split_steps, user_message
from w2s.data.tasks import load_tasks
from w2s.data.world import miniworld
from w2s.errors import UserError
from w2s.generation import build_prompt, sample_seed
from w2s.grader import grade
from w2s.model import Llama
from w2s.objectives import COUNT, Objective, Option, RolloutContext
from w2s.runtime import load_model_and_tokenizer
from w2s.sampler import generate
from w2s.sft import IGNORE_INDEX
from w2s.tokenizer import Tokenizer
from w2s.verifier import aggregate, score_steps, world_scores

# ---------------------------------------------------------------------------------------------
# Options (train.py --group-size, --kl-coef, ...). TRL 1.16's defaults except where said.

# graded final answer; a PRM's weakest step; an ORM's (last) verdict; the built-in world's step checker (an oracle)
REWARDS = ("answer", "prm", "orm", "world")
OPTIONS = (
    Option("group_size", 8, "completions sampled per prompt, the group its advantage is normalized over "
           "(TRL's num_generations); at least 2"),
    # TRL 1.16 defaults beta to 0.0 (no reference model); earlier TRL and DeepSeekMath used 0.04. A verifier
    # reward can be gamed (the easy-to-hard study asks whether it is): the KL keeps the policy near the model
    # it started from. With an exact reward, --kl-coef 0 skips the reference copy.
    Option("kl_coef", 0.04, "weight of the k3 KL to the frozen starting model (TRL's beta); 0 = none"),
    Option("clip_epsilon", 0.2, "the ratio's clip range 1 +- epsilon (TRL's epsilon)"),
    Option("rollout_temperature", 1.0, "sampling temperature of the rollouts (log-probs are of logits / it)"),
    Option("rollout_max_new_tokens", 512, "completion length limit (TRL's max_completion_length)"),
    Option("reward", "answer", "answer: 1 when the project's grader accepts the final answer against the task's "
           "gold, else 0; prm / orm: a verifier from train.py --objective prm (--reward-model DIR) scores the "
           "completion by its weakest step (prm) or its last verdict (orm); world: 1 when the built-in world's exact "
           "step checker finds every step good and the answer right (an oracle; built-in world tasks only)",
           choices=REWARDS),
    Option("reward_model", "", "the verifier checkpoint for --reward prm / orm"),
    # A cut-off completion states no answer (sample.py's rule), so it earns nothing by default; -1 pushes
    # the policy harder toward finishing within the limit.
    Option("cutoff_penalty", 0.0, "the reward of a completion cut off at --rollout-max-new-tokens"),
)
DEFAULTS = {option.name: option.default for option in OPTIONS}


@dataclass(frozen=True)
class Settings:
    """The options, together (what train.py passes as keyword arguments)."""
    group_size: int
    kl_coef: float
    clip_epsilon: float
    rollout_temperature: float
    rollout_max_new_tokens: int
    reward: str
    reward_model: str
    cutoff_penalty: float


# ---------------------------------------------------------------------------------------------
# Task rows in: the prompts


@dataclass
class Prompt:
    """A task as the policy is asked it: its id (for seeds), gold answer (None where the file has none)
    and prompt ids under the chat template. A rollout turns it into a Group."""
    task_id: str
    problem: str
    answer: str | None
    prompt_ids: list[int]

    @property
    def length(self) -> int:
        return len(self.prompt_ids)

    @property
    def count(self) -> int:  # completion tokens, known only after the rollout (Group.count)
        return 0

    @property
    def sequence_lengths(self) -> tuple[int]:
        return (len(self.prompt_ids),)


def load_grpo_data(path: str, tokenizer: Tokenizer, max_seq_len: int, write_cache: bool = True) -> tuple[list, dict]:
    """A tasks JSONL file ({"id", "problem", "answer"?}) as prompts; a prompt that leaves no room for a
    completion within max_seq_len is dropped (counted). Report keys as SFT's (loss_tokens: 0, known
    per step)."""
    tasks = load_tasks(path)
    prompts = [Prompt(t["id"], t["problem"], t.get("answer"), build_prompt(tokenizer, t["problem"])[1]) for t in tasks]
    kept = [p for p in prompts if p.length < max_seq_len]
    if not kept:
        raise UserError(f"{path}: no task's prompt fits --max-seq-len {max_seq_len} with room for a completion")
    report = {"examples": len(tasks), "kept": len(kept), "truncated": 0, "dropped": len(prompts) - len(kept),
              "tokens": sum(p.length for p in kept), "loss_tokens": 0}
    return kept, report


# ---------------------------------------------------------------------------------------------
# A group: one prompt's completions, rewards and advantages


@dataclass
class Group:
    prompt_ids: list[int]
    completions: list[list[int]]  # each with its stop token where it stopped
    rewards: list[float]
    advantages: list[float]
    correct: list[bool] | None  # by the grader, where the task has a gold answer
    cut_off: list[bool]
    ref_logps: list[list[float]] | None = None  # the starting model's, per completion token (None: no KL)

    @property
    def length(self) -> int:
        return sum(self.sequence_lengths)

    @property
    def count(self) -> int:  # the loss sums over completion tokens
        return sum(len(c) for c in self.completions)

    @property
    def sequence_lengths(self) -> tuple[int, ...]:
        return tuple(len(self.prompt_ids) + len(c) for c in self.completions)


def group_advantages(rewards: list[float]) -> list[float]:
    """(r - mean) / (std + 1e-4) over the group, std with Bessel's correction (TRL's scale_rewards="group")."""
    r = torch.tensor(rewards, dtype=torch.float64)
    return ((r - r.mean()) / (r.std() + 1e-4)).tolist()


def turn_end_id(tokenizer: Tokenizer) -> int:
    """The token that ends an assistant turn under the chat template (what SFT taught the policy to stop
    with). The sampler returns completions without their stop token; where the tokenizer has several,
    this is the one a stopped completion is trained with."""
    ids, mask = tokenizer.encode_chat_for_training([{"role": "user", "content": "1"},
                                                    {"role": "assistant", "content": "1"}])
    last = max(i for i, m in enumerate(mask) if m)
    return ids[last] if ids[last] in tokenizer.stop_ids else tokenizer.stop_ids[0]


# ---------------------------------------------------------------------------------------------
# Rewards


@functools.lru_cache(maxsize=2)
def load_verifier(path: str, device: str):
    """A verifier checkpoint (train.py --objective prm's final/), loaded once per run and rank (bf16 on a GPU)."""
    return load_model_and_tokenizer(path, None, "auto", device)


def same_tokenizer(a: Tokenizer, b: Tokenizer) -> bool:
    return a.raw.get_vocab(with_added_tokens=True) == b.raw.get_vocab(with_added_tokens=True)


def verifier_rewards(problem: str, texts: list[str], reward: str, reward_model: str,
                     device: torch.device) -> list[float]:
    """Each completion's score by the verifier: its weakest step's P(good) for a PRM, its last for an ORM."""
    model, tokenizer = load_verifier(reward_model, device.type)
    prompt = [{"role": "user", "content": user_message(problem)}]
    steps = score_steps(model, tokenizer, prompt, [split_steps(text) for text in texts])
    return [aggregate(s, "min" if reward == "prm" else "last") for s in steps]


def world_rewards(problem: str, texts: list[str]) -> list[float]:
    """The built-in world's exact step checker as an oracle (w2s.verifier.WorldVerifier's score): 1.0 when
    every step is good and the final answer right, else 0.0. The problem states its task, so no gold answer
    is read: what a perfect verifier would reward."""
    task = miniworld.parse_problem(problem)
    return world_scores(task, texts, [grade(text, str(task.answer)) for text in texts])[1]


def score_group(prompt: Prompt, texts: list[str], cut_off: list[bool], settings: Settings,
                device: torch.device) -> tuple[list[float], list[bool] | None]:
    """(rewards, correct or None without a gold answer): a cut-off completion gets the cut-off penalty."""
    correct = None if prompt.answer is None else [grade(text, prompt.answer) for text in texts]
    if settings.reward == "answer":
        scores = [float(c) for c in correct]
    elif settings.reward == "world":
        scores = world_rewards(prompt.problem, texts)
    else:
        scores = verifier_rewards(prompt.problem, texts, settings.reward, settings.reward_model, device)
    return [settings.cutoff_penalty if cut else s for s, cut in zip(scores, cut_off)], correct


# ---------------------------------------------------------------------------------------------
# The rollout (once per step, with the current weights)


def sampling_model(model: torch.nn.Module, dtype: torch.dtype) -> Llama:
    """The model to sample from: itself, or under FSDP2 a plain copy of its gathered weights in the
    compute dtype (every rank gathers together; then each samples alone)."""
    if not isinstance(model, FSDPModule):
        return model
    full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True))
    with torch.device("meta"):
        copy = Llama(model.args)
    copy.load_state_dict(full, assign=True)  # the gathered tensors themselves, no second allocation
    copy.reset_rope()
    return copy.to(dtype=dtype).eval()


@functools.lru_cache(maxsize=1)
def reference_model(context: RolloutContext) -> torch.nn.Module:
    """The frozen starting model, built on the first step that needs it, kept for the run."""
    return context.starting_model()


def sequence_batch(groups: list[Group], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(tokens [N, T] right-padded, targets [N, T] (position t's next token on completion tokens, else
    IGNORE_INDEX), advantages [N, 1]) for every completion of the groups, in order."""
    sequences = [(g.prompt_ids, c) for g in groups for c in g.completions]
    width = max(len(p) + len(c) for p, c in sequences)
    tokens = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    targets = torch.full((len(sequences), width), IGNORE_INDEX, dtype=torch.long)
    for row, (prompt, completion) in enumerate(sequences):
        tokens[row, :len(prompt) + len(completion)] = torch.tensor(prompt + completion, dtype=torch.long)
        targets[row, len(prompt) - 1:len(prompt) + len(completion) - 1] = torch.tensor(completion, dtype=torch.long)
    advantages = torch.tensor([a for g in groups for a in g.advantages], dtype=torch.float32)[:, None]
    return tokens, targets, advantages


def token_logps(model: torch.nn.Module, tokens: torch.Tensor, targets: torch.Tensor,
                temperature: float) -> torch.Tensor:
    """[N, T] log-probs of each position's target under softmax(logits / temperature), fp32; 0 where ignored."""
    logits = model(tokens).float() / temperature
    logps = -F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX, reduction="none")
    return logps.view(targets.shape)


def sample_groups(model: Llama, prompts: list[Prompt], step: int, context: RolloutContext,
                  settings: Settings) -> tuple[list[list[list[int]]], list[list[bool]]]:
    """Each prompt's group_size completions (stop token appended where it stopped) and which were cut off."""
    tokenizer, group_size = context.tokenizer, settings.group_size
    max_new_tokens = settings.rollout_max_new_tokens
    room = model.args.max_seq_len - max_new_tokens
    for p in prompts:
        if p.length > room:
            raise UserError(f"task {p.task_id!r}: its prompt ({p.length} tokens) + --rollout-max-new-tokens "
                            f"({max_new_tokens}) exceeds the model's maximum length of {model.args.max_seq_len}")
    outputs = generate(model, [p.prompt_ids for p in prompts for _ in range(group_size)],
                       max_new_tokens=max_new_tokens, temperature=settings.rollout_temperature,
                       stop_ids=tokenizer.stop_ids,
                       seed=[sample_seed(context.seed, f"{step}/{p.task_id}", k) for p in prompts
                             for k in range(group_size)])
    stop = turn_end_id(tokenizer)
    cut = [len(ids) == max_new_tokens for ids in outputs]  # generate drops the stop token: full length = cut off
    completions = [ids + ([] if c else [stop]) for ids, c in zip(outputs, cut)]
    return ([completions[i:i + group_size] for i in range(0, len(completions), group_size)],
            [cut[i:i + group_size] for i in range(0, len(cut), group_size)])


def grpo_rollout(model: torch.nn.Module, prompts: list[Prompt], step: int, *, context: RolloutContext,
                 **options) -> list[Group]:
    """This rank's prompts of the step -> their groups: sampled, scored, advantages; with kl_coef > 0 the
    reference's log-probs of every completion token. `options`: OPTIONS's, by name."""
    settings = Settings(**options)
    sampler = sampling_model(model, context.dtype)
    completions, cut_off = sample_groups(sampler, prompts, step, context, settings)
    del sampler  # an FSDP2 run's gathered copy: freed before the loss's forwards
    groups = []
    for prompt, group, cut in zip(prompts, completions, cut_off):
        texts = [context.tokenizer.decode(ids[:len(ids) - (not c)]) for ids, c in zip(group, cut)]
        rewards, correct = score_group(prompt, texts, cut, settings, context.device)
        groups.append(Group(prompt.prompt_ids, group, rewards, group_advantages(rewards), correct, cut))
    if settings.kl_coef > 0:
        add_reference_logps(groups, reference_model(context), context.tokenizer.pad_id, context.device,
                            settings.rollout_temperature)
    return groups


@torch.no_grad()
def add_reference_logps(groups: list[Group], reference: torch.nn.Module, pad_id: int, device: torch.device,
                        temperature: float) -> None:
    """Set each group's ref_logps: the reference's log-probs (of logits / temperature) of every completion
    token. One group per forward: no larger than the loss's smallest micro-batch."""
    for g in groups:
        tokens, targets, _ = sequence_batch([g], pad_id)
        logps = token_logps(reference, tokens.to(device), targets.to(device), temperature).cpu()
        g.ref_logps = [row[m].tolist() for row, m in zip(logps, targets != IGNORE_INDEX)]


# ---------------------------------------------------------------------------------------------
# The loss


def per_completion(values: list[float], device: torch.device) -> torch.Tensor:
    """A metric over completions, not tokens: [sum, count] (w2s/objectives.py's Loss)."""
    return torch.tensor([sum(values), len(values)], dtype=torch.float64, device=device)


def grpo_loss(model: torch.nn.Module, groups: list[Group], pad_id: int, device: torch.device, *,
              kl_coef: float = DEFAULTS["kl_coef"], clip_epsilon: float = DEFAULTS["clip_epsilon"],
              rollout_temperature: float = DEFAULTS["rollout_temperature"], **_) -> tuple[torch.Tensor, dict]:
    """(the clipped surrogate plus kl_coef * k3 KL, summed over every completion token of `groups`, metric
    sums with COUNT: those tokens). Token metrics: kl, clip_fraction (TRL's clip_ratio/region_mean); per
    completion: reward, accuracy (where tasks have gold answers), completion_length, cut_off."""
    tokens, targets, advantages = sequence_batch(groups, pad_id)
    tokens, targets, advantages = tokens.to(device), targets.to(device), advantages.to(device)
    mask = targets != IGNORE_INDEX
    logps = token_logps(model, tokens, targets, rollout_temperature)
    ratio = torch.exp(logps - logps.detach())  # one update per rollout: the rollout's log-probs are these
    clipped = torch.clamp(ratio, 1 - clip_epsilon, 1 + clip_epsilon)
    per_token = -torch.min(ratio * advantages, clipped * advantages)
    metrics = {COUNT: int(mask.sum())}
    if kl_coef > 0:
        ref = torch.zeros_like(logps)
        ref[mask] = torch.tensor([x for g in groups for row in g.ref_logps for x in row], device=device)
        kl = torch.exp(ref - logps) - (ref - logps) - 1
        # Times the ratio (1 in value): the gradient of the k3 estimate alone is biased; this one is the
        # unbiased reverse-KL gradient (DeepSeek-V3.2; TRL 1.16's use_bias_correction_kl, on by default).
        per_token = per_token + kl_coef * kl * ratio
        metrics["kl"] = (kl * mask).sum().detach()
    region = ((ratio < 1 - clip_epsilon) & (advantages < 0)) | ((ratio > 1 + clip_epsilon) & (advantages > 0))
    metrics["clip_fraction"] = (region & mask).sum()
    metrics["reward"] = per_completion([r for g in groups for r in g.rewards], device)
    metrics["accuracy"] = per_completion([float(c) for g in groups for c in (g.correct or [])], device)
    metrics["completion_length"] = per_completion([len(c) for g in groups for c in g.completions], device)
    metrics["cut_off"] = per_completion([float(c) for g in groups for c in g.cut_off], device)
    return (per_token * mask).sum(), metrics


GRPO = Objective("grpo", read=load_grpo_data, loss=grpo_loss, rollout=grpo_rollout, options=OPTIONS,
                 help="RL from a reward on a tasks file: sampled groups, clipped ratio, KL to the start (TRL's GRPO)")


# ---------------------------------------------------------------------------------------------
# Bad inputs, found before any work (w2s/train_config.py calls this)


def check_grpo_inputs(data_path: str, options: dict, tokenizer_path: str) -> None:
    """One line for each mistake: a group of one (no advantage), an answer reward over tasks without a
    gold answer (file:line), a world reward over a task not of the built-in world, a verifier reward without
    its model or with another tokenizer than the policy's."""
    if options["group_size"] < 2:
        raise UserError(f"--group-size {options['group_size']}: GRPO normalizes rewards within a group, so it needs "
                        "at least 2 completions per prompt")
    if not options["rollout_max_new_tokens"] >= 1 or not options["rollout_temperature"] > 0:
        raise UserError("need --rollout-max-new-tokens >= 1 and --rollout-temperature > 0")
    if options["kl_coef"] < 0 or not 0 < options["clip_epsilon"] < 1:
        raise UserError("need --kl-coef >= 0 and 0 < --clip-epsilon < 1")
    if options["reward"] in ("answer", "world") and options["reward_model"]:
        raise UserError(f"--reward-model {options['reward_model']}: only for --reward prm / orm")
    if options["reward"] == "world":
        check_world_tasks(data_path)
        return
    if options["reward"] == "answer":
        for line, row in read_jsonl_numbered(data_path):
            if isinstance(row, dict) and "answer" not in row:
                raise UserError(f"{data_path}:{line}: task {row.get('id')!r} has no field 'answer', which --reward "
                                "answer grades against; give every task its gold answer or use --reward prm / orm")
        return
    if not options["reward_model"]:
        raise UserError(f"--reward {options['reward']} needs --reward-model DIR (a verifier from train.py "
                        "--objective prm)")
    verifier = Tokenizer.from_pretrained(options["reward_model"])
    if not same_tokenizer(verifier, Tokenizer.from_pretrained(tokenizer_path)):
        raise UserError(f"--reward-model {options['reward_model']}: its tokenizer ({verifier.source}) differs from "
                        f"the policy's ({tokenizer_path}); a verifier must be trained with the policy's tokenizer")


def check_world_tasks(data_path: str) -> None:
    """--reward world checks the built-in world's problems only: the first task that is not one, by file:line."""
    for line, row in read_jsonl_numbered(data_path):
        if isinstance(row, dict) and isinstance(row.get("problem"), str):
            try:
                miniworld.parse_problem(row["problem"])
            except ValueError as e:
                raise UserError(f"{data_path}:{line}: task {row.get('id')!r}: --reward world checks the built-in "
                                f"world's problems only, and this is {str(e)[:120]}") from None
