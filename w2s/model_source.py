"""Where --model / --init points: an HF folder, a Hub id or a Llama GGUF file, resolved into one local HF folder.

Every loader asks here (w2s.model, w2s.tokenizer, train.py, bench/), so the three spellings mean the same
thing everywhere. A Hub repo is downloaded once per machine, only the files a caller asks for (train.py's
model shape needs config.json alone, a tokenizer its own few files); a GGUF file is converted once per
machine (w2s/gguf_checkpoint.py).
"""
import os

from w2s.errors import MissingFileError
from w2s.gguf_checkpoint import gguf_checkpoint_folder, is_gguf_file
from w2s.hf_io import fetch_from_hub, is_hub_id

# Everything a checkpoint is on the Hub: its config, weights and tokenizer, none of the repo's other files.
HUB_FILES = ["config.json", "generation_config.json", "*.safetensors", "model.safetensors.index.json",
             "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]


def resolve_checkpoint(path_or_hub_id: str, files: list[str] | None = None) -> str:
    """The local folder holding a checkpoint: the path itself, the folder a GGUF file is converted into,
    or a Hub repo's download of `files` (glob patterns; None: HUB_FILES, the whole checkpoint)."""
    if os.path.isdir(path_or_hub_id):
        return path_or_hub_id
    if is_gguf_file(path_or_hub_id):
        return gguf_checkpoint_folder(path_or_hub_id)
    if not is_hub_id(path_or_hub_id):
        raise MissingFileError(f"{path_or_hub_id}: no such checkpoint folder")
    return fetch_from_hub(path_or_hub_id, HUB_FILES if files is None else list(files))
