"""Supervision datasets: prompts, the paper's formats, error-rate mixtures, SFT batches."""

# One instruction for every prompt the project makes (SFT data, sampling, evaluation), so a
# model trained on our data is asked questions exactly the way it was taught.
INSTRUCTION = "Solve the problem step by step. Put the final answer in \\boxed{}."


def user_message(problem: str) -> str:
    """The user turn for a math problem: the problem, then the step-by-step / \\boxed{} instruction."""
    return f"{problem.strip()}\n{INSTRUCTION}"
