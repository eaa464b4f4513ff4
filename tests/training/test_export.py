"""Export: z offsets from the medians, so the runtime quantises z where training evaluates it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from make_fixtures import TINY_CONFIG, calibration_pixels, tiny_training_model
from PIL import Image

import neuralcodec
from neuralcodec import codec
from neuralcodec.entropy_models import table_bits
from neuralcodec.models.hyperprior import HyperpriorConfig
from neuralcodec.training.export import export, load_exported
from neuralcodec.training.export import main as export_main
from neuralcodec.training.model import TrainableHyperprior
from neuralcodec.zoo import WEIGHTS_FORMAT, Z_OFFSET_BITS, load_model


@pytest.fixture
def exported(tmp_path):
    model = tiny_training_model(fractional_medians=True)
    return model, load_model(export(model, "tiny", tmp_path / "tiny.pt", calibration_pixels(), {}))


def training_z(model: TrainableHyperprior, pixels: np.ndarray, level: float) -> torch.Tensor:
    x = torch.from_numpy(pixels).permute(2, 0, 1).float().div(255).unsqueeze(0)
    gain, _ = model.transforms.gains(torch.full((1,), level))
    with torch.no_grad():
        return model.transforms.h_a(model.transforms.g_a(x) * gain)


def test_z_offsets_are_the_fractional_parts_of_the_medians(exported, tmp_path):
    model, loaded = exported
    state = torch.load(tmp_path / "tiny.pt", weights_only=True)
    medians = model.entropy_bottleneck.quantiles.detach().double()[:, 0, 1].numpy()
    assert state["format"] == WEIGHTS_FORMAT == 2
    assert state["z_offset_bits"] == Z_OFFSET_BITS
    assert np.array_equal(loaded.z_offsets, medians - np.round(medians))
    assert loaded.z_offsets.any() and np.abs(loaded.z_offsets).max() <= 0.5


def test_the_runtime_quantises_z_where_training_evaluates_it(exported, make_image):
    """ẑ = round(z − median) + median (CompressAI's evaluation), and its table bits are the
    training likelihoods: what training estimates is what the coder writes."""
    model, loaded = exported
    z = training_z(model, make_image(256, 320, seed=4), level=1.0)
    rows, cols = z.shape[2:]
    symbols = codec.z_symbols(loaded, z)
    z_hat = codec.z_values(loaded, symbols, rows, cols)
    model.entropy_bottleneck.eval()
    with torch.no_grad():
        expected, likelihoods = model.entropy_bottleneck(z)
    inside = z_hat.float() == expected  # the coder also clamps far tails into its tables
    assert inside.float().mean() > 0.99
    assert torch.equal(z_hat.float()[inside], expected[inside])
    coded = table_bits(symbols, np.repeat(np.arange(z.shape[1]), rows * cols), loaded.z_tables)
    estimated = float(-torch.log2(likelihoods).sum())
    assert coded == pytest.approx(estimated, rel=0.01)


def test_offset_grid_streams_decode_to_the_latents_the_encoder_coded(exported, make_image):
    _, loaded = exported
    pixels = make_image(130, 200, seed=5)[None]
    y, z = codec.analyse(loaded, pixels, 50.0, "cpu")
    streams = codec.encode_latents(loaded, y, z, keep_y_hat=True)
    y_hat = codec.decode_latents(loaded, streams.z, streams.y, 130, 200)
    assert torch.equal(y_hat, streams.y_hat)
    decoded = neuralcodec.decompress(neuralcodec.compress(pixels[0], 50, loaded, "cpu"), model=loaded)
    assert decoded.size == (200, 130)


def test_exported_weights_reload_into_the_training_model_they_came_from(exported, tmp_path):
    """h_s comes back from its integer form with the offset grid's input scaling undone."""
    model, _ = exported
    again = TrainableHyperprior(HyperpriorConfig(**TINY_CONFIG), bf16=False)
    load_exported(again, tmp_path / "tiny.pt")
    for ours, theirs in zip(model.transforms.h_s.parameters(), again.transforms.h_s.parameters()):
        assert torch.allclose(ours, theirs, atol=1e-3)
    assert torch.equal(model.entropy_bottleneck.quantiles, again.entropy_bottleneck.quantiles)


def test_weights_of_an_earlier_format_export_again_in_the_current_one(tiny_model, tmp_path, make_image):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(2):
        Image.fromarray(make_image(96, 96, seed=i)).save(data / f"{i}.png")
    out = tmp_path / "tiny.pt"
    assert torch.load(tiny_model, weights_only=True)["format"] == 1
    export_main(
        [
            str(tiny_model),
            "--name",
            "tiny",
            "--out",
            str(out),
            "--data",
            str(data),
            "--calibration-crop",
            "64",
        ]
    )
    assert torch.load(out, weights_only=True)["format"] == WEIGHTS_FORMAT
    pixels = make_image(64, 96, seed=3)
    image = neuralcodec.decompress(neuralcodec.compress(pixels, 60, out, "cpu"), model=out)
    assert image.size == (96, 64)


def test_weights_files_are_deflated_read_by_both_readers_and_repeat(tiny_model, tmp_path):
    import io
    import zipfile

    from neuralcodec.training.export import save_weights
    from neuralcodec.weights_file import read_weights

    state = torch.load(tiny_model, map_location="cpu", weights_only=False)
    first, second = save_weights(state, tmp_path / "a.pt"), save_weights(state, tmp_path / "b.pt")
    assert first.read_bytes() == second.read_bytes()
    members = zipfile.ZipFile(first).infolist()
    assert members and all(m.compress_type == zipfile.ZIP_DEFLATED for m in members)
    plain = io.BytesIO()
    torch.save(state, plain)
    assert first.stat().st_size < len(plain.getvalue())
    loaded, read = torch.load(first, weights_only=True), read_weights(first)
    assert torch.equal(loaded["transforms"]["g_s.0.weight"], state["transforms"]["g_s.0.weight"])
    assert np.array_equal(read["transforms"]["g_s.0.weight"], state["transforms"]["g_s.0.weight"].numpy())
    image = Image.fromarray((np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8))
    assert neuralcodec.decompress(neuralcodec.compress(image, 50, first), model=first).size == (64, 48)
