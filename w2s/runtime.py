"""Where a command runs: devices, dtypes, the process group, and a checkpoint loaded with its tokenizer.

Reading order: dtype names; the default device; joining torchrun's process group (or making a
group of one); loading a model and its tokenizer for generation, checked to belong together.
"""
import os

import torch
import torch.distributed as dist

from w2s.errors import MissingFileError, UserError
from w2s.model import Llama, ModelArgs
from w2s.tokenizer import Tokenizer

# Flag values -> torch dtypes. Training takes bf16 or fp32 (fp16 would need loss scaling).
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def default_device() -> str:
    """cuda:LOCAL_RANK when torch sees a GPU (torchrun sets LOCAL_RANK), else cpu."""
    return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu"


def resolve_dtype(dtype: str, device: str) -> str:
    """auto: bf16 on a GPU, fp32 on a CPU."""
    if dtype == "auto":
        dtype = "bf16" if device.startswith("cuda") else "fp32"
    if dtype not in DTYPES:
        raise UserError(f"--dtype {dtype}: unknown; choose from auto, {', '.join(DTYPES)}")
    return dtype


def rank_and_world() -> tuple[int, int]:
    """This process's rank and the number of processes, as torchrun sets them (0 and 1 without it)."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def init_distributed(device_type: str, backend: str | None = None) -> tuple[int, int, torch.device]:
    """Join the process group torchrun describes in the environment, or make a group of one
    (an in-memory store, no ports to pick), so the same code runs with 1 or N processes.
    Returns (rank, world size, this process's device). Backend: nccl on GPUs, gloo on CPUs."""
    backend = backend or ("nccl" if device_type == "cuda" else "gloo")
    if "RANK" in os.environ:  # torchrun
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        device = torch.device("cuda", local_rank) if device_type == "cuda" else torch.device("cpu")
        if device_type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend, device_id=device if device_type == "cuda" and backend == "nccl" else None)
    else:
        device = torch.device("cuda", 0) if device_type == "cuda" else torch.device("cpu")
        dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)
    return dist.get_rank(), dist.get_world_size(), device


def check_tokenizer_fits(tokenizer: Tokenizer, args: ModelArgs, model_source: str) -> None:
    """A tokenizer whose ids the model's embedding cannot hold belongs to another model."""
    if tokenizer.vocab_size > args.vocab_size:
        raise UserError(f"{tokenizer.source}: the tokenizer has {tokenizer.vocab_size} tokens but the model "
                        f"{model_source} only {args.vocab_size}: they do not belong together (--tokenizer)")


def load_model_and_tokenizer(model_path: str, tokenizer_path: str | None = None, dtype: str = "auto",
                             device: str | None = None) -> tuple[Llama, Tokenizer]:
    """A checkpoint (directory or Hub id) for generation, and its tokenizer (from the same place
    unless given). dtype auto: bf16 on a GPU, fp32 on a CPU."""
    device = device or default_device()
    model = Llama.from_pretrained(model_path, dtype=DTYPES[resolve_dtype(dtype, device)], device=device).eval()
    try:
        tokenizer = Tokenizer.from_pretrained(tokenizer_path or model_path)
    except FileNotFoundError as e:
        raise MissingFileError(f"{e} (pass --tokenizer for a checkpoint saved without one)") from None
    check_tokenizer_fits(tokenizer, model.args, model_path)
    return model, tokenizer
