"""Periodic evaluation: the real-files variant measures exactly what an exported weights file codes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import neuralcodec
from neuralcodec.models.hyperprior import HyperpriorConfig
from neuralcodec.training.evaluate import evaluate, evaluate_files, jpeg_curve
from neuralcodec.training.export import export
from neuralcodec.training.model import TrainableHyperprior


@pytest.fixture
def setup(make_image):
    torch.manual_seed(0)
    model = TrainableHyperprior(HyperpriorConfig(N=8, M=12, levels=3), bf16=False)
    images = [
        torch.from_numpy(make_image(168, 176, seed=s)).permute(2, 0, 1).float().div(255).unsqueeze(0)
        for s in (1, 2)
    ]
    calibration = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    return model, images, calibration


def test_real_file_evaluation_measures_the_bytes_an_exported_model_writes(setup, tmp_path):
    model, images, calibration = setup
    levels = [0.0, 1.0, 2.0]
    result = evaluate_files(model, images, levels, jpeg_curve(images), calibration, "cpu")
    weights = export(model, "eval", tmp_path / "eval.pt", calibration, {})
    for level, measured in zip(levels, result["curve"]["bpp"]):
        sizes = []
        for x in images:
            pixels = x[0].permute(1, 2, 0).mul(255).round().to(torch.uint8).numpy()
            data = neuralcodec.compress(pixels, 50.0 * level, weights, "cpu", effort=0)  # what training logs
            sizes.append(8 * len(data) / (168 * 176))
        assert measured == pytest.approx(np.mean(sizes), rel=1e-12)
    assert {"bd_psnr", "bd_ms-ssim"} <= set(result)


def test_real_file_evaluation_leaves_the_training_model_as_it_was(setup):
    model, images, calibration = setup
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    evaluate_files(model, images, [0.0, 2.0], jpeg_curve(images), calibration, "cpu")
    assert model.training
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_the_estimate_and_the_files_agree_roughly(setup):
    """Same model, same images: the two rates differ by the estimate's bias, not by orders of magnitude."""
    model, images, calibration = setup
    jpeg = jpeg_curve(images)
    estimate = evaluate(model, images, [0.0, 2.0], jpeg, "cpu")["curve"]
    files = evaluate_files(model, images, [0.0, 2.0], jpeg, calibration, "cpu")["curve"]
    for e, f in zip(estimate["bpp"], files["bpp"]):
        assert 0.5 < f / e < 4  # files carry a header and whole ANS words: small images pay for them
    assert files["psnr"] == pytest.approx(estimate["psnr"], abs=1.0)
