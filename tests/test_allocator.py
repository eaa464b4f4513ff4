"""neuralcodec.allocator: large buffers come from the heap inside a scope, and only there."""

from __future__ import annotations

import ctypes
import threading

import numpy as np
import pytest

from neuralcodec import allocator

LARGE = 64 * 1024 * 1024  # above glibc's largest mmap threshold (32 MiB)


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks")
        + ("fordblks", "keepcost")
    ]


def _mapped_bytes() -> int:
    """Bytes that malloc holds in separately mapped blocks now (glibc's ``mallinfo2().hblkhd``)."""
    libc = allocator._glibc()
    mallinfo2 = libc.mallinfo2
    mallinfo2.restype = _MallInfo2
    return mallinfo2().hblkhd


needs_glibc = pytest.mark.skipif(
    allocator._glibc() is None or not hasattr(allocator._glibc(), "mallinfo2"),
    reason="needs glibc 2.33+ (mallopt, mallinfo2)",
)


def _mapped_during_large_allocation() -> int:
    """How much more malloc holds in mapped blocks while a LARGE buffer is alive."""
    before = _mapped_bytes()
    buffer = np.ones(LARGE, dtype=np.uint8)
    grown = _mapped_bytes() - before
    del buffer
    return grown


@needs_glibc
def test_a_large_buffer_is_mapped_outside_a_scope_and_comes_from_the_heap_inside():
    assert _mapped_during_large_allocation() >= LARGE
    with allocator.large_buffers_reused():
        assert allocator.active()
        assert _mapped_during_large_allocation() == 0
    assert not allocator.active()
    assert _mapped_during_large_allocation() >= LARGE  # glibc's behaviour is back


@needs_glibc
def test_nested_and_concurrent_scopes_keep_it_on_until_the_last_one_ends():
    inner_entered, outer_may_end = threading.Event(), threading.Event()

    def other_thread() -> None:
        with allocator.large_buffers_reused():
            inner_entered.set()
            outer_may_end.wait(10)

    with allocator.large_buffers_reused():
        with allocator.large_buffers_reused():
            assert allocator.active()
        assert allocator.active()  # the inner exit did not switch it off
        worker = threading.Thread(target=other_thread)
        worker.start()
        assert inner_entered.wait(10)
    assert allocator.active()  # the other thread's scope is still open
    assert _mapped_during_large_allocation() == 0
    outer_may_end.set()
    worker.join()
    assert not allocator.active()
    assert _mapped_during_large_allocation() >= LARGE


@needs_glibc
def test_the_environment_switch_turns_it_off(monkeypatch):
    monkeypatch.setenv(allocator.ENV_SWITCH, "0")
    with allocator.large_buffers_reused():
        assert not allocator.active()
        assert _mapped_during_large_allocation() >= LARGE


@needs_glibc
def test_an_exception_inside_still_restores_the_defaults():
    with pytest.raises(RuntimeError), allocator.large_buffers_reused():
        raise RuntimeError("boom")
    assert not allocator.active()
    assert _mapped_during_large_allocation() >= LARGE


@needs_glibc
def test_refinement_runs_inside_a_scope_and_single_passes_do_not(monkeypatch, tiny_model):
    """Effort > 0 reuses large buffers; effort 0 and decoding keep glibc's behaviour."""
    import torch

    import neuralcodec

    model = neuralcodec.load_model(tiny_model)
    seen = []
    synthesis = model.transforms.g_s.forward

    def spying_synthesis(x: torch.Tensor) -> torch.Tensor:
        seen.append(allocator.active())
        return synthesis(x)

    monkeypatch.setattr(model.transforms.g_s, "forward", spying_synthesis)
    image = np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    data = neuralcodec.compress(image, quality=50, model=model, effort=0)
    neuralcodec.decompress(data, model=model)
    assert seen and not any(seen)
    seen.clear()
    neuralcodec.compress(image, quality=50, model=model, effort=1)
    assert seen and all(seen)
    assert not allocator.active()


def test_prefer_huge_pages_leaves_a_process_that_has_torch_alone(monkeypatch):
    import torch  # noqa: F401 (imported: torch may have read the variable already)

    monkeypatch.delenv(allocator.TORCH_HUGE_PAGES, raising=False)
    assert not allocator.prefer_huge_pages()
    assert allocator.TORCH_HUGE_PAGES not in __import__("os").environ


def test_the_command_line_prefers_huge_pages_before_torch_loads(tmp_path):
    """A fresh ``ncodec`` process sets THP_MEM_ALLOC_ENABLE before torch allocates anything."""
    import subprocess
    import sys

    probe = (
        "import os, sys\n"
        "from neuralcodec import cli\n"
        "seen = {}\n"
        "real = cli.build_parser\n"
        "def spy():\n"
        "    seen['torch before'] = 'torch' in sys.modules\n"
        "    return real()\n"
        "cli.build_parser = spy\n"
        "cli.main(['info', os.devnull])\n"
        "print(seen['torch before'], os.environ.get('THP_MEM_ALLOC_ENABLE'))\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert out.stdout.split() == ["False", "1"], out.stderr[-2000:]
