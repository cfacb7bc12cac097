import os
import sys

import torch

# Tests run from the repository root or anywhere: make `w2s` and the top-level scripts importable.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# Test models are tiny: one thread is faster than two fighting over small matmuls, and it leaves
# the second core to the subprocesses some tests start (torchrun, CLIs).
torch.set_num_threads(1)
