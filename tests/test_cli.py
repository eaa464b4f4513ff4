"""The ncodec command: outputs, overwrite rules, exit codes, and one-line errors."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from neuralcodec.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_USAGE, main


@pytest.fixture
def png(tmp_path, image) -> Path:
    path = tmp_path / "photo.png"
    Image.fromarray(image).save(path)
    return path


def run(*args) -> int:
    return main([str(a) for a in args])


def test_compress_then_decompress_default_names(png, tiny_model, capsys):
    assert run("compress", png, "--model", tiny_model, "-q", 80, "-v") == EXIT_OK
    nc = png.with_suffix(".nc")
    assert nc.exists()
    out = capsys.readouterr().out
    assert "bpp" in out and "estimated" in out
    png_copy = png.with_name("restored.png")
    assert run("decompress", nc, "-o", png_copy, "--model", tiny_model) == EXIT_OK
    assert Image.open(png_copy).size == Image.open(png).size


def test_decompress_to_other_formats_by_extension(png, tiny_model):
    run("compress", png, "--model", tiny_model)
    for ext in (".webp", ".jpg", ".bmp", ".tif"):
        out = png.with_name("out" + ext)
        assert run("decompress", png.with_suffix(".nc"), "-o", out, "--model", tiny_model) == EXIT_OK
        assert Image.open(out).size == (96, 64)


def test_refuses_to_overwrite_without_force_and_never_touches_input(png, tiny_model, capsys):
    nc = png.with_suffix(".nc")
    nc.write_bytes(b"precious")
    assert run("compress", png, "--model", tiny_model) == EXIT_USAGE
    assert nc.read_bytes() == b"precious"
    assert "-f" in capsys.readouterr().err
    assert run("compress", png, "--model", tiny_model, "-f") == EXIT_OK
    assert nc.read_bytes()[:4] == b"NCDC"
    before = png.read_bytes()
    assert run("compress", png, "-o", png, "-f", "--model", tiny_model) == EXIT_USAGE
    assert png.read_bytes() == before


def test_several_inputs_into_a_folder(tmp_path, make_image, tiny_model):
    inputs = []
    for i in range(3):
        p = tmp_path / f"img{i}.png"
        Image.fromarray(make_image(40 + i, 50, seed=i)).save(p)
        inputs.append(p)
    out = tmp_path / "out"
    out.mkdir()
    assert run("compress", *inputs, "-o", out, "--model", tiny_model) == EXIT_OK
    assert sorted(p.name for p in out.iterdir()) == ["img0.nc", "img1.nc", "img2.nc"]


def test_keep_going_reports_every_failure_and_exits_nonzero(tmp_path, png, tiny_model, capsys):
    bad1, bad2 = tmp_path / "a.png", tmp_path / "b.png"
    bad1.write_text("not an image")
    bad2.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    code = run("compress", bad1, png, bad2, "--keep-going", "--model", tiny_model)
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    assert "a.png" in err and "b.png" in err and "2 of 3" in err
    assert png.with_suffix(".nc").exists()
    assert not (tmp_path / "a.nc").exists() and not (tmp_path / "b.nc").exists()


@pytest.mark.parametrize(
    "damage",
    ["truncate", "flip", "magic", "empty", "random"],
)
def test_damaged_files_exit_2_with_one_line(png, tiny_model, capsys, damage):
    run("compress", png, "--model", tiny_model)
    nc = png.with_suffix(".nc")
    data = bytearray(nc.read_bytes())
    if damage == "truncate":
        data = data[: len(data) - 7]
    elif damage == "flip":
        data[len(data) // 2] ^= 0x04
    elif damage == "magic":
        data[:4] = b"JUNK"
    elif damage == "empty":
        data = bytearray()
    else:
        data = bytearray(np.random.default_rng(1).integers(0, 256, 300, dtype=np.uint8).tobytes())
    nc.write_bytes(bytes(data))
    capsys.readouterr()
    out = png.with_name("out.png")
    assert run("decompress", nc, "-o", out, "--model", tiny_model) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()
    assert run("info", nc) == EXIT_BAD_INPUT


def test_info_prints_the_header(png, tiny_model, capsys):
    run("compress", png, "--model", tiny_model, "-q", 42)
    capsys.readouterr()
    assert run("info", png.with_suffix(".nc")) == EXIT_OK
    out = capsys.readouterr().out
    assert "96x64 RGB" in out and "tiny" in out and "42" in out


def test_usage_errors_exit_1(png, capsys):
    assert run("compress", png, "-q", 101) == EXIT_USAGE
    assert run("bogus-command") == EXIT_USAGE
    assert run() == EXIT_USAGE
    assert run("decompress", png, "-o", png.with_name("x.unknownext")) == EXIT_USAGE


def test_console_script_runs_without_traceback(tmp_path):
    missing = tmp_path / "missing.nc"
    proc = subprocess.run(
        [sys.executable, "-m", "neuralcodec.cli", "decompress", str(missing)], capture_output=True, text=True
    )
    assert proc.returncode == EXIT_BAD_INPUT
    assert "Traceback" not in proc.stderr and "no such file" in proc.stderr


def test_unavailable_device_is_a_usage_error(png, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert run("compress", png, "--device", "cuda") == EXIT_USAGE
    assert "CUDA" in capsys.readouterr().err
    assert run("compress", png, "--device", "tpu9") == EXIT_USAGE


def test_image_claiming_absurd_dimensions_is_refused_before_decoding(tmp_path, capsys):
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", 70000, 70000, 8, 2, 0, 0, 0)
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )
    assert run("compress", bomb) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "too large" in err and err.count(str(bomb)) == 1
    assert not bomb.with_suffix(".nc").exists()
