"""w2s.grpo's loss against TRL's own GRPOTrainer (trl==1.16.0, requirements-dev.txt), loss_type="dapo", on the
same inputs: one policy and one reference (its starting weights), the same prompts, completions (stopped and
cut off, of several lengths) and rewards. TRL computes the reference's log-probs and the loss with its own
code (_get_per_token_logps_and_entropies, compute_loss) on transformers' LlamaForCausalLM; we run our
rollout's reference pass and w2s.training.train_step on our Llama."""
from functools import partial

import pytest
import torch

from tests.tiny_checkpoint import TASKS, make_checkpoint
from w2s.generation import build_prompt
from w2s.grpo import Group, add_reference_logps, group_advantages, grpo_loss
from w2s.model import Llama
from w2s.tokenizer import Tokenizer
from w2s.training import StepSetup, train_step

trl = pytest.importorskip("trl", reason="compares with TRL (requirements-dev.txt)")
transformers = pytest.importorskip("transformers", reason="compares with transformers (requirements-dev.txt)")
datasets = pytest.importorskip("datasets", reason="TRL's trainer reads a datasets.Dataset")
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")

GROUP = 4
TEMPERATURE = 0.7


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict:
    """The starting weights (init) and a policy moved from them by noise (so the KL and its gradient are
    not zero), as HF folders; two prompts of different lengths, each with GROUP completions and rewards."""
    directory = tmp_path_factory.mktemp("grpo_trl")
    init, policy = str(directory / "init"), str(directory / "policy")
    make_checkpoint(init)
    tokenizer = Tokenizer.from_pretrained(init)
    model = Llama.from_pretrained(init, dtype=torch.float32)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.save_pretrained(policy)
    tokenizer.save_pretrained(policy)
    generator = torch.Generator().manual_seed(2)
    groups = []
    for task, rewards in ((TASKS[0], [1.0, 0.0, 0.0, 1.0]), (TASKS[2], [0.0, 0.2, -1.0, 0.7])):
        prompt = build_prompt(tokenizer, task["problem"])[1]
        completions = [torch.randint(5, tokenizer.vocab_size, (n,), generator=generator).tolist() + stop
                       for n, stop in ((3, [tokenizer.eos_id]), (7, []), (1, [tokenizer.eos_id]), (5, []))]
        groups.append(Group(prompt, completions, rewards, group_advantages(rewards), None,
                            [not stop for stop in (1, 0, 1, 0)]))
    return {"init": init, "policy": policy, "groups": groups, "pad_id": tokenizer.pad_id}


def trl_trainer(checkpoints: dict, out: str, beta: float, epsilon: float):
    """TRL's GRPOTrainer on the policy; its reference model the starting weights, with TRL's own fused head."""
    config = trl.GRPOConfig(output_dir=out, beta=beta, epsilon=epsilon, temperature=TEMPERATURE, loss_type="dapo",
                            num_generations=GROUP, per_device_train_batch_size=2 * GROUP, use_cpu=True, report_to=[],
                            bf16=False, disable_tqdm=True, save_strategy="no")
    unused_reward = lambda completions, **_: [0.0] * len(completions)  # noqa: E731 (the completions are given)
    trainer = trl.GRPOTrainer(model=checkpoints["policy"], reward_funcs=unused_reward, args=config,
                              train_dataset=datasets.Dataset.from_list([{"prompt": "x"}] * 8),
                              processing_class=transformers.AutoTokenizer.from_pretrained(checkpoints["init"]))
    if beta:
        reference = transformers.LlamaForCausalLM.from_pretrained(checkpoints["init"], dtype=torch.float32).eval()
        trl.trainer.utils.add_fused_lm_head(reference, temperature=TEMPERATURE)
        trainer.ref_model = reference
    return trainer


def trl_inputs(trainer, groups: list[Group], pad_id: int) -> dict:
    """What TRL's _generate_and_score_completions hands its loss: prompts left-padded, completions
    right-padded with their masks, advantages, the token count, and (beta > 0) the reference's log-probs."""
    pad = lambda rows, left: torch.tensor([[pad_id] * (max(map(len, rows)) - len(r)) * left + r +  # noqa: E731
                                           [pad_id] * (max(map(len, rows)) - len(r)) * (not left) for r in rows])
    mask = lambda rows, left: torch.tensor([[0] * (max(map(len, rows)) - len(r)) * left + [1] * len(r) +  # noqa: E731
                                            [0] * (max(map(len, rows)) - len(r)) * (not left) for r in rows])
    prompts = [g.prompt_ids for g in groups for _ in g.completions]
    completions = [c for g in groups for c in g.completions]
    inputs = {"prompt_ids": pad(prompts, True), "prompt_mask": mask(prompts, True),
              "completion_ids": pad(completions, False), "completion_mask": mask(completions, False),
              "advantages": torch.tensor([a for g in groups for a in g.advantages], dtype=torch.float32),
              "num_items_in_batch": torch.tensor(sum(map(len, completions)))}
    if trainer.beta:
        with torch.no_grad():
            inputs["ref_per_token_logps"] = trainer._get_per_token_logps_and_entropies(
                trainer.ref_model, torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1),
                torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1),
                inputs["completion_ids"].size(1))[0]
    return inputs


def test_advantages_are_trls():
    rewards = [0.0, 0.2, -1.0, 0.7]
    r = torch.tensor(rewards)
    theirs = (r - r.mean()) / (trl.trainer.utils.nanstd(r) + 1e-4)
    assert group_advantages(rewards) == pytest.approx(theirs.tolist(), rel=1e-6)
    assert group_advantages([1.0, 1.0]) == [0.0, 0.0]  # a group that agrees teaches nothing


@pytest.mark.parametrize("beta, epsilon, micro_batch_size", [(0.0, 0.2, 2), (0.04, 0.2, 2), (0.5, 0.1, 1)])
def test_loss_and_gradients_equal_trls(checkpoints, tmp_path, beta, epsilon, micro_batch_size):
    trainer = trl_trainer(checkpoints, str(tmp_path), beta, epsilon)
    groups, pad_id = checkpoints["groups"], checkpoints["pad_id"]
    trainer.model.train()  # as Trainer's step does, with what its loop sets for a step of one accumulation
    trainer.current_gradient_accumulation_steps = 1
    theirs = trainer.compute_loss(trainer.model, trl_inputs(trainer, groups, pad_id))
    theirs.backward()

    if beta:  # what our rollout adds with kl_coef > 0: the reference's log-probs of every completion token
        add_reference_logps(groups, Llama.from_pretrained(checkpoints["init"], dtype=torch.float32).eval(), pad_id,
                            torch.device("cpu"), TEMPERATURE)
    ours = Llama.from_pretrained(checkpoints["policy"], dtype=torch.float32)
    loss = partial(grpo_loss, kl_coef=beta, clip_epsilon=epsilon, rollout_temperature=TEMPERATURE)
    setup = StepSetup(loss=loss, examples=groups, lengths=[g.length for g in groups],
                      micro_batch_size=micro_batch_size, pad_id=pad_id, device=torch.device("cpu"))
    loss_sum, metric_sums = train_step(ours, setup, [0, 1])  # one micro-batch, or one per group
    count = sum(g.count for g in groups)
    assert metric_sums["count"].item() == count
    assert loss_sum.item() / count == pytest.approx(theirs.item(), rel=1e-5, abs=1e-7)
    assert abs(theirs.item()) > 1e-3
    if beta:
        assert metric_sums["kl"].item() / count == pytest.approx(trainer._metrics["train"]["kl"][0], rel=1e-4)
    hf_params = dict(trainer.model.named_parameters())
    for name, p in ours.named_parameters():
        g = hf_params[name if name == "lm_head.weight" else "model." + name].grad
        assert ((p.grad - g).abs().max() / g.abs().max()).item() < 1e-5, name
    for g in groups:
        g.ref_logps = None
