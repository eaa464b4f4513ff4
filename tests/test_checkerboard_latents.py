"""The checkerboard model's latent codec: exact round trips, the hyperprior as its special case,
the gathered context sums equal to the full convolution, and corrupt sections refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from checkerboard_weights import write_checkerboard

from neuralcodec import exact_context
from neuralcodec.checkerboard_latents import CHECKERBOARD
from neuralcodec.entropy_models import CorruptStreamError
from neuralcodec.exact_context import anchor_mask, fixed_point
from neuralcodec.latent_codec import HYPERPRIOR
from neuralcodec.numpy_conv import conv2d
from neuralcodec.numpy_decoder import NumpyModel


def load(path: Path) -> NumpyModel:
    return NumpyModel.from_file(path)


@pytest.fixture(scope="module")
def checkerboard(tmp_path_factory, tiny_model) -> NumpyModel:
    return load(write_checkerboard(tiny_model, tmp_path_factory.mktemp("cb") / "cb.pt", seed=3))


def latents(model: NumpyModel, rows: int, cols: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random y (1, M, 4·rows, 4·cols) and z (1, N, rows, cols) at plausible magnitudes."""
    rng = np.random.default_rng(seed)
    m, n = model.entropy.latent_channels, model.entropy.hyper_channels
    y = (rng.standard_normal((1, m, 4 * rows, 4 * cols)) * 3).astype(np.float32)
    z = (rng.standard_normal((1, n, rows, cols)) * 2).astype(np.float32)
    return y, z


def test_model_codes_its_own_and_the_hyperprior_architecture(checkerboard):
    assert checkerboard.architecture == CHECKERBOARD
    assert list(checkerboard.latent_codecs) == [CHECKERBOARD, HYPERPRIOR]
    assert checkerboard.latent_codec.format_version == 3


@pytest.mark.parametrize("band_rows", [1, 2, 16])
def test_round_trip_rebuilds_the_encoders_latents_exactly(checkerboard, band_rows):
    y, z = latents(checkerboard, 5, 3, seed=band_rows)
    codec = checkerboard.latent_codec
    coded = codec.encode(y, z, band_rows, keep_y_hat=True)
    assert len(coded.sections) == codec.section_count(5 * 64, 3 * 64, band_rows) == 1 + 2 * -(-5 // band_rows)
    decoded = codec.decode(coded.sections, 5 * 64 - 10, 3 * 64 - 7, band_rows)
    assert np.array_equal(decoded, coded.y_hat)


def test_band_height_changes_nothing_but_the_sections(checkerboard):
    """Halo rows of anchors reach across bands: the non-anchors' parameters, and so ŷ, do not
    depend on where the bands split."""
    y, z = latents(checkerboard, 6, 2, seed=9)
    codec = checkerboard.latent_codec
    y_hats = [codec.encode(y, z, rows, keep_y_hat=True).y_hat for rows in (1, 3, 16)]
    assert all(np.array_equal(y_hats[0], other) for other in y_hats[1:])


def test_zero_context_output_is_the_hyperprior(tmp_path, tiny_model):
    """An untrained context (last layer 0) gives every latent the hyperprior's parameters: the
    same ŷ, and the same symbols split into anchor and non-anchor sections."""
    model = load(write_checkerboard(tiny_model, tmp_path / "zero.pt", seed=1, zero_output=True))
    y, z = latents(model, 4, 3, seed=2)
    ours = model.latent_codec.encode(y, z, 16, keep_y_hat=True)
    plain = model.latent_codecs[HYPERPRIOR].encode(y, z, 16, keep_y_hat=True)
    assert np.array_equal(ours.y_hat, plain.y_hat)
    assert ours.sections[0] == plain.sections[0]


def test_gathered_context_sums_equal_the_masked_convolution(checkerboard):
    context = checkerboard.latent_codec.context
    rng = np.random.default_rng(5)
    anchors = (rng.standard_normal((1, context.context.weight.shape[1], 9, 7)) * 5).astype(np.float32)
    above, band_row0, rows = 2, 3, 5
    non_anchor = ~anchor_mask(band_row0, rows, 7)
    x = fixed_point(anchors, context.anchor_shift)
    x[0][:, ~anchor_mask(band_row0 - above, 9, 7)] = 0.0
    full = conv2d(x, context.context.weight, context.context.bias, 1, context.halo)[
        0, :, above : above + rows
    ]
    rows_at, cols_at = np.nonzero(non_anchor)
    gathered = context._context_sums(context._padded_anchors(anchors[0]), rows_at + above, cols_at)
    assert np.array_equal(gathered, full[:, non_anchor])


def test_context_parameters_do_not_depend_on_the_chunk_of_positions(checkerboard, monkeypatch):
    context = checkerboard.latent_codec.context
    m = context.context.weight.shape[1]
    rng = np.random.default_rng(6)
    anchors = (rng.standard_normal((1, m, 9, 13)) * 5).astype(np.float32)
    positions = int((~anchor_mask(3, 5, 13)).sum())
    scales = np.exp(rng.uniform(-2, 3, (m, positions)))
    means = rng.standard_normal((m, positions))
    whole = context(scales, means, anchors, 3, 5, 2)
    monkeypatch.setattr(exact_context, "CHUNK_POSITIONS", 7)
    chunked = context(scales, means, anchors, 3, 5, 2)
    assert all(np.array_equal(a, b) for a, b in zip(whole, chunked))
    with pytest.raises(ValueError, match="non-anchors"):
        context(scales[:, 1:], means[:, 1:], anchors, 3, 5, 2)


def test_corrupt_or_missing_sections_are_refused(checkerboard):
    y, z = latents(checkerboard, 2, 2, seed=4)
    codec = checkerboard.latent_codec
    sections = codec.encode(y, z, 1).sections
    with pytest.raises(CorruptStreamError, match="model sections"):
        codec.decode(sections[:-1], 128, 128, 1)
    with pytest.raises(CorruptStreamError):
        codec.decode(sections[:-1] + [sections[-1][:-4]], 128, 128, 1)
    with pytest.raises(CorruptStreamError):
        codec.decode([sections[0], sections[2], sections[1], *sections[3:]], 128, 128, 1)


@pytest.mark.parametrize(
    "damage",
    [
        lambda s: s["context_exact"].__setitem__("slope", float("nan")),
        lambda s: s["context_exact"]["context"].__setitem__(
            "output_shift", s["context_exact"]["param_shift"] + 1
        ),
        lambda s: s["context_exact"]["layers"][-1].__setitem__("activation", "leaky"),
        lambda s: s["context_exact"]["layers"][0].__setitem__("output_shift", 5000),
        lambda s: s["context_exact"]["context"].__setitem__(
            "weight", s["context_exact"]["context"]["weight"][:, :-1].contiguous()
        ),
        lambda s: s.pop("context_exact"),
    ],
    ids=["nan-slope", "context-shift", "last-activation", "huge-shift", "channels", "missing"],
)
def test_malformed_context_weights_are_refused_when_loading(tmp_path, tiny_model, damage):
    import torch

    from neuralcodec.errors import InvalidModelError

    path = write_checkerboard(tiny_model, tmp_path / "cb.pt", seed=1)
    state = torch.load(path, weights_only=False)
    damage(state)
    torch.save(state, path)
    with pytest.raises(InvalidModelError):
        load(path)


def test_coding_over_y_gives_the_same_sections_and_leaves_y_hat_in_y(checkerboard):
    y, z = latents(checkerboard, 3, 2, seed=7)
    codec = checkerboard.latent_codec
    reference = codec.encode(y.copy(), z, 1, keep_y_hat=True)
    untouched = y.copy()
    codec.encode(untouched, z, 1)
    assert np.array_equal(untouched, y)  # never written without overwrite_y
    overwritten = y.copy()
    coded = codec.encode(overwritten, z, 1, overwrite_y=True)
    assert coded.sections == reference.sections
    assert np.array_equal(overwritten, reference.y_hat)
