"""Weights files: the digest streams carry names the decoder side, and a bad one is refused."""

from __future__ import annotations

import pytest
import torch

from neuralcodec.errors import InvalidModelError
from neuralcodec.zoo import decoder_digest, file_digest, load_model


def _copy_with(tiny_model, tmp_path, **entries):
    state = torch.load(tiny_model, weights_only=True)
    state.update(entries)
    path = tmp_path / "w.pt"
    torch.save(state, path)
    return path


def test_weights_without_a_decoder_digest_are_named_by_their_file_hash(tiny_model):
    assert load_model(tiny_model).digest == file_digest(tiny_model)


def test_a_stored_decoder_digest_names_the_weights(tiny_model, tmp_path):
    path = _copy_with(tiny_model, tmp_path, decoder_digest="0123456789abcdef")
    assert decoder_digest(torch.load(path, weights_only=True), path) == bytes.fromhex("0123456789abcdef")


@pytest.mark.parametrize("bad", ["0123", "not-hex-at-all!!", 12345, "0123456789abcdef00"])
def test_a_malformed_decoder_digest_is_refused(tiny_model, tmp_path, bad):
    path = _copy_with(tiny_model, tmp_path, decoder_digest=bad)
    with pytest.raises(InvalidModelError, match="decoder_digest"):
        decoder_digest(torch.load(path, weights_only=True), path)
