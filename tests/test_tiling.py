"""Tiled transforms and banded entropy coding change nothing but memory use.

Where the code claims exactness it is tested with equality: tiling an exact (integer-valued)
computation, the banded exact hyper-synthesis, and the ŷ that any band height yields. Tiling
the float transforms is exact in real arithmetic; in float32/bf16 it may differ by rounding,
and that is tested with a tolerance.
"""

import numpy as np
import pytest
import torch

from neuralcodec import codec, entropy_decoder
from neuralcodec.exact_numpy import context_rows
from neuralcodec.tiling import run_tiled, tensor_reader
from neuralcodec.zoo import load_model

# Results depend on the transforms' precision: every test runs in float32 and in bf16.
pytestmark = pytest.mark.usefixtures("transforms_precision")


def test_run_tiled_equals_whole_exactly_for_an_exact_local_function():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 5, 5, stride=2, padding=2).double()
    with torch.no_grad():  # integer weights and inputs: every float64 sum is exact
        conv.weight.copy_(torch.randint(-8, 9, conv.weight.shape))
        conv.bias.copy_(torch.randint(-8, 9, conv.bias.shape))
    x = torch.randint(-50, 51, (2, 3, 96, 160)).double()
    with torch.no_grad():
        whole = conv(x)
        tiled = run_tiled(conv, tensor_reader(x), (96, 160), 1, 2, (32, 48), 8)
        up = torch.nn.ConvTranspose2d(3, 4, 5, stride=2, padding=2, output_padding=1).double()
        up.weight.copy_(torch.randint(-8, 9, up.weight.shape))
        up.bias.zero_()
        tiled_up = run_tiled(up, tensor_reader(x), (96, 160), 2, 1, (32, 48), 4)
        whole_up = up(x)
    assert torch.equal(tiled, whole)
    assert torch.equal(tiled_up, whole_up)


def test_band_height_changes_the_streams_but_never_the_decoded_latents(tiny_model, make_image):
    model = load_model(tiny_model)
    y, z = codec.analyse(model, make_image(200, 260, seed=9)[None], 70, "cpu")
    reference = codec.encode_latents(model, y, z, keep_y_hat=True)
    for band_rows in (1, 2, 3):
        banded = codec.encode_latents(model, y, z, band_rows=band_rows, keep_y_hat=True)
        assert torch.equal(banded.y_hat, reference.y_hat)
        decoded = codec.decode_latents(model, banded.z, banded.y, 200, 260, band_rows)
        assert torch.equal(decoded, reference.y_hat)


def test_banded_exact_hyper_synthesis_is_bit_identical_to_whole(tiny_model):
    model = load_model(tiny_model)
    z = torch.randint(-2, 3, (1, model.config.N, 9, 5)).double()
    whole_scales, whole_means = model.hyper_synthesis(z)
    for r0, r1 in [(0, 1), (1, 4), (4, 9), (8, 9)]:
        scales, means = entropy_decoder.band_parameters(model.hyper_synthesis, z, r0, r1)
        assert np.array_equal(scales, whole_scales[:, :, 4 * r0 : 4 * r1].numpy())
        assert np.array_equal(means, whole_means[:, :, 4 * r0 : 4 * r1].numpy())


def test_column_chunks_of_the_exact_hyper_synthesis_are_bit_identical_to_whole(tiny_model, monkeypatch):
    model = load_model(tiny_model)
    z = torch.randint(-3, 4, (1, model.config.N, 6, 29)).double()
    whole_scales, whole_means = model.hyper_synthesis(z)
    monkeypatch.setattr(entropy_decoder, "CHUNK_BYTES", 1)  # the smallest chunk: 8 ẑ columns
    scales, means = entropy_decoder.band_parameters(model.hyper_synthesis, z, 1, 5)
    assert np.array_equal(scales, whole_scales[:, :, 4:20].numpy())
    assert np.array_equal(means, whole_means[:, :, 4:20].numpy())


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


def test_bands_read_exactly_the_context_rows_of_the_hyper_synthesis(tiny_model, monkeypatch):
    model = load_model(tiny_model)
    halo = context_rows(model.hyper_synthesis.layers)
    assert halo == 2  # two 5×5 transposed layers of stride 2, then a 3×3 convolution
    assert context_rows(model.latent_codec.params.hyper_synthesis.layers) == halo
    z = torch.randint(-3, 4, (1, model.config.N, 12, 12)).double()
    whole_scales, _ = model.hyper_synthesis(z)
    monkeypatch.setattr(entropy_decoder, "context_rows", lambda layers: halo - 1)
    scales, _ = entropy_decoder.band_parameters(model.hyper_synthesis, z, 4, 8)
    assert not np.array_equal(scales, whole_scales[:, :, 16:32].numpy())  # one row less is not enough


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_channels_last_output_is_the_transposed_output(kind):
    x = torch.randn(1, 2, 37, 45)
    x = x.numpy() if kind == "numpy" else x

    def up(t):  # 2× nearest-neighbour upsampling to three channels: a local function
        t = (
            t.repeat(2, axis=2).repeat(2, axis=3)
            if kind == "numpy"
            else t.repeat_interleave(2, 2).repeat_interleave(2, 3)
        )
        return t[:, [0, 1, 0]]

    whole = run_tiled(up, tensor_reader(x), (37, 45), 2, 1, (16, 16), 0)
    last = run_tiled(up, tensor_reader(x), (37, 45), 2, 1, (16, 16), 0, channels_last=True)
    expected = whole.transpose(0, 2, 3, 1) if kind == "numpy" else whole.permute(0, 2, 3, 1)
    assert last.shape == (1, 74, 90, 3) and (last == expected).all()
