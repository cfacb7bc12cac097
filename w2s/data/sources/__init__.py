"""Outside releases read as published, one module each: the paper's (paper.py), GAIR's weak-to-strong
reasoning (gair.py), PRM800K (prm800k.py), Math-Shepherd (math_shepherd.py); all read rows with
reader.py (Git LFS pointers named, JSON list or JSON Lines, file:line in every error).
"""
