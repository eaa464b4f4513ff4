"""Training images held in memory as uint8, served as random flipped crops.

The training folders are small (~1.5k images, ~1 GB decoded), so decoding every JPEG once
and cropping from RAM keeps two CPU cores busy with the model instead of with libjpeg.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".ppm"}
# Evaluation-only folders: training on them would make every reported number a lie.
FORBIDDEN_FOLDER_NAMES = {"kodak", "qoi_photo_wikipedia"}


def list_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, sorted for reproducibility."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


class InMemoryCrops:
    """Random ``crop`` x ``crop`` RGB crops with random horizontal flips."""

    def __init__(self, folder: Path, crop: int, seed: int = 0, progress: bool = True) -> None:
        folder = Path(folder)
        if folder.resolve().name.lower() in FORBIDDEN_FOLDER_NAMES:
            raise ValueError(f"{folder} is an evaluation set; refusing to train on it")
        paths = list_images(folder)
        if not paths:
            raise ValueError(f"no images found in {folder}")
        self.crop = crop
        self.images: list[np.ndarray] = []
        for path in tqdm(paths, desc="loading images", disable=not progress, unit="img"):
            with Image.open(path) as im:
                arr = np.asarray(im.convert("RGB"))
            if min(arr.shape[:2]) >= crop:
                self.images.append(arr)
        if not self.images:
            raise ValueError(f"no image in {folder} is at least {crop} px on its short side")
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, size: int) -> torch.Tensor:
        """A float batch in [0, 1], shape (size, 3, crop, crop)."""
        out = np.empty((size, self.crop, self.crop, 3), dtype=np.uint8)
        for i in range(size):
            img = self.images[self.rng.integers(len(self.images))]
            top = self.rng.integers(img.shape[0] - self.crop + 1)
            left = self.rng.integers(img.shape[1] - self.crop + 1)
            patch = img[top : top + self.crop, left : left + self.crop]
            out[i] = patch[:, ::-1] if self.rng.random() < 0.5 else patch
        return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255.0)
