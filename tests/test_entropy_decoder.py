"""Entropy decoding in numpy: the ŷ the torch encoder meant, bit for bit, with no torch import."""

from __future__ import annotations

import functools
import subprocess
import sys

import numpy as np
import pytest

from neuralcodec import codec, entropy_decoder
from neuralcodec.entropy_models import CorruptStreamError
from neuralcodec.zoo import load_model


@pytest.mark.parametrize(("height", "width", "band_rows"), [(64, 96, 16), (200, 130, 1), (130, 200, 2)])
def test_decoded_latents_are_what_the_encoder_coded(tiny_models, make_image, height, width, band_rows):
    model = load_model(tiny_models)
    y, z = codec.analyse(model, make_image(height, width, seed=7)[None], 55, "cpu")
    streams = codec.encode_latents(model, y, z, band_rows=band_rows, keep_y_hat=True)
    decoded = entropy_decoder.decode_latents(
        model.entropy_parameters, streams.z, streams.y, height, width, band_rows
    )
    assert decoded.dtype == np.float32
    assert np.array_equal(decoded, streams.y_hat.numpy())  # torch hyper-synthesis coded, numpy decoded


def test_streams_that_do_not_decode_are_reported(tiny_model, make_image):
    model = load_model(tiny_model)
    y, z = codec.analyse(model, make_image(64, 64, seed=1)[None], 55, "cpu")
    streams = codec.encode_latents(model, y, z)
    params = model.entropy_parameters
    with pytest.raises(CorruptStreamError):
        entropy_decoder.decode_latents(params, streams.z, [streams.y[0][:-4]], 64, 64, 16)
    with pytest.raises(ValueError, match="expected 1 y streams"):
        entropy_decoder.decode_latents(params, streams.z, streams.y * 2, 64, 64, 16)


def test_entropy_decoding_needs_no_torch():
    code = "import sys, neuralcodec.entropy_decoder; assert 'torch' not in sys.modules, 'torch loaded'"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_parameters_computed_for_several_bands_at_once_are_the_same(tiny_model, make_image, monkeypatch):
    model = load_model(tiny_model)
    y, z = codec.analyse(model, make_image(200, 130, seed=5)[None], 50, "cpu")
    streams = codec.encode_latents(model, y, z, band_rows=1)  # four bands of one z row
    decode = functools.partial(
        entropy_decoder.decode_latents, model.entropy_parameters, streams.z, streams.y, 200, 130, 1
    )
    monkeypatch.setattr(entropy_decoder, "PARAMETER_BYTES", 1)  # one band at a time
    one_by_one = decode()
    monkeypatch.setattr(entropy_decoder, "PARAMETER_BYTES", 1 << 40)  # every band at once
    assert np.array_equal(decode(), one_by_one)
