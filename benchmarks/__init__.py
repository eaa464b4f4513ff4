"""Benchmark harness: rate–distortion (``python -m benchmarks.rd``), speed (``python -m benchmarks.speed``).

Kept outside the ``neuralcodec`` package so the codec library does not depend on plotting,
classical-codec plugins or dataset downloads.
"""

from neuralcodec.allocator import prefer_huge_pages

prefer_huge_pages()  # timed as the ncodec command runs: before torch's first allocation
