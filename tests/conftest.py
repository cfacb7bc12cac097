import os
import sys

import torch

# Tests run from the repository root or anywhere: make `w2s` and the top-level scripts importable.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

torch.set_num_threads(min(2, os.cpu_count() or 1))
