"""Large CPU buffers backed by transparent huge pages (Linux), for processes that own torch.

Torch allocates every tensor afresh, and the transforms' tensors are large (one 128-channel
activation of a 768 × 512 image is 50 MB): each is page-faulted in as it is first written,
4 KiB at a time. With ``THP_MEM_ALLOC_ENABLE=1`` torch advises the kernel to back its buffers
of 2 MiB and more with transparent huge pages, so that costs a fault per 2 MiB instead. The
values computed are the same bit for bit; only how the memory is mapped changes.

Measured on 2 threads of a Zen 3 EPYC (nothing else running, so the host's own
noise of about ±10 % remains): effort-0 encodes and decodes of kodim01-04 took about 10 %
less time (six runs of each setting, alternating: encode 0.66 → 0.58 s, decode 0.58 → 0.52
s, every pair faster with huge pages), a 6000 × 4000 image compressed in 42 s instead of 50-55
and decompressed in 52 s instead of 55-69 (one run with, two without; peak memory 2 % higher),
and efforts 1-3 moved within the noise (``benchmarks/results/kodak/effort.md``, sections
``*-nothp-timing-*`` and ``*-thp-timing-*``: −8 to +6 %).

Training gains nothing from it (``tools/train_throughput.py --threads 2 --steps 4
--setups fp32:256:8``, alternating: 3.81 / 4.72 s per step without against 3.93 / 4.77 s with),
so ``ncodec train`` and ``tools/train.py`` leave the variable alone.

Torch reads the variable once, at its first allocation, so a library cannot switch it for a
host program that uses torch already: :func:`prefer_huge_pages` is for processes that own
torch (the ``ncodec`` command, the benchmarks); embedding programs may set it themselves.

Tried and dropped: keeping freed buffers on glibc's heap during refinement
(``mallopt(M_MMAP_MAX, 0)`` and a high trim threshold, restored and trimmed afterwards).
Alone it made ``mse`` effort 2 encodes 24 % faster, but on top of huge pages it was mixed
(the same process alternating with and without, kodim01-04 at qualities 60 / 75: ``mse``
effort 2 / 3 −6 / −7 %, ``msssim`` effort 1 / 2 +3 / +6 %), its settings are process-wide,
and for single passes it raised the peak memory of a 6000 × 4000 image by 25 %.
"""

from __future__ import annotations

import os
import sys

TORCH_HUGE_PAGES = "THP_MEM_ALLOC_ENABLE"


def prefer_huge_pages() -> bool:
    """Set ``THP_MEM_ALLOC_ENABLE=1`` unless torch is imported already (then it may have read the
    variable) or the environment sets it (then that stands). Returns whether it set it."""
    if "torch" in sys.modules or TORCH_HUGE_PAGES in os.environ:
        return False
    os.environ[TORCH_HUGE_PAGES] = "1"
    return True
