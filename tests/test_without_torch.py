"""Without torch installed: decoding, headers, the Pillow plugin and ``ncodec decompress`` work;
what needs torch says so in one line (exit 1) before any file is written. Each case runs in a
subprocess in which ``import torch`` fails, as it does where torch is not installed."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import neuralcodec

NO_TORCH = "import sys; sys.modules['torch'] = None  # any import of torch fails, as without torch\n"


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", NO_TORCH + textwrap.dedent(code)], capture_output=True, text=True, cwd=cwd
    )


def _ncodec(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return _python(f"from neuralcodec.cli import main; sys.exit(main({args!r}))", cwd)


@pytest.fixture
def encoded(tiny_model, make_image, tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("NEURALCODEC_TRANSFORMS", "float32")  # the numpy decoder's precision
    path = tmp_path / "x.nc"
    image = make_image(80, 112, seed=4)
    Image.fromarray(image).save(tmp_path / "in.png")
    path.write_bytes(neuralcodec.compress(image, 60, tiny_model, "cpu", effort=0))
    return path


def test_ncodec_compress_encodes_at_effort_0_without_torch(encoded, tiny_model, tmp_path):
    done = _ncodec(["compress", "in.png", "out.nc", "--model", str(tiny_model), "-q", "60", "-v"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "bytes" in done.stdout
    written = (tmp_path / "out.nc").read_bytes()
    # the torch encoder's file to within a few bytes; both decoders read it
    assert abs(len(written) - len(encoded.read_bytes())) <= 16
    image = neuralcodec.decompress(written, "cpu", tiny_model)
    assert image.size == (112, 80)


def test_the_library_compresses_at_effort_0_without_torch(encoded, tiny_model, tmp_path):
    done = _python(
        f"""
        import neuralcodec
        data = neuralcodec.compress({str(tmp_path / "in.png")!r}, 60, {str(tiny_model)!r})
        assert neuralcodec.decompress(data, model={str(tiny_model)!r}).size == (112, 80)
        try:
            neuralcodec.compress({str(tmp_path / "in.png")!r}, 60, {str(tiny_model)!r}, effort=3)
        except neuralcodec.runtime.TorchRequiredError as exc:
            print(exc)
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1 and "effort 3" in done.stdout and "needs torch" in done.stdout


def test_ncodec_decompress_decodes_without_torch(encoded, tiny_model, tmp_path):
    done = _ncodec(["decompress", str(encoded), "out.png", "--model", str(tiny_model)], tmp_path)
    assert done.returncode == 0, done.stderr
    expected = np.asarray(neuralcodec.decompress(encoded.read_bytes(), "cpu", tiny_model), dtype=int)
    got = np.asarray(Image.open(tmp_path / "out.png"), dtype=int)
    assert got.shape == expected.shape and np.abs(got - expected).max() <= 1


def test_the_library_and_the_pillow_plugin_decode_without_torch(encoded, tiny_model, tmp_path):
    done = _python(
        f"""
        import neuralcodec
        data = open({str(encoded)!r}, "rb").read()
        assert neuralcodec.read_header(data).header.width == 112
        image = neuralcodec.decompress(data, model={str(tiny_model)!r})
        assert image.size == (112, 80), image.size
        import pathlib
        from PIL import Image
        import neuralcodec.pillow_plugin
        from neuralcodec import weights_file
        weights_file.SHIPPED_WEIGHTS = pathlib.Path({str(tiny_model.parent)!r})  # "tiny" is shipped
        with Image.open({str(encoded)!r}) as opened:
            assert opened.format == "NC" and opened.convert("RGB").size == (112, 80)
        assert "torch" not in sys.modules or sys.modules["torch"] is None
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["decompress", "x.nc", "y.png", "--backend", "torch"],
        ["decompress", "x.nc", "y.png", "--device", "cuda"],
        ["compress", "in.png", "y.png.nc", "-e", "2"],
        ["compress", "in.png", "y.png.nc", "--size", "10k"],
        ["compress", "in.png", "y.png.nc", "--device", "cuda"],
    ],
)
def test_what_needs_torch_says_so_in_one_line_before_writing(encoded, args, tmp_path):
    done = _ncodec(args, encoded.parent)
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("\n") == 1 and "needs torch" in done.stderr and "pip install" in done.stderr
    assert not (encoded.parent / "y.png").exists() and not (encoded.parent / "y.png.nc").exists()


def test_the_numpy_backend_refuses_a_gpu_in_one_line(encoded):
    done = _ncodec(["decompress", "x.nc", "y.png", "--backend", "numpy", "--device", "cuda"], encoded.parent)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "CPU only" in done.stderr


def test_ncodec_decompress_does_not_import_torch_where_it_is_installed(encoded, tiny_model, tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from neuralcodec.cli import main\n"
            f"code = main(['decompress', {str(encoded)!r}, 'z.png', '--model', {str(tiny_model)!r}])\n"
            "assert code == 0 and 'torch' not in sys.modules, code",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "z.png").is_file()


def test_whole_trees_code_without_torch_in_the_workers_too(tiny_model, make_image, tmp_path):
    """The workers are fresh processes: a sitecustomize on their path makes torch unimportable there."""
    blocker = tmp_path / "no_torch"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(NO_TORCH)
    path = os.pathsep.join(filter(None, [str(blocker), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    assert subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True).returncode
    source = tmp_path / "in" / "sub"
    source.mkdir(parents=True)
    for i in range(3):
        Image.fromarray(make_image(64, 96, seed=i)).save(source / f"{i}.png")

    def ncodec(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "neuralcodec.cli", *args, "--model", str(tiny_model), "--jobs", "2"]
        return subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path)

    done = ncodec("compress", "-r", "in", "-o", "nc")
    assert done.returncode == 0, done.stderr
    done = ncodec("decompress", "-r", "nc", "-o", "png")
    assert done.returncode == 0, done.stderr
    decoded = sorted(p.name for p in (tmp_path / "png" / "sub").iterdir())
    assert decoded == ["0.png", "1.png", "2.png"]
    refused = ncodec("compress", "-r", "in", "-o", "nc2", "-e", "1")
    assert refused.returncode == 1 and "needs torch" in refused.stderr


def test_checkerboard_files_code_both_ways_without_torch(tiny_model, make_image, tmp_path, monkeypatch):
    """A checkerboard model's format-3 files: encoded without torch, decoded by torch to the same
    latents, and a torch encoder's file decoded without torch within one level."""
    from checkerboard_weights import write_checkerboard

    monkeypatch.setenv("NEURALCODEC_TRANSFORMS", "float32")
    model = write_checkerboard(tiny_model, tmp_path / "cb.pt", seed=2)
    image = make_image(80, 112, seed=5)
    Image.fromarray(image).save(tmp_path / "in.png")
    (tmp_path / "torch.nc").write_bytes(neuralcodec.compress(image, 60, model, "cpu", effort=0))
    done = _ncodec(["compress", "in.png", "numpy.nc", "--model", str(model), "-q", "60"], tmp_path)
    assert done.returncode == 0, done.stderr
    done = _ncodec(["decompress", "torch.nc", "out.png", "--model", str(model)], tmp_path)
    assert done.returncode == 0, done.stderr
    written = (tmp_path / "numpy.nc").read_bytes()
    assert neuralcodec.read_header(written).header.architecture == "mean-scale-checkerboard"
    assert abs(len(written) - (tmp_path / "torch.nc").stat().st_size) <= 16
    expected = np.asarray(
        neuralcodec.decompress((tmp_path / "torch.nc").read_bytes(), "cpu", model), dtype=int
    )
    assert np.abs(np.asarray(Image.open(tmp_path / "out.png"), dtype=int) - expected).max() <= 1
