"""Whole collections: compress or decompress a folder tree, resumably, on this machine's cores
(``engine="local"``) or a Ray cluster (``engine="ray"``, the ``cluster`` extra).

    from neuralcodec.bulk import compress_tree
    summary = compress_tree("photos/", "photos-nc/", quality=60, jobs=4)

Modules, one job each: ``plan`` (tree walking, output names, what is left to do), ``manifest``
(the record of finished files), ``worker`` (bytes in, bytes out, model loaded once), ``engine``
(the engine interface and registry), ``local_engine``, ``ray_engine``, ``report`` (progress
bar and summary) and ``tree`` (the job itself and its guarantees). Importing this package does
not import torch or ray.
"""

from neuralcodec.bulk.engine import ENGINES, EngineError
from neuralcodec.bulk.manifest import MANIFEST_NAME, TreeLockedError
from neuralcodec.bulk.report import SUMMARY_NAME, Summary
from neuralcodec.bulk.tree import JobSetupError, TreeUsageError, compress_tree, decompress_tree, run_tree

__all__ = [
    "ENGINES",
    "MANIFEST_NAME",
    "SUMMARY_NAME",
    "EngineError",
    "JobSetupError",
    "Summary",
    "TreeLockedError",
    "TreeUsageError",
    "compress_tree",
    "decompress_tree",
    "run_tree",
]
