"""Joint training of the checkerboard context model in the main trainer: a zero context is the
hyperprior exactly, gradients reach transforms and context together, ``tools/train.py
--architecture mean-scale-checkerboard`` trains, resumes and exports a weights file the codec
round-trips with, and options it cannot honour are refused with one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from make_fixtures import TINY_CONFIG, calibration_pixels
from PIL import Image

import neuralcodec
from neuralcodec.checkerboard_latents import CHECKERBOARD
from neuralcodec.float_context import FloatCheckerboardContext, anchor_mask
from neuralcodec.models.hyperprior import HyperpriorConfig
from neuralcodec.numpy_decoder import NumpyModel
from neuralcodec.training.export import checkerboard_model, export, load_exported
from neuralcodec.training.export import main as export_main
from neuralcodec.training.model import TrainableCheckerboard, TrainableHyperprior
from neuralcodec.training.train import main as train_main
from neuralcodec.zoo import load_model

TINY = ["--N", "16", "--M", "24", "--levels", "3", "--metric", "mse", "--crop", "64", "--batch-size", "2"]
CB = ["--architecture", CHECKERBOARD]


def pair(tiny_model) -> tuple[TrainableHyperprior, TrainableCheckerboard]:
    """tiny.pt as a hyperprior and as a checkerboard model with its (zero) context."""
    config = HyperpriorConfig(**TINY_CONFIG)
    hyper, checker = TrainableHyperprior(config, bf16=False), checkerboard_model(config, bf16=False)
    load_exported(hyper, tiny_model)
    load_exported(checker, tiny_model)
    return hyper, checker


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    return calibration_pixels()[:2, :, :64, :64], torch.tensor([0.3, 1.7])


def test_a_zero_context_is_the_hyperprior_exactly(tiny_model):
    hyper, checker = pair(tiny_model)
    x, level = batch()
    for training in (True, False):  # noisy likelihoods (same noise) and rounded ones
        hyper.train(training)
        checker.train(training)
        torch.manual_seed(5)
        expected = hyper(x, level)
        torch.manual_seed(5)
        got = checker(x, level)
        assert got.keys() == expected.keys()
        assert all(torch.equal(got[k], expected[k]) for k in expected)


def test_the_context_changes_only_non_anchors_and_trains_with_the_transforms(tiny_model):
    hyper, checker = pair(tiny_model)
    last = checker.context.entropy_parameters[-1]
    torch.nn.init.normal_(last.weight, std=0.05)
    torch.nn.init.normal_(last.bias, std=1.0)  # tiny's latents are small: move them visibly
    hyper.eval()
    checker.eval()
    x, level = batch()
    expected, got = hyper(x, level), checker(x, level)
    anchors = anchor_mask(*got["y_likelihoods"].shape[2:]).expand_as(got["y_likelihoods"])
    assert torch.equal(got["y_likelihoods"][anchors], expected["y_likelihoods"][anchors])
    assert not torch.equal(got["y_likelihoods"][~anchors], expected["y_likelihoods"][~anchors])
    assert not torch.equal(got["x_hat"], expected["x_hat"])  # non-anchors round around new means
    loss = -got["y_likelihoods"].log2().sum() + (got["x_hat"] - x).square().sum()
    loss.backward()
    for name in ("transforms.g_a.0.weight", "transforms.g_s.0.weight", "context.context.weight"):
        grad = dict(checker.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def decoded(weights, pixels: np.ndarray, backend: str = "torch") -> np.ndarray:
    data = neuralcodec.compress(pixels, 60, weights, "cpu", effort=0)
    return np.asarray(neuralcodec.decompress(data, "cpu", weights, backend=backend))


def test_an_untrained_checkerboard_exports_to_the_hyperprior_s_decoder(tiny_model, tmp_path, make_image):
    """Step 0 is the model it started from: the exported zero context decodes the same pixels."""
    hyper, checker = pair(tiny_model)
    images = calibration_pixels()
    plain = export(hyper.eval(), "tiny", tmp_path / "plain.pt", images, {})
    board = export(checker.eval(), "tiny", tmp_path / "board.pt", images, {})
    assert torch.load(board, weights_only=True)["architecture"] == CHECKERBOARD
    pixels = make_image(80, 96, seed=4)
    assert np.array_equal(decoded(board, pixels), decoded(plain, pixels))


@pytest.fixture
def folders(tmp_path, make_image):
    train, evaluation = tmp_path / "train", tmp_path / "eval"
    train.mkdir()
    evaluation.mkdir()
    for i in range(3):
        Image.fromarray(make_image(96, 128, seed=i)).save(train / f"t{i}.png")
    Image.fromarray(make_image(192, 192, seed=10)).save(evaluation / "e0.png")
    return train, evaluation


def args_for(tmp_path, folders, steps: int, name: str = "cb") -> list[str]:
    train, evaluation = folders
    return [
        "--name", name, "--runs-dir", str(tmp_path / "runs"), "--data", str(train),
        "--eval-dir", str(evaluation), "--eval-every", "3", "--eval-images", "1",
        "--steps", str(steps), "--warmup", "2", "--checkpoint-every", "2", "--threads", "1", *TINY,
    ]  # fmt: skip


def test_joint_training_resumes_and_exports_a_checkerboard_model(tmp_path, folders, tiny_model, capsys):
    probe = tmp_path / "probe.ckpt"  # what tools/context_probe.py checkpoints: {"context": ..., ...}
    torch.manual_seed(3)
    start = FloatCheckerboardContext(24)
    torch.nn.init.normal_(start.entropy_parameters[-1].weight, std=0.02)
    torch.save({"context": start.state_dict(), "step": 7}, probe)
    portable = tmp_path / "portable"
    first = [*args_for(tmp_path, folders, 3), *CB, "--init", str(tiny_model), "--init-context", str(probe)]
    train_main([*first, "--eval-files", "--portable-out", str(portable), "--portable-fp16"])
    run = tmp_path / "runs" / "cb"
    ckpt = torch.load(run / "last.ckpt", weights_only=False)
    assert ckpt["step"] == 3 and ckpt["history"][-1]["architecture"] == CHECKERBOARD
    context = ckpt["model"]["context.context.weight"]
    assert not torch.equal(context, start.state_dict()["context.weight"])  # trained from the probe's
    with open(run / "log.csv") as log:
        assert '"files"' in log.read()  # real checkerboard files measured at step 3

    assert "context from" in capsys.readouterr().out
    train_main([*first, "--steps", "5"])  # resumes: the checkpoint's context, not the probe's again
    assert "context from" not in capsys.readouterr().out
    ckpt = torch.load(run / "last.ckpt", weights_only=False)
    assert ckpt["step"] == 5 and ckpt["optimizer"]["state"][0]["step"].item() == 5
    assert not torch.equal(ckpt["model"]["context.context.weight"], context)

    weights = tmp_path / "cb.pt"
    calibration = ["--data", str(folders[0]), "--calibration-crop", "64"]
    export_main([str(run / "last.ckpt"), "--name", "unit", "--out", str(weights), *calibration])
    state = torch.load(weights, weights_only=True)
    assert state["architecture"] == CHECKERBOARD and "also_decodes" not in state
    assert state["meta"]["steps"] == 5
    assert load_model(weights).config.M == 24 and NumpyModel.from_file(weights) is not None
    pixels = np.asarray(Image.open(next(folders[0].iterdir())).convert("RGB"))
    by_torch, by_numpy = decoded(weights, pixels, "torch"), decoded(weights, pixels, "numpy")
    assert by_torch.shape == pixels.shape == by_numpy.shape
    assert np.abs(by_torch.astype(int) - by_numpy.astype(int)).max() <= 8

    # The fp16 portable folder (what a GPU window returns) exports and starts a new run.
    export_main([str(portable), "--name", "unit", "--out", str(tmp_path / "p.pt"), *calibration])
    assert torch.load(tmp_path / "p.pt", weights_only=True)["architecture"] == CHECKERBOARD
    train_main([*args_for(tmp_path, folders, 1, name="next"), *CB, "--init", str(portable)])
    resumed = torch.load(tmp_path / "runs" / "next" / "last.ckpt", weights_only=False)
    assert sum(s["steps"] for s in resumed["history"]) == 4  # the portable folder's 3 + 1


def test_a_second_model_and_a_hyperprior_s_portable_state_train_as_checkerboards(tmp_path, folders):
    portable = tmp_path / "hyper"
    second = f"--name cb {' '.join(CB)}"
    train_main(
        [*args_for(tmp_path, folders, 2, name="hyper"), "--portable-out", str(portable), "--also", second]
    )
    runs = tmp_path / "runs"
    assert (
        "context.context.weight" not in torch.load(runs / "hyper" / "last.ckpt", weights_only=False)["model"]
    )
    assert "context.context.weight" in torch.load(runs / "cb" / "last.ckpt", weights_only=False)["model"]
    # A hyperprior's parameters start a checkerboard run with a zero context.
    train_main([*args_for(tmp_path, folders, 1, name="grown"), *CB, "--init", str(portable)])
    assert torch.load(runs / "grown" / "last.ckpt", weights_only=False)["step"] == 1


def test_options_a_checkerboard_cannot_honour_are_refused(tmp_path, folders, tiny_model):
    base = args_for(tmp_path, folders, 1)
    with pytest.raises(SystemExit, match="needs --architecture"):
        train_main([*base, "--init-context", str(tiny_model)])
    with pytest.raises(SystemExit, match="--train-only encoder"):
        train_main([*base, *CB, "--train-only", "encoder"])
    with pytest.raises(SystemExit, match="holds no checkerboard context"):
        train_main([*base, *CB, "--init-context", str(tiny_model)])
    train_main(base)  # a hyperprior's checkpoint ...
    with pytest.raises(SystemExit, match="resume it with --architecture mean-scale-hyperprior"):
        train_main([*base, *CB])  # ... is not resumed as a checkerboard
    train_main([*args_for(tmp_path, folders, 1, name="cb2"), *CB])
    with pytest.raises(SystemExit, match="export it whole"):
        export_main(
            [str(tmp_path / "runs" / "cb2" / "last.ckpt"), "--name", "u", "--out", str(tmp_path / "x.pt")]
            + ["--decoder-from", str(tiny_model)]
        )


def test_training_starts_from_a_checkerboard_weights_file(tmp_path, folders, tiny_model):
    """--init of a shipped checkerboard model: its transforms, and its context as the integers
    the codec computes with (w_int·2^-shift); a hyperprior run takes its hyperprior part."""
    from neuralcodec.float_context import dequantize_context

    board = tmp_path / "board.pt"
    trained = pair(tiny_model)[1].eval()
    with torch.no_grad():
        trained.context.entropy_parameters[-1].weight.normal_(0, 0.05)
    export(trained, "tiny", board, calibration_pixels(), {})
    exact = torch.load(board, weights_only=True)["context_exact"]
    model = checkerboard_model(HyperpriorConfig(**torch.load(board, weights_only=True)["config"]), bf16=False)
    load_exported(model, board)
    expected = dequantize_context(exact)
    for name, value in model.context.state_dict().items():
        assert torch.equal(value, expected[name]), name
    last = exact["layers"][-1]
    scaled = model.context.entropy_parameters[-1].weight.double() * 2.0 ** torch.as_tensor(
        last["weight_shift"]
    ).view(-1, 1, 1, 1)
    assert torch.equal(scaled, torch.as_tensor(last["weight"]).double())  # the stored integers, exactly
    assert model.context.entropy_parameters[-1].weight.abs().max() > 0
    train_main([*args_for(tmp_path, folders, 1, name="from-board"), *CB, "--init", str(board)])
    train_main([*args_for(tmp_path, folders, 1, name="hyper-from-board"), "--init", str(board)])
