"""Tiled transforms and banded entropy coding change nothing but memory use."""

import numpy as np
import torch

from neuralcodec import codec
from neuralcodec.tiling import run_tiled, tensor_reader
from neuralcodec.zoo import load_model


def test_run_tiled_equals_whole_for_a_local_function():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 5, 5, stride=2, padding=2).double()
    x = torch.randn(2, 3, 96, 160, dtype=torch.float64)
    whole = conv(x)
    tiled = run_tiled(conv, tensor_reader(x), (96, 160), 1, 2, (32, 48), 8)
    assert torch.allclose(tiled, whole, atol=1e-12)


def test_banded_exact_hyper_synthesis_is_bit_identical_to_whole(tiny_model):
    model = load_model(tiny_model)
    z = torch.randint(-2, 3, (1, model.config.N, 9, 5)).double()
    whole_scales, whole_means = model.hyper_synthesis(z)
    for r0, r1 in [(0, 1), (1, 4), (4, 9), (8, 9)]:
        scales, means = codec.band_parameters(model, z, r0, r1)
        assert torch.equal(scales, whole_scales[:, :, 4 * r0 : 4 * r1])
        assert torch.equal(means, whole_means[:, :, 4 * r0 : 4 * r1])


def test_small_tiles_and_bands_decode_like_one_piece(tiny_model, make_image, monkeypatch):
    model = load_model(tiny_model)
    img = make_image(200, 260, seed=9)[None]
    whole = codec.encode_batch(model, img, 70, "cpu")[0]
    ref = codec.decode_batch(model, [whole], 70, 200, 260, "cpu")
    monkeypatch.setattr(codec, "TILE", 128)
    tiled = codec.encode_batch(model, img, 70, "cpu")[0]
    banded = codec.encode_latents(model, *codec.analyse(model, img, 70, "cpu"), band_rows=1)
    assert len(banded.y) == 4
    out_tiled = codec.decode_batch(model, [tiled], 70, 200, 260, "cpu")
    out_banded = codec.decode_batch(model, [banded], 70, 200, 260, "cpu", band_rows=1)
    assert out_banded.shape == ref.shape == (1, 3, 200, 260)
    for out in (out_tiled, out_banded):
        diff = (out.int() - ref.int()).abs()
        assert diff.float().mean() < 0.5 and diff.max() <= 8
    # Rate of the banded stream stays within 2% of the single-piece stream.
    assert banded.actual_bits <= 1.02 * whole.actual_bits + 64 * len(banded.y)
    assert np.isclose(tiled.estimated_bits, whole.estimated_bits, rtol=0.02)
