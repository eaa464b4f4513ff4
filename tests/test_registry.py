"""Architectures plug in through the registry: the API dispatches on the weights file's name."""

import numpy as np
import pytest
import torch

import neuralcodec
from neuralcodec import codec
from neuralcodec.errors import ModelNotFoundError
from neuralcodec.models import mean_scale
from neuralcodec.models.registry import Architecture, get_architecture, register, registered_architectures
from neuralcodec.zoo import load_model


def test_the_shipped_architecture_is_registered():
    assert "mean-scale-hyperprior" in registered_architectures()
    assert get_architecture("mean-scale-hyperprior") is mean_scale.ARCHITECTURE


def test_unknown_architectures_get_a_clear_error(tmp_path, tiny_model):
    state = torch.load(tiny_model, weights_only=True)
    state["architecture"] = "no-such-thing"
    torch.save(state, tmp_path / "odd.pt")
    with pytest.raises(ModelNotFoundError, match="unknown model architecture 'no-such-thing'"):
        load_model(tmp_path / "odd.pt")


def test_a_new_architecture_plugs_in_without_touching_the_api(tmp_path, tiny_model, make_image):
    calls = []

    def encode(model, x, quality, device="auto", effort=0, progress=None, gray_output=False):
        calls.append("encode")
        return mean_scale.encode(model, x, quality, device, effort=effort, progress=progress)

    def decode(model, streams, quality, height, width, device="auto", band_rows=16):
        calls.append("decode")
        return codec.decode_batch(model, streams, quality, height, width, device, band_rows)

    def load(state, name, digest):
        model = mean_scale.load(state, name, digest)
        model.architecture = "test-wrapper"
        return model

    register(Architecture("test-wrapper", load=load, encode=encode, decode=decode))
    state = torch.load(tiny_model, weights_only=True)
    state["architecture"] = "test-wrapper"
    torch.save(state, tmp_path / "wrapped.pt")
    image = make_image(64, 80)
    data = neuralcodec.compress(image, 50, tmp_path / "wrapped.pt", "cpu")
    decoded = neuralcodec.decompress(data, "cpu", tmp_path / "wrapped.pt")
    assert calls == ["encode", "decode"]
    assert np.asarray(decoded).shape == image.shape
