"""Gain levels above a model's top: the λ grid below stays, the new gains continue the top
segment, and training starts from a shipped-format model with levels added."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from neuralcodec.models.hyperprior import HyperpriorConfig
from neuralcodec.training.export import main as export_main
from neuralcodec.training.levels import extend_rows, extend_state, extended_config
from neuralcodec.training.portable import load_portable
from neuralcodec.training.train import main as train_main

TINY = ["--N", "16", "--M", "24", "--levels", "3", "--metric", "mse", "--crop", "64", "--batch-size", "2"]


def test_extended_config_keeps_the_lambdas_below_and_their_spacing_above():
    config = HyperpriorConfig(levels=6, lambda_min=0.0009, lambda_max=0.0932)
    grown = extended_config(config, 2)
    old, new = config.lambdas(), grown.lambdas()
    assert grown.levels == 8 and torch.allclose(new[:6], old, rtol=1e-12)
    ratio = old[1] / old[0]
    assert torch.allclose(new[6:] / new[5:7], ratio.expand(2), rtol=1e-9)
    assert extended_config(config, 0) == config
    with pytest.raises(ValueError):
        extended_config(config, -1)


def test_extended_gains_continue_the_top_segment():
    log_gain = torch.tensor([[0.0, 1.0], [0.5, 1.5], [1.5, 2.0]])
    grown = extend_rows(log_gain, 2)
    assert torch.equal(grown[:3], log_gain)
    assert torch.equal(grown[3:], torch.tensor([[2.5, 2.5], [3.5, 3.0]]))
    state = extend_state(
        {"transforms.log_gain": log_gain, "transforms.log_inverse_gain": -log_gain, "x": log_gain}, 1
    )
    assert state["transforms.log_inverse_gain"].shape == (4, 2) and state["x"] is log_gain


def test_training_with_levels_added_starts_from_the_exported_model(tmp_path, make_image):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        Image.fromarray(make_image(96, 112, seed=i)).save(photos / f"p{i}.png")
    common = [
        "--runs-dir",
        str(tmp_path / "runs"),
        "--data",
        str(photos),
        "--eval-dir",
        str(tmp_path / "none"),
    ]
    common += ["--threads", "1", "--warmup", "1", *TINY]
    train_main(["--name", "base", "--steps", "2", *common])
    weights = tmp_path / "base.pt"
    export_main([str(tmp_path / "runs" / "base" / "last.ckpt"), "--name", "unit", "--out", str(weights)]
                + ["--data", str(photos), "--calibration-crop", "64"])  # fmt: skip
    exported = torch.load(weights, weights_only=True)
    train_main(["--name", "grown", "--steps", "0", "--init", str(weights), "--grow-to-levels", "5", *common])
    ckpt = torch.load(tmp_path / "runs" / "grown" / "last.ckpt", weights_only=False)
    log_gain = ckpt["model"]["transforms.log_gain"]
    assert log_gain.shape == (5, 24)
    assert torch.equal(log_gain[:3], exported["transforms"]["log_gain"].float())
    assert torch.allclose(log_gain[3:], extend_rows(log_gain[:3], 2)[3:])
    assert ckpt["history"][-1]["levels"] == 5
    assert ckpt["history"][-1]["lambda"][1] == pytest.approx(extended_config(
        HyperpriorConfig(**exported["config"]), 2).lambda_max)  # fmt: skip
    train_main(["--name", "grown", "--steps", "2", "--init", str(weights), "--grow-to-levels", "5", *common])
    assert torch.load(tmp_path / "runs" / "grown" / "last.ckpt", weights_only=False)["step"] == 2  # resumed
    # A later window starts from the grown model's portable state: already 5 levels, taken as it is.
    portable = tmp_path / "grown-portable"
    grow = ["--init", str(weights), "--grow-to-levels", "5"]
    train_main(["--name", "grown", "--steps", "3", "--portable-out", str(portable), *grow, *common])
    config = load_portable(portable)[1]["run"]["config"]
    assert config["levels"] == 5 and config["lambda_max"] == pytest.approx(ckpt["history"][-1]["lambda"][1])
    train_main(["--name", "again", "--steps", "0", "--init", str(portable), "--grow-to-levels", "5", *common])
    again = torch.load(tmp_path / "runs" / "again" / "last.ckpt", weights_only=False)["model"]
    assert again["transforms.log_gain"].shape == (5, 24)
    with pytest.raises(SystemExit, match="needs --init"):
        train_main(["--name", "x", "--grow-to-levels", "4", *common])
    with pytest.raises(SystemExit, match="more than"):
        train_main(["--name", "y", "--init", str(weights), "--grow-to-levels", "2", *common])
