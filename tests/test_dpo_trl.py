"""w2s.dpo's loss against TRL's own DPOTrainer (trl==1.16.0, requirements-dev.txt), on the same pairs and weights:
TRL tokenizes the pair rows with the checkpoint's chat template, collates them and computes its loss and
gradients on transformers' LlamaForCausalLM; we run w2s.training.train_step on our Llama. Plain DPO is TRL's
loss_type ["sigmoid"]; --rpo-alpha A is ["sigmoid", "sft"] with loss_weights [1, A]."""
import json
from functools import partial

import pytest
import torch

from tests.test_dpo import pair_rows
from w2s.batches import split_global_batch
from w2s.dpo import dpo_loss, reference_pass, tokenize_pairs
from w2s.model import Llama, ModelArgs
from w2s.training import StepSetup, train_step
from w2s.tokenizer import train_tokenizer

trl = pytest.importorskip("trl", reason="compares with TRL (requirements-dev.txt)")
transformers = pytest.importorskip("transformers", reason="compares with transformers (requirements-dev.txt)")
datasets = pytest.importorskip("datasets", reason="TRL's trainer reads a datasets.Dataset")

PAIRS = 6
# TRL 1.16's config sets transformers' renamed gradient_checkpointing: its warning is TRL's, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:.*gradient_checkpointing.*:FutureWarning")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict:
    """Pair rows, the reference (init) and a policy moved from it by noise (so the loss is not ln 2 and
    both responses' gradients matter), each as an HF folder, and our tokenized pairs with their
    reference log-probs (reference_pass with the init weights)."""
    directory = tmp_path_factory.mktemp("dpo_trl")
    rows = pair_rows(PAIRS, seed=3)
    data = directory / "pairs.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    tokenizer = train_tokenizer([m["content"] for row in rows for key in ("prompt", "chosen", "rejected")
                                 for m in row[key]], vocab_size=300)
    init, policy = str(directory / "init"), str(directory / "policy")
    torch.manual_seed(0)
    model = Llama(ModelArgs.preset("tiny", vocab_size=tokenizer.vocab_size, bos_token_id=tokenizer.bos_id,
                                   eos_token_id=tokenizer.eos_id))
    model.save_pretrained(init)
    tokenizer.save_pretrained(init)
    examples, _ = tokenize_pairs(rows, tokenizer, max_seq_len=512)
    reference_pass(model, examples, tokenizer.pad_id, torch.device("cpu"), data_path=str(data), start="init",
                   batch_size=PAIRS)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    model.save_pretrained(policy)
    return {"rows": rows, "init": init, "policy": policy, "examples": examples, "pad_id": tokenizer.pad_id}


def trl_trainer(checkpoints: dict, out: str, beta: float, rpo_alpha: float):
    """TRL's DPOTrainer on the policy, with the init weights as its reference model (computed each step)."""
    load = partial(transformers.LlamaForCausalLM.from_pretrained, dtype=torch.float32)
    loss_type, weights = (["sigmoid", "sft"], [1.0, rpo_alpha]) if rpo_alpha else (["sigmoid"], None)
    config = trl.DPOConfig(output_dir=out, beta=beta, loss_type=loss_type, loss_weights=weights, use_cpu=True,
                           report_to=[], bf16=False, disable_tqdm=True, save_strategy="no")
    return trl.DPOTrainer(model=load(checkpoints["policy"]), ref_model=load(checkpoints["init"]).eval(), args=config,
                          train_dataset=datasets.Dataset.from_list(checkpoints["rows"]),
                          processing_class=transformers.AutoTokenizer.from_pretrained(checkpoints["init"]))


def trl_loss(trainer, micro_batches: list[list[int]]) -> float:
    """TRL's loss, backward included, over micro-batches of pair indices, averaged as gradient
    accumulation averages them (one micro-batch: the loss itself)."""
    total = 0.0
    trainer.model.train()  # as Trainer.training_step does: TRL logs its metrics under "train"
    for indices in micro_batches:
        inputs = trainer.data_collator([trainer.train_dataset[i] for i in indices])
        loss = trainer.compute_loss(trainer.model, inputs) / len(micro_batches)
        loss.backward()
        total += loss.item()
    return total


def test_trl_tokenizes_the_pairs_as_we_do(checkpoints, tmp_path):
    """The comparison below is of losses on the same tokens: TRL's prompt + completion and its completion
    mask are our ids and response mask."""
    dataset = trl_trainer(checkpoints, str(tmp_path), beta=0.1, rpo_alpha=0.0).train_dataset
    for row, e in zip(dataset, checkpoints["examples"]):
        for side, ids, mask in (("chosen", e.chosen_ids, e.chosen_mask), ("rejected", e.rejected_ids, e.rejected_mask)):
            assert row["prompt_ids"] + row[side + "_ids"] == ids
            assert [False] * len(row["prompt_ids"]) + [True] * len(row[side + "_ids"]) == mask


@pytest.mark.parametrize("beta, rpo_alpha, micro_batch_size", [
    (0.1, 0.0, PAIRS), (0.1, 0.5, PAIRS), (1.0, 0.0, PAIRS), (1.0, 0.5, PAIRS), (1.0, 0.5, PAIRS // 2)])
def test_loss_metrics_and_gradients_equal_trls(checkpoints, tmp_path, beta, rpo_alpha, micro_batch_size):
    trainer = trl_trainer(checkpoints, str(tmp_path), beta, rpo_alpha)
    examples = checkpoints["examples"]
    lengths = [e.length for e in examples]
    micro_batches = split_global_batch(list(range(PAIRS)), lengths, 1, 0, micro_batch_size)  # as train_step splits
    theirs = trl_loss(trainer, micro_batches)

    ours = Llama.from_pretrained(checkpoints["policy"], dtype=torch.float32)
    setup = StepSetup(loss=partial(dpo_loss, beta=beta, rpo_alpha=rpo_alpha), examples=examples, lengths=lengths,
                      micro_batch_size=micro_batch_size, pad_id=checkpoints["pad_id"], device=torch.device("cpu"))
    loss_sum, metric_sums = train_step(ours, setup, list(range(PAIRS)))
    assert loss_sum.item() / PAIRS == pytest.approx(theirs, rel=1e-5)
    assert ("nll_loss" in metric_sums) == (rpo_alpha > 0)
    if micro_batch_size == PAIRS:  # TRL logs one mean per micro-batch
        logged = trainer._metrics["train"]
        for name in ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies", "logps/chosen",
                     "logps/rejected"):
            assert metric_sums[name].item() / PAIRS == pytest.approx(logged[name][0], rel=1e-5, abs=1e-6), name
    hf_params = dict(trainer.model.named_parameters())
    for name, p in ours.named_parameters():
        g = hf_params[name if name == "lm_head.weight" else "model." + name].grad
        assert ((p.grad - g).abs().max() / g.abs().max()).item() < 1e-5, name
