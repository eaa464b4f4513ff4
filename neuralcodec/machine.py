"""What machine a measurement ran on, as the benchmarks and tools record it beside their numbers."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path


def cpu_name() -> str:
    """The CPU's model name: /proc/cpuinfo's ``model name``, else lscpu's ``Model name`` (e.g. on
    ARM), else ``platform.processor()`` or ``platform.machine()``; "unknown" when none says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or platform.machine() or "unknown"
