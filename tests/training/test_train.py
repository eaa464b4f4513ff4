"""Training runs, resumes, exports and scales out (DDP with 2 local processes); two models train in
one process on crops cut on the training device."""

import csv
import hashlib
import json
import os
import subprocess
import sys

import pytest
import torch
from PIL import Image

import neuralcodec
from neuralcodec.training.data import write_pack
from neuralcodec.training.export import main as export_main
from neuralcodec.training.train import DEFAULT_LAMBDAS, build_model, learning_rate, parse_args
from neuralcodec.training.train import main as train_main

TINY = ["--N", "16", "--M", "24", "--levels", "3", "--metric", "mse", "--crop", "64", "--batch-size", "2"]


@pytest.fixture
def folders(tmp_path, make_image):
    train, evaluation = tmp_path / "train", tmp_path / "eval"
    train.mkdir()
    evaluation.mkdir()
    for i in range(4):
        Image.fromarray(make_image(96, 128, seed=i)).save(train / f"t{i}.png")
    for i in range(2):
        Image.fromarray(make_image(192, 192, seed=10 + i)).save(evaluation / f"e{i}.png")
    return train, evaluation


def args_for(tmp_path, folders, steps, name="run"):
    train, evaluation = folders
    return [
        "--name", name, "--runs-dir", str(tmp_path / "runs"), "--data", str(train),
        "--eval-dir", str(evaluation), "--eval-every", "3", "--eval-images", "2",
        "--steps", str(steps), "--warmup", "2", "--checkpoint-every", "2", "--threads", "1", *TINY,
    ]  # fmt: skip


def test_train_resume_export_and_compress(tmp_path, folders):
    train_main(args_for(tmp_path, folders, 3))
    run = tmp_path / "runs" / "run"
    rows = list(csv.DictReader(open(run / "log.csv")))
    assert rows and rows[-1]["eval_bd_psnr"] != ""  # evaluation ran at step 3
    assert torch.load(run / "last.ckpt", weights_only=False)["step"] == 3
    train_main(args_for(tmp_path, folders, 5))  # resumes from the checkpoint
    assert torch.load(run / "last.ckpt", weights_only=False)["step"] == 5

    weights = tmp_path / "model.pt"
    export_main(
        [str(run / "last.ckpt"), "--name", "unit", "--out", str(weights)]
        + ["--data", str(folders[0]), "--calibration-crop", "64"]
    )
    image = Image.open(next(folders[0].iterdir()))
    data = neuralcodec.compress(image, 50, weights)
    assert neuralcodec.decompress(data, model=weights).size == image.size

    meta = torch.load(weights, weights_only=True)["meta"]
    assert meta["steps"] == 5 and len(meta["history"]) == 2  # two run segments: 3 + 2 steps

    # A new run initialised from the exported weights carries the history on.
    train_main([*args_for(tmp_path, folders, 1, name="from-export"), "--init", str(weights)])
    ckpt = torch.load(tmp_path / "runs" / "from-export" / "last.ckpt", weights_only=False)
    assert sum(s["steps"] for s in ckpt["history"]) == 6


def test_training_refuses_evaluation_folders(tmp_path):
    kodak = tmp_path / "kodak"
    kodak.mkdir()
    with pytest.raises(ValueError, match="evaluation set"):
        train_main(["--name", "x", "--runs-dir", str(tmp_path), "--data", str(kodak), *TINY])


def test_learning_rate_schedule_warms_up_holds_and_decays():
    args = parse_args(["--name", "x", "--lr", "1e-3", "--lr-final", "1e-5", "--warmup", "10"])
    assert learning_rate(args, 0, 0.0) == pytest.approx(1e-4)
    assert learning_rate(args, 50, 0.5) == pytest.approx(1e-3)
    assert learning_rate(args, 99, 1.0) == pytest.approx(1e-5)
    assert 1e-5 < learning_rate(args, 90, 0.9) < 1e-3


def test_lambda_range_defaults_per_metric_and_can_be_overridden():
    default = build_model(parse_args(["--name", "x", *TINY]), torch.device("cpu")).transforms.config
    assert (default.lambda_min, default.lambda_max) == DEFAULT_LAMBDAS["mse"]
    args = parse_args(["--name", "x", *TINY, "--lambda-min", "0.001", "--lambda-max", "0.05"])
    lambdas = build_model(args, torch.device("cpu")).transforms.config.lambdas()
    assert lambdas[0].item() == pytest.approx(0.001) and lambdas[-1].item() == pytest.approx(0.05)


@pytest.mark.slow
def test_torchrun_two_processes(tmp_path, folders):
    env = dict(os.environ, OMP_NUM_THREADS="1")  # conftest already puts this checkout on PYTHONPATH
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "neuralcodec.training.train", *args_for(tmp_path, folders, 2, name="ddp"), "--device", "cpu",
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-6000:]  # the ranks' own lines come before torchrun's summary
    assert torch.load(tmp_path / "runs" / "ddp" / "last.ckpt", weights_only=False)["step"] == 2


def test_encoder_only_run_exports_weights_that_share_the_parent_decoder(tmp_path, folders):
    train_main(args_for(tmp_path, folders, 2, name="base"))
    parent = tmp_path / "parent.pt"
    calibration = ["--data", str(folders[0]), "--calibration-crop", "64"]
    export_main(
        [str(tmp_path / "runs" / "base" / "last.ckpt"), "--name", "unit", "--out", str(parent), *calibration]
    )
    # Encoder-only run from the parent's exported weights (what a shipped model offers).
    train_main(
        [*args_for(tmp_path, folders, 2, name="enc"), "--init", str(parent), "--train-only", "encoder"]
    )
    child = tmp_path / "child.pt"
    export_main(
        [str(tmp_path / "runs" / "enc" / "last.ckpt"), "--name", "unit", "--out", str(child)]
        + ["--decoder-from", str(parent)]
    )
    from neuralcodec.zoo import file_digest, load_model

    old, new = load_model(parent), load_model(child)
    assert new.digest == old.digest == file_digest(parent)
    assert not torch.equal(old.transforms.g_a[0].weight, new.transforms.g_a[0].weight)
    assert torch.equal(old.transforms.g_s[0].weight, new.transforms.g_s[0].weight)
    image = Image.open(next(folders[0].iterdir()))
    for made_with, read_with in ((parent, child), (child, parent)):
        data = neuralcodec.compress(image, 50, made_with)
        assert neuralcodec.decompress(data, model=read_with).size == image.size
    # A run that also trained the decoder cannot claim the parent's identity.
    train_main(args_for(tmp_path, folders, 4, name="base"))  # base, 2 more steps of everything
    with pytest.raises(SystemExit, match="decoder side differs"):
        export_main(
            [str(tmp_path / "runs" / "base" / "last.ckpt"), "--name", "unit", "--out", str(tmp_path / "x.pt")]
            + ["--decoder-from", str(parent)]
        )
    assert not (tmp_path / "x.pt").exists()


def test_an_export_that_replaces_a_decoder_files_the_replaced_weights(tmp_path, folders, capsys):
    from neuralcodec.zoo import decoder_file_name

    ckpt = str(tmp_path / "runs" / "base" / "last.ckpt")
    out, archive = tmp_path / "unit.pt", tmp_path / "archive"
    calibration = ["--data", str(folders[0]), "--calibration-crop", "64"]
    export = [ckpt, "--name", "unit", "--out", str(out), *calibration]
    train_main(args_for(tmp_path, folders, 2, name="base"))
    export_main(export)
    first = out.read_bytes()
    export_main([*export, "--archive", str(archive)])  # same decoder again: nothing to file
    assert not archive.exists()
    train_main(args_for(tmp_path, folders, 4, name="base"))  # 2 more steps of everything
    export_main(export)  # without --archive: warned, not filed
    assert "--archive" in capsys.readouterr().err
    replaced = out.read_bytes()
    train_main(args_for(tmp_path, folders, 6, name="base"))
    export_main([*export, "--archive", str(archive)])
    digest = hashlib.sha256(replaced).digest()[:8]  # zoo.file_digest of the replaced weights
    assert [p.name for p in archive.iterdir()] == [decoder_file_name("unit", digest)]
    assert (archive / decoder_file_name("unit", digest)).read_bytes() == replaced != first


def test_eval_files_logs_real_file_bd_rates_beside_the_estimate(tmp_path, folders):
    train_main([*args_for(tmp_path, folders, 3, name="files"), "--eval-files"])
    rows = list(csv.DictReader(open(tmp_path / "runs" / "files" / "log.csv")))
    logged = json.loads(rows[-1]["eval_curve"])
    assert len(logged["files"]["bpp"]) == len(logged["bpp"]) == 4
    assert {"bd_psnr", "bd_ms-ssim"} <= set(logged["files"])


def test_two_models_train_in_one_process_on_device_crops_and_resume(tmp_path, folders):
    pack = tmp_path / "pack.npz"
    write_pack(folders[0], pack, count=4, size=80, quality=95, progress=False)
    on_device = ["--data", str(pack), "--crops", "device", "--rescale", "0.8", "--fused-adam"]
    second = f"--name second --lambda-max 0.05 --portable-out {tmp_path / 'out-second'}"
    train_main([*args_for(tmp_path, folders, 3, name="first"), *on_device, "--also", second])
    runs = tmp_path / "runs"
    for name, lmax in (("first", DEFAULT_LAMBDAS["mse"][1]), ("second", 0.05)):
        ckpt = torch.load(runs / name / "last.ckpt", weights_only=False)
        assert ckpt["step"] == 3 and ckpt["history"][-1]["lambda"][1] == lmax
        assert ckpt["history"][-1]["crops"] == "device" and ckpt["history"][-1]["fused_adam"]
        assert ckpt["optimizer"]["param_groups"][0]["fused"]
        assert list(csv.DictReader(open(runs / name / "log.csv")))[-1]["eval_bd_psnr"] != ""
    assert json.loads((tmp_path / "out-second" / "portable.json").read_text())["step"] == 3
    # Resumed without --fused-adam (and on host crops): the moments carry on, unfused.
    train_main([*args_for(tmp_path, folders, 5, name="first"), "--data", str(pack)])
    ckpt = torch.load(runs / "first" / "last.ckpt", weights_only=False)
    assert ckpt["step"] == 5 and not ckpt["optimizer"]["param_groups"][0].get("fused")
    assert ckpt["optimizer"]["state"][0]["step"].item() == 5


def test_a_second_model_must_share_the_data_stream_and_have_its_own_name(tmp_path, folders):
    with pytest.raises(SystemExit, match="--crop"):
        train_main([*args_for(tmp_path, folders, 1, name="a"), "--also", "--name b --crop 32"])
    with pytest.raises(SystemExit, match="own"):
        train_main([*args_for(tmp_path, folders, 1, name="a"), "--also", "--metric ms-ssim"])


@pytest.mark.slow
def test_compiled_training_runs_on_the_cpu(tmp_path, folders):
    train_main([*args_for(tmp_path, folders, 2, name="compiled"), "--compile", "default"])
    assert torch.load(tmp_path / "runs" / "compiled" / "last.ckpt", weights_only=False)["step"] == 2
