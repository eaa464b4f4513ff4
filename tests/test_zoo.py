"""Weights files: the digest streams carry names the decoder side, and a bad one is refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from neuralcodec.errors import InvalidModelError, ModelNotFoundError
from neuralcodec.zoo import (
    WEIGHTS_PATH_VARIABLE,
    decoder_digest,
    decoder_file_name,
    file_digest,
    find_decoder,
    load_model,
    weights_search_path,
)

FIXTURES = Path(__file__).parent / "fixtures"


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


def test_the_weights_search_path_is_the_variable_s_folders_else_the_user_data_folder(monkeypatch, tmp_path):
    monkeypatch.setenv(WEIGHTS_PATH_VARIABLE, os.pathsep.join([str(tmp_path / "a"), "", str(tmp_path / "b")]))
    assert weights_search_path() == [tmp_path / "a", tmp_path / "b"]
    monkeypatch.delenv(WEIGHTS_PATH_VARIABLE)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert weights_search_path() == [tmp_path / "data" / "neuralcodec" / "weights"]


def test_a_decoder_no_longer_shipped_is_found_by_name_and_digest(tiny_model, tmp_path, monkeypatch):
    digest = file_digest(tiny_model)
    monkeypatch.setenv(WEIGHTS_PATH_VARIABLE, os.pathsep.join([str(tmp_path / "empty"), str(tmp_path)]))
    assert find_decoder("tiny", digest) is None
    (tmp_path / decoder_file_name("tiny", digest)).write_bytes(tiny_model.read_bytes())
    assert decoder_file_name("tiny", digest) == f"tiny-{digest.hex()}.pt"
    assert find_decoder("tiny", digest).digest == digest
    assert find_decoder("tiny", bytes(8)) is None


@pytest.mark.parametrize("name", ["../tiny", "/etc/passwd", "", "a" * 65, "tiny.pt"])
def test_a_decoder_is_never_looked_up_by_a_path(name):
    with pytest.raises(ModelNotFoundError):
        find_decoder(name, bytes(8))


def test_format_1_weights_code_z_on_the_integers(tiny_model):
    model = load_model(tiny_model)
    assert not model.z_offsets.any() and model.hyper_synthesis.input_shift == 0


@pytest.mark.parametrize(
    "change",
    [
        {"z_offsets": torch.full((16,), 200, dtype=torch.int32)},  # beyond ±1/2
        {"z_offsets": torch.zeros(3, dtype=torch.int32)},  # not one per channel
        {"z_offset_bits": 40},
    ],
)
def test_malformed_z_offsets_are_refused(tmp_path, change):
    state = torch.load(FIXTURES / "tiny-offsets.pt", weights_only=True)
    path = tmp_path / "w.pt"
    torch.save({**state, **change}, path)
    with pytest.raises(InvalidModelError, match="z offsets"):
        load_model(path)


def test_weights_of_an_unknown_format_are_refused(tiny_model, tmp_path):
    path = _copy_with(tiny_model, tmp_path, format=3)
    with pytest.raises(ModelNotFoundError, match="format 1 or 2"):
        load_model(path)
