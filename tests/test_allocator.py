"""neuralcodec.allocator: the ``ncodec`` process asks torch for huge pages before torch loads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from neuralcodec import allocator


def test_prefer_huge_pages_leaves_a_process_that_has_torch_alone(monkeypatch):
    import torch  # noqa: F401 (imported: torch may have read the variable already)

    monkeypatch.delenv(allocator.TORCH_HUGE_PAGES, raising=False)
    assert not allocator.prefer_huge_pages()
    assert allocator.TORCH_HUGE_PAGES not in os.environ


def _fresh_process(probe: str, **env: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if k != allocator.TORCH_HUGE_PAGES} | env
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=clean, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.split()


_CLI_PROBE = """
import os, sys
from neuralcodec import allocator, cli
seen = {}
real = allocator.prefer_huge_pages
def spy():
    seen['torch before'] = 'torch' in sys.modules
    return real()
allocator.prefer_huge_pages = spy
cli.main(['info', os.devnull])
print(seen['torch before'], os.environ.get('THP_MEM_ALLOC_ENABLE'))
"""


def test_the_command_line_prefers_huge_pages_before_torch_loads():
    """A fresh ``ncodec`` process sets THP_MEM_ALLOC_ENABLE before torch allocates anything."""
    assert _fresh_process(_CLI_PROBE) == ["False", "1"]


def test_a_setting_in_the_environment_stands():
    assert _fresh_process(_CLI_PROBE, THP_MEM_ALLOC_ENABLE="0") == ["False", "0"]


def test_torch_then_backs_large_buffers_with_huge_pages_where_the_kernel_offers_them():
    """The variable does what it is for (skipped where THP is off or unavailable)."""
    probe = """
import os
from neuralcodec.allocator import prefer_huge_pages
prefer_huge_pages()
import torch
buffer = torch.ones(64 * 1024 * 1024)
print(sum(int(line.split()[1]) for line in open('/proc/self/smaps') if line.startswith('AnonHugePages')))
"""
    try:
        mode = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        mode = ""
    if "[never]" in mode or not mode:
        pytest.skip("transparent huge pages are off or unavailable on this machine")
    assert int(_fresh_process(probe)[0]) > 0
