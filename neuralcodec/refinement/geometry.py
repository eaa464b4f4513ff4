"""Where a refinement window lies (``Window``: its core of latents, the context h_s and g_s
see, the pixels it scores) and how an image is cut into windows (``layout``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neuralcodec.greedy_rounding import latent_coverage

# z context around the y window, so its means equal the whole image's: the shipped h_s reads 2
# (exact_numpy.context_rows); refinement's windows keep the 3 their speed and gains were measured with
HS_HALO_Z = 3

# Index of a region of a (B, C, H, W) tensor.
Region = tuple[slice, slice, slice, slice]


@dataclass(frozen=True)
class TileGeometry:
    """How an image above ``refine.SINGLE_WINDOW_PIXELS`` is cut into refinement windows."""

    core_z: int  # side of a core, the latents one tile step optimises, in z positions
    halo_z: int  # y context around a core that g_s sees, in z positions
    scored_halo_y: int  # pixels scored around a core, in y positions


def _region(rows: tuple[int, int], cols: tuple[int, int]) -> Region:
    return (slice(None), slice(None), slice(*rows), slice(*cols))


@dataclass(frozen=True)
class Window:
    """One refinement window: a core of latents to optimise plus context (absolute indices, rows
    then columns, each [start, stop)). The regions below index the tensors a window works on."""

    core_z: tuple[int, int, int, int]  # z rows r0..r1, cols c0..c1 being optimised
    hs_z: tuple[int, int, int, int]  # z region fed to h_s (the y window plus 3 z context)
    win_y: tuple[int, int, int, int]  # y region whose ŷ enters g_s and whose rates count
    pixels: tuple[int, int, int, int]  # pixel region scored for distortion (inside the image)

    @property
    def num_pixels(self) -> int:
        """The scored pixels: what bits are divided by in the window's objective."""
        p0, p1, q0, q1 = self.pixels
        return (p1 - p0) * (q1 - q0)

    @property
    def image_z_core(self) -> Region:
        """The core in the image's z."""
        r0, r1, c0, c1 = self.core_z
        return _region((r0, r1), (c0, c1))

    @property
    def image_y_core(self) -> Region:
        """The core in the image's y."""
        r0, r1, c0, c1 = self.core_z
        return _region((4 * r0, 4 * r1), (4 * c0, 4 * c1))

    @property
    def image_hs_z(self) -> Region:
        """The z that h_s reads, in the image's z."""
        a0, a1, b0, b1 = self.hs_z
        return _region((a0, a1), (b0, b1))

    @property
    def image_win_y(self) -> Region:
        """The window's y, in the image's y."""
        y0, y1, x0, x1 = self.win_y
        return _region((y0, y1), (x0, x1))

    @property
    def z_core(self) -> Region:
        """The core in the z that h_s reads (``hs_z``)."""
        r0, r1, c0, c1 = self.core_z
        a0, _, b0, _ = self.hs_z
        return _region((r0 - a0, r1 - a0), (c0 - b0, c1 - b0))

    @property
    def y_core(self) -> Region:
        """The core in the window's y (``win_y``)."""
        r0, r1, c0, c1 = self.core_z
        y0, _, x0, _ = self.win_y
        return _region((4 * r0 - y0, 4 * r1 - y0), (4 * c0 - x0, 4 * c1 - x0))

    @property
    def hs_crop(self) -> Region:
        """The window's y in the output of h_s on ``hs_z``."""
        a0, _, b0, _ = self.hs_z
        y0, y1, x0, x1 = self.win_y
        return _region((y0 - 4 * a0, y1 - 4 * a0), (x0 - 4 * b0, x1 - 4 * b0))

    @property
    def pixel_crop(self) -> Region:
        """The scored pixels in the output of g_s on the window's y."""
        y0, _, x0, _ = self.win_y
        p0, p1, q0, q1 = self.pixels
        return _region((p0 - 16 * y0, p1 - 16 * y0), (q0 - 16 * x0, q1 - 16 * x0))

    @property
    def scored_origin(self) -> tuple[int, int]:
        """The scored pixels' top-left relative to the core's first pixel."""
        r0, _, c0, _ = self.core_z
        return self.pixels[0] - 64 * r0, self.pixels[2] - 64 * c0

    def coverage(self) -> np.ndarray:
        """``latent_coverage`` of the core's y positions by the scored pixels, (H, W): latents
        whose picture lies mostly in the padding barely change them."""
        r0, r1, c0, c1 = self.core_z
        p0, p1, q0, q1 = self.pixels
        return latent_coverage(
            (4 * (r1 - r0), 4 * (c1 - c0)), (p0 - 64 * r0, p1 - 64 * r0), (q0 - 64 * c0, q1 - 64 * c0)
        )


def layout(
    z_rows: int, z_cols: int, height: int, width: int, tiles: TileGeometry, one_window: bool
) -> list[Window]:
    """The windows an image of ``height`` x ``width`` pixels (z grid ``z_rows`` x ``z_cols``)
    refines in: the whole image when ``one_window``, else cores of ``tiles`` in raster order
    (cores entirely in the padding left out)."""
    if one_window:
        whole = (0, z_rows, 0, z_cols)
        return [Window(whole, whole, (0, 4 * z_rows, 0, 4 * z_cols), (0, height, 0, width))]
    out = []
    side, halo = tiles.core_z, tiles.halo_z
    for r0 in range(0, z_rows, side):
        for c0 in range(0, z_cols, side):
            r1, c1 = min(z_rows, r0 + side), min(z_cols, c0 + side)
            wr0, wr1 = max(0, r0 - halo), min(z_rows, r1 + halo)
            wc0, wc1 = max(0, c0 - halo), min(z_cols, c1 + halo)
            hs = (
                max(0, wr0 - HS_HALO_Z),
                min(z_rows, wr1 + HS_HALO_Z),
                max(0, wc0 - HS_HALO_Z),
                min(z_cols, wc1 + HS_HALO_Z),
            )
            d = tiles.scored_halo_y
            pix = (
                16 * max(4 * wr0, 4 * r0 - d),
                min(height, 16 * min(4 * wr1, 4 * r1 + d)),
                16 * max(4 * wc0, 4 * c0 - d),
                min(width, 16 * min(4 * wc1, 4 * c1 + d)),
            )
            if pix[0] >= pix[1] or pix[2] >= pix[3]:
                continue  # a core entirely in the padding: nothing to gain
            out.append(Window((r0, r1, c0, c1), hs, (4 * wr0, 4 * wr1, 4 * wc0, 4 * wc1), pix))
    return out
