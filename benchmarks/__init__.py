"""Benchmark harness: rate–distortion (``python -m benchmarks.rd``), speed (``python -m benchmarks.speed``).

Kept outside the ``neuralcodec`` package so the codec library does not depend on plotting,
classical-codec plugins or dataset downloads.
"""
