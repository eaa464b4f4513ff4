"""The Ray engine on a local two-CPU Ray instance gives the local engine's bytes and manifest."""

from __future__ import annotations

import pytest
from bulk_helpers import done_records, make_tree

from neuralcodec.bulk import compress_tree, decompress_tree

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'neuralcodec[cluster]')")


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield
    ray.shutdown()


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _comparable(records):
    """Records without the source mtime (each engine decompresses its own .nc files)."""
    return {src: {k: v for k, v in r.items() if k != "src_mtime_ns"} for src, r in records.items()}


@pytest.mark.slow
def test_ray_and_local_engines_give_the_same_bytes_and_manifest(
    tmp_path, make_image, tiny_model, ray_cluster
):
    src = tmp_path / "src"
    make_tree(src, make_image, 8, folders=3, vary=True)
    runs = {}
    for engine in ("local", "ray"):
        nc, png = tmp_path / f"{engine}-nc", tmp_path / f"{engine}-png"
        options = {"model": tiny_model, "engine": engine, "jobs": 2, "threads": 1}
        result = compress_tree(src, nc, effort=0, quality=60, **options)
        assert (result.done_now, result.exit_code) == (8, 0), result.failures
        assert result.engine.startswith(engine)
        assert decompress_tree(nc, png, **options).done_now == 8
        runs[engine] = nc, png
    (local_nc, local_png), (ray_nc, ray_png) = runs["local"], runs["ray"]
    strip = {".ncodec-summary.json"}  # times differ; everything else must not
    assert len(set(_files(local_nc).values())) == 8 + 2  # distinct files: the comparison means something
    for ours, theirs in ((local_nc, ray_nc), (local_png, ray_png)):
        mine = {k: v for k, v in _files(ours).items() if k not in strip and not k.endswith(".jsonl")}
        assert mine == {
            k: v for k, v in _files(theirs).items() if k not in strip and not k.endswith(".jsonl")
        }
        assert _comparable(done_records(ours)) == _comparable(done_records(theirs))
    assert done_records(local_nc) == done_records(ray_nc)  # same sources: the same records, mtimes too
    assert compress_tree(src, ray_nc, effort=0, quality=60, model=tiny_model, engine="ray").done_before == 8
