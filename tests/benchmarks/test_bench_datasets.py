"""Kodak download verification, with a fake fetch (tests never touch the network)."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from benchmarks import datasets
from benchmarks.datasets import (
    ChecksumError,
    fetch_kodak,
    is_valid_kodak,
    list_images,
    load_rgb,
    resolve_dataset,
)

SHARED_KODAK = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "kodak"


def png_bytes(img: np.ndarray, text: str | None = None) -> bytes:
    buf = io.BytesIO()
    info = None
    if text:
        info = PngImagePlugin.PngInfo()
        info.add_text("Source", text)
    Image.fromarray(img).save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def fake_suite(monkeypatch, gen_image):
    """Two 'Kodak' images whose checksums are patched into the module."""
    files = {f"kodim0{i}.png": png_bytes(gen_image(16, 24, seed=i)) for i in (1, 2)}
    monkeypatch.setattr(datasets, "KODAK_NAMES", tuple(files))
    monkeypatch.setattr(
        datasets, "KODAK_FILE_SHA256", {n: hashlib.sha256(b).hexdigest() for n, b in files.items()}
    )
    pixels = {
        n: hashlib.sha256(np.asarray(Image.open(io.BytesIO(b)).convert("RGB")).tobytes()).hexdigest()
        for n, b in files.items()
    }
    monkeypatch.setattr(datasets, "KODAK_PIXEL_SHA256", pixels)
    return files


URLS = ("mirror1/{name}", "mirror2/{name}")


def test_fetch_falls_back_to_next_mirror_and_verifies(tmp_path, fake_suite):
    calls = []

    def fetch(url: str) -> bytes:
        calls.append(url)
        if url.startswith("mirror1"):
            raise OSError("connection refused")
        return fake_suite[url.split("/")[-1]]

    folder = fetch_kodak(tmp_path, fetch=fetch, urls=URLS)
    assert folder == tmp_path / "kodak"
    for name, data in fake_suite.items():
        assert (folder / name).read_bytes() == data
    assert calls == [
        "mirror1/kodim01.png",
        "mirror2/kodim01.png",
        "mirror1/kodim02.png",
        "mirror2/kodim02.png",
    ]
    assert not list(folder.glob("*.part"))


def test_corrupt_download_is_rejected_and_not_kept(tmp_path, fake_suite):
    def fetch(url: str) -> bytes:
        data = bytearray(fake_suite[url.split("/")[-1]])
        data[-20] ^= 0xFF  # one flipped byte
        return bytes(data)

    with pytest.raises(ChecksumError, match="checksum mismatch"):
        fetch_kodak(tmp_path, fetch=fetch, urls=URLS)
    assert not (tmp_path / "kodak" / "kodim01.png").exists()


def test_changed_pixels_are_rejected(tmp_path, fake_suite, gen_image):
    other = png_bytes(gen_image(16, 24, seed=9))
    with pytest.raises(ChecksumError):
        fetch_kodak(tmp_path, fetch=lambda url: other, urls=URLS)


def test_same_pixels_with_extra_png_chunks_are_accepted(fake_suite):
    """The original distribution's files carry gAMA/tEXt chunks: other bytes, same pixels."""
    name, data = next(iter(fake_suite.items()))
    img = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    with_text = png_bytes(img, text="Kodak PCD0992")
    assert with_text != data
    assert is_valid_kodak(name, with_text)
    assert not is_valid_kodak(name, b"<html>404</html>")


def test_valid_cache_is_not_fetched_again_but_bad_cache_is(tmp_path, fake_suite):
    fetch_kodak(tmp_path, fetch=lambda url: fake_suite[url.split("/")[-1]], urls=URLS)
    (tmp_path / "kodak" / "kodim02.png").write_bytes(b"truncated")
    calls = []

    def fetch(url: str) -> bytes:
        calls.append(url)
        return fake_suite[url.split("/")[-1]]

    fetch_kodak(tmp_path, fetch=fetch, urls=URLS)
    assert calls == ["mirror1/kodim02.png"]
    assert (tmp_path / "kodak" / "kodim02.png").read_bytes() == fake_suite["kodim02.png"]


def test_resolve_kodak_without_local_copy_uses_the_cache(tmp_path, fake_suite, monkeypatch):
    monkeypatch.setattr(datasets, "KODAK_URLS", URLS)
    folder = resolve_dataset(
        "kodak",
        kodak_dir=tmp_path / "absent",
        cache_dir=tmp_path / "cache",
        fetch=lambda u: fake_suite[u[8:]],
    )
    assert sorted(p.name for p in folder.iterdir()) == sorted(fake_suite)


def test_resolve_folder_and_list_images(bench_dataset):
    assert resolve_dataset(str(bench_dataset)) == bench_dataset
    (bench_dataset / "notes.txt").write_text("not an image")
    paths = list_images(bench_dataset)
    assert [p.name for p in paths] == ["img00.png", "img01.png", "img02.png"]
    assert list_images(bench_dataset, limit=2) == paths[:2]
    assert load_rgb(paths[0]).shape == (168, 176, 3)
    with pytest.raises(FileNotFoundError):
        resolve_dataset(str(bench_dataset / "missing"))


@pytest.mark.skipif(not (SHARED_KODAK / "sha256sums.txt").exists(), reason="shared Kodak copy absent")
def test_embedded_checksums_match_the_shared_copy():
    listed = dict(line.split()[::-1] for line in (SHARED_KODAK / "sha256sums.txt").read_text().splitlines())
    assert listed == datasets.KODAK_FILE_SHA256
    name = "kodim07.png"
    assert is_valid_kodak(name, (SHARED_KODAK / name).read_bytes())
