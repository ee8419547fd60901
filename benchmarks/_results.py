"""Write one benchmark's section of benchmarks/RESULTS.md, leaving the other sections alone."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")
HEADER = "# Benchmark results\n\nEach section is rewritten by the script named in it.\n"


def machine() -> str:
    """One line describing the machine the numbers come from."""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor() or "unknown CPU"
    try:
        mem = int(subprocess.check_output(["awk", "/MemTotal/ {print $2}", "/proc/meminfo"]))
        mem_s = f"{mem / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, subprocess.CalledProcessError):
        mem_s = "unknown RAM"
    return f"{os.cpu_count()} cores ({cpu}), {mem_s}, Python {platform.python_version()}"


def write_section(name: str, body: str) -> None:
    """Replace (or append) the section delimited by markers named ``name``."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    command = "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    block = f"{start}\n{body.rstrip()}\n\nCommand: `{command}`  \nMachine: {machine()}\n{end}"
    text = RESULTS.read_text() if RESULTS.exists() else HEADER
    if start in text and end in text:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1]
        text = before + block + after
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(text)
