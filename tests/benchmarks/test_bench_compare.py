"""benchmarks.compare: one figure, every codec at (nearly) the same file size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.compare import detailed_crops, largest_fitting_quality, main, make_figure

TINY_MODEL = Path(__file__).resolve().parents[1] / "fixtures" / "tiny.pt"


def test_figure_has_the_original_and_four_codecs_at_the_size(tmp_path, gen_image):
    img = gen_image(176, 208, seed=2)
    out = tmp_path / "compare.png"
    target = 2500
    panels = make_figure(img, target, out, model=str(TINY_MODEL), device="cpu")
    assert [p.codec for p in panels] == ["original", "neuralcodec", "jpeg", "webp", "avif"]
    assert panels[1].label == "neuralcodec (tiny)" and panels[1].quality == 100  # its files are all tiny
    for p in panels[1:]:
        assert p.file_bytes <= target or p.over_target
        assert p.psnr > 0 and 0 < p.ms_ssim <= 1 and p.bpp == pytest.approx(p.file_bytes * 8 / (176 * 208))
    for p in panels[2:]:  # the classical codecs reach the size on this image: they land just under it
        assert not p.over_target and p.file_bytes > 0.7 * target and p.psnr > 20
    with Image.open(out) as figure:
        assert figure.format == "PNG" and figure.width > 5 * 300 and figure.height > 300


def test_command_line_with_bpp_and_explicit_crop(tmp_path, gen_image, capsys):
    src = tmp_path / "img.png"
    Image.fromarray(gen_image(64, 80, seed=1)).save(src)
    out = tmp_path / "fig.png"
    args = [str(src), "--bpp", "1.0", "--model", str(TINY_MODEL), "--codecs", "jpeg", "--crop", "8,8,24,16"]
    assert main([*args, "-o", str(out), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "codec=neuralcodec" in printed and "codec=jpeg" in printed and out.exists()
    with pytest.raises(ValueError, match="not inside"):
        make_figure(gen_image(64, 80), 640, out, model=str(TINY_MODEL), codecs=(), crops=[(70, 0, 20, 20)])


def test_largest_fitting_quality_bisects():
    calls = []

    def encode(q: int) -> bytes:
        calls.append(q)
        return b"x" * (100 + 10 * q)

    assert largest_fitting_quality(encode, 555)[:2] == (45, b"x" * 550)
    assert len(calls) <= 9
    assert largest_fitting_quality(encode, 50) == (0, b"x" * 100, True)
    assert largest_fitting_quality(encode, 5000)[0] == 100


def test_detailed_crops_find_the_texture():
    img = np.full((120, 160, 3), 128, np.uint8)
    img[70:110, 100:150] = np.random.default_rng(0).integers(0, 255, (40, 50, 3))
    crops = detailed_crops(img, count=2, side=30)
    x, y, w, h = crops[0]
    assert (w, h) == (30, 30) and 100 <= x + 15 <= 150 and 70 <= y + 15 <= 110
    (x2, y2, _, _) = crops[1]
    assert abs(x2 - x) >= 30 or abs(y2 - y) >= 30
