"""Codec adapters: real round trips for the classical codecs, the neuralcodec adapter against a fake API."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from benchmarks import codecs as codecs_mod
from benchmarks.codecs import NeuralCodec, build_codecs, jpeg2000_ratio, neuralcodec_codecs

CLASSICAL = ("jpeg", "jpeg444", "webp", "avif", "jxl", "jpeg2000")
TINY_MODEL = Path(__file__).resolve().parents[1] / "fixtures" / "tiny.pt"


@pytest.fixture(scope="module")
def available():
    found, notes = build_codecs(CLASSICAL)
    return {c.name: c for c in found}


@pytest.mark.parametrize("name", CLASSICAL)
def test_round_trip_and_rate_grows_with_quality(name, available, gen_image):
    if name not in available:
        pytest.skip(f"{name} not supported by this Pillow build")
    codec = available[name]
    img = gen_image(48, 64)
    low, high = codec.encode(img, 15), codec.encode(img, 90)
    assert 0 < len(low) < len(high)
    decoded = codec.decode(high)
    assert decoded.shape == img.shape and decoded.dtype == np.uint8
    assert np.abs(decoded.astype(int) - img).mean() < 12


def test_jpeg_is_exactly_the_compressai_anchor_call(available, gen_image):
    img = gen_image(48, 64)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=50)
    data = available["jpeg"].encode(img, 50)
    assert data == buf.getvalue()
    assert JpegImagePlugin.get_sampling(Image.open(io.BytesIO(data))) == 2  # 4:2:0
    assert JpegImagePlugin.get_sampling(Image.open(io.BytesIO(available["jpeg444"].encode(img, 50)))) == 0


def test_jpeg2000_quality_maps_to_a_rate_target():
    assert 24 / jpeg2000_ratio(0) == pytest.approx(0.1)
    assert 24 / jpeg2000_ratio(100) == pytest.approx(3.2)


def test_unknown_codec_is_an_error_and_quality_override_applies():
    with pytest.raises(ValueError, match="unknown codec"):
        build_codecs(["gif"])
    found, _ = build_codecs(["jpeg"], qualities=[30, 70])
    assert found[0].qualities == (30.0, 70.0)


def test_neuralcodec_adapter_one_codec_per_model(gen_image, fake_neuralcodec):
    api = fake_neuralcodec(["msssim", "mse"])
    found, notes = neuralcodec_codecs(api=api, device="cpu")
    assert notes == []
    assert [c.name for c in found] == ["neuralcodec-msssim", "neuralcodec-mse"]
    img = gen_image(32, 40)
    out = found[1].decode(found[1].encode(img, 42.5))
    assert out.shape == img.shape
    assert api.calls == [("compress", 42.5, "mse", "cpu"), ("decompress", "cpu")]


def test_neuralcodec_unusable_is_skipped_with_a_note(fake_neuralcodec):
    found, notes = neuralcodec_codecs(api=object())
    assert found == [] and "neuralcodec skipped" in notes[0]
    found, notes = neuralcodec_codecs(api=fake_neuralcodec([]))
    assert found == [] and "no shipped weights" in notes[0]


def test_build_codecs_expands_neuralcodec(monkeypatch):
    monkeypatch.setattr(
        codecs_mod, "neuralcodec_codecs", lambda device=None, models=None: ([], [f"models={models}"])
    )
    assert build_codecs(["neuralcodec"])[1] == ["models=None"]
    assert build_codecs(["neuralcodec:a+/w/b.pt"])[1] == ["models=['a', '/w/b.pt']"]


@pytest.mark.skipif(not TINY_MODEL.exists(), reason="tests/fixtures/tiny.pt absent")
def test_real_library_with_a_weights_file(gen_image):
    try:
        import neuralcodec

        neuralcodec.compress  # noqa: B018
    except Exception as exc:  # the library is being written alongside the harness
        pytest.skip(f"neuralcodec API not importable: {exc}")
    codec = NeuralCodec(str(TINY_MODEL), device="cpu")
    assert codec.name == "neuralcodec-tiny"
    img = gen_image(64, 64)
    out = codec.decode(codec.encode(img, 50))
    assert out.shape == img.shape and out.dtype == np.uint8


@pytest.mark.skipif(not TINY_MODEL.exists(), reason="tests/fixtures/tiny.pt absent")
def test_the_benchmark_measures_the_single_pass_encoder_whatever_the_default_effort(gen_image):
    import neuralcodec

    codec = NeuralCodec(str(TINY_MODEL), device="cpu")
    assert codec.info()["effort"] == 0 and "effort=0" in codec.description
    img = gen_image(64, 64)
    single_pass = neuralcodec.compress(Image.fromarray(img), 50, str(TINY_MODEL), "cpu", effort=0)
    assert codec.encode(img, 50) == single_pass
