"""w2s: weak-to-strong supervision for math reasoning, in plain PyTorch."""
