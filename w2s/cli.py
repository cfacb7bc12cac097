"""What the entry scripts share on the command line: the progress line, --help with defaults, and the
generation flags sample.py and evaluate.py take (checked before a model loads, then read as one `Sampling`).
"""
import argparse
import sys
import time

import torch

from w2s.errors import UserError
from w2s.generation import DEFAULT_MAX_NEW_TOKENS, TEMPLATES, Sampling

# ---------------------------------------------------------------------------------------------
# Progress


def format_duration(seconds: float) -> str:
    """1h02m, 3m05s."""
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


class Progress:
    """One status line: items done, items/s, new tokens/s, ETA. Redrawn in place on a terminal;
    in a log file, one line every `log_every` seconds."""

    def __init__(self, total: int, unit: str = "tasks", enabled: bool = True, log_every: float = 30.0):
        self.total, self.unit, self.enabled, self.log_every = total, unit, enabled, log_every
        self.done = self.tokens = 0
        self.start = self.last_log = time.perf_counter()
        self.tty = sys.stderr.isatty()

    def update(self, done: int = 0, tokens: int = 0) -> None:
        self.done += done
        self.tokens += tokens
        now = time.perf_counter()
        if self.enabled and (self.tty or now - self.last_log >= self.log_every or self.done >= self.total):
            self.last_log = now
            print(("\r" if self.tty else "") + self.line(), end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def line(self) -> str:
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        rate = self.done / elapsed
        eta = format_duration((self.total - self.done) / rate) if rate > 0 else "?"
        return (f"{self.unit} {self.done}/{self.total} | {rate:.2f} {self.unit}/s | "
                f"{self.tokens / elapsed:.0f} tok/s | ETA {eta}")

    def close(self) -> None:
        if self.enabled and self.tty:
            print(file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# The generation flags sample.py and evaluate.py share


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """--help with each flag's default, where it has one worth showing (not None, not an off switch)."""

    def _get_help_string(self, action):
        # `is`, not `in (None, False)`: 0 == False, and a default of 0 (--top-k, --seed) is worth showing.
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def add_generation_args(parser: argparse.ArgumentParser, *, temperature: float, top_p: float, seed: int) -> None:
    """The defaults that differ (a teacher samples, an evaluation decodes greedily) are the caller's."""
    parser.add_argument("--temperature", type=float, default=temperature, help="sampling temperature; 0: greedy")
    parser.add_argument("--top-p", type=float, default=top_p,
                        help="nucleus sampling: keep the tokens that make up this mass")
    parser.add_argument("--top-k", type=int, default=0, help="keep the k most likely tokens; 0: all")
    parser.add_argument("--max-new-tokens", type=int, help=f"tokens per answer (default: {DEFAULT_MAX_NEW_TOKENS}, "
                        "or less when the model's context cannot hold that after the longest prompt)")
    parser.add_argument("--batch-size", type=int, default=32, help="sequences per generate call")
    parser.add_argument("--seed", type=int, default=seed, help="each sample's seed is made from it, the task id and k")
    parser.add_argument("--template", choices=TEMPLATES, default="chat",
                        help="chat: Llama-3 Instruct template; plain: 'Question: ...\\nAnswer:' for base models")
    parser.add_argument("--dtype", default="auto", help="auto (bf16 on GPU, fp32 on CPU), fp32, bf16, fp16")
    parser.add_argument("--device", help="default: cuda:LOCAL_RANK if a GPU is present, else cpu")
    parser.add_argument("--compile", action="store_true", help="torch.compile the decode step (GPU)")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.add_argument("--overwrite", action="store_true",
                        help="discard what --out holds from an earlier run (rows and settings) and start fresh")


def check_generation_args(args: argparse.Namespace) -> None:
    """The generation flags, checked before anything heavy happens (a model load takes minutes on an
    8B model): one line naming the flag."""
    if not args.temperature >= 0:
        raise UserError(f"--temperature must be >= 0 (0: greedy), got {args.temperature}")
    if not 0 < args.top_p <= 1:
        raise UserError(f"--top-p must be in (0, 1], got {args.top_p}")
    if args.top_k < 0:
        raise UserError(f"--top-k must be >= 0 (0: all tokens), got {args.top_k}")
    if args.max_new_tokens is not None and args.max_new_tokens < 1:
        raise UserError(f"--max-new-tokens must be >= 1, got {args.max_new_tokens}")
    if args.n < 1 or args.batch_size < 1:
        raise UserError(f"--n and --batch-size must be >= 1, got n={args.n}, batch_size={args.batch_size}")
    if args.device is not None:
        try:
            torch.device(args.device)
        except RuntimeError:
            raise UserError(f"--device {args.device}: not a device (cpu, cuda, cuda:1, ...)") from None
        if args.device.startswith("cuda") and not torch.cuda.is_available():
            raise UserError(f"--device {args.device}, but torch sees no GPU (torch.cuda.is_available() is False)")


def sampling_from_args(args: argparse.Namespace) -> Sampling:
    """The sampling settings the generation flags (and --n) name."""
    return Sampling(n=args.n, temperature=args.temperature, top_p=args.top_p, top_k=args.top_k,
                    max_new_tokens=args.max_new_tokens, seed=args.seed, template=args.template,
                    batch_size=args.batch_size, compile=args.compile)
