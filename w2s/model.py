"""Llama-3 (3, 3.1, 3.2) in plain PyTorch; `from_pretrained` / `save_pretrained` read and write Hugging
Face checkpoints (their config and safetensors formats are in w2s/hf_io.py).

Module and parameter names follow the Hugging Face layout (`layers.0.self_attn.q_proj.weight`, ...),
and rotary embeddings use Hugging Face's rotate-half convention, so a checkpoint maps onto this
model by name alone: no renaming tables, no q/k permutation.

Two forward paths share every weight:
- training / scoring: `model(tokens)` is a plain causal LM over the whole sequence;
- generation: `model(tokens, positions=..., cache=...)` writes keys and values into a preallocated
  `KVCache` at each row's own positions and attends to what that row has written so far. Rows can
  sit at different positions (ragged prompts), so one row's output never depends on its batch mates.
"""
import copy
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from w2s import hf_io
from w2s.model_source import resolve_checkpoint


@dataclass
class ModelArgs:
    dim: int = 4096
    n_layers: int = 32
    n_heads: int = 32
    n_kv_heads: int = 8
    vocab_size: int = 128256
    ffn_dim: int = 14336
    head_dim: int | None = None  # None: dim // n_heads
    norm_eps: float = 1e-5
    rope_theta: float = 500000.0
    # Llama-3.1 frequency scaling: {"rope_type": "llama3", "factor", "low_freq_factor",
    # "high_freq_factor", "original_max_position_embeddings"}; None for plain RoPE.
    rope_scaling: dict | None = None
    max_seq_len: int = 8192
    tie_embeddings: bool = False
    init_std: float = 0.02
    bos_token_id: int | None = 128000
    eos_token_id: int | list[int] | None = 128001

    def __post_init__(self):
        if self.head_dim is None:
            self.head_dim = self.dim // self.n_heads
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_heads ({self.n_heads}) must be a multiple of n_kv_heads ({self.n_kv_heads})")
        if self.rope_scaling is not None and self.rope_scaling.get("rope_type", "default") == "default":
            self.rope_scaling = None

    @classmethod
    def preset(cls, name: str, **overrides) -> "ModelArgs":
        if name not in PRESETS:
            raise ValueError(f"unknown model preset {name!r}; presets: {', '.join(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    @classmethod
    def from_hf_config(cls, config: dict, source: str = "config.json") -> "ModelArgs":
        """Read a Hugging Face `config.json` dict (either spelling of the rotary settings; see w2s.hf_io)."""
        return cls(**hf_io.args_from_hf_config(config, source))

    def to_hf_config(self) -> dict:
        """The classic `config.json` spelling, which transformers (old and new) and vLLM all read."""
        return hf_io.hf_config_from_args(self)


_LLAMA31_SCALING = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                    "original_max_position_embeddings": 8192}
_LLAMA32_SCALING = {**_LLAMA31_SCALING, "factor": 32.0}
_SMALL = dict(rope_theta=10000.0, tie_embeddings=True, bos_token_id=0, eos_token_id=4)  # train_tokenizer's ids

PRESETS: dict[str, dict] = {
    # The real shapes.
    "llama3-8b": dict(),
    "llama3.1-8b": dict(rope_scaling=_LLAMA31_SCALING, max_seq_len=131072),
    "llama3.2-1b": dict(dim=2048, n_layers=16, n_heads=32, n_kv_heads=8, ffn_dim=8192, head_dim=64,
                        tie_embeddings=True, rope_scaling=_LLAMA32_SCALING, max_seq_len=131072),
    "llama3.2-3b": dict(dim=3072, n_layers=28, n_heads=24, n_kv_heads=8, ffn_dim=8192, head_dim=128,
                        tie_embeddings=True, rope_scaling=_LLAMA32_SCALING, max_seq_len=131072),
    # Small shapes for a CPU. vocab_size is a placeholder: training from scratch sets it from the tokenizer.
    "tiny": dict(dim=128, n_layers=2, n_heads=4, n_kv_heads=4, ffn_dim=512, vocab_size=512, max_seq_len=512, **_SMALL),
    # A weak model by capacity (about 1/8 of tiny's compute): the mini study's weak teacher.
    "micro": dict(dim=64, n_layers=1, n_heads=2, n_kv_heads=2, ffn_dim=256, vocab_size=512, max_seq_len=512, **_SMALL),
    "nano": dict(dim=32, n_layers=1, n_heads=2, n_kv_heads=2, ffn_dim=128, vocab_size=512, max_seq_len=512, **_SMALL),
    "small": dict(dim=256, n_layers=4, n_heads=8, n_kv_heads=4, ffn_dim=768, vocab_size=512, max_seq_len=1024,
                  **_SMALL),
    "30m": dict(dim=512, n_layers=8, n_heads=8, n_kv_heads=4, ffn_dim=1536, vocab_size=8192, max_seq_len=2048,
                **_SMALL),
}


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Normalize in fp32: in bf16 the mean of squares loses too many bits.
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(x.dtype)


def rope_inv_freq(args: ModelArgs, device=None) -> torch.Tensor:
    """Rotary inverse frequencies, with Llama-3.1's scaling when configured: long wavelengths
    (beyond the original context) are slowed by `factor`, short ones are kept, and the band
    between is interpolated smoothly."""
    d = args.head_dim
    inv_freq = 1.0 / (args.rope_theta ** (torch.arange(0, d, 2, dtype=torch.int64, device=device).float() / d))
    s = args.rope_scaling
    if not s:
        return inv_freq
    old_len = s["original_max_position_embeddings"]
    low_freq_wavelen = old_len / s["low_freq_factor"]
    high_freq_wavelen = old_len / s["high_freq_factor"]
    wavelen = 2 * math.pi / inv_freq
    scaled = torch.where(wavelen > low_freq_wavelen, inv_freq / s["factor"], inv_freq)
    smooth = (old_len / wavelen - s["low_freq_factor"]) / (s["high_freq_factor"] - s["low_freq_factor"])
    smoothed = (1 - smooth) * scaled / s["factor"] + smooth * scaled
    is_medium = ~(wavelen < high_freq_wavelen) & ~(wavelen > low_freq_wavelen)
    return torch.where(is_medium, smoothed, scaled)


def rope_cos_sin(inv_freq: torch.Tensor, positions: torch.Tensor, dtype: torch.dtype):
    """cos and sin of shape [B, 1, T, head_dim] for integer positions [B, T] (angles in fp32)."""
    angles = positions[..., None].float() * inv_freq  # [B, T, head_dim/2]
    angles = torch.cat([angles, angles], dim=-1)[:, None]  # rotate-half layout: both halves share a frequency
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


class KVCache:
    """Preallocated keys and values for every layer: [n_layers, batch, n_kv_heads, max_len, head_dim].

    Row b's token at position p lives in slot p. A query at position p attends to slots <= p of its
    own row, so slots a row has not written yet (or padding from a longer batch mate's prefill,
    written past the row's end and overwritten before it is ever visible) never leak in.
    """

    def __init__(self, args: ModelArgs, batch_size: int, max_len: int, device=None, dtype=torch.float32):
        if max_len > args.max_seq_len:
            raise ValueError(f"cache length {max_len} exceeds the model's maximum length {args.max_seq_len}")
        shape = (args.n_layers, batch_size, args.n_kv_heads, max_len, args.head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.max_len = max_len

    @property
    def batch_size(self) -> int:
        return self.k.shape[1]

    def rows(self, start: int, stop: int) -> "KVCache":
        """Rows start..stop-1 as a cache of their own that shares this one's memory (a slice is a view,
        so the model's writes through it land here): lets a sampler prefill a batch group by group."""
        view = copy.copy(self)
        view.k, view.v = self.k[:, start:stop], self.v[:, start:stop]
        return view

    def keep_rows(self, rows: torch.Tensor) -> None:
        """Drop finished rows so they stop costing compute."""
        self.k = self.k[:, rows]
        self.v = self.v[:, rows]

    def update(self, layer: int, positions: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attend_len: int):
        """Write k, v [B, H, T, D] at `positions` [B, T]; return this layer's first `attend_len` slots."""
        rows = torch.arange(k.shape[0], device=k.device)[:, None]
        self.k[layer][rows, :, positions] = k.transpose(1, 2)
        self.v[layer][rows, :, positions] = v.transpose(1, 2)
        return self.k[layer, :, :, :attend_len], self.v[layer, :, :, :attend_len]


class Attention(nn.Module):
    def __init__(self, args: ModelArgs, layer_idx: int):
        super().__init__()
        self.layer_idx = layer_idx
        self.n_heads, self.n_kv_heads, self.head_dim = args.n_heads, args.n_kv_heads, args.head_dim
        self.q_proj = nn.Linear(args.dim, args.n_heads * args.head_dim, bias=False)
        self.k_proj = nn.Linear(args.dim, args.n_kv_heads * args.head_dim, bias=False)
        self.v_proj = nn.Linear(args.dim, args.n_kv_heads * args.head_dim, bias=False)
        self.o_proj = nn.Linear(args.n_heads * args.head_dim, args.dim, bias=False)

    def forward(self, x, cos, sin, cache=None, positions=None, mask=None, attend_len=None):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        gqa = self.n_kv_heads != self.n_heads
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=gqa)
        else:
            k, v = cache.update(self.layer_idx, positions, k, v, attend_len)
            if T == 1 and gqa:
                # Decoding one token per row: the query heads that share a KV head go in as that head's
                # queries (the row's mask holds for all of them). Same result as enable_gqa, but each KV
                # head is read once; torch's CPU flash kernel is several times faster this way in bf16.
                n_rep = self.n_heads // self.n_kv_heads
                y = F.scaled_dot_product_attention(q.reshape(B, self.n_kv_heads, n_rep, self.head_dim), k, v,
                                                   attn_mask=mask).reshape(B, self.n_heads, 1, self.head_dim)
            else:
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=gqa)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, -1))


class MLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x))."""

    def __init__(self, args: ModelArgs):
        super().__init__()
        self.gate_proj = nn.Linear(args.dim, args.ffn_dim, bias=False)
        self.up_proj = nn.Linear(args.dim, args.ffn_dim, bias=False)
        self.down_proj = nn.Linear(args.ffn_dim, args.dim, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, args: ModelArgs, layer_idx: int):
        super().__init__()
        self.input_layernorm = RMSNorm(args.dim, args.norm_eps)
        self.self_attn = Attention(args, layer_idx)
        self.post_attention_layernorm = RMSNorm(args.dim, args.norm_eps)
        self.mlp = MLP(args)

    def forward(self, x, cos, sin, cache=None, positions=None, mask=None, attend_len=None):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, cache, positions, mask, attend_len)
        return x + self.mlp(self.post_attention_layernorm(x))


class Llama(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.args = args
        self.embed_tokens = nn.Embedding(args.vocab_size, args.dim)
        self.layers = nn.ModuleList(Block(args, i) for i in range(args.n_layers))
        self.norm = RMSNorm(args.dim, args.norm_eps)
        self.lm_head = nn.Linear(args.dim, args.vocab_size, bias=False)
        if args.tie_embeddings:
            self.lm_head.weight = self.embed_tokens.weight
        # Derived from the config, never stored in checkpoints (recomputed after meta-device init).
        self.register_buffer("inv_freq", rope_inv_freq(args), persistent=False)
        if self.embed_tokens.weight.device.type != "meta":
            self.init_weights()

    @torch.no_grad()
    def init_weights(self) -> None:
        """Initialization for training from scratch: N(0, init_std), with the projections that write
        into the residual stream scaled down by sqrt(2 * n_layers) so its variance does not grow with depth."""
        std = self.args.init_std
        for name, p in self.named_parameters():
            if name.endswith("layernorm.weight") or name == "norm.weight":
                nn.init.ones_(p)
            elif name.endswith(("o_proj.weight", "down_proj.weight")):
                nn.init.normal_(p, 0.0, std / math.sqrt(2 * self.args.n_layers))
            else:
                nn.init.normal_(p, 0.0, std)
        self.reset_rope()

    def reset_rope(self) -> None:
        self.inv_freq = rope_inv_freq(self.args, device=self.embed_tokens.weight.device)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())  # tied weights are counted once

    def flops_per_token(self, seq_len: int) -> float:
        """Training FLOPs per token (forward + backward): 6 per weight plus attention's score/value matmuls."""
        a = self.args
        weights = self.num_params() - (0 if a.tie_embeddings else a.vocab_size * a.dim)  # the embedding lookup is free
        # Attention: per layer and token, q @ k^T and probs @ v are 2 * n_heads * head_dim * seq_len
        # multiply-adds each forward, i.e. 4 * ... FLOPs forward and twice that backward: 12 in all
        # (the PaLM paper's count; nanoGPT's and torchtitan's too, with no discount for causality).
        return 6 * weights + 12 * a.n_layers * a.n_heads * a.head_dim * seq_len

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor | None = None, cache: KVCache | None = None,
                attend_len: int | None = None, logits_at: torch.Tensor | None = None) -> torch.Tensor:
        """tokens [B, T] -> logits [B, T, vocab].

        Without a cache: a causal LM over positions 0..T-1. With a cache: `positions` [B, T] says
        where each token sits in its own row; keys/values go into the cache and each query attends
        to its row's slots up to its position. `attend_len` bounds how many slots are read (default:
        the whole cache, a static shape that suits torch.compile). `logits_at` [B] (optional): compute
        logits only at that index of each row, returning [B, 1, vocab] (a prefill needs just each
        prompt's last token, and the head over every prompt token would cost B * T * vocab).
        """
        B, T = tokens.shape
        if positions is None:
            if cache is not None:
                raise ValueError("decoding with a cache needs explicit positions")
            positions = torch.arange(T, device=tokens.device)[None]
        x = self.embed_tokens(tokens)
        cos, sin = rope_cos_sin(self.inv_freq, positions, x.dtype)
        mask = None
        if cache is not None:
            attend_len = attend_len or cache.max_len
            slots = torch.arange(attend_len, device=tokens.device)
            mask = (slots[None, None, :] <= positions[:, :, None])[:, None]  # [B, 1, T, attend_len]
        for layer in self.layers:
            x = layer(x, cos, sin, cache, positions, mask, attend_len)
        if logits_at is not None:
            x = x[torch.arange(B, device=x.device), logits_at][:, None]
        return self.lm_head(self.norm(x))

    # ---- Hugging Face checkpoints (the file formats are in w2s/hf_io.py) ------------------------

    @classmethod
    def from_pretrained(cls, path_or_hub_id: str, dtype: torch.dtype | None = None, device="cpu") -> "Llama":
        """Load a Hugging Face Llama checkpoint (a directory, a Hub repo id or a GGUF file).

        The model is built on the meta device and the checkpoint's tensors are assigned to it, so
        the weights exist once in memory (an 8B model in bf16 needs 16 GB, not 32). Only JSON and
        safetensors files are read. dtype None keeps the stored dtype.
        """
        directory = resolve_checkpoint(path_or_hub_id)
        args = ModelArgs.from_hf_config(*hf_io.read_hf_config(directory))
        with torch.device("meta"):
            model = cls(args)
        expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
        if args.tie_embeddings:
            expected.pop("lm_head.weight")
        state = hf_io.read_safetensors(directory, expected, device, dtype)
        model.load_state_dict(state, strict=False, assign=True)
        if args.tie_embeddings:
            model.lm_head.weight = model.embed_tokens.weight  # assign=True replaced the shared Parameter
        model.reset_rope()
        return model

    def save_pretrained(self, out_dir: str, max_shard_bytes: int = 5 * 1024**3) -> None:
        """Write config.json and safetensors in the Hugging Face layout; above `max_shard_bytes`,
        shards `model-0000i-of-0000n.safetensors` with `model.safetensors.index.json`."""
        state = {}
        for name, t in self.state_dict().items():
            if name == "lm_head.weight" and self.args.tie_embeddings:
                continue  # tied: stored once, as HF does
            state["model." + name if name != "lm_head.weight" else name] = t.detach().to("cpu").contiguous()
        hf_io.write_checkpoint(out_dir, self.args.to_hf_config(), state, max_shard_bytes)
