"""Latent refinement (effort 1..9): decodable as intended, never worse, deterministic, bounded."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import neuralcodec
from neuralcodec import codec, refine
from neuralcodec.entropy_models import table_bits
from neuralcodec.latent_codec import HYPERPRIOR
from neuralcodec.models import mean_scale
from neuralcodec.models.registry import get_architecture
from neuralcodec.msssim import ms_ssim
from neuralcodec.rate import ZTableRate, gaussian_rate
from neuralcodec.refinement import geometry
from neuralcodec.refinement.rate_models import rate_model_of
from neuralcodec.zoo import load_model

# Results depend on the transforms' precision: every test runs in float32 and in bf16.
pytestmark = pytest.mark.usefixtures("transforms_precision")

QUALITY = 60


def table_bits_of(coded) -> float:
    """The integer tables' bits of one image's coded latents: ``table_bits`` of the hyperprior
    encoder's LatentStreams, ``estimated_bits`` of a latent codec's CodedLatents."""
    return coded.table_bits if isinstance(coded, codec.LatentStreams) else coded.estimated_bits


def decoded_latents(model, coded, height: int, width: int) -> torch.Tensor:
    """The ŷ a decoder rebuilds from one image's coded latents (the model's latent codec)."""
    return torch.from_numpy(model.latent_codec.decode(coded.sections, height, width, codec.BAND_ROWS))


def objective(model, img: np.ndarray, coded, quality: float) -> float:
    """The model's R–D objective of coded latents: λ·MSE·255² of the image the decoder rebuilds
    from them (codec.synthesize, in the transforms' precision, as refinement scores it) + table
    bits per pixel."""
    h, w = img.shape[:2]
    decoded = codec.synthesize(model, decoded_latents(model, coded, h, w), quality, h, w, "cpu").float()
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    mse = float(((decoded - x) ** 2).mean())
    level = torch.tensor([codec.quality_to_level(model, quality)])
    return float(model.transforms.lambda_at(level)) * mse + table_bits_of(coded) / (h * w)


def encode(model, img: np.ndarray, effort: int, quality: float = QUALITY):
    """One image coded by the model's architecture at ``effort``."""
    return get_architecture(model.architecture).encode(model, img[None], quality, "cpu", effort=effort)[0]


def code(model, y: torch.Tensor, z: torch.Tensor):
    """Latents (y, ẑ) of one image coded by the model's latent codec."""
    return model.latent_codec.encode(y.numpy(), z.numpy())


def test_refined_latents_are_what_the_unchanged_decoder_rebuilds(tiny_architectures, image):
    model = load_model(tiny_architectures)
    y, z = codec.analyse(model, image[None], QUALITY, "cpu")
    y2, z2 = refine.refine_latents(model, image[None], y, z, QUALITY, 2, "cpu")
    assert y2.shape == y.shape and z2.shape == z.shape
    assert y2.dtype == z2.dtype == torch.float32 and y2.device.type == "cpu"
    symbols = z2.double() - codec.z_offsets(model)
    assert torch.equal(symbols, torch.round(symbols))  # on the model's ẑ grid
    assert torch.equal(decoded_latents(model, code(model, y2, z2), *image.shape[:2]), y2)  # as meant


@pytest.mark.parametrize("effort", [1, 3])
def test_objective_at_effort_is_never_above_effort_0_and_bytes_repeat(tiny_architectures, image, effort):
    model = load_model(tiny_architectures)
    base = objective(model, image, encode(model, image, 0), QUALITY)
    first, second = encode(model, image, effort), encode(model, image, effort)
    assert objective(model, image, first, QUALITY) <= base
    assert first.sections == second.sections


def test_refinement_lowers_the_objective_of_a_trained_model(make_image):
    """Not only 'no worse': with a trained model (the tiny random one has no slope to follow)
    a few iterations find a strictly better objective, and the file is the best one scored."""
    from neuralcodec.zoo import available_models

    if "mse" not in available_models():
        pytest.skip("no shipped mse weights in this checkout")
    model = load_model("mse")
    img = make_image(64, 64, seed=3)
    refine.TRACE = []
    try:
        streams = encode(model, img, 3)
        trace = list(refine.TRACE)
    finally:
        refine.TRACE = None
    assert trace[0][0] == 0 and len(trace) >= 2
    best = min(t[1] for t in trace)
    assert best < trace[0][1]
    assert objective(model, img, streams, QUALITY) == pytest.approx(best, rel=1e-5)
    assert objective(model, img, streams, QUALITY) < objective(model, img, encode(model, img, 0), QUALITY)


def test_grayscale_files_refine_against_the_gray_image_they_decode_to(tiny_model, make_image):
    """A grayscale file decodes to the rounded mean of the decoded channels: the distortion
    refinement scores is that image's, not the RGB one's (which also counts colour errors that
    the file never shows)."""
    from PIL import Image

    gray = Image.fromarray(make_image(48, 64, seed=5)).convert("L")
    refine.TRACE = []
    try:
        data = neuralcodec.compress(gray, QUALITY, tiny_model, effort=2)
        trace = list(refine.TRACE)
    finally:
        refine.TRACE = None
    decoded = neuralcodec.decompress(data, model=tiny_model)
    assert decoded.mode == "L"
    error = np.asarray(decoded, dtype=np.float64) - np.asarray(gray, dtype=np.float64)
    mse = float((error**2).mean())
    assert any(t[3] == pytest.approx(mse, rel=1e-6) for t in trace), (mse, [t[3] for t in trace])


@pytest.mark.parametrize(
    ("model_name", "effort"), [("mse", 1), ("mse", 2), ("mse", 4), ("msssim", 1), ("msssim", 3)]
)
def test_greedy_rounding_alone_lowers_the_objective_of_a_trained_model(make_image, model_name, effort):
    """Efforts 1 to 4 are greedy rounding without SGA: with a trained model the exact scoring
    finds a strictly better objective than effort 0's, and the file decodes to what was meant."""
    from neuralcodec.zoo import available_models

    if model_name not in available_models():
        pytest.skip(f"no shipped {model_name} weights in this checkout")
    schedule = refine.SCHEDULES[effort]
    assert schedule.iterations == 0 and schedule.greedy_rounds == {1: 1, 2: 2, 3: 4, 4: 8}[effort]
    model = load_model(model_name)
    img = make_image(96, 96, seed=7)
    refine.TRACE = []
    try:
        y, z = codec.analyse(model, img[None], QUALITY, "cpu")
        y2, z2 = refine.refine_latents(model, img[None], y, z, QUALITY, effort, "cpu")
        trace = list(refine.TRACE)
    finally:
        refine.TRACE = None
    assert [t[0] for t in trace][:2] == [0, 1]  # the start, then a greedy round's candidate
    assert min(t[1] for t in trace) < trace[0][1]
    assert torch.equal(decoded_latents(model, code(model, y2, z2), 96, 96), y2)


def test_greedy_rounding_weighs_curvature_by_coverage_of_the_image(make_image, monkeypatch):
    """A 70 x 70 image is padded to 128 x 128: latents whose picture lies in the padding barely
    change the scored pixels, and treating them as such finds a lower objective (trained model)."""
    from neuralcodec.zoo import available_models

    if "mse" not in available_models():
        pytest.skip("no shipped mse weights in this checkout")
    model = load_model("mse")
    img = make_image(70, 70, seed=7)

    def best_change() -> float:
        refine.TRACE = []
        try:
            y, z = codec.analyse(model, img[None], QUALITY, "cpu")
            refine.refine_latents(model, img[None], y, z, QUALITY, 1, "cpu")
            trace = list(refine.TRACE)
        finally:
            refine.TRACE = None
        return min(t[1] for t in trace) / trace[0][1] - 1.0

    weighed = best_change()
    monkeypatch.setattr(geometry, "latent_coverage", lambda size_y, rows, cols: np.ones(size_y))
    assert weighed < best_change() < 0


def _traced_refinement(
    monkeypatch, model, img, settings, effort: int
) -> list[tuple[int, float, float, float]]:
    """``refine.TRACE`` of refining ``img`` at ``effort`` with every round run by ``settings``."""
    from neuralcodec import greedy_rounding

    monkeypatch.setitem(greedy_rounding.GREEDY_SETTINGS, model.config.metric, {1: settings})
    refine.TRACE = []
    try:
        y, z = codec.analyse(model, img[None], QUALITY, "cpu")
        refine.refine_latents(model, img[None], y, z, QUALITY, effort, "cpu")
        return list(refine.TRACE)
    finally:
        refine.TRACE = None


@pytest.mark.parametrize("model_name", ["mse", "msssim"])
def test_keeping_a_round_only_where_it_helped_is_never_worse_than_the_whole_round(
    make_image, monkeypatch, model_name
):
    """With ``keep_where_helped`` a round is scored, cut back to the positions where it lowered
    J and scored again: one round ends at or below the whole round (trained model)."""
    import dataclasses

    from neuralcodec import greedy_rounding
    from neuralcodec.zoo import available_models

    if model_name not in available_models():
        pytest.skip(f"no shipped {model_name} weights in this checkout")
    model = load_model(model_name)
    metric = model.config.metric
    img = make_image(96, 128, seed=9)

    def one_round(keep: bool) -> list[tuple[int, float, float, float]]:
        settings = dataclasses.replace(greedy_rounding.greedy_settings(metric, 1), keep_where_helped=keep)
        return _traced_refinement(monkeypatch, model, img, settings, effort=1)

    whole, kept = one_round(False), one_round(True)
    assert [t[0] for t in whole] == [0, 1]
    assert [t[0] for t in kept] == [0, 1, 1]  # the round, then what of it helped
    assert kept[1] == whole[1]  # the same round
    assert min(t[1] for t in kept) <= min(t[1] for t in whole) < kept[0][1]


def test_batches_refine_each_image_as_if_alone(tiny_model, make_image):
    model = load_model(tiny_model)
    a, b = make_image(64, 64, seed=4), make_image(64, 64, seed=5)
    together = mean_scale.encode(model, np.stack([a, b]), QUALITY, "cpu", effort=1)
    assert [(s.z, s.y) for s in together] == [(s.z, s.y) for s in (encode(model, a, 1), encode(model, b, 1))]


@pytest.mark.parametrize(
    ("effort", "keep_where_helped"), [(2, False), (2, True), (5, True)]
)  # greedy rounding alone, and after SGA (other windows)
def test_large_images_refine_tile_by_tile_and_stay_no_worse(
    tiny_architectures, make_image, monkeypatch, effort, keep_where_helped
):
    import dataclasses

    from neuralcodec import greedy_rounding

    settings = dataclasses.replace(
        greedy_rounding.greedy_settings("mse", 2), keep_where_helped=keep_where_helped
    )
    monkeypatch.setitem(greedy_rounding.GREEDY_SETTINGS, "mse", {1: settings})
    monkeypatch.setattr(refine, "SINGLE_WINDOW_PIXELS", 0)
    # One z position per core (the shipped halos): nine windows with context.
    for name in ("GREEDY_TILES", "SGA_TILES"):
        monkeypatch.setattr(refine, name, dataclasses.replace(getattr(refine, name), core_z=1))
    model = load_model(tiny_architectures)
    img = make_image(150, 190, seed=6)  # z grid 3 x 3
    calls: list[tuple[int, int]] = []
    y, z = codec.analyse(model, img[None], QUALITY, "cpu")
    y2, z2 = refine.refine_latents(
        model, img[None], y, z, QUALITY, effort, "cpu", progress=lambda d, t: calls.append((d, t))
    )
    total = 9 * (refine.SCHEDULES[effort].iterations + refine.SCHEDULES[effort].greedy_rounds)
    assert calls == [(i, total) for i in range(1, total + 1)]
    coded = code(model, y2, z2)
    base = objective(model, img, encode(model, img, 0), QUALITY)
    # Additive MSE objective: each tile step is no worse for the whole image (up to float32
    # differences between a window's g_s and the whole image's).
    assert objective(model, img, coded, QUALITY) <= base * (1 + 1e-5)
    y_hat = decoded_latents(model, coded, *img.shape[:2])
    if effort == 2 and model.architecture == HYPERPRIOR:
        assert torch.equal(y_hat, y2)  # ẑ, so every mean, stays: the coded ŷ is the refined one
    # After SGA later tiles may move earlier tiles' means; so may a checkerboard's anchors, its
    # non-anchors' means.
    assert (y_hat - y2).abs().max() <= 0.5 + 1e-3


def test_windows_cover_the_image_and_bound_the_window():
    for tiles in (refine.SGA_TILES, refine.GREEDY_TILES):
        windows = refine._windows(94, 63, 6000, 4000, tiles)  # a 6000 x 4000 photo
        core = np.zeros((94, 63), dtype=int)
        for w in windows:
            r0, r1, c0, c1 = w.core_z
            core[r0:r1, c0:c1] += 1
            y0, y1, x0, x1 = w.win_y
            assert (y1 - y0) * 16 <= 1024 and (x1 - x0) * 16 <= 1024
            p0, p1, q0, q1 = w.pixels
            assert 0 <= p0 < p1 <= 6000 and 0 <= q0 < q1 <= 4000
        assert (core == 1).all()
        assert len(refine._windows(8, 12, 512, 768, tiles)) == 1  # Kodak: one window
    # Greedy rounding alone needs little context: about 1.6 times the pixels, not 4 times.
    window_pixels = sum(
        (w.win_y[1] - w.win_y[0]) * (w.win_y[3] - w.win_y[2]) * 256
        for w in refine._windows(94, 63, 6000, 4000, refine.GREEDY_TILES)
    )
    assert window_pixels < 1.6 * 6016 * 4032


# Greedy rounding moves the core's ŷ; SGA moves its ẑ too, so ŷ = μ + k moves wherever h_s
# carries the core's ẑ: 7 y positions around it (5x5 s2, 5x5 s2, 3x3).
@pytest.mark.parametrize(("tiles", "reach_y"), [("GREEDY_TILES", 0), ("SGA_TILES", 7)])
def test_a_window_scores_every_pixel_its_core_can_change_and_synthesises_them_exactly(
    tiny_model, tiles, reach_y, monkeypatch
):
    """What a tile step's objective rests on: a change of ŷ where the core reaches changes pixels
    only inside the window's scored region, and g_s of the window alone gives those pixels as g_s
    of the whole image does (checked at the shipped halos, with a small core, on random weights)."""
    import dataclasses

    model = load_model(tiny_model)
    t = model.transforms
    monkeypatch.setattr(refine, "SINGLE_WINDOW_PIXELS", 0)
    tiles = dataclasses.replace(getattr(refine, tiles), core_z=2)
    start = 2 * -(-(tiles.halo_z + 1) // 2)  # a core whose window lies inside the image,
    size = 2 * start + 2  # on every side
    (w,) = [
        w for w in refine._windows(size, size, 64 * size, 64 * size, tiles) if w.core_z[::2] == (start,) * 2
    ]
    gen = torch.Generator().manual_seed(3)
    y = torch.randn((1, model.config.M, 4 * size, 4 * size), generator=gen)
    changed = y.clone()
    r0, r1, c0, c1 = (4 * v + (reach_y if i % 2 else -reach_y) for i, v in enumerate(w.core_z))
    changed[:, :, r0:r1, c0:c1] += 3 * torch.randn((1, model.config.M, r1 - r0, c1 - c0), generator=gen)
    with torch.no_grad():
        whole, after = t.g_s(y), t.g_s(changed)
        y0, y1, x0, x1 = w.win_y
        window = t.g_s(y[:, :, y0:y1, x0:x1])
    p0, p1, q0, q1 = w.pixels
    moved = (whole != after).any(dim=1)[0]
    scored = torch.zeros_like(moved)
    scored[p0:p1, q0:q1] = True
    assert moved.any() and not (moved & ~scored).any()
    inside = window[:, :, p0 - 16 * y0 : p1 - 16 * y0, q0 - 16 * x0 : q1 - 16 * x0]
    torch.testing.assert_close(inside, whole[:, :, p0:p1, q0:q1], rtol=0, atol=1e-5)


def test_api_and_progress(tiny_model, image):
    seen: list[tuple[int, int]] = []
    data, stats = neuralcodec.compress_with_stats(
        image, QUALITY, tiny_model, effort=2, progress=lambda d, t: seen.append((d, t))
    )
    steps = refine.SCHEDULES[2].iterations + refine.SCHEDULES[2].greedy_rounds
    assert seen and seen[-1][0] == seen[-1][1] == steps
    assert data == neuralcodec.compress(image, QUALITY, tiny_model, effort=2)
    decoded = neuralcodec.decompress(data, model=tiny_model)
    assert decoded.size == (image.shape[1], image.shape[0])


@pytest.mark.parametrize("effort", [-1, 10, 1.5, "3", True, "auto"])
def test_bad_effort_values_raise_value_error(tiny_model, image, effort):
    with pytest.raises(ValueError, match="effort"):
        neuralcodec.compress(image, QUALITY, tiny_model, effort=effort)


def test_the_default_effort_is_greedy_rounding_up_to_a_megapixel_and_single_pass_above(
    tiny_model, make_image, monkeypatch
):
    from neuralcodec import api

    assert api.default_effort(768, 512) == 2  # Kodak
    assert api.default_effort(768, 512, "ms-ssim") == 1  # its rounds cost two syntheses each
    assert api.default_effort(1024, 1024) == 2 and api.default_effort(1025, 1024) == 0
    assert api.default_effort(6000, 4000) == 0 == api.default_effort(6000, 4000, "ms-ssim")
    assert api.default_effort(768, 512, "psnr-hvs") == 0  # a metric without a measured default
    img = make_image(64, 64, seed=8)
    single_pass = neuralcodec.compress(img, QUALITY, tiny_model, effort=0)
    assert single_pass != neuralcodec.compress(img, QUALITY, tiny_model, effort=2)  # so the test can tell
    assert neuralcodec.compress(img, QUALITY, tiny_model) == neuralcodec.compress(
        img, QUALITY, tiny_model, effort=2
    )
    monkeypatch.setitem(api.DEFAULT_EFFORTS, "mse", 3)  # the model's metric decides
    assert neuralcodec.compress(img, QUALITY, tiny_model) == neuralcodec.compress(
        img, QUALITY, tiny_model, effort=3
    )
    monkeypatch.setattr(refine, "SINGLE_WINDOW_PIXELS", 64 * 64 - 1)  # as if it were a large image
    assert neuralcodec.compress(img, QUALITY, tiny_model) == neuralcodec.compress(
        img, QUALITY, tiny_model, effort=0
    )


@pytest.mark.parametrize("effort", [0, 10, 2.0])
def test_refine_refuses_efforts_outside_1_to_9(tiny_model, image, effort):
    model = load_model(tiny_model)
    y, z = codec.analyse(model, image[None], QUALITY, "cpu")
    with pytest.raises(ValueError, match="effort"):
        refine.refine_latents(model, image[None], y, z, QUALITY, effort, "cpu")


def test_z_table_rate_is_exact_at_integers_and_linear_between(tiny_model):
    model = load_model(tiny_model)
    rate = ZTableRate(model.z_tables)
    n = len(model.z_tables.lengths)
    gen = torch.Generator().manual_seed(0)
    z = torch.randint(-6, 7, (1, n, 3, 4), generator=gen).float()
    z = rate.clamp(z)
    symbols = z.flatten().numpy().astype(np.int64)
    index = np.repeat(np.arange(n), 12)
    assert float(rate(z)) == pytest.approx(table_bits(symbols, index, model.z_tables), rel=1e-5)
    lo, hi = rate.clamp(z), rate.clamp(z + 1)
    mid = rate.clamp(z + 0.25)
    assert float(rate(mid)) == pytest.approx(0.75 * float(rate(lo)) + 0.25 * float(rate(hi)), rel=1e-5)


def test_the_rate_model_scores_latents_as_the_coder_codes_them(tiny_architectures, image):
    """The rate model's exact scoring of a window holding the whole image: ŷ is what the decoder
    rebuilds from the coded latents and the bits are their table bits; its soft rate of that ŷ
    is differentiable in ẑ."""
    model = load_model(tiny_architectures)
    y, z = codec.analyse(model, image[None], QUALITY, "cpu")
    coded = code(model, y, z)
    (window,) = refine._windows(z.shape[2], z.shape[3], *image.shape[:2], refine.GREEDY_TILES)
    z_symbols = z - codec.z_offsets(model).float()
    with torch.inference_mode(False):
        rate = rate_model_of(model, torch.device("cpu")).window(z_symbols, window)
        exact = rate.exact(z_symbols[window.image_z_core], y[window.image_win_y])
        assert exact.bits == pytest.approx(table_bits_of(coded), rel=1e-12)
        assert torch.equal(exact.y_hat, decoded_latents(model, coded, *image.shape[:2]))
        z_core = exact.z_core.float().requires_grad_(True)
        y_hat, bits = rate.soft(z_core, lambda means: exact.y_hat)
        bits.backward()
    assert torch.equal(y_hat, exact.y_hat) and z_core.grad is not None and bool(z_core.grad.abs().sum() > 0)
    # The soft rate of the coded latents is the tables' up to their quantisation of the scales
    # (and the float context's of its integer arithmetic).
    assert float(bits.detach()) == pytest.approx(exact.bits, rel=0.03)


def test_gaussian_rate_matches_the_models_estimate():
    from neuralcodec.entropy_models import gaussian_bits

    gen = torch.Generator().manual_seed(1)
    r = torch.randint(-8, 9, (1, 4, 5, 6), generator=gen).double()
    s = torch.rand((1, 4, 5, 6), generator=gen).double() * 10 + 2.0
    s[0, 0], r[0, 0] = 0.05, 0.0  # below the smallest table scale: both clamp it
    expected = gaussian_bits(r.flatten().numpy().astype(np.int64), s.flatten().numpy())
    assert float(gaussian_rate(r, s)) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("shape", [(2, 3, 161, 200), (1, 3, 256, 190), (1, 1, 333, 171)])
def test_ms_ssim_equals_pytorch_msssim(shape):
    from pytorch_msssim import ms_ssim as reference

    gen = torch.Generator().manual_seed(2)
    a = torch.rand(shape, generator=gen)
    b = (a + 0.1 * torch.randn(shape, generator=gen)).clamp(0, 1)
    expected = reference(a, b, data_range=1.0, size_average=False)
    assert torch.allclose(ms_ssim(a, b), expected, atol=1e-6)
    expected255 = reference(a * 255, b * 255, data_range=255, size_average=False)
    assert torch.allclose(ms_ssim(a * 255, b * 255, data_range=255), expected255, atol=1e-5)


@pytest.mark.parametrize("size", [(1, 1), (7, 30), (64, 96), (160, 12)])
def test_ms_ssim_of_small_images_is_defined_and_differentiable(size):
    gen = torch.Generator().manual_seed(3)
    a = torch.rand((1, 3, *size), generator=gen)
    b = (a + 0.05 * torch.randn(a.shape, generator=gen)).clamp(0.01, 0.99).requires_grad_(True)
    value = ms_ssim(a, b)
    assert 0.0 <= float(value.detach()) <= 1.0
    value.sum().backward()
    assert torch.isfinite(b.grad).all()
    assert float(ms_ssim(a, a)) == pytest.approx(1.0, abs=1e-6)
