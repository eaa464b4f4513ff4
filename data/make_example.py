"""Generate the bundled example image (neuralcodec/examples/example.png).

A synthetic landscape (sky gradient, sun, layered hills, textured ground, sharp shapes):
no licence questions, and enough smooth areas, edges and texture to show what a codec does.
Run: python data/make_example.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

OUT = Path(__file__).resolve().parents[1] / "neuralcodec" / "examples" / "example.png"


def make_example(width: int = 640, height: int = 448, seed: int = 2026) -> Image.Image:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    sky = np.stack([90 + 100 * yy / height, 140 + 80 * yy / height, 230 - 30 * yy / height], axis=2)
    img = sky.copy()
    sun = (xx - 0.75 * width) ** 2 + (yy - 0.22 * height) ** 2 < (0.07 * width) ** 2
    img[sun] = [255, 230, 150]
    for i, (base, amp, color) in enumerate(
        [(0.55, 0.08, (70, 110, 80)), (0.65, 0.06, (50, 95, 55)), (0.78, 0.04, (95, 80, 50))]
    ):
        ridge = height * (base + amp * np.sin(xx / (60 + 25 * i) + i) + 0.02 * np.sin(xx / 9.0 + 2 * i))
        mask = yy > ridge
        shade = 1 + 0.25 * np.sin(xx / 13.0 + yy / 7.0) * (i == 2)
        img[mask] = np.array(color)[None, :] * shade[mask][:, None]
    img += rng.normal(0, 4, img.shape) * (yy > 0.6 * height)[:, :, None]
    image = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).filter(ImageFilter.SMOOTH)
    draw = ImageDraw.Draw(image)
    draw.rectangle([60, 250, 170, 330], fill=(200, 60, 50), outline=(40, 20, 20), width=3)
    draw.polygon([(50, 250), (115, 200), (180, 250)], fill=(120, 40, 35))
    draw.rectangle([100, 290, 125, 330], fill=(60, 40, 30))
    draw.text((20, 20), "neuralcodec example", fill=(255, 255, 255))
    return image


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    make_example().save(OUT, optimize=True)
    print(f"wrote {OUT}")
