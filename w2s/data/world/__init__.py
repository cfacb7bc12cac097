"""The built-in offline math world (miniworld.py), the supervision pool and the training sets mixed
from it at a chosen error rate with their names (sets.py), and what a built set measures (quality.py).
"""
