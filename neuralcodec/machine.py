"""What machine a measurement ran on, as the benchmarks and tools record it beside their numbers."""

from __future__ import annotations

import os
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


def _cpuinfo_field(name: str) -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":", 1)[0].strip() == name:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def vector_extensions(flags: set[str]) -> str:
    """The widest vector and matrix extensions among /proc/cpuinfo ``flags``, e.g. ``AVX-512
    bf16`` or ``AVX2``: what decides the transforms' speed and, on the CPU, their precision."""
    if "amx_bf16" in flags:
        return "AMX bf16"
    if "avx512f" in flags:
        return "AVX-512 bf16" if "avx512_bf16" in flags else "AVX-512"
    return "AVX2" if "avx2" in flags else "no AVX2"


def cpu_description() -> str:
    """The CPU as a timing should name it: model name, family/model, logical CPUs and vector
    extensions, e.g. ``AMD EPYC (family 25 model 17, 2 CPUs, AVX-512 bf16)``; the model name
    alone where /proc/cpuinfo says no more."""
    family, model, flags = (_cpuinfo_field(k) for k in ("cpu family", "model", "flags"))
    if family is None or model is None or flags is None:
        return cpu_name()
    extensions = vector_extensions(set(flags.split()))
    return f"{cpu_name()} (family {family} model {model}, {os.cpu_count()} CPUs, {extensions})"
