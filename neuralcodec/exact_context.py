"""A checkerboard context model's entropy parameters in exact integer arithmetic (numpy).

The non-anchor latents of a checkerboard model (He et al. 2021) are coded with parameters
computed from the hyperprior's parameters and the decoded anchors. Like the hyper-synthesis
(neuralcodec.exact_numpy), everything that decides those parameters is integer arithmetic
carried in float64 below 2^53, so every machine computes the same bits:

- inputs become fixed-point integers: an anchor ŷ (taken as the float32 value the decoder
  holds) as ⌊ŷ·2^anchor_shift + ½⌋, the hyperprior's (scales ‖ means) as ⌊p·2^param_shift + ½⌋,
  each clamped to ±ACTIVATION_MAX;
- each layer's weights are 8-bit integers with a power-of-two scale per output channel
  (w ≈ w_int·2^-shift[c]); a layer's sum is an exact integer, its output rescales it by a power
  of two (exact), applies the activation and rounds half up;
- the leaky ReLU's slope is one IEEE multiplication of the rescaled value (correctly rounded,
  so the same everywhere), before the rounding.

The context convolution (5×5, anchors → 2M channels) sees the anchors only (non-anchors read
as 0); its output, at the parameters' fixed point, is concatenated after the hyperprior's
parameters and goes through 1×1 layers to a (scales ‖ means) correction that is added to the
hyperprior's parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from neuralcodec.errors import InvalidModelError
from neuralcodec.exact_numpy import ACTIVATION_MAX

WEIGHT_BITS = 8  # |w_int| <= 127
# |acc| < 2^7 * 2^20 * taps + |bias|: far below 2^53 for any layer with <= 2^20 taps.
MAX_TAPS = 1 << 20
ACTIVATIONS = ("none", "leaky")
# Non-anchors whose parameters are computed at once: the gathered context inputs of a chunk
# (taps · M · 8 bytes each) stay near 19 MB for M = 192, whatever the image's width.
CHUNK_POSITIONS = 1024


def anchor_mask(row0: int, rows: int, cols: int) -> np.ndarray:
    """(rows, cols) bool, True at anchors: latent (row, col) with row + col even, counting rows
    from the top of the image (``row0`` is the first row's index)."""
    r = np.arange(row0, row0 + rows)[:, None]
    c = np.arange(cols)[None, :]
    return (r + c) % 2 == 0


def fixed_point(values: np.ndarray, shift: int, out: np.ndarray | None = None) -> np.ndarray:
    """⌊v·2^shift + ½⌋ in float64, clamped to ±ACTIVATION_MAX (exact for float32 or dyadic v);
    written into ``out`` (a float64 array of values' shape) when given."""
    if out is None:
        out = np.array(values, dtype=np.float64)
    else:
        out[...] = values
    np.ldexp(out, shift, out=out)
    out += 0.5
    np.floor(out, out=out)
    return np.clip(out, -ACTIVATION_MAX, ACTIVATION_MAX, out=out)


@dataclass(frozen=True)
class IntegerLayer:
    """One conv layer with integer weights (C_out, C_in, k, k), per-channel weight shifts and an
    integer bias at the scale of its sums (bias_int = round(b·2^(shift[c] + input_shift)))."""

    weight: np.ndarray  # int8, widened to float64 where it is used (a quarter of the memory held)
    bias: np.ndarray  # int-valued float64
    weight_shift: np.ndarray  # int64 (C_out,)
    output_shift: int  # fractional bits of the output (unused by the last layer)
    activation: str  # "none" or "leaky"

    def accumulate_points(self, x: np.ndarray) -> np.ndarray:
        """A 1×1 layer's exact sums for integer-valued x (C_in, P) at P positions: (C_out, P)."""
        out = self.weight[:, :, 0, 0].astype(np.float64) @ x
        out += self.bias[:, None]
        return out

    def rescale(self, acc: np.ndarray, input_shift: int, slope: float, channel_axis: int) -> np.ndarray:
        """The next layer's integer input from this layer's sums (see the module docstring)."""
        shape = [1] * acc.ndim
        shape[channel_axis] = -1
        v = np.ldexp(acc, (self.output_shift - self.weight_shift - input_shift).reshape(shape))
        if self.activation == "leaky":
            v = np.where(v < 0, v * slope, v)
        x = np.floor(v + 0.5, out=v)
        return np.clip(x, -ACTIVATION_MAX, ACTIVATION_MAX, out=x)

    def real(self, acc: np.ndarray, input_shift: int, channel_axis: int) -> np.ndarray:
        """The sums as real numbers (exact powers of two): the last layer's output."""
        shape = [1] * acc.ndim
        shape[channel_axis] = -1
        return np.ldexp(acc, (-self.weight_shift - input_shift).reshape(shape))

    @classmethod
    def from_state(cls, state: dict) -> IntegerLayer:
        weight = np.asarray(state["weight"])
        if weight.dtype != np.int8 or weight.ndim != 4 or weight.shape[2] != weight.shape[3]:
            raise InvalidModelError("context layer weights must be int8 (C_out, C_in, k, k)")
        if weight.shape[1] * weight.shape[2] ** 2 > MAX_TAPS:
            raise InvalidModelError("context layer has too many taps for exact arithmetic")
        shifts = np.asarray(state["weight_shift"]).astype(np.int64)
        bias = np.asarray(state["bias"]).astype(np.float64)
        if shifts.shape != (weight.shape[0],) or bias.shape != (weight.shape[0],):
            raise InvalidModelError("context layer: shifts and bias must have one entry per output channel")
        output_shift = int(state["output_shift"])
        if (
            np.abs(shifts).max(initial=0) > 60
            or np.abs(bias).max(initial=0) >= 2.0**52
            or not 0 <= output_shift <= 30
        ):
            raise InvalidModelError("context layer: shift or bias out of range")
        activation = str(state["activation"])
        if activation not in ACTIVATIONS:
            raise InvalidModelError(f"context layer: unknown activation {activation!r}")
        return cls(np.ascontiguousarray(weight), bias, shifts, output_shift, activation)

    def state(self) -> dict:
        return {
            "weight": self.weight.astype(np.int8),
            "bias": self.bias.astype(np.int64),
            "weight_shift": self.weight_shift.astype(np.int64),
            "output_shift": int(self.output_shift),
            "activation": self.activation,
        }


@dataclass(frozen=True)
class CheckerboardContext:
    """The non-anchors' exact (scales, means) from the hyperprior's and the anchors' ŷ."""

    context: IntegerLayer  # k×k, M -> 2M, output at param_shift (no activation)
    layers: tuple[IntegerLayer, ...]  # 1×1, 4M -> ... -> 2M
    anchor_shift: int
    param_shift: int
    slope: float

    @property
    def halo(self) -> int:
        """Latent rows of anchors needed above and below a band."""
        return self.context.weight.shape[2] // 2

    def __call__(
        self,
        scales: np.ndarray,
        means: np.ndarray,
        anchors: np.ndarray,
        band_row0: int,
        band_rows: int,
        above: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact (scales, means) at the non-anchors of a band of ``band_rows`` latent rows whose
        first row is image row ``band_row0``.

        ``scales``, ``means``: the hyperprior's exact parameters (M, P), float64, at the band's
        P non-anchors in raster order; ``anchors``: the decoded ŷ (float32, (1, M, rows, w)) of
        the band plus ``above`` rows above it and any rows below it (up to :attr:`halo` each way
        are used; fewer only at the image's edges, where the context reads zeros). Its
        non-anchor entries are ignored. Returns (M, P) float64 arrays, in the same order."""
        m, w = scales.shape[0], anchors.shape[3]
        if anchors.shape[2] < above + band_rows:
            raise ValueError("anchors must cover the band")
        rows, cols = np.nonzero(~anchor_mask(band_row0, band_rows, w))
        if scales.shape != (m, rows.size) or means.shape != scales.shape:
            raise ValueError("scales and means must be (M, P) at the band's non-anchors")
        padded = self._padded_anchors(anchors[0])
        out = np.empty((2 * m, rows.size))
        for p0 in range(0, rows.size, CHUNK_POSITIONS):
            at = slice(p0, p0 + CHUNK_POSITIONS)
            r, c = rows[at], cols[at]
            ctx = self.context.rescale(
                self._context_sums(padded, r + above, c), self.anchor_shift, self.slope, 0
            )
            params = np.concatenate([scales[:, at], means[:, at]])
            x = np.concatenate([fixed_point(params, self.param_shift), ctx])
            shift = self.param_shift
            for layer in self.layers[:-1]:
                x = layer.rescale(layer.accumulate_points(x), shift, self.slope, 0)
                shift = layer.output_shift
            last = self.layers[-1]
            params += last.real(last.accumulate_points(x), shift, 0)
            out[:, at] = params
        return out[:m], out[m:]

    @cached_property
    def _anchor_taps(self) -> tuple[list[tuple[int, int]], np.ndarray]:
        """The kernel offsets (dy, dx) that fall on anchors around a non-anchor (dy + dx odd,
        counted from the centre), whatever the non-anchor's row, and their kernel columns as one
        int8 matrix (2M, taps·M): built once, widened per product."""
        k = self.context.weight.shape[2]
        taps = [(dy, dx) for dy in range(k) for dx in range(k) if (dy + dx - 2 * (k // 2)) % 2]
        kernel = np.stack([self.context.weight[:, :, dy, dx] for dy, dx in taps], axis=1)
        return taps, kernel.reshape(kernel.shape[0], -1)

    def _padded_anchors(self, anchors: np.ndarray) -> np.ndarray:
        """The anchors' fixed-point integers (M, rows + 2r, w + 2r), zero outside the slab."""
        r = self.context.weight.shape[2] // 2
        padded = np.zeros((anchors.shape[0], anchors.shape[1] + 2 * r, anchors.shape[2] + 2 * r))
        fixed_point(anchors, self.anchor_shift, out=padded[:, r:-r, r:-r])
        return padded

    def _context_sums(self, padded: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """The context convolution's exact sums (2M, P) at non-anchors (``rows``, ``cols``:
        positions in the unpadded slab of :meth:`_padded_anchors`).

        A non-anchor's neighbours at an odd offset (dy + dx odd) are the anchors; the others
        read 0. So only those taps are gathered, for the non-anchor positions only, and
        multiplied with their kernel columns in one product: the same integer sums as the full
        convolution of the masked anchors, a quarter of the work."""
        taps, kernel = self._anchor_taps
        gathered = np.empty((len(taps), padded.shape[0], rows.size))
        for t, (dy, dx) in enumerate(taps):
            gathered[t] = padded[:, rows + dy, cols + dx]
        sums = kernel.astype(np.float64) @ gathered.reshape(-1, rows.size)
        sums += self.context.bias[:, None]
        return sums

    @classmethod
    def from_state(cls, state: dict) -> CheckerboardContext:
        """From a weights file's ``context_exact`` entry; InvalidModelError when malformed."""
        try:
            context = IntegerLayer.from_state(state["context"])
            layers = tuple(IntegerLayer.from_state(d) for d in state["layers"])
            anchor_shift, param_shift = int(state["anchor_shift"]), int(state["param_shift"])
            slope = float(state["slope"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidModelError(f"malformed context model: {exc}") from None
        m2 = context.weight.shape[0]
        if not layers or context.weight.shape[1] * 2 != m2 or layers[0].weight.shape[1] != 2 * m2:
            raise InvalidModelError("context model: channel counts do not chain")
        if context.weight.shape[2] % 2 == 0 or any(layer.weight.shape[2] != 1 for layer in layers):
            raise InvalidModelError("context model: odd context kernel and 1×1 layers expected")
        for a, b in zip(layers, layers[1:]):
            if a.weight.shape[0] != b.weight.shape[1]:
                raise InvalidModelError("context model: channel counts do not chain")
        if layers[-1].weight.shape[0] != m2 or not 0 <= anchor_shift <= 30 or not 0 <= param_shift <= 30:
            raise InvalidModelError("context model: bad output channels or shifts")
        if context.activation != "none" or context.output_shift != param_shift:
            raise InvalidModelError(
                "context model: the context layer must output at param_shift, unactivated"
            )
        if layers[-1].activation != "none" or layers[-1].output_shift != 0:
            raise InvalidModelError("context model: the last layer must be linear (activation none, shift 0)")
        if not 0.0 <= slope < 1.0:  # also refuses NaN
            raise InvalidModelError("context model: leaky slope outside [0, 1)")
        return cls(context, layers, anchor_shift, param_shift, slope)

    def state(self) -> dict:
        return {
            "context": self.context.state(),
            "layers": [layer.state() for layer in self.layers],
            "anchor_shift": self.anchor_shift,
            "param_shift": self.param_shift,
            "slope": self.slope,
        }
