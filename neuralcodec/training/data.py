"""Training images held in memory as uint8, served as random flipped crops.

The training folders are small (~1.5k images, ~1 GB decoded), so decoding every JPEG once
and cropping from RAM keeps two CPU cores busy with the model instead of with libjpeg.

A *pack* (``.npz``) is a compact subset for a remote GPU machine, which gets only what
travels with the checkout: random crops of the training photos, each stored as JPEG (or WebP, PNG) bytes
(``data``: all bytes concatenated, ``offsets``: where each crop starts, plus the end; ``meta``:
how it was made, JSON).
"""

from __future__ import annotations

import io
import json
import os
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


def check_training_folder(folder: Path) -> None:
    if Path(folder).resolve().name.lower() in FORBIDDEN_FOLDER_NAMES:
        raise ValueError(f"{folder} is an evaluation set; refusing to train on it")


PACK_FORMATS = {  # Pillow format and options of a stored crop; lossy WebP is always 4:2:0
    "jpeg": lambda q: ("JPEG", {"quality": q, "subsampling": 0}),
    "webp": lambda q: ("WEBP", {"quality": q, "method": 6}),
    "png": lambda q: ("PNG", {}),
}


def encode_crop(arr: np.ndarray, fmt: str = "jpeg", quality: int = 93) -> bytes:
    """One stored crop's bytes (JPEG 4:4:4, WebP or PNG)."""
    name, options = PACK_FORMATS[fmt](quality)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=name, **options)
    return buf.getvalue()


def psnr_u8(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 arrays (inf when equal)."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def write_pack(
    folder: Path,
    out: Path,
    count: int,
    size: int,
    quality: int = 93,
    seed: int = 0,
    progress: bool = True,
    fmt: str = "jpeg",
    scales: tuple[float, ...] = (1.0,),
    psnrs: list[float] | None = None,
) -> int:
    """Write ``count`` random ``size``² crops of the photos in ``folder`` as a pack; returns its bytes.

    Each crop is cut from its photo resized by a scale drawn from ``scales`` (Lanczos; 0.5 shows
    four times the scene per crop and averages the source's own noise and JPEG artefacts away),
    and stored as ``fmt`` at ``quality``. ``psnrs``, when given, receives each stored crop's PSNR
    against the crop before storage.
    """
    check_training_folder(folder)
    paths = list_images(folder)
    rng = np.random.default_rng(seed)
    chunks, offsets = [], [0]
    for _ in tqdm(range(count), desc="packing crops", disable=not progress, unit="crop"):
        while True:
            scale = float(scales[rng.integers(len(scales))])
            with Image.open(paths[rng.integers(len(paths))]) as im:
                im = im.convert("RGB")
                if scale != 1.0:
                    im = im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS)
                if min(im.size) >= size:
                    arr = np.asarray(im)
                    break
        top, left = rng.integers(arr.shape[0] - size + 1), rng.integers(arr.shape[1] - size + 1)
        crop = np.ascontiguousarray(arr[top : top + size, left : left + size])
        stored = encode_crop(crop, fmt, quality)
        if psnrs is not None:
            with Image.open(io.BytesIO(stored)) as im:
                psnrs.append(psnr_u8(crop, np.asarray(im.convert("RGB"))))
        chunks.append(np.frombuffer(stored, dtype=np.uint8))
        offsets.append(offsets[-1] + len(chunks[-1]))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npz")
    meta = {
        "count": count,
        "size": size,
        "format": fmt,
        "quality": quality,
        "scales": list(scales),
        "seed": seed,
    }
    np.savez(
        tmp,
        data=np.concatenate(chunks),
        offsets=np.array(offsets, dtype=np.int64),
        meta=np.array(json.dumps(meta)),
    )
    os.replace(tmp, out)
    return out.stat().st_size


def read_pack(path: Path) -> list[np.ndarray]:
    """The decoded crops of a pack, uint8 (H, W, 3) each."""
    with np.load(path, allow_pickle=False) as pack:
        data, offsets = pack["data"], pack["offsets"]
    images = []
    for start, end in zip(offsets[:-1], offsets[1:]):
        with Image.open(io.BytesIO(data[start:end].tobytes())) as im:
            images.append(np.asarray(im.convert("RGB")))
    return images


class InMemoryCrops:
    """Random ``crop`` x ``crop`` RGB crops with random horizontal flips.

    ``source`` is a folder of photos or a pack file (``.npz``, see :func:`write_pack`).
    """

    def __init__(self, source: Path, crop: int, seed: int = 0, progress: bool = True) -> None:
        source = Path(source)
        check_training_folder(source)
        if source.suffix == ".npz":
            loaded = read_pack(source)
        else:
            paths = list_images(source)
            if not paths:
                raise ValueError(f"no images found in {source}")
            loaded = []
            for path in tqdm(paths, desc="loading images", disable=not progress, unit="img"):
                with Image.open(path) as im:
                    loaded.append(np.asarray(im.convert("RGB")))
        self.crop = crop
        self.images: list[np.ndarray] = [arr for arr in loaded if min(arr.shape[:2]) >= crop]
        if not self.images:
            raise ValueError(f"no image in {source} is at least {crop} px on its short side")
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, size: int) -> torch.Tensor:
        """A float batch in [0, 1], shape (size, 3, crop, crop)."""
        return to_unit_float(self.batch_uint8(size))

    def batch_uint8(self, size: int, rng: np.random.Generator | None = None) -> torch.Tensor:
        """A uint8 batch, shape (size, 3, crop, crop): 4x fewer bytes to copy to a GPU than floats.

        ``rng`` draws the crops instead of the training stream, which it leaves untouched.
        """
        rng = self.rng if rng is None else rng
        out = np.empty((size, self.crop, self.crop, 3), dtype=np.uint8)
        for i in range(size):
            img = self.images[rng.integers(len(self.images))]
            top = rng.integers(img.shape[0] - self.crop + 1)
            left = rng.integers(img.shape[1] - self.crop + 1)
            patch = img[top : top + self.crop, left : left + self.crop]
            out[i] = patch[:, ::-1] if rng.random() < 0.5 else patch
        return torch.from_numpy(out).permute(0, 3, 1, 2)

    def calibration_uint8(self, size: int) -> torch.Tensor:
        """The same ``size`` crops on every call (a fixed stream), leaving the training stream alone."""
        return self.batch_uint8(size, np.random.default_rng(123))


def stack_crops(images: list[np.ndarray], size: int, rng: np.random.Generator) -> np.ndarray:
    """One ``size``² crop (random position) of each image at least that large, stacked (K, size, size, 3)."""
    crops = []
    for arr in images:
        if min(arr.shape[:2]) < size:
            continue
        top, left = rng.integers(arr.shape[0] - size + 1), rng.integers(arr.shape[1] - size + 1)
        crops.append(arr[top : top + size, left : left + size])
    if not crops:
        raise ValueError(f"no image is at least {size} px on its short side")
    return np.stack(crops)


class DeviceCrops:
    """Training crops cut on the training device: no per-step host work, no host-to-device copy.

    The whole pack lives on ``device`` as one uint8 tensor (K, S, 3, S) (a pack's crops all share
    one size S; a folder of photos contributes one random S² crop per photo). Each batch picks
    crops, positions and horizontal flips with one device generator and gathers them with two
    batched indexing operations: the same distribution as :class:`InMemoryCrops` (uniform crop of a
    uniformly drawn stored image, flipped with probability 1/2). With ``rescale`` < 1 a batch
    is first cut ``crop / s`` wide, for one s drawn uniformly from [rescale, 1] per batch, and
    resized to ``crop`` (bilinear, antialiased): the same content at up to 1/rescale times less
    detail per pixel.
    """

    def __init__(
        self,
        source: Path,
        crop: int,
        device: torch.device | str = "cpu",
        seed: int = 0,
        progress: bool = True,
        rescale: float = 1.0,
    ) -> None:
        source = Path(source)
        check_training_folder(source)
        if not 0.0 < rescale <= 1.0:
            raise ValueError(f"rescale must be in (0, 1], got {rescale}")
        if source.suffix == ".npz":
            images = read_pack(source)
        else:
            images = InMemoryCrops(source, crop, seed=seed, progress=progress).images
        images = [a for a in images if min(a.shape[:2]) >= crop]
        side = min((min(a.shape[:2]) for a in images), default=crop)
        stacked = stack_crops(images, side, np.random.default_rng(seed))
        self.device = torch.device(device)
        self.crop = crop
        self.side = side
        self.rescale = rescale
        # (K, S, 3, S): a row's three channels side by side, so a crop's rows are contiguous runs.
        self.pixels = torch.from_numpy(stacked).permute(0, 1, 3, 2).contiguous().to(self.device)
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.scales = np.random.default_rng(seed)  # the per-batch scale, drawn without a device sync

    def __len__(self) -> int:
        return self.pixels.shape[0]

    def calibration_uint8(self, size: int) -> torch.Tensor:
        """The same ``size`` crops on every call (a fixed stream), leaving the training stream alone."""
        return self.batch_uint8(size, torch.Generator(device=self.device).manual_seed(123))

    def _side(self) -> int:
        """Side of the region cut for this batch (``crop`` unless rescaling)."""
        if self.rescale >= 1.0:
            return self.crop
        s = self.scales.uniform(self.rescale, 1.0)
        return min(self.side, round(self.crop / s))

    def batch_uint8(self, size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """A uint8 batch on the device, shape (size, 3, crop, crop).

        ``generator`` (on the device) draws the crops instead of the training stream, unscaled.
        """
        g, dev = generator or self.generator, self.device
        cut = self.crop if generator is not None else self._side()
        index = torch.randint(len(self), (size,), generator=g, device=dev)
        top = torch.randint(self.side - cut + 1, (size,), generator=g, device=dev)
        left = torch.randint(self.side - cut + 1, (size,), generator=g, device=dev)
        flip = torch.rand(size, generator=g, device=dev) < 0.5
        ramp = torch.arange(cut, device=dev)
        rows = top[:, None] + ramp  # (B, cut)
        cols = left[:, None] + torch.where(flip[:, None], cut - 1 - ramp, ramp)
        # Two gathers: whole rows (3·S contiguous bytes each), then the columns of each row.
        picked = self.pixels[index[:, None], rows]  # (B, cut, 3, S)
        out = picked.gather(3, cols[:, None, None, :].expand(size, cut, 3, cut)).permute(0, 2, 1, 3)
        if cut == self.crop:
            return out
        resized = torch.nn.functional.interpolate(
            out.float(), size=(self.crop, self.crop), mode="bilinear", antialias=True, align_corners=False
        )
        return resized.round_().clamp_(0, 255).to(torch.uint8)


def to_unit_float(batch: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> float32 in [0, 1], on the batch's device."""
    return batch.float().div_(255.0)
