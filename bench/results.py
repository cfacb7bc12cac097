"""Shared by the benchmarks: machine facts and writing one section of bench/RESULTS.md.

Each benchmark owns one section between markers, so benchmarks can be re-run in any
order without clobbering each other's numbers.
"""
import os
import platform
import re
import sys
from datetime import datetime, timezone

import torch

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    desc = f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads)"
    if torch.cuda.is_available():
        desc += f", GPU {torch.cuda.get_device_name()}"
    return desc


def write_section(name: str, body: str, command: str | None = None) -> None:
    """Replace (or append) the section `name` of RESULTS.md with `body`, stamped with command and machine.
    `command` (default: this Python process's) names the entry a person runs when that is a shell script."""
    command = command or "python " + " ".join(sys.argv)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    block = (f"<!-- {name}:start -->\n{body.rstrip()}\n\n"
             f"Command: `{command}`  \nMachine: {machine()}  \nRun: {stamp}\n<!-- {name}:end -->")
    text = open(RESULTS).read() if os.path.exists(RESULTS) else "# Benchmark results\n"
    pattern = re.compile(rf"<!-- {re.escape(name)}:start -->.*?<!-- {re.escape(name)}:end -->", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    with open(RESULTS, "w") as f:
        f.write(text)
