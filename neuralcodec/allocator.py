"""Large freed buffers kept for reuse while the codec runs (glibc's malloc, Linux).

glibc serves every allocation above its mmap threshold (32 MiB at most) with a fresh ``mmap``
and hands it back to the kernel on ``free``. The transforms allocate many such tensors (one
128-channel activation of a 768 × 512 image is 50 MB), so each one is page-faulted in again,
4 KiB at a time: on a 2-core AMD EPYC (Zen 3) an elementwise product of two such tensors took
43 ms, 7 ms once the memory was reused, and whole encodes spent a third of their time there.

:func:`large_buffers_reused` switches that off while latent refinement runs
(``neuralcodec.refine``: many passes over buffers of the same sizes): large requests come from
the heap and freed memory stays there for the next pass (``mallopt(M_MMAP_MAX, 0)`` and a trim
threshold of 2 GiB). When the outermost scope ends, glibc's defaults are set back and
``malloc_trim(0)`` returns the free memory to the kernel, so nothing is held after it. The
values computed are the same bit for bit; only where the memory comes from changes. Single
passes (effort 0, decoding) gain little from it and lose memory: a 6000 × 4000 image's
compress and decompress peaked 25 % higher (2.69 / 2.38 GB instead of 2.12 / 1.90 GB), since
freed blocks on the heap fit later, larger requests only in part. So they run without it.

Guarantees and limits:

- Process-wide while active (malloc's settings are global): other threads' allocations come
  from the heap meanwhile too. Nested and concurrent scopes are counted; the settings change
  on the first entry and the last exit only.
- On exit M_MMAP_MAX and M_TRIM_THRESHOLD are set to glibc's defaults (65536 and 128 KiB),
  not to what a host program may have set, and glibc's dynamic mmap threshold stays frozen at
  its current value (setting either parameter does that).
- Effective for calls from the main thread (glibc's main arena); other threads' arenas are
  capped at 64 MiB per heap, so their largest tensors are still mapped afresh.
- A no-op off glibc (macOS, Windows, musl), and when the environment variable
  ``NEURALCODEC_MALLOPT`` is ``0``.

:func:`prefer_huge_pages` goes further for a process that owns torch (the ``ncodec`` command,
the benchmarks): torch backs its buffers of 2 MiB and more with transparent huge pages
(``THP_MEM_ALLOC_ENABLE=1``), so first touching one faults 2 MiB at a time instead of 4 KiB.
On that 6000 × 4000 image (2 cores of a Zen 3 EPYC) compress took 42 s instead of 55 and
decompress 52 s instead of 69, peaking 2 % higher. Torch reads that variable once, at its
first allocation, so a library cannot switch it for a host that uses torch already;
embedding programs may set it themselves.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import sys
import threading
from collections.abc import Iterator

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
DEFAULT_MMAP_MAX = 65536  # glibc's defaults, restored on the last exit
DEFAULT_TRIM_THRESHOLD = 128 * 1024
KEPT_TRIM_THRESHOLD = 2**31 - 1  # free memory at the heap's top is kept up to 2 GiB
ENV_SWITCH = "NEURALCODEC_MALLOPT"
TORCH_HUGE_PAGES = "THP_MEM_ALLOC_ENABLE"

_lock = threading.Lock()
_depth = 0


@functools.lru_cache(maxsize=1)
def _glibc() -> ctypes.CDLL | None:
    """This process's C library if it is glibc with ``mallopt`` and ``malloc_trim``, else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 (only glibc has it)
        mallopt, malloc_trim = libc.mallopt, libc.malloc_trim
    except (OSError, AttributeError):
        return None
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    malloc_trim.argtypes, malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    return libc


def prefer_huge_pages() -> bool:
    """Set ``THP_MEM_ALLOC_ENABLE=1`` unless torch is imported already (then it may have read the
    variable) or the environment sets it (then that stands). Returns whether it set it."""
    if "torch" in sys.modules or TORCH_HUGE_PAGES in os.environ:
        return False
    os.environ[TORCH_HUGE_PAGES] = "1"
    return True


def active() -> bool:
    """Whether large buffers are being kept for reuse now (inside a scope, on glibc)."""
    return _depth > 0 and _glibc() is not None


@contextlib.contextmanager
def large_buffers_reused() -> Iterator[None]:
    """Keep large freed buffers on the heap for reuse until the outermost scope ends."""
    libc = None if os.environ.get(ENV_SWITCH) == "0" else _glibc()
    if libc is None:
        yield
        return
    global _depth
    with _lock:
        if _depth == 0:
            libc.mallopt(M_MMAP_MAX, 0)
            libc.mallopt(M_TRIM_THRESHOLD, KEPT_TRIM_THRESHOLD)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                libc.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
                libc.mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD)
                libc.malloc_trim(0)
