"""Architectures plug in through the registry: the API dispatches on the weights file's name."""

from functools import partial

import numpy as np
import pytest
import torch

import neuralcodec
from neuralcodec import latent_codecs
from neuralcodec.container import unpack
from neuralcodec.errors import ModelNotFoundError
from neuralcodec.latent_codec import HyperpriorLatents
from neuralcodec.models import checkerboard, mean_scale
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


class LoggingLatents(HyperpriorLatents):
    """The hyperprior's sections under another architecture's name, in format 3, logging calls."""

    calls: list[str] = []

    def encode(self, y, z, band_rows=16, keep_y_hat=False, overwrite_y=False):
        self.calls.append("encode")
        return super().encode(y, z, band_rows, keep_y_hat, overwrite_y)

    def decode(self, sections, height, width, band_rows):
        self.calls.append("decode")
        return super().decode(sections, height, width, band_rows)


def test_a_new_architecture_plugs_in_without_touching_the_api(tmp_path, tiny_model, make_image):
    """An architecture is a registry entry (loading, encoding) and a latent codec (its
    sections); the API, the container and both decoders take it without knowing it."""
    name = "test-wrapper"
    latent_codecs.register(name, lambda params, state: LoggingLatents(params, name, 3))
    register(Architecture(name, load=partial(mean_scale.load, architecture=name), encode=checkerboard.encode))
    state = torch.load(tiny_model, weights_only=True)
    state["architecture"] = name
    torch.save(state, tmp_path / "wrapped.pt")
    image = make_image(64, 80)
    data = neuralcodec.compress(image, 50, tmp_path / "wrapped.pt", "cpu", effort=0)
    header = unpack(data).header
    assert (header.format_version, header.architecture) == (3, name)
    by_torch = neuralcodec.decompress(data, "cpu", tmp_path / "wrapped.pt", backend="torch")
    by_numpy = neuralcodec.decompress(data, model=tmp_path / "wrapped.pt", backend="numpy")
    assert LoggingLatents.calls == ["encode", "decode", "decode"]
    assert np.asarray(by_torch).shape == np.asarray(by_numpy).shape == image.shape
