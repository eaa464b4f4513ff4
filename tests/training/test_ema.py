"""Moving average of the parameters: the recurrence, swapping in and out, and what a run keeps."""

import csv
import json

import pytest
import torch
from PIL import Image
from torch import nn

from neuralcodec.training.ema import ParameterEMA
from neuralcodec.training.export import load_checkpoint
from neuralcodec.training.portable import load_portable
from neuralcodec.training.train import main as train_main
from neuralcodec.training.train import main_parameter_names

TINY = ["--N", "16", "--M", "24", "--levels", "3", "--metric", "mse", "--crop", "64", "--batch-size", "2"]


def test_update_follows_the_recurrence_and_skips_unnamed_parameters():
    layer = nn.Linear(3, 2)
    ema = ParameterEMA(layer, 0.75, ["weight"])
    w0, b0 = layer.weight.detach().clone(), layer.bias.detach().clone()
    with torch.no_grad():
        layer.weight.add_(1.0)
        layer.bias.add_(1.0)
    ema.update()
    assert torch.allclose(ema.state_dict()["weight"], 0.75 * w0 + 0.25 * (w0 + 1.0))
    assert set(ema.state_dict()) == {"weight"}
    averaged = ema.averaged_state(layer)
    assert torch.equal(averaged["bias"], b0 + 1.0)  # not averaged: taken as it is


def test_applied_swaps_the_average_in_and_restores_the_raw_parameters():
    layer = nn.Linear(3, 2)
    ema = ParameterEMA(layer, 0.5, ["weight", "bias"])
    with torch.no_grad():
        layer.weight.mul_(3.0)
    raw = layer.weight.detach().clone()
    ema.update()
    with ema.applied():
        assert torch.equal(layer.weight, ema.state_dict()["weight"])
    assert torch.equal(layer.weight, raw)


def test_bad_decay_is_refused():
    with pytest.raises(ValueError, match="decay"):
        ParameterEMA(nn.Linear(1, 1), 1.0, ["weight"])


def test_a_run_with_ema_checkpoints_both_sends_back_and_exports_the_average(tmp_path, make_image):
    photos = tmp_path / "train"
    photos.mkdir()
    for i in range(2):
        Image.fromarray(make_image(96, 96, seed=i)).save(photos / f"p{i}.png")
    common = ["--runs-dir", str(tmp_path / "runs"), "--data", str(photos)]
    common += ["--eval-dir", str(tmp_path / "none"), "--threads", "1", "--warmup", "1"]
    common += ["--checkpoint-every", "2", "--lr", "1e-2", *TINY]
    portable = tmp_path / "portable"
    args = ["--name", "ema", "--steps", "3", "--ema-decay", "0.5", "--portable-out", str(portable), *common]
    train_main(args)
    ckpt_path = tmp_path / "runs" / "ema" / "last.ckpt"
    ckpt = torch.load(ckpt_path, weights_only=False)
    names = set(ckpt["ema"])
    assert names and not any(n.endswith(".quantiles") for n in names)
    assert any(not torch.equal(ckpt["ema"][n], ckpt["model"][n]) for n in names)  # raw and average differ
    state, _ = load_portable(portable)
    assert all(torch.equal(state[n], ckpt["ema"][n]) for n in names)
    model, _ = load_checkpoint(ckpt_path)
    exported = model.state_dict()
    assert set(main_parameter_names(model)) == names
    assert all(torch.equal(exported[n], ckpt["ema"][n]) for n in names)

    # Resuming restores the average (a resume with no steps left writes it back unchanged),
    # rather than starting it again from the raw parameters.
    train_main(args)
    resumed = torch.load(ckpt_path, weights_only=False)
    assert resumed["step"] == 3
    assert all(torch.equal(resumed["ema"][n], ckpt["ema"][n]) for n in names)


def test_evaluation_logs_the_raw_parameters_beside_the_average(tmp_path, make_image):
    photos, kodak = tmp_path / "train", tmp_path / "eval"
    for folder in (photos, kodak):
        folder.mkdir()
    for i in range(2):
        Image.fromarray(make_image(96, 96, seed=i)).save(photos / f"p{i}.png")
    Image.fromarray(make_image(176, 176, seed=5)).save(kodak / "e0.png")  # MS-SSIM needs > 160 px
    args = ["--name", "ema-eval", "--steps", "2", "--ema-decay", "0.5", "--eval-every", "2"]
    args += ["--runs-dir", str(tmp_path / "runs"), "--data", str(photos), "--eval-dir", str(kodak)]
    args += ["--eval-images", "1", "--threads", "1", "--warmup", "1", "--lr", "1e-2", *TINY]
    train_main(args)
    with open(tmp_path / "runs" / "ema-eval" / "log.csv") as f:
        row = [r for r in csv.DictReader(f) if r["eval_curve"]][-1]
    logged = json.loads(row["eval_curve"])
    assert len(logged["bpp"]) == len(logged["raw"]["bpp"]) == 4
    assert logged["raw"]["bpp"] != logged["bpp"]  # raw parameters and their average differ
    assert {"bd_psnr", "bd_ms-ssim"} <= set(logged["raw"])
