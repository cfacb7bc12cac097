"""A tiny random model with a tiny trained tokenizer, saved as a checkpoint directory, and a few math
tasks: what the sample.py and evaluate.py tests run on."""
import json

import torch

from w2s.model import Llama, ModelArgs
from w2s.tokenizer import train_tokenizer

TASKS = [
    {"id": "t1", "problem": "What is 2 + 3?", "answer": "5", "level": 1, "subject": "arithmetic"},
    {"id": "t2", "problem": "What is 7 * 6?", "answer": "42", "level": 1, "subject": "arithmetic"},
    {"id": "t3", "problem": "Solve x + 4 = 10 for x.", "answer": "6", "level": 2, "subject": "algebra"},
    {"id": "t4", "problem": "What is half of 9?", "answer": "\\frac{9}{2}", "level": 2, "subject": "arithmetic"},
    {"id": "t5", "problem": "Solve 2x = 14 for x.", "answer": "7", "level": 3, "subject": "algebra"},
]


def make_checkpoint(directory: str, seed: int = 0) -> str:
    texts = [t["problem"] for t in TASKS] + ["The answer is \\boxed{12}. So x = 3 and y = 4."] * 3
    tokenizer = train_tokenizer(texts, vocab_size=300)
    torch.manual_seed(seed)
    args = ModelArgs.preset("tiny", vocab_size=tokenizer.vocab_size, n_layers=1, dim=64, n_heads=2, n_kv_heads=2,
                            ffn_dim=128, init_std=0.1)
    Llama(args).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def write_jsonl(path: str, rows: list[dict]) -> str:
    with open(path, "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    return path


def read_lines(path: str) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f]

