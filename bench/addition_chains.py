"""Chains of additions ("Start at 7. Add 3. Add 12.") with their worked steps: small training rows
whose answers differ in length, for the training benchmark and the SFT and DPO tests (here, so that
bench/ depends on w2s/ only)."""
import random


def addition_chain(rng: random.Random, max_adds: int) -> tuple[str, list[str], int]:
    """(problem, one "a + b = c" line per addition, the final value), drawn from `rng`."""
    value = rng.randint(1, 50)
    problem, lines = f"Start at {value}.", []
    for _ in range(rng.randint(1, max_adds)):
        add = rng.randint(1, 50)
        problem += f" Add {add}."
        lines.append(f"{value} + {add} = {value + add}")
        value += add
    return problem, lines, value


def synthetic_rows(n: int = 45, seed: int = 0) -> list[dict]:
    """SFT rows of chains of 1-4 additions: answers of different lengths, so token weighting matters."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        problem, lines, value = addition_chain(rng, 4)
        lines.append(f"The answer is \\boxed{{{value}}}")
        rows.append({"id": f"s{i}", "messages": [{"role": "user", "content": problem},
                                                 {"role": "assistant", "content": "\n".join(lines)}], "meta": {}})
    return rows
