"""Decoding is bounded by what the file can justify: crafted files fail fast with exit 2.

The files are written by hand from docs/FORMAT.md (valid CRCs, so only the deeper checks can
object), each one way a small file could otherwise make the decoder spend time or memory.
"""

import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

import neuralcodec
from neuralcodec.api import DEFAULT_MAX_PIXELS
from neuralcodec.container import FORMAT_VERSION
from neuralcodec.errors import InvalidInputError
from neuralcodec.zoo import load_model

GIB = 1024**3


def crafted(
    digest: bytes,
    width: int,
    height: int,
    sections: list[tuple[int, bytes]],
    band_rows: int = 16,
    name: bytes = b"tiny",
) -> bytes:
    """A version-2 file with valid checksums around arbitrary fields and sections."""
    header = b"NCDC" + struct.pack(">BBB", FORMAT_VERSION, 0, len(name)) + name + digest
    header += struct.pack(">IIBfHH", width, height, 0, 50.0, band_rows, len(sections))
    header += b"".join(struct.pack(">BI", kind, len(data)) for kind, data in sections)
    payload = b"".join(data for _, data in sections)
    return header + struct.pack(">II", zlib.crc32(header), zlib.crc32(payload)) + payload


@pytest.fixture(params=["numpy", "torch"])
def backend(request) -> str:
    """``ncodec decompress --backend``: the numpy decoder (its default) and torch's."""
    return request.param


@pytest.fixture(scope="module")
def digest(tiny_model) -> bytes:
    return load_model(tiny_model).digest


# Runs the CLI's main() and records the process's own peak RSS (VmHWM belongs to the address
# space the exec created, so a large parent's pages never count, unlike ru_maxrss).
CHILD = """
import sys
from neuralcodec.cli import main
code = main(sys.argv[2:])
status = open("/proc/self/status").read()
open(sys.argv[1], "w").write(next(l for l in status.splitlines() if l.startswith("VmHWM")).split()[1])
sys.exit(code)
"""


def decode_in_child(tmp_path, data: bytes, model, *extra: str) -> tuple[int, str, int]:
    """Run ``ncodec decompress`` on ``data``; return exit code, stderr and the child's peak RSS."""
    if not Path("/proc/self/status").exists():
        pytest.skip("peak memory is read from /proc (Linux)")
    src, peak_file = tmp_path / "crafted.nc", tmp_path / "peak_kib.txt"
    src.write_bytes(data)
    args = ["decompress", str(src), "-o", str(tmp_path / "out.png"), "--model", str(model), "--device", "cpu"]
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(peak_file), *args, *extra],
        capture_output=True,
        text=True,
        timeout=120,  # a hang guard, not a timing assertion
    )
    return proc.returncode, proc.stderr, int(peak_file.read_text()) * 1024


def test_empty_sections_for_a_12_megapixel_header_are_corrupt(tmp_path, tiny_model, digest, backend):
    data = crafted(digest, 4000, 3000, [(1, b"")] + [(2, b"")] * 3)
    code, err, peak = decode_in_child(tmp_path, data, tiny_model, "--backend", backend)
    assert code == 2 and "empty" in err and err.count("\n") == 1
    assert peak < GIB
    assert not (tmp_path / "out.png").exists()


def test_a_23000_square_header_is_refused_by_the_pixel_limit(tmp_path, tiny_model, digest, backend):
    bands = 23  # ⌈⌈23000/64⌉/16⌉
    data = crafted(digest, 23000, 23000, [(1, b"\x01\x00\x00\x00")] + [(2, b"\x01\x00\x00\x00")] * bands)
    code, err, peak = decode_in_child(tmp_path, data, tiny_model, "--backend", backend)
    assert code == 2 and "max-pixels" in err and err.count("\n") == 1
    assert peak < GIB


def test_huge_band_heights_are_refused(tmp_path, tiny_model, digest, backend):
    data = crafted(digest, 4000, 3000, [(1, b"\x01\x00\x00\x00"), (2, b"\x01\x00\x00\x00")], band_rows=1024)
    code, err, _ = decode_in_child(tmp_path, data, tiny_model, "--backend", backend)
    assert code == 2 and "band height" in err


def test_a_section_that_runs_out_of_data_is_corrupt(make_image):
    """A real stream whose first latent section after z lost its first words (read last), its
    checksums rebuilt: the coder runs dry."""
    from neuralcodec.container import SectionType, pack, unpack

    coded_kinds = (SectionType.Z, SectionType.Y, SectionType.MODEL)
    # msssim's trained scales: the tiny random model codes its latents in a word or two.
    container = unpack(neuralcodec.compress(make_image(128, 128, seed=2), 90, "msssim"))
    coded = [i for i, (kind, _) in enumerate(container.sections) if kind in coded_kinds]
    index = coded[1]  # the first after z (format 2: the first Y; format 3: the second MODEL)
    kind, data = container.sections[index]
    assert len(data) > 64 and kind != SectionType.Z
    container.sections[index] = (kind, data[8:])
    with pytest.raises(InvalidInputError, match="entropy-coded section"):
        neuralcodec.decompress(pack(container), model="msssim")


def test_the_pixel_limit_can_be_raised_or_lifted(tiny_model, make_image):
    data = neuralcodec.compress(make_image(64, 100), 50, tiny_model)
    with pytest.raises(InvalidInputError, match="above the limit of 5000"):
        neuralcodec.decompress(data, model=tiny_model, max_pixels=5000)
    assert neuralcodec.decompress(data, model=tiny_model, max_pixels=6400).size == (100, 64)
    assert neuralcodec.decompress(data, model=tiny_model, max_pixels=None).size == (100, 64)
    assert DEFAULT_MAX_PIXELS == 2 * 89_478_485  # where Pillow refuses to open an image


def test_what_compress_reads_by_default_decompress_writes_by_default():
    from PIL import Image

    assert DEFAULT_MAX_PIXELS == 2 * Image.MAX_IMAGE_PIXELS  # Pillow's error threshold
