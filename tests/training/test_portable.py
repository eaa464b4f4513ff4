"""The GPU path without a GPU: pack a subset, train from it, send back small files, resume, export."""

import json

import torch
from PIL import Image

import neuralcodec
from neuralcodec.training.data import InMemoryCrops, read_pack, write_pack
from neuralcodec.training.export import main as export_main
from neuralcodec.training.portable import MAX_FILE_BYTES, load_portable, split_state
from neuralcodec.training.train import main as train_main

TINY = ["--N", "16", "--M", "24", "--levels", "3", "--metric", "mse", "--crop", "64", "--batch-size", "2"]


def test_split_state_keeps_every_part_under_the_limit():
    state = {f"t{i}": torch.zeros(1000) for i in range(10)}  # 4000 bytes each
    parts = split_state(state, max_bytes=9000)
    assert [len(p) for p in parts] == [2, 2, 2, 2, 2]
    assert {k for p in parts for k in p} == set(state)


def test_pack_train_resume_and_export(tmp_path, make_image):
    photos = tmp_path / "train"
    photos.mkdir()
    for i in range(3):
        Image.fromarray(make_image(120, 150, seed=i)).save(photos / f"p{i}.png")
    pack = tmp_path / "pack.npz"
    write_pack(photos, pack, count=5, size=96, progress=False)
    crops = read_pack(pack)
    assert len(crops) == 5 and all(c.shape == (96, 96, 3) for c in crops)
    assert InMemoryCrops(pack, 64, progress=False).batch(2).shape == (2, 3, 64, 64)

    portable = tmp_path / "out" / "params"
    common = ["--runs-dir", str(tmp_path / "runs"), "--data", str(pack), "--eval-dir", str(tmp_path / "none")]
    common += ["--threads", "1", "--warmup", "1", "--checkpoint-every", "2", *TINY]
    train_main(["--name", "gpu", "--steps", "3", "--portable-out", str(portable), *common])
    files = sorted(portable.iterdir())
    assert all(f.stat().st_size < MAX_FILE_BYTES for f in files)
    state, manifest = load_portable(portable)
    assert manifest["step"] == 3 and sum(s["steps"] for s in manifest["history"]) == 3
    assert all(v.dtype == torch.float32 for v in state.values() if v.is_floating_point())

    # A CPU run (another machine: no checkpoint there) resumes from the returned files.
    train_main(["--name", "cpu", "--steps", "2", "--init", str(portable), *common])
    ckpt = torch.load(tmp_path / "runs" / "cpu" / "last.ckpt", weights_only=False)
    assert sum(s["steps"] for s in ckpt["history"]) == 5

    weights = tmp_path / "model.pt"
    export_main([str(portable), "--name", "unit", "--out", str(weights), "--data", str(photos)]
                + ["--calibration-crop", "64"])  # fmt: skip
    meta = torch.load(weights, weights_only=True)["meta"]
    assert meta["steps"] == 3 and "gpu_hours" in meta
    data = neuralcodec.compress(make_image(64, 64), 50, weights)
    assert neuralcodec.decompress(data, model=weights).size == (64, 64)
    assert json.loads((portable / "portable.json").read_text())["run"]["config"]["N"] == 16


def test_fp16_portable_halves_the_kernels_and_exports_the_same_kernels(tmp_path):
    from neuralcodec.models.hyperprior import HyperpriorConfig
    from neuralcodec.training.model import TrainableHyperprior
    from neuralcodec.training.portable import save_portable

    torch.manual_seed(0)
    model = TrainableHyperprior(HyperpriorConfig(N=16, M=24, levels=3), bf16=False)
    full, half = tmp_path / "full", tmp_path / "half"
    save_portable(full, model.state_dict(), 1, [], {})
    save_portable(half, model.state_dict(), 1, [], {}, half=True)
    stored = torch.load(half / "params-00.pt", weights_only=True)
    assert {v.dtype for v in stored.values() if v.dim() == 4} == {torch.float16}
    assert {v.dtype for v in stored.values() if v.dim() != 4 and v.is_floating_point()} == {torch.float32}
    assert (half / "params-00.pt").stat().st_size < 0.6 * (full / "params-00.pt").stat().st_size
    (a, _), (b, manifest) = load_portable(full), load_portable(half)
    assert manifest["kernels"] == "fp16" and all(v.dtype == torch.float32 for v in b.values())
    for name, value in a.items():  # what an export stores (fp16 kernels) is the same either way
        same = value.half() if value.dim() == 4 else value
        assert torch.equal(same, b[name].half() if value.dim() == 4 else b[name]), name
