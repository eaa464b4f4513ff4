"""The ncodec command: outputs, overwrite rules, exit codes, and one-line errors."""

import io
import subprocess
import sys
import textwrap
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


def test_an_unknown_transforms_precision_is_a_usage_error_before_any_file_is_written(
    png, tiny_model, capsys, monkeypatch
):
    monkeypatch.setenv("NEURALCODEC_TRANSFORMS", "fp16")
    assert run("compress", png, "--model", tiny_model) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "NEURALCODEC_TRANSFORMS" in err and "float32" in err and len(err.strip().splitlines()) == 1
    assert not png.with_suffix(".nc").exists()


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
    assert "format    2, mean-scale-hyperprior" in out  # the architecture its sections are for


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


def test_devices_torch_names_but_cannot_use_are_usage_errors(png, tiny_model, capsys):
    """mps and xpu pass the name check; without the hardware they failed deep in torch (exit 3)."""
    import torch

    for device in ("mps", "xpu", "xpu:1"):
        backend = torch.backends.mps if device == "mps" else getattr(torch, "xpu", None)
        if backend is not None and backend.is_available():
            continue
        assert run("compress", png, "--device", device, "--model", tiny_model) == EXIT_USAGE
        err = capsys.readouterr().err
        assert "not available" in err and err.count("\n") == 1
    if torch.cuda.is_available():
        beyond = f"cuda:{torch.cuda.device_count()}"
        assert run("compress", png, "--device", beyond, "--model", tiny_model) == EXIT_USAGE
        assert "does not exist" in capsys.readouterr().err
    assert not png.with_suffix(".nc").exists()


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


# --------------------------------------------------------------------------- positional output


def test_positional_output_compress_then_decompress(png, tiny_model, capsys):
    nc = png.with_name("out.nc")
    assert run("compress", png, nc, "--model", tiny_model) == EXIT_OK
    assert nc.read_bytes()[:4] == b"NCDC" and not png.with_suffix(".nc").exists()
    back = png.with_name("back.webp")
    assert run("decompress", nc, back, "--model", tiny_model) == EXIT_OK
    assert Image.open(back).format == "WEBP" and Image.open(back).size == (96, 64)
    assert not nc.with_suffix(".png").exists()
    # the overwrite rules are the same as with -o
    assert run("compress", png, nc, "--model", tiny_model) == EXIT_USAGE
    assert "already exists" in capsys.readouterr().err
    assert run("compress", png, nc, "--model", tiny_model, "-f") == EXIT_OK


def test_two_inputs_of_the_same_kind_stay_inputs(tmp_path, make_image, tiny_model):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    Image.fromarray(make_image(40, 48, seed=1)).save(a)
    Image.fromarray(make_image(40, 48, seed=2)).save(b)
    assert run("compress", a, b, "--model", tiny_model) == EXIT_OK
    assert (tmp_path / "a.nc").exists() and (tmp_path / "b.nc").exists()
    assert (
        run("decompress", tmp_path / "a.nc", tmp_path / "b.nc", "-o", tmp_path / "out", "--model", tiny_model)
        == 0
    )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]


@pytest.mark.parametrize(
    "form, message",
    [
        (("compress", "{png}", "{dir}/x.nc", "-o", "{dir}/y.nc"), "given twice"),
        (("compress", "{png}", "{png2}", "{dir}/x.nc"), "looks like an output"),
        (("compress", "{dir}/x.nc", "{png}"), "the order is IN OUT"),
        (("compress", "-", "{png}"), "only input"),
        (("compress", "{png}", "{png2}", "-o", "-"), "standard output"),
        (("compress", "{png}", "{image_named_nc}"), "name the output with -o"),
        (("decompress", "{nc}", "{dir}/x.png", "-o", "{dir}/y.png"), "given twice"),
        (("decompress", "{nc}", "{nc}", "{dir}/x.png"), "looks like an output"),
        (("decompress", "{nc_named_png}", "{dir}/x.png"), "the order is IN OUT"),
        (("decompress", "{nc}", "{nc_named_png}"), "name the output with -o"),
        (("compress", "{png}", "-o", "{plain}"), "neither a folder nor an output file name"),
    ],
)
def test_ambiguous_forms_are_usage_errors(tmp_path, png, tiny_model, capsys, form, message):
    nc = png.with_suffix(".nc")
    run("compress", png, "--model", tiny_model)
    png2 = tmp_path / "second.png"
    png2.write_bytes(png.read_bytes())
    image_named_nc = tmp_path / "image.nc"
    image_named_nc.write_bytes(png.read_bytes())
    nc_named_png = tmp_path / "stream.png"
    nc_named_png.write_bytes(nc.read_bytes())
    plain = tmp_path / "plain"  # an existing file without an extension, like /dev/null
    plain.write_bytes(b"keep")
    names = dict(
        png=png,
        png2=png2,
        dir=tmp_path,
        nc=nc,
        image_named_nc=image_named_nc,
        nc_named_png=nc_named_png,
        plain=plain,
    )
    args = [a.format(**names) for a in form]
    before = {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    capsys.readouterr()
    assert run(*args) == EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


def _cli(*args, stdin: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "neuralcodec.cli", *map(str, args)], input=stdin, capture_output=True
    )


def test_stdin_and_stdout(png, tiny_model, tmp_path):
    proc = _cli("compress", "-", "-", "--model", tiny_model, "-v", stdin=png.read_bytes())
    assert proc.returncode == EXIT_OK, proc.stderr
    assert proc.stdout[:4] == b"NCDC"
    assert b"<stdin> -> <stdout>" in proc.stderr  # -v goes to stderr when stdout carries the data
    stream = proc.stdout
    proc = _cli("compress", "-", "--model", tiny_model, stdin=png.read_bytes())  # no output: stdout
    assert proc.returncode == EXIT_OK and proc.stdout == stream
    proc = _cli("decompress", "-", "-", "--model", tiny_model, stdin=stream)
    assert proc.returncode == EXIT_OK, proc.stderr
    decoded = Image.open(io.BytesIO(proc.stdout))
    assert decoded.format == "PNG" and decoded.size == (96, 64)
    proc = _cli("decompress", "-", tmp_path / "from_stdin.tif", "--model", tiny_model, stdin=stream)
    assert proc.returncode == EXIT_OK and Image.open(tmp_path / "from_stdin.tif").size == (96, 64)
    proc = _cli("compress", png, "-", "--model", tiny_model)
    assert proc.returncode == EXIT_OK and proc.stdout == stream
    proc = _cli("info", "-", stdin=stream)
    assert proc.returncode == EXIT_OK and b"<stdin>:" in proc.stdout and b"96x64 RGB" in proc.stdout
    proc = _cli("compress", "-", "-", stdin=b"not an image")
    assert proc.returncode == EXIT_BAD_INPUT and proc.stdout == b""
    assert proc.stderr.decode().strip().startswith("ncodec: <stdin>:") and proc.stderr.count(b"\n") == 1


# --------------------------------------------------------------------------- options


def test_effort_values(png, tiny_model, capsys):
    from neuralcodec import api, cli

    assert cli.MAX_EFFORT == api.MAX_EFFORT
    assert cli.DEFAULT_EFFORT is api.DEFAULT_EFFORT is None  # each image's own (api.default_effort)
    for bad in ("10", "-1", "x", "1.5"):
        assert run("compress", png, "-e", bad, "--model", tiny_model) == EXIT_USAGE
        assert "effort" in capsys.readouterr().err
    assert run("compress", png, "-e", 0, "--model", tiny_model) == EXIT_OK


def test_threads_sets_torchs_thread_count(png, tiny_model, capsys):
    import torch

    before = torch.get_num_threads()
    try:
        assert run("compress", png, "--threads", 1, "--model", tiny_model, "-f") == EXIT_OK
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    for bad in ("0", "-2", "two", "99999999999999999999", "100000"):  # torch overflowed on the first
        assert run("compress", png, "--threads", bad) == EXIT_USAGE
        assert "--threads" in capsys.readouterr().err


def test_max_pixels(png, tiny_model, capsys):
    from PIL import Image as PILImage

    from neuralcodec.container import MAX_PIXELS

    run("compress", png, "--model", tiny_model)
    nc, out = png.with_suffix(".nc"), png.with_name("out.png")
    capsys.readouterr()
    assert run("decompress", nc, out, "--model", tiny_model, "--max-pixels", 96 * 64 - 1) == EXIT_BAD_INPUT
    assert "--max-pixels" in capsys.readouterr().err and not out.exists()
    assert run("decompress", nc, out, "--model", tiny_model, "--max-pixels", 96 * 64) == EXIT_OK
    assert run("decompress", nc, out, "--max-pixels", MAX_PIXELS + 1) == EXIT_USAGE
    previous = PILImage.MAX_IMAGE_PIXELS
    try:
        assert (
            run("compress", png, "-f", "--model", tiny_model, "--max-pixels", 96 * 64 - 1) == EXIT_BAD_INPUT
        )
        assert "too large" in capsys.readouterr().err
        assert run("compress", png, "-f", "--model", tiny_model, "--max-pixels", 96 * 64) == EXIT_OK
    finally:
        PILImage.MAX_IMAGE_PIXELS = previous


@pytest.mark.parametrize(
    "text, expected",
    [
        ("50000", 50000),
        ("100k", 100_000),
        ("100kB", 100_000),
        ("100KiB", 102_400),
        ("1.5M", 1_500_000),
        ("2MiB", 2 * 2**20),
        ("7b", 7),
    ],
)
def test_size_units(text, expected):
    from neuralcodec.cli import parse_size

    assert parse_size(text) == expected


def test_rate_targets_are_exclusive_and_checked(png, capsys):
    for args in (
        ("--size", "1k", "-q", "5"),
        ("--size", "1k", "--psnr", "30"),
        ("--psnr", "30", "--ms-ssim", ".9"),
        ("--size", "0"),
        ("--size", "lots"),
        ("--psnr", "-3"),
        ("--ms-ssim", "1.2"),
    ):
        assert run("compress", png, *args) == EXIT_USAGE
        assert "error" in capsys.readouterr().err


@pytest.fixture
def photo_png(tmp_path, make_image) -> Path:
    """Big enough for the shipped models to have a real rate curve (the tiny model's is flat)."""
    path = tmp_path / "photo.png"
    Image.fromarray(make_image(128, 160, seed=1)).save(path)
    return path


def test_size_target_lands_at_or_under_and_within_10_percent(photo_png, capsys):
    nc = photo_png.with_suffix(".nc")
    for target in (2500, 4000):
        assert run("compress", photo_png, "--model", "mse", "--size", target, "-f", "-v") == EXIT_OK
        size = nc.stat().st_size
        assert 0.9 * target <= size <= target
        out = capsys.readouterr().out
        assert f"{size} bytes" in out and "chosen in" in out and f"--size {target}" in out


def test_psnr_target_is_reached(photo_png, capsys):
    from neuralcodec import decompress
    from neuralcodec.metrics import psnr

    nc = photo_png.with_suffix(".nc")
    assert run("compress", photo_png, "--model", "mse", "--psnr", "24", "-v") == EXIT_OK
    decoded = np.asarray(decompress(nc.read_bytes()).convert("RGB"))
    assert psnr(np.asarray(Image.open(photo_png)), decoded) >= 24
    assert "PSNR" in capsys.readouterr().out


def test_out_of_reach_targets_are_usage_errors_and_write_nothing(photo_png, capsys):
    nc = photo_png.with_suffix(".nc")
    assert run("compress", photo_png, "--model", "mse", "--size", 100) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "out of reach" in err and "quality 0 gives" in err and err.count("\n") == 1
    assert run("compress", photo_png, "--model", "mse", "--psnr", 60) == EXIT_USAGE
    assert "out of reach" in capsys.readouterr().err
    assert not nc.exists()


# --------------------------------------------------------------------------- start-up


def test_help_info_version_and_argument_errors_do_not_import_torch(png, tiny_model):
    run("compress", png, "--model", tiny_model)
    script = textwrap.dedent(
        """
        import sys
        from neuralcodec.cli import main
        nc, png = sys.argv[1:]
        for argv in (
            [], ["--help"], ["compress", "--help"], ["--version"], ["info", nc],
            ["compress", png, "-q", "200"], ["compress", png, "-e", "10"], ["compress", png, "a.png", "b.nc"],
            ["decompress", nc, "--threads", "0"], ["compress", png, "--device", "tpu9"],
        ):
            try:
                main(argv)
            except SystemExit:
                pass
            assert "torch" not in sys.modules, argv
        print("torch-free")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(png.with_suffix(".nc")), str(png)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert "torch-free" in proc.stdout


# --------------------------------------------------------------------------- batches


def test_keep_going_reports_value_errors_and_every_other_failure(
    tmp_path, png, tiny_model, capsys, monkeypatch
):
    import neuralcodec.coding as coding

    real_prepare = coding.prepare

    def prepare(source, keep_metadata=True):
        if Path(str(source)).name == "valueerror.png":
            raise ValueError("conversion from La to L not supported")
        return real_prepare(source, keep_metadata)

    monkeypatch.setattr(coding, "prepare", prepare)
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    odd = tmp_path / "valueerror.png"
    odd.write_bytes(png.read_bytes())
    good2 = tmp_path / "good2.png"
    good2.write_bytes(png.read_bytes())
    code = run("compress", bad, png, odd, good2, "--keep-going", "--model", tiny_model)
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    lines = err.strip().splitlines()
    assert len(lines) == 3 and "Traceback" not in err
    assert "bad.png" in lines[0] and "valueerror.png" in lines[1] and "not supported" in lines[1]
    assert lines[2] == "ncodec: 2 of 4 files failed"
    assert png.with_suffix(".nc").exists() and good2.with_suffix(".nc").exists()
    assert not bad.with_suffix(".nc").exists() and not odd.with_suffix(".nc").exists()
    # without --keep-going the first failure stops the batch, still with exit 2 and one line
    code = run("compress", odd, png, "--model", tiny_model, "-f")
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT and err.count("\n") == 2


def test_unexpected_errors_keep_the_batch_report(tmp_path, png, tiny_model, capsys, monkeypatch):
    import neuralcodec.encoding as encoding

    real = encoding.compress_with_stats

    def flaky(source, *args, **kwargs):
        if Path(str(source)).name == "boom.png":
            raise RuntimeError("something broke")
        return real(source, *args, **kwargs)

    monkeypatch.setattr(encoding, "compress_with_stats", flaky)
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    boom = tmp_path / "boom.png"
    boom.write_bytes(png.read_bytes())
    code = run("compress", bad, boom, png, "--keep-going", "--model", tiny_model)
    err = capsys.readouterr().err
    assert code == 3
    assert "bad.png" in err and "boom.png: internal error: RuntimeError: something broke" in err
    assert "2 of 3 files failed" in err and png.with_suffix(".nc").exists()


def test_output_that_appears_while_encoding_is_not_replaced(png, tiny_model, capsys, monkeypatch):
    import neuralcodec.fileio as fileio

    nc = png.with_suffix(".nc")
    real_check = fileio.check_output

    def check_then_race(path, inputs, force):
        real_check(path, inputs, force)
        path.write_bytes(b"written by someone else")  # appears after the check, before the publish

    monkeypatch.setattr(fileio, "check_output", check_then_race)
    assert run("compress", png, "--model", tiny_model) == EXIT_USAGE
    assert nc.read_bytes() == b"written by someone else"
    assert "already exists" in capsys.readouterr().err
    assert [p.name for p in png.parent.iterdir() if p.name.startswith(".")] == []


def test_outputs_follow_the_umask(png, tiny_model):
    import os

    old = os.umask(0o022)
    try:
        assert run("compress", png, "--model", tiny_model) == EXIT_OK
        assert run("decompress", png.with_suffix(".nc"), png.with_name("d.png"), "--model", tiny_model) == 0
        os.umask(0o077)
        assert run("compress", png, png.with_name("private.nc"), "--model", tiny_model) == EXIT_OK
    finally:
        os.umask(old)
    assert png.with_suffix(".nc").stat().st_mode & 0o777 == 0o644
    assert png.with_name("d.png").stat().st_mode & 0o777 == 0o644
    assert png.with_name("private.nc").stat().st_mode & 0o777 == 0o600


def test_effort_is_passed_on_and_verbose_shows_its_progress(png, tiny_model, capsys, monkeypatch):
    import neuralcodec.encoding as encoding

    real = encoding.compress_with_stats
    seen = {}

    def with_progress(source, quality, model, device, keep_metadata=True, effort=0, progress=None):
        seen["effort"] = effort
        for done in (1, 2, 3):
            progress(done, 3)
        return real(source, quality, model, device, keep_metadata=keep_metadata)

    monkeypatch.setattr(encoding, "compress_with_stats", with_progress)
    assert run("compress", png, "-e", 3, "-v", "--model", tiny_model) == EXIT_OK
    assert seen["effort"] == 3
    err = capsys.readouterr().err
    assert err.endswith("photo.png: effort 3: 3/3\n")


# --------------------------------------------------------------------------- hostile input (audit)


def _with_section(nc: Path, kind, payload: bytes) -> bytes:
    """The stream in ``nc`` with one metadata section added (valid checksums and layout)."""
    from neuralcodec.container import pack, unpack

    container = unpack(nc.read_bytes())
    container.sections = sorted(container.sections + [(kind, payload)], key=lambda s: s[0])
    return pack(container)


def test_metadata_pillow_cannot_write_is_bad_input_not_an_internal_error(png, tiny_model, capsys):
    """A crafted EXIF section made Pillow's TIFF writer raise SyntaxError: exit 3, 'internal error'."""
    from neuralcodec.container import SectionType

    run("compress", png, "--model", tiny_model)
    nc = png.with_name("exif.nc")
    nc.write_bytes(_with_section(png.with_suffix(".nc"), SectionType.EXIF, b"not a TIFF header"))
    out = png.with_name("out.tif")
    capsys.readouterr()
    assert run("decompress", nc, out, "--model", tiny_model) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error" not in err and "--strip" in err
    assert not out.exists() and [p.name for p in png.parent.iterdir() if p.name.startswith(".")] == []
    assert run("decompress", nc, out, "--model", tiny_model, "--strip") == EXIT_OK


def test_info_escapes_control_characters_in_a_crafted_note(png, tiny_model, capsys):
    from neuralcodec.container import SectionType

    run("compress", png, "--model", tiny_model)
    nc = png.with_name("note.nc")
    nc.write_bytes(_with_section(png.with_suffix(".nc"), SectionType.NOTE, b"hi \x1b]0;owned\x07\x1b[2J!"))
    capsys.readouterr()
    assert run("info", nc) == EXIT_OK
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "hi \\x1b]0;owned\\x07\\x1b[2J!" in out


def test_formats_pillow_cannot_write_are_refused_before_decoding(png, tiny_model, capsys, monkeypatch):
    import neuralcodec.decoding as decoding

    run("compress", png, "--model", tiny_model)
    monkeypatch.setattr(decoding, "decompress", lambda *a, **k: pytest.fail("decoded before refusing"))
    for ext in (".psd", ".fits"):  # Pillow reads these, but has no writer: was exit 2 after decoding
        out = png.with_name("out" + ext)
        assert run("decompress", png.with_suffix(".nc"), out, "--model", tiny_model) == EXIT_USAGE
        assert "cannot write" in capsys.readouterr().err and not out.exists()


def test_a_damaged_weights_file_is_one_line_and_exit_2(png, tmp_path, capsys):
    run("compress", png)  # shipped model
    for name, content in (("garbage.pt", b"garbage\n"), ("empty.pt", b"")):
        weights = tmp_path / name
        weights.write_bytes(content)
        for args in (("compress", png, "-f"), ("decompress", png.with_suffix(".nc"), tmp_path / "o.png")):
            capsys.readouterr()
            assert run(*args, "--model", weights) == EXIT_BAD_INPUT  # not 3 with torch's own text
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and "internal error" not in err and name in err
    capsys.readouterr()
    assert (
        run("decompress", png.with_suffix(".nc"), tmp_path / "o.png", "--model", "nosuch") == EXIT_BAD_INPUT
    )
    err = capsys.readouterr().err
    assert "'nosuch' not found" in err  # not "file needs model 'msssim', which is not installed"


def test_unreadable_input_is_bad_input_and_info_goes_on(png, tiny_model, capsys, monkeypatch):
    run("compress", png, "--model", tiny_model)
    nc = png.with_suffix(".nc")
    locked = png.with_name("locked.nc")
    locked.write_bytes(nc.read_bytes())
    real = Path.open

    def open_(self, *args, **kwargs):
        if self.name == "locked.nc":  # chmod 000 does not stop root, so refuse the read here
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", open_)
    capsys.readouterr()
    assert run("decompress", locked, png.with_name("o.png"), "--model", tiny_model) == EXIT_BAD_INPUT
    assert "locked.nc: cannot read (Permission denied)" in capsys.readouterr().err
    assert run("info", locked, nc) == EXIT_BAD_INPUT  # was an internal error that skipped nc
    captured = capsys.readouterr()
    assert "Permission denied" in captured.err and "96x64 RGB" in captured.out


def test_a_failing_disk_is_exit_3_and_leaves_nothing(png, tiny_model, tmp_path):
    """A write error (here RLIMIT_FSIZE's EFBIG, like ENOSPC) while saving was reported as bad input."""
    import os
    import resource

    run("compress", png, "--model", tiny_model)
    out = tmp_path / "new" / "out.bmp"  # uncompressed: larger than the limit

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "neuralcodec.cli",
            "decompress",
            png.with_suffix(".nc"),
            out,
            "--model",
            tiny_model,
        ],
        capture_output=True,
        text=True,
        preexec_fn=limit,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.count("\n") == 1 and f"cannot write {out}" in proc.stderr
    assert not (tmp_path / "new").exists()  # nor the folder it created


def test_closed_standard_streams_keep_the_exit_code(tmp_path):
    import os

    text = tmp_path / "notes.png"
    text.write_text("not an image")
    cli = [sys.executable, "-m", "neuralcodec.cli"]
    no_stderr = subprocess.run([*cli, "compress", text], preexec_fn=lambda: os.close(2))
    assert no_stderr.returncode == EXIT_BAD_INPUT  # printing the error raised EBADF: exit 1
    no_stdin = subprocess.run(
        [*cli, "compress", "-", tmp_path / "x.nc"],
        capture_output=True,
        text=True,
        preexec_fn=lambda: os.close(0),
    )
    assert no_stdin.returncode == EXIT_USAGE and "standard input is closed" in no_stdin.stderr
    assert "internal error" not in no_stdin.stderr


def test_warnings_are_one_line_each(tmp_path, make_image, tiny_model):
    """Pillow warns about a damaged EXIF block; that came out as Python's two-line warning."""
    src = tmp_path / "odd.png"
    Image.fromarray(make_image(32, 40, seed=2)).save(
        src, exif=b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x05"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "neuralcodec.cli", "compress", src, "--model", tiny_model],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == EXIT_OK, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines and all(line.startswith("ncodec: warning: ") for line in lines), proc.stderr


def test_multi_line_error_texts_become_one_line(png, tiny_model, capsys, monkeypatch):
    import neuralcodec.encoding as encoding

    def broken(*args, **kwargs):
        raise RuntimeError("first line\nsecond line\n  third")

    monkeypatch.setattr(encoding, "compress_with_stats", broken)
    assert run("compress", png, "--model", tiny_model) == 3
    assert (
        capsys.readouterr().err
        == f"ncodec: {png}: internal error: RuntimeError: first line second line third\n"
    )


def test_an_endless_input_is_not_read_into_memory(png, tiny_model, capsys, monkeypatch):
    """``ncodec info /dev/zero`` (or decompress) read the whole stream: gigabytes, then MemoryError."""

    class Endless(io.RawIOBase):
        def __init__(self, head: bytes = b"") -> None:
            self.head, self.served = head, 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            assert self.served < 1 << 20, "read far past the end of the file"
            n = len(buffer)
            chunk = self.head[self.served : self.served + n]
            buffer[:n] = chunk + b"\0" * (n - len(chunk))
            self.served += n
            return n

    run("compress", png, "--model", tiny_model)
    stream = png.with_suffix(".nc").read_bytes()
    for head, message in ((b"", "bad magic"), (stream, "unexpected bytes")):
        for command in (
            ("info", "-"),
            ("decompress", "-", "-o", png.with_name("o.png"), "--model", tiny_model),
        ):
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(Endless(head))))
            capsys.readouterr()
            assert run(*command) == EXIT_BAD_INPUT
            err = capsys.readouterr().err
            assert message in err and err.count("\n") == 1
    assert not png.with_name("o.png").exists()


def test_an_endless_image_on_stdin_is_refused_at_what_the_pixel_limit_justifies(
    tiny_model, tmp_path, capsys, monkeypatch
):
    """``ncodec compress - < /dev/zero`` read standard input without end."""
    from neuralcodec.cli import image_input_limit

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # --max-pixels sets it

    limit = image_input_limit(1000)
    served = 0

    class Zeros(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            nonlocal served
            assert served <= 2 * limit, "read far past the limit"
            buffer[:] = b"\0" * len(buffer)
            served += len(buffer)
            return len(buffer)

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(Zeros())))
    out = tmp_path / "out.nc"
    assert run("compress", "-", out, "--model", tiny_model, "--max-pixels", "1000") == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert f"more than {limit} bytes" in err and "--max-pixels" in err and err.count("\n") == 1
    assert limit < served < limit + (2 << 20) and not out.exists()


def test_info_into_a_closed_pipe_exits_quietly(png, tiny_model):
    import os

    run("compress", png, "--model", tiny_model)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "neuralcodec.cli", "info", png.with_suffix(".nc")],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        os.close(write_end)
    assert proc.returncode == 141 and proc.stderr == ""  # was "internal error: BrokenPipeError", exit 3


@pytest.mark.parametrize("command", ["compress", "decompress"])
def test_threads_reach_the_blas_before_numpy_loads(png, tiny_model, tmp_path, command):
    """--threads N sets the BLAS's thread count, which OpenBLAS reads once, when numpy loads."""
    run("compress", png, "--model", tiny_model, "-e", "0")
    source = png if command == "compress" else png.with_suffix(".nc")
    target = tmp_path / ("t.nc" if command == "compress" else "t.png")
    code = textwrap.dedent(
        f"""
        import os, sys
        from neuralcodec import cli
        seen = []
        real = cli._set_threads
        cli._set_threads = lambda n, **kw: (seen.append("numpy" in sys.modules), real(n, **kw))
        assert cli.main([{command!r}, {str(source)!r}, {str(target)!r}, "--model", {str(tiny_model)!r},
                         "--threads", "1"]) == 0
        assert seen == [False] and os.environ["OPENBLAS_NUM_THREADS"] == "1", seen
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
