"""Llama-3 tokenizer on the `tokenizers` library: special tokens, the Instruct chat template,
and a small byte-level BPE trainer for the built-in offline world.

The chat template is written out in Python rather than run through Jinja, so a reader sees
exactly which strings surround each turn. The rendered conversation is tokenized in one call,
as `transformers.apply_chat_template` does, because tokenizing the pieces separately can merge
differently at their edges.
"""
import json
import os
from typing import Iterable

from tokenizers import Regex, decoders, models, pre_tokenizers, trainers
from tokenizers import Tokenizer as RawTokenizer

from w2s.errors import MissingFileError, UserError
from w2s.gguf_checkpoint import gguf_checkpoint_folder, is_gguf_file
from w2s.hf_io import fetch_from_hub, is_hub_id, read_json

BEGIN_OF_TEXT = "<|begin_of_text|>"
END_OF_TEXT = "<|end_of_text|>"
START_HEADER = "<|start_header_id|>"
END_HEADER = "<|end_header_id|>"
EOT = "<|eot_id|>"
SPECIAL_TOKENS = [BEGIN_OF_TEXT, END_OF_TEXT, START_HEADER, END_HEADER, EOT]

# The Llama-3 Instruct template as shipped in tokenizer_config.json. `chat_template_text`
# below is the same thing in Python; the tests check the two agree through transformers.
LLAMA3_CHAT_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

# Llama-3's pre-tokenizer split, except that digits go one per token (Llama-3 groups up to 3): a
# tiny model learns digit-by-digit arithmetic far more easily than a vocabulary of 1000 numbers. A
# space before a number rides on its first digit (" 17" is " 1", "7"), as a space before a word
# does: a lone space token before every number made ~15% of the world's tokens, and the `tiny`
# quickstart model reached 5% test accuracy with it, 16.5% without (same data, steps and seed).
SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+| ?\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]


def _header(role: str) -> str:
    return f"{START_HEADER}{role}{END_HEADER}\n\n"


def chat_template_text(messages: list[dict], add_generation_prompt: bool = True) -> tuple[str, list[tuple[int, int]]]:
    """Render a conversation with the Llama-3 Instruct template.

    Returns the text and the character spans (start, end) of every assistant turn's content
    together with its closing <|eot_id|>: exactly what supervised fine-tuning trains on.
    """
    parts, spans, length = [BEGIN_OF_TEXT], [], len(BEGIN_OF_TEXT)
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise ValueError(f"message {i} must be an object with 'role' and 'content', got {message!r}")
        head = _header(message["role"])
        body = str(message["content"]).strip() + EOT  # the template trims content
        if message["role"] == "assistant":
            spans.append((length + len(head), length + len(head) + len(body)))
        parts += [head, body]
        length += len(head) + len(body)
    if add_generation_prompt:
        parts.append(_header("assistant"))
    return "".join(parts), spans


class Tokenizer:
    """A `tokenizers.Tokenizer` plus the Llama-3 special tokens and chat template."""

    def __init__(self, raw: RawTokenizer, eos_token: str = EOT, source: str = "<in memory>"):
        self.raw = raw
        self.source = source
        ids = {}
        for token in SPECIAL_TOKENS:
            token_id = raw.token_to_id(token)
            if token_id is None:
                raise UserError(f"{source}: tokenizer has no special token {token!r} (not a Llama-3 tokenizer?)")
            ids[token] = token_id
        if raw.token_to_id(eos_token) is None:
            raise UserError(f"{source}: eos_token {eos_token!r} is not in the vocabulary")
        self.eos_token = eos_token
        self.bos_id = ids[BEGIN_OF_TEXT]
        self.eot_id = ids[EOT]
        self.end_of_text_id = ids[END_OF_TEXT]
        self.eos_id = raw.token_to_id(eos_token)
        # Instruct models end a turn with <|eot_id|>, base models end text with <|end_of_text|>: stop at either.
        self.stop_ids = sorted({self.eot_id, self.end_of_text_id})
        # Llama-3 has no pad token; padded positions are masked out of attention and loss anyway.
        self.pad_id = self.end_of_text_id

    @property
    def vocab_size(self) -> int:
        return self.raw.get_vocab_size(with_added_tokens=True)

    @classmethod
    def from_pretrained(cls, path_or_hub_id: str) -> "Tokenizer":
        """Load `tokenizer.json` (+ `tokenizer_config.json`) from a directory, a file, a Hub repo id or a GGUF file."""
        if is_gguf_file(path_or_hub_id):
            path_or_hub_id = gguf_checkpoint_folder(path_or_hub_id)
        if os.path.isfile(path_or_hub_id):
            directory, tokenizer_file = os.path.dirname(path_or_hub_id), path_or_hub_id
        else:
            directory = path_or_hub_id
            if not os.path.isdir(directory):
                if not is_hub_id(directory):
                    raise MissingFileError(f"{path_or_hub_id}: no tokenizer.json (no such folder)")
                directory = fetch_from_hub(path_or_hub_id, TOKENIZER_FILES)
            tokenizer_file = os.path.join(directory, "tokenizer.json")
        if not os.path.exists(tokenizer_file):
            raise MissingFileError(f"{tokenizer_file}: no tokenizer.json (this loader reads the `tokenizers` format)")
        eos_token = EOT
        config_file = os.path.join(directory, "tokenizer_config.json")
        if os.path.exists(config_file):
            eos = read_json(config_file).get("eos_token")
            eos = eos.get("content") if isinstance(eos, dict) else eos
            eos_token = eos or EOT
        try:
            raw = RawTokenizer.from_file(tokenizer_file)
        except Exception as e:  # the tokenizers library's own error for a file it cannot parse
            raise UserError(f"{tokenizer_file}: not a tokenizer file ({e})") from None
        return cls(raw, eos_token=eos_token, source=tokenizer_file)

    def save_pretrained(self, out_dir: str) -> None:
        """Write `tokenizer.json` and a `tokenizer_config.json` that `transformers` understands."""
        os.makedirs(out_dir, exist_ok=True)
        self.raw.save(os.path.join(out_dir, "tokenizer.json"))
        config = {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": BEGIN_OF_TEXT,
            "eos_token": self.eos_token,
            "pad_token": END_OF_TEXT,
            "chat_template": LLAMA3_CHAT_TEMPLATE,
            "clean_up_tokenization_spaces": False,
            "model_input_names": ["input_ids", "attention_mask"],
        }
        with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
            json.dump(config, f, indent=2)

    def encode(self, text: str, bos: bool = False) -> list[int]:
        ids = self.raw.encode(text, add_special_tokens=False).ids
        return [self.bos_id] + ids if bos else ids

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        return self.raw.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def encode_chat(self, messages: list[dict], add_generation_prompt: bool = True) -> list[int]:
        """Token ids of `messages` under the Llama-3 Instruct template (starts with <|begin_of_text|>)."""
        text, _ = chat_template_text(messages, add_generation_prompt)
        return self.raw.encode(text, add_special_tokens=False).ids

    def encode_chat_for_training(self, messages: list[dict]) -> tuple[list[int], list[bool]]:
        """Ids of a whole conversation and a mask that is True on each assistant token (content and <|eot_id|>)."""
        text, spans = chat_template_text(messages, add_generation_prompt=False)
        encoding = self.raw.encode(text, add_special_tokens=False)
        mask = [any(start <= tok_start < end for start, end in spans) for tok_start, _ in encoding.offsets]
        return encoding.ids, mask


def train_tokenizer(texts: Iterable[str], vocab_size: int = 512) -> Tokenizer:
    """Train a byte-level BPE tokenizer with the Llama-3 special tokens (ids 0-4) on `texts`.

    Byte-level means any text is encodable (no unknown token); the special tokens come first so
    their ids are the same in every tokenizer this function makes.
    """
    raw = RawTokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    raw.train_from_iterator(texts, trainer)
    return Tokenizer(raw)
