"""A checkpoint's tokenizer on the `tokenizers` library: its own special tokens, its own chat template
(Jinja, rendered as transformers renders it), its stop ids; and the built-in offline world's tokenizer,
a small byte-level BPE with Llama-3's special tokens and chat template.

Reading order: the files a tokenizer is; the chat template, compiled as transformers compiles it; the
Tokenizer (special tokens and stop ids, encode / decode, chat prompts, assistant-only training masks,
saving); the built-in world's tokenizer.

A tokenizer is `tokenizer.json` plus a few small files beside it (SIDE_FILES). They are read as they are
and written back as they were, so a model fine-tuned from a pretrained checkpoint keeps its source's
special tokens, chat template and generation settings. A conversation is rendered to text first and that
text tokenized in one call, as `transformers.apply_chat_template` does: tokenizing the pieces separately
can merge differently at their edges.
"""
import json
import os
from datetime import datetime
from functools import lru_cache
from typing import Iterable

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment
from tokenizers import Regex, decoders, models, pre_tokenizers, trainers
from tokenizers import Tokenizer as RawTokenizer

from w2s.errors import MissingFileError, UserError
from w2s.gguf_checkpoint import is_gguf_file
from w2s.hf_io import is_hub_id
from w2s.model_source import resolve_checkpoint

TOKENIZER_FILE = "tokenizer.json"
# Read as they are and written back as they were (each is optional). chat_template.jinja, where present,
# holds the template instead of tokenizer_config.json's "chat_template" (transformers saves it so today).
SIDE_FILES = ("tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja", "generation_config.json")
# The named special tokens transformers passes to a chat template (its SPECIAL_TOKENS_ATTRIBUTES).
SPECIAL_TOKEN_NAMES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")

# ---------------------------------------------------------------------------------------------
# The chat template


@lru_cache(maxsize=16)
def compile_chat_template(template: str) -> jinja2.Template:
    """`template` compiled as transformers compiles a chat template (utils/chat_template_utils.py):
    a sandbox that cannot change its inputs; trim_blocks and lstrip_blocks (a block tag takes its
    newline and its indentation with it: templates are written over many lines for that); loop
    controls; the helpers templates call (raise_exception, strftime_now, a tojson that leaves
    non-ASCII alone); and `{% generation %}`, which transformers uses to mark assistant text and
    which here just renders what it holds."""

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[_GenerationBlock, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda format: datetime.now().strftime(format)
    return env.from_string(template)


class _GenerationBlock(jinja2.ext.Extension):
    """`{% generation %}...{% endgeneration %}`: rendered as its body (a call block, as transformers has it)."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

    def _body(self, caller):
        return caller()


# The built-in world's template: Llama-3 Instruct's, as its tokenizer_config.json ships it. Each
# message becomes <|start_header_id|>ROLE<|end_header_id|>\n\nCONTENT<|eot_id|> (content trimmed), the
# first one after <|begin_of_text|>; the generation prompt is an assistant header.
LLAMA3_CHAT_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)


# ---------------------------------------------------------------------------------------------
# The tokenizer


class Tokenizer:
    """A `tokenizers.Tokenizer` plus its checkpoint's side files: special tokens, chat template, stop ids.

    bos, eos, unk and pad come from tokenizer_config.json, else special_tokens_map.json (a string, or
    an AddedToken-style {"content": ...}). Generation stops at eos and at every id generation_config.json
    lists as eos_token_id (Instruct models end a turn with one token, text with another). Padding uses
    pad, else eos: padded positions are masked out of attention and loss anyway.
    """

    def __init__(self, raw: RawTokenizer, files: dict[str, str] | None = None, source: str = "<in memory>"):
        self.raw = raw
        self.files = dict(files or {})  # SIDE_FILES' texts, by name
        self.source = source  # tokenizer.json's path: errors name it and the files beside it
        config, tokens_map = self._json("tokenizer_config.json"), self._json("special_tokens_map.json")
        self.special_tokens = {}  # name -> token text, what the chat template sees
        for name in SPECIAL_TOKEN_NAMES:
            file, value = ("tokenizer_config.json", config.get(name))
            if value is None:
                file, value = ("special_tokens_map.json", tokens_map.get(name))
            if value is None:
                continue
            content = value.get("content") if isinstance(value, dict) else value
            if not isinstance(content, str) or not content:
                raise UserError(f"{self._where(file)}: field {name!r} must be a token (a string or "
                                f"{{\"content\": ...}}), got {value!r}"[:300])
            self.special_tokens[name] = content
        ids = {name: self._token_id(name) for name in ("bos_token", "eos_token", "unk_token", "pad_token")}
        if ids["eos_token"] is None:
            raise UserError(f"{self._where('tokenizer_config.json')}: no eos_token "
                            "(here or in special_tokens_map.json): w2s needs it to know where a reply ends")
        self.bos_id, self.eos_id, self.unk_id = ids["bos_token"], ids["eos_token"], ids["unk_token"]
        self.pad_id = ids["pad_token"] if ids["pad_token"] is not None else self.eos_id
        self.stop_ids = sorted({self.eos_id, *self._generation_eos_ids()})
        self.chat_template = self._chat_template(config)

    # ---- reading the side files

    def _where(self, name: str) -> str:
        return os.path.join(os.path.dirname(self.source), name) if self.source != "<in memory>" else name

    def _json(self, name: str) -> dict:
        if name not in self.files:
            return {}
        try:
            value = json.loads(self.files[name])
        except json.JSONDecodeError as e:
            raise UserError(f"{self._where(name)}:{e.lineno}: not valid JSON ({e.msg})") from None
        if not isinstance(value, dict):
            raise UserError(f"{self._where(name)}: expected a JSON object, got {type(value).__name__}")
        return value

    def _token_id(self, name: str) -> int | None:
        token = self.special_tokens.get(name)
        if token is None:
            return None
        token_id = self.raw.token_to_id(token)
        if token_id is None:
            raise UserError(f"{self._where('tokenizer_config.json')}: {name} {token!r} is not in "
                            f"{self.source}'s vocabulary")
        return token_id

    def _generation_eos_ids(self) -> list[int]:
        value = self._json("generation_config.json").get("eos_token_id")
        ids = value if isinstance(value, list) else [] if value is None else [value]
        for token_id in ids:
            if not isinstance(token_id, int) or isinstance(token_id, bool) or not 0 <= token_id < self.vocab_size:
                raise UserError(f"{self._where('generation_config.json')}: field 'eos_token_id' must be token ids "
                                f"below {self.vocab_size} (an int or a list), got {value!r}"[:300])
        return ids

    def _chat_template(self, config: dict) -> str | None:
        """chat_template.jinja, else tokenizer_config.json's chat_template: a string, or a list of
        {"name", "template"} of which "default" is the one (as transformers picks it)."""
        if "chat_template.jinja" in self.files:
            return self.files["chat_template.jinja"]
        template = config.get("chat_template")
        if isinstance(template, list):
            named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
            template = named.get("default")
            if template is None:
                raise UserError(f"{self._where('tokenizer_config.json')}: field 'chat_template' lists templates "
                                f"{sorted(map(str, named))} but none named 'default'")
        if template is not None and not isinstance(template, str):
            raise UserError(f"{self._where('tokenizer_config.json')}: field 'chat_template' must be a string or a "
                            f"list of {{\"name\", \"template\"}}, got {type(template).__name__}")
        return template

    @property
    def vocab_size(self) -> int:
        return self.raw.get_vocab_size(with_added_tokens=True)

    @classmethod
    def from_pretrained(cls, path_or_hub_id: str) -> "Tokenizer":
        """A tokenizer folder (or its tokenizer.json, a Hub repo id, or a GGUF file): tokenizer.json and the side
        files beside it."""
        if os.path.isfile(path_or_hub_id) and not is_gguf_file(path_or_hub_id):
            directory, tokenizer_file = os.path.dirname(path_or_hub_id), path_or_hub_id
        else:
            if not os.path.exists(path_or_hub_id) and not is_hub_id(path_or_hub_id):
                raise MissingFileError(f"{path_or_hub_id}: no tokenizer.json (no such folder)")
            directory = resolve_checkpoint(path_or_hub_id, files=[TOKENIZER_FILE, *SIDE_FILES])
            tokenizer_file = os.path.join(directory, TOKENIZER_FILE)
        if not os.path.exists(tokenizer_file):
            raise MissingFileError(f"{tokenizer_file}: no tokenizer.json (this loader reads the `tokenizers` format)")
        try:
            raw = RawTokenizer.from_file(tokenizer_file)
        except Exception as e:  # the tokenizers library's own error for a file it cannot parse
            raise UserError(f"{tokenizer_file}: not a tokenizer file ({e})") from None
        files = {}
        for name in SIDE_FILES:
            path = os.path.join(directory, name)
            if os.path.isfile(path):
                with open(path, encoding="utf-8") as f:
                    files[name] = f.read()
        if not files and all(raw.token_to_id(t) is not None for t in LLAMA3_SPECIAL_TOKENS):
            files = builtin_side_files(raw)  # a bare tokenizer.json of the built-in world, as older versions wrote it
        return cls(raw, files, source=tokenizer_file)

    def save_pretrained(self, out_dir: str) -> None:
        """tokenizer.json and the side files as they were read: transformers' AutoTokenizer loads the folder."""
        os.makedirs(out_dir, exist_ok=True)
        self.raw.save(os.path.join(out_dir, TOKENIZER_FILE))
        for name, text in self.files.items():
            with open(os.path.join(out_dir, name), "w", encoding="utf-8") as f:
                f.write(text)

    # ---- text

    def encode(self, text: str, bos: bool = False) -> list[int]:
        """Ids of `text`, special-token strings in it included; bos=True puts bos first (if the tokenizer has one)."""
        ids = self.raw.encode(text, add_special_tokens=False).ids
        return [self.bos_id] + ids if bos and self.bos_id is not None else ids

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        return self.raw.decode(list(ids), skip_special_tokens=skip_special_tokens)

    # ---- chat

    def render_chat(self, messages: list[dict], add_generation_prompt: bool = True) -> str:
        """`messages` as text under the checkpoint's chat template, as transformers' apply_chat_template
        renders it (tools and documents none; the special tokens by name)."""
        if self.chat_template is None:
            raise UserError(f"{self._where('tokenizer_config.json')}: no chat template (neither this file's "
                            "'chat_template' nor chat_template.jinja), and a chat prompt needs one; for a base "
                            "model use --template plain")
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or "role" not in message or "content" not in message:
                raise ValueError(f"message {i} must be an object with 'role' and 'content', got {message!r}")
        try:
            template = compile_chat_template(self.chat_template)
        except jinja2.TemplateSyntaxError as e:
            template_file = "chat_template.jinja" if "chat_template.jinja" in self.files else "tokenizer_config.json"
            raise UserError(f"{self._where(template_file)}: "
                            f"the chat template does not compile (template line {e.lineno}: {e.message})") from None
        try:
            return template.render(messages=messages, tools=None, documents=None,
                                   add_generation_prompt=add_generation_prompt, **self.special_tokens)
        except jinja2.TemplateError as e:  # raise_exception(...) in the template: it refuses this conversation
            raise UserError(f"{self.source}: the chat template refused a conversation ({e})") from None

    def encode_chat(self, messages: list[dict], add_generation_prompt: bool = True) -> list[int]:
        """Token ids of `messages` under the chat template: the rendered text tokenized in one call."""
        return self.encode(self.render_chat(messages, add_generation_prompt))

    def assistant_spans(self, messages: list[dict]) -> tuple[str, list[tuple[int, int]]]:
        """The whole conversation's text and the character span (start, end) of each assistant turn.

        A turn starts where the conversation before it, rendered with the generation prompt, ends
        (what the model was asked with) and ends where the conversation through it ends, cut after
        its last stop token (the end-of-turn token is trained on; ChatML's newline after it is not).
        That works for any template that renders a conversation's beginning as the beginning of the
        whole; one that does not is refused, since its turns cannot be found this way.
        """
        text = self.render_chat(messages, add_generation_prompt=False)
        stop_tokens = [self.raw.id_to_token(i) for i in self.stop_ids]
        spans = []
        for i, message in enumerate(messages):
            if message.get("role") != "assistant":
                continue
            start = len(before := self.render_chat(messages[:i], add_generation_prompt=True))
            end = len(through := self.render_chat(messages[:i + 1], add_generation_prompt=False))
            if not (text.startswith(before) and text.startswith(through) and start <= end):
                raise UserError(f"{self.source}: the chat template does not render the conversation before message "
                                f"{i} (and through it) as the beginning of the whole conversation, so its assistant "
                                "tokens cannot be found for an assistant-only loss")
            ends = [text.rfind(t, start, end) + len(t) for t in stop_tokens if text.rfind(t, start, end) >= 0]
            spans.append((start, max(ends) if ends else end))
        return text, spans

    def encode_chat_for_training(self, messages: list[dict]) -> tuple[list[int], list[bool]]:
        """Ids of a whole conversation and a mask that is True on each assistant token (content and end-of-turn
        token): a token belongs to the turn its first character is in."""
        text, spans = self.assistant_spans(messages)
        encoding = self.raw.encode(text, add_special_tokens=False)
        mask = [any(start <= tok_start < end for start, end in spans) for tok_start, _ in encoding.offsets]
        return encoding.ids, mask


# ---------------------------------------------------------------------------------------------
# The built-in world's tokenizer

BEGIN_OF_TEXT = "<|begin_of_text|>"
END_OF_TEXT = "<|end_of_text|>"
START_HEADER = "<|start_header_id|>"
END_HEADER = "<|end_header_id|>"
EOT = "<|eot_id|>"
LLAMA3_SPECIAL_TOKENS = [BEGIN_OF_TEXT, END_OF_TEXT, START_HEADER, END_HEADER, EOT]

# Llama-3's pre-tokenizer split, except that digits go one per token (Llama-3 groups up to 3): a
# tiny model learns digit-by-digit arithmetic far more easily than a vocabulary of 1000 numbers. A
# space before a number rides on its first digit (" 17" is " 1", "7"), as a space before a word
# does: a lone space token before every number would spend many of the world's tokens on spaces and
# teach a tiny model worse.
SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+| ?\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def builtin_side_files(raw: RawTokenizer) -> dict[str, str]:
    """The built-in world's side files, shaped as Llama-3 Instruct's: bos <|begin_of_text|>, eos <|eot_id|>,
    pad <|end_of_text|> (Llama-3 has none), the Instruct template, and generation stopping at the end of a
    turn or of a text."""
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BEGIN_OF_TEXT,
        "eos_token": EOT,
        "pad_token": END_OF_TEXT,
        "chat_template": LLAMA3_CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "model_input_names": ["input_ids", "attention_mask"],
    }
    generation = {"bos_token_id": raw.token_to_id(BEGIN_OF_TEXT),
                  "eos_token_id": [raw.token_to_id(EOT), raw.token_to_id(END_OF_TEXT)]}
    return {"tokenizer_config.json": json.dumps(config, indent=2) + "\n",
            "generation_config.json": json.dumps(generation, indent=2) + "\n"}


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
        special_tokens=LLAMA3_SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    raw.train_from_iterator(texts, trainer)
    return Tokenizer(raw, builtin_side_files(raw))
