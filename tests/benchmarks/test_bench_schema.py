"""Results files follow CompressAI's results format, so their tools and ours read each other's files."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.curves import (
    RESULT_KEYS,
    SchemaError,
    curve_from_json,
    folder_lock,
    load_anchors,
    load_results_dir,
    merge_json_entry,
    validate_result,
    write_json,
)

ANCHORS = Path(__file__).resolve().parents[2].parent / "shared" / "anchors"


def good() -> dict:
    return {
        "name": "jpeg",
        "description": "JPEG test",
        "meta": {"label": "JPEG", "images": ["a", "b"]},
        "results": {
            "bpp": [0.5, 1.0],
            "psnr-rgb": [30.0, 33.0],
            "ms-ssim-rgb": [0.95, 0.97],
            "encoding_time": [0.01, 0.01],
            "decoding_time": [0.005, 0.005],
        },
    }


def test_valid_document_passes():
    validate_result(good())


@pytest.mark.parametrize(
    "breaks",
    [
        lambda d: d.pop("name"),
        lambda d: d.pop("results"),
        lambda d: d["results"].pop("ms-ssim-rgb"),
        lambda d: d["results"]["bpp"].append(2.0),
        lambda d: d["results"].__setitem__("psnr-rgb", ["x", 1.0]),
        lambda d: d["results"].__setitem__("bpp", [0.0, 1.0]),
        lambda d: d["results"].__setitem__("psnr-rgb", [math.nan, 1.0]),
    ],
)
def test_invalid_documents_fail(breaks):
    doc = good()
    breaks(doc)
    with pytest.raises(SchemaError):
        validate_result(doc)


def test_write_json_stores_undefined_values_as_null(tmp_path):
    doc = good()
    doc["results"]["ms-ssim-rgb"] = [math.nan, 0.97]
    write_json(tmp_path / "x.json", doc)
    loaded = json.loads((tmp_path / "x.json").read_text())  # strict JSON: no NaN token
    assert loaded["results"]["ms-ssim-rgb"] == [None, 0.97]
    validate_result(loaded)
    assert curve_from_json(loaded).msssim_db[0] is None


def test_load_results_dir_ignores_other_json(tmp_path):
    write_json(tmp_path / "jpeg.json", good())
    write_json(tmp_path / "speed.json", {"in_process": {}})
    (tmp_path / "broken.json").write_text("{")
    curves = load_results_dir(tmp_path)
    assert [c.name for c in curves] == ["jpeg"]
    assert curves[0].label == "JPEG"


@pytest.mark.skipif(not ANCHORS.is_dir(), reason="shared/anchors is not next to this checkout")
def test_same_keys_as_compressai_published_file():
    published = json.loads((ANCHORS / "compressai-kodak" / "jpeg.json").read_text())
    assert set(published) <= set(good())
    assert set(published["results"]) == set(RESULT_KEYS)
    validate_result(published)


@pytest.mark.skipif(not ANCHORS.is_dir(), reason="shared/anchors is not next to this checkout")
def test_default_anchors_load():
    curves = load_anchors(ANCHORS)
    names = {c.name for c in curves}
    assert "jpeg" in names and "compressai-mbt2018-mean_ms-ssim_cuda" in names
    assert all(c.published and c.has_msssim() for c in curves)


def test_msssim_db_files_are_read(tmp_path):
    doc = {"name": "x", "description": "", "results": {"bpp": [0.5, 1.0], "ms-ssim-db-rgb": [10.0, 20.0]}}
    c = curve_from_json(doc)
    assert c.msssim == pytest.approx([0.9, 0.99])


_MERGER = """
import sys
from pathlib import Path
from benchmarks.curves import merge_json_entry
path, who = Path(sys.argv[1]), sys.argv[2]
for i in range(40):
    merge_json_entry(path, f"{who}-{i}", {"i": i, "pad": "x" * 2000})
"""


def test_side_by_side_merges_into_one_file_keep_every_entry(tmp_path):
    """Four processes merging into one results file at once (as two benchmarks sharing a results
    folder do) lose nothing, and no temporary file stays behind."""
    path = tmp_path / "results" / "effort.json"
    root = Path(__file__).resolve().parents[2]
    procs = [
        subprocess.Popen([sys.executable, "-c", _MERGER, str(path), f"p{n}"], cwd=root) for n in range(4)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0] * 4
    merged = json.loads(path.read_text())
    assert sorted(merged) == sorted(f"p{n}-{i}" for n in range(4) for i in range(40))
    assert [f.name for f in path.parent.iterdir()] == ["effort.json"]


@pytest.mark.skipif(sys.platform == "win32", reason="folder locks need fcntl")
def test_merge_reports_the_merged_object_while_it_holds_the_folder_lock(tmp_path):
    import fcntl

    path = tmp_path / "effort.json"
    path.write_text(json.dumps({"old": 1}))
    seen = []

    def report(merged: dict) -> None:
        fd = os.open(tmp_path, os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):  # another writer would wait here
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
        seen.append(dict(merged))

    assert merge_json_entry(path, "new", 2, report) == {"old": 1, "new": 2}
    assert seen == [{"old": 1, "new": 2}] and json.loads(path.read_text()) == {"old": 1, "new": 2}
    with folder_lock(tmp_path):  # released afterwards
        pass
