"""Names of training sets: the quality they were built at is in the name, so one data directory
holds many variants, and a name alone says how to build it.

Reading order: the kinds of sets; the quality tag; a quality setting's names; from a name back to
what builds it (train.py uses this to build a missing built-in set with w2s.datadir.build_builtin).
"""
import re

SET_KINDS = ("foundation", "hard_full", "easy_sub", "hard_full+easy_sub", "hard_full+paraphrase", "hard_full_x2")


def quality_tag(error_rate: float, profile: str) -> str:
    """'' at outcome error 0; else '_e0.9', plus '_low'/'_high' for a non-default step profile."""
    if error_rate == 0:
        return ""
    return f"_e{error_rate:g}" + ("" if profile == "mixed" else f"_{profile}")


def set_names(hard_error: float, sub_error: float, profile: str = "mixed") -> dict[str, str]:
    """Set kind -> file name stem in DIR, for one quality setting."""
    hard = "hard_full" + quality_tag(hard_error, profile)
    sub = "easy_sub" + quality_tag(sub_error, profile)
    return {"foundation": "foundation", "hard_full": hard, "easy_sub": sub, "hard_full+easy_sub": f"{hard}+{sub}",
            "hard_full+paraphrase": f"{hard}+paraphrase", "hard_full_x2": f"{hard}_x2"}


_PART = re.compile(r"(hard_full|easy_sub)(?:_e([0-9.]+)(?:_(low|high))?)?")


def builtin_set_args(name: str) -> dict | None:
    """The keyword arguments of w2s.datadir.build_builtin (kinds, hard_errors, sub_errors, profiles) that
    build the built-in world's set `name`, or None if no built-in set has that name."""
    if name == "foundation":
        return {"kinds": ["foundation"], "hard_errors": [0.0], "sub_errors": [0.0], "profiles": ["mixed"]}
    first, plus, second = name.partition("+")
    x2 = not plus and first.endswith("_x2")
    parts = [_PART.fullmatch(first[:-3] if x2 else first)] + ([] if not plus or second == "paraphrase" else [_PART.fullmatch(second)])
    if not all(parts):
        return None
    rates = {m[1]: float(m[2] or 0) for m in parts}
    profiles = {m[3] for m in parts if m[3]}
    if len(profiles) > 1 or any(not 0 <= r <= 1 for r in rates.values()):
        return None
    profile = profiles.pop() if profiles else "mixed"
    hard_error, sub_error = rates.get("hard_full", 0.0), rates.get("easy_sub", 0.0)
    # Round trip: only the names this script writes ('hard_full_e0.90' is not how it writes 0.9).
    kinds = [k for k, stem in set_names(hard_error, sub_error, profile).items() if stem == name]
    if not kinds:
        return None
    kind = kinds[0]
    return {"kinds": [kind], "hard_errors": [hard_error], "sub_errors": [sub_error], "profiles": [profile]}
