"""The built-in world's tokenizer (Llama-3's special tokens and Instruct template) against transformers'
apply_chat_template; other checkpoints' tokenizers and templates: test_chat_templates.py."""
import json

import pytest

from w2s.tokenizer import LLAMA3_CHAT_TEMPLATE, LLAMA3_SPECIAL_TOKENS, Tokenizer, train_tokenizer

transformers = pytest.importorskip("transformers", reason="compares with transformers (requirements-dev.txt)")

CORPUS = [
    "Tom has 17 apples. He buys 3 bags of 12 apples each. How many apples does he have now?",
    "17 + 3 * 12 = 53\nThe answer is \\boxed{53}",
    "Solve the problem step by step. Put the final answer in \\boxed{}.",
    "A train travels 120 km in 2 hours; what is its speed?  Ünïcödé and emoji 🙂 too.",
] * 20

CONVERSATIONS = [
    [{"role": "user", "content": "What is 2 + 3?"}],
    [{"role": "system", "content": "You are a careful solver."},
     {"role": "user", "content": "  Tom has 17 apples.\n\nHow many now?  "},
     {"role": "assistant", "content": "17 + 3 = 20\nThe answer is \\boxed{20}"}],
    [{"role": "user", "content": "Speed? 🙂"}, {"role": "assistant", "content": "60 km/h"},
     {"role": "user", "content": "And in 3 hours?\n"}, {"role": "assistant", "content": "\n180 km\n"}],
]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    tok = train_tokenizer(CORPUS, vocab_size=400)
    directory = tmp_path_factory.mktemp("tok")
    tok.save_pretrained(str(directory))
    return Tokenizer.from_pretrained(str(directory)), directory


def test_special_tokens_come_first_and_are_single_tokens(tokenizer):
    tok, _ = tokenizer
    assert [tok.raw.token_to_id(t) for t in LLAMA3_SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    # bos <|begin_of_text|>, eos <|eot_id|>, pad <|end_of_text|>; generation stops at <|eot_id|> or <|end_of_text|>
    assert tok.bos_id == 0 and tok.eos_id == 4 and tok.pad_id == 1 and tok.stop_ids == [1, 4]
    assert tok.chat_template == LLAMA3_CHAT_TEMPLATE
    assert tok.encode("<|eot_id|>x<|start_header_id|>") == [4, *tok.encode("x"), 2]


@pytest.mark.parametrize("text", [
    "Tom has 17 apples<|eot_id|> and 3 more.", "<|begin_of_text|>a\n\n  b\tc", "Ünïcödé 🙂 \\boxed{53}", ""])
def test_encode_decode_round_trip(tokenizer, text):
    tok, _ = tokenizer
    assert tok.decode(tok.encode(text)) == text
    assert tok.decode(tok.encode(text, bos=True)) == "<|begin_of_text|>" + text


def test_digits_are_one_token_each(tokenizer):
    tok, _ = tokenizer
    assert len(tok.encode("1234567")) == 7
    # A space before a number goes with its first digit, not into a token of its own.
    pieces = [tok.decode([i]) for i in tok.encode("has 17 and 5")]
    assert pieces[-4:] == [" 1", "7", " and", " 5"] and " " not in pieces


@pytest.mark.parametrize("add_generation_prompt", [True, False])
@pytest.mark.parametrize("conversation", range(len(CONVERSATIONS)))
def test_chat_template_matches_transformers(tokenizer, conversation, add_generation_prompt):
    tok, directory = tokenizer
    messages = CONVERSATIONS[conversation]
    hf = transformers.PreTrainedTokenizerFast(tokenizer_file=str(directory / "tokenizer.json"),
                                              bos_token="<|begin_of_text|>", eos_token="<|eot_id|>")
    hf.chat_template = LLAMA3_CHAT_TEMPLATE
    expected = hf.apply_chat_template(messages, add_generation_prompt=add_generation_prompt, tokenize=False)
    expected_ids = hf(expected, add_special_tokens=False)["input_ids"]
    assert tok.encode_chat(messages, add_generation_prompt) == expected_ids
    # and the saved tokenizer_config.json carries the same template for transformers' AutoTokenizer
    auto = transformers.AutoTokenizer.from_pretrained(str(directory))
    rendered = auto.apply_chat_template(messages, add_generation_prompt=add_generation_prompt, tokenize=False)
    assert auto(rendered, add_special_tokens=False)["input_ids"] == expected_ids


def test_training_mask_covers_exactly_the_assistant_turns(tokenizer):
    tok, _ = tokenizer
    ids, mask = tok.encode_chat_for_training(CONVERSATIONS[2])
    assert ids == tok.encode_chat(CONVERSATIONS[2], add_generation_prompt=False)
    runs, current = [], []
    for token, keep in zip(ids, mask):
        if keep:
            current.append(token)
        elif current:
            runs.append(tok.decode(current))
            current = []
    if current:
        runs.append(tok.decode(current))
    assert runs == ["60 km/h<|eot_id|>", "180 km<|eot_id|>"]


def test_config_eos_token_and_missing_special_tokens(tmp_path, tokenizer):
    tok, directory = tokenizer
    config = json.loads((directory / "tokenizer_config.json").read_text())
    (tmp_path / "tokenizer.json").write_text((directory / "tokenizer.json").read_text())
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({**config, "eos_token": "<|end_of_text|>"}))
    base = Tokenizer.from_pretrained(str(tmp_path))
    assert base.eos_id == 1 and base.stop_ids == [1]  # no generation_config.json: eos alone
    (tmp_path / "generation_config.json").write_text((directory / "generation_config.json").read_text())
    assert Tokenizer.from_pretrained(str(tmp_path)).stop_ids == [1, 4]
    # A bare tokenizer.json with Llama-3's special tokens is the built-in world's, as older versions saved it.
    for name in ("tokenizer_config.json", "generation_config.json"):
        (tmp_path / name).unlink()
    bare = Tokenizer.from_pretrained(str(tmp_path / "tokenizer.json"))
    assert (bare.eos_id, bare.stop_ids, bare.chat_template) == (4, [1, 4], LLAMA3_CHAT_TEMPLATE)
    from tokenizers import Tokenizer as RawTokenizer, models

    plain = RawTokenizer(models.BPE())
    plain.save(str(tmp_path / "tokenizer.json"))
    with pytest.raises(ValueError, match=r"tokenizer_config\.json: no eos_token"):
        Tokenizer.from_pretrained(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no tokenizer.json"):
        Tokenizer.from_pretrained(str(tmp_path / "nowhere"))
