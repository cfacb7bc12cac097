"""Chains of additions ("Start at 7. Add 3. Add 12.") with their worked steps: small training rows
whose answers differ in length, shared by the SFT and DPO tests."""
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
