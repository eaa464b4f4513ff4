"""docs/FORMAT.md's "Architecture mean-scale-checkerboard (format 3)", read independently.

A reference decoder of a checkerboard file's latents written from the spec text: the container
is parsed with ``container.unpack``, ẑ's h_s parameters come from the codec's exact
hyper-synthesis (the format-2 part, pinned by the golden tests), and everything else is done
here: the weights file's ``context_exact`` read with ``torch.load``, every MODEL section decoded
by tests/reference_ans.py (plain Python, no constriction), and the context network evaluated
straightforwardly on the whole latent plane at once (a zero-padded k×k convolution of the masked
anchors, then matrix products), not band by band as the codec does. Its ŷ must equal the
codec's decoder's and encoder's, bit for bit, for the file ``compress`` writes and for sections
coded in bands of 1 and 2 ẑ rows (halos across bands). A checkerboard model also decodes the
format-2 files of the hyperprior its ``also_decodes`` entry names.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from checkerboard_weights import write_checkerboard
from make_fixtures import synthetic_image
from reference_ans import decode_section

import neuralcodec
from neuralcodec import codec, numpy_decoder
from neuralcodec.checkerboard_latents import CHECKERBOARD
from neuralcodec.coding import loaded_model
from neuralcodec.container import ColorMode, Container, Header, SectionType, pack, unpack

FIXTURES = Path(__file__).parent / "fixtures"
HEIGHT, WIDTH = 150, 200  # ẑ 3 × 4, y 12 × 16
QUALITY = 60.0
ACTIVATION_MAX = 2**20 - 1


class Tables:
    """A weights file's integer tables (counts, lengths, offsets) for reference_ans."""

    def __init__(self, entry: dict) -> None:
        lengths = np.asarray(entry["lengths"], dtype=np.int64)
        self.offsets = np.asarray(entry["offsets"], dtype=np.int64)
        self._counts = np.split(np.asarray(entry["counts"], dtype=np.int64), np.cumsum(lengths)[:-1])

    def counts_of(self, i: int) -> np.ndarray:
        return self._counts[i]


def table_index(scales: np.ndarray, table: np.ndarray) -> np.ndarray:
    """The number of geometric midpoints sqrt(t_i·t_(i+1)) strictly below each σ."""
    midpoints = np.sqrt(table[:-1] * table[1:])
    return np.sum(midpoints[None, :] < np.ravel(scales)[:, None], axis=1)


def to_fixed(values: np.ndarray, shift: int) -> np.ndarray:
    """⌊v·2^shift + ½⌋ clamped to ±(2^20 − 1)."""
    x = np.floor(np.asarray(values, dtype=np.float64) * 2.0**shift + 0.5)
    return np.clip(x, -ACTIVATION_MAX, ACTIVATION_MAX)


class Layer:
    """One layer of ``context_exact``: weight (C_out, C_in, k, k) int8, per-output-channel
    bias (int64) and weight shift, output shift, activation."""

    def __init__(self, entry: dict) -> None:
        assert entry["weight"].dtype == torch.int8
        self.weight = entry["weight"].numpy().astype(np.float64)
        self.bias = entry["bias"].numpy().astype(np.float64)
        self.weight_shift = entry["weight_shift"].numpy().astype(np.int64)
        self.output_shift = int(entry["output_shift"])
        self.activation = str(entry["activation"])

    def rescale(self, sums: np.ndarray, input_shift: int, slope: float, stats: dict) -> np.ndarray:
        """sums (C_out, ...) -> the next integers: v = sums·2^(output_shift − shift[c] −
        input_shift); leaky: v < 0 -> v·slope; then ⌊v + ½⌋ clamped."""
        out = np.empty_like(sums)
        for c in range(sums.shape[0]):
            v = sums[c] * 2.0 ** (self.output_shift - int(self.weight_shift[c]) - input_shift)
            if self.activation == "leaky":
                negative = v < 0
                stats["negative"] = stats.get("negative", 0) + int(negative.sum())
                v = np.where(negative, v * slope, v)
            out[c] = np.clip(np.floor(v + 0.5), -ACTIVATION_MAX, ACTIVATION_MAX)
        stats["clamped"] = stats.get("clamped", 0) + int((np.abs(out) == ACTIVATION_MAX).sum())
        return out

    def real(self, sums: np.ndarray, input_shift: int) -> np.ndarray:
        """The last layer: sums·2^(−shift[c] − input_shift) (no activation, no output shift)."""
        factors = 2.0 ** (-self.weight_shift.astype(np.float64) - input_shift)
        return sums * factors.reshape((-1,) + (1,) * (sums.ndim - 1))

    def dense(self, x: np.ndarray) -> np.ndarray:
        """A 1×1 layer's sums over (C_in, P) integers."""
        assert self.weight.shape[2:] == (1, 1)
        return self.weight[:, :, 0, 0] @ x + self.bias[:, None]


def context_sums(layer: Layer, anchors: np.ndarray) -> np.ndarray:
    """S[o, i, j] = bias[o] + Σ_c Σ_(u,v) w[o, c, u, v]·A[c, i + u − r, j + v − r], A zero
    outside the plane: (C_out, h, w)."""
    k = layer.weight.shape[2]
    r = k // 2
    channels, h, w = anchors.shape
    padded = np.zeros((channels, h + 2 * r, w + 2 * r))
    padded[:, r : r + h, r : r + w] = anchors
    sums = np.zeros((layer.weight.shape[0], h, w)) + layer.bias[:, None, None]
    for u in range(k):
        for v in range(k):
            sums += np.einsum("oc,chw->ohw", layer.weight[:, :, u, v], padded[:, u : u + h, v : v + w])
    return sums


def reference_latents(container: Container, weights: Path, hyper_synthesis) -> tuple[np.ndarray, dict]:
    """ŷ (1, M, H'/16, W'/16) float32 of a mean-scale-checkerboard file, per docs/FORMAT.md,
    and counts of what the context network did (for the tests' coverage checks)."""
    h = container.header
    assert (h.format_version, h.architecture) == (3, CHECKERBOARD)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    m, n = int(state["config"]["M"]), int(state["config"]["N"])
    z_tables, y_tables = Tables(state["z_tables"]), Tables(state["y_tables"])
    scale_table = np.asarray(state["scale_table"], dtype=np.float64)
    if "z_offsets" in state:
        z_offsets = np.asarray(state["z_offsets"], dtype=np.float64) / 2.0 ** int(state["z_offset_bits"])
    else:
        z_offsets = np.zeros(n)

    zr, zc = -(-h.height // 64), -(-h.width // 64)
    b = h.band_rows
    bands = -(-zr // b)
    sections = container.model_sections()
    assert len(sections) == 1 + 2 * bands

    # ẑ: channel by channel, raster order, table c for channel c
    z_sym = decode_section(sections[0], np.repeat(np.arange(n), zr * zc), z_tables)
    z_hat = z_sym.reshape(1, n, zr, zc).astype(np.float64) + z_offsets.reshape(1, n, 1, 1)
    scales, means = (np.asarray(a)[0] for a in hyper_synthesis(z_hat))  # (M, H'/16, W'/16) float64

    rows, cols = 4 * zr, 4 * zc
    i, j = np.mgrid[0:rows, 0:cols]
    anchor = (i + j) % 2 == 0
    y_hat = np.zeros((m, rows, cols), dtype=np.float32)

    def decode(section: bytes, band: int, where: np.ndarray, sigma: np.ndarray, mu: np.ndarray) -> None:
        in_band = np.zeros_like(where)
        in_band[4 * band * b : 4 * min((band + 1) * b, zr)] = True
        at = where & in_band
        index = table_index(sigma[:, at], scale_table)  # (channel, row, column) order
        symbols = decode_section(section, index, y_tables)
        y_hat[:, at] = (symbols.reshape(m, -1).astype(np.float64) + mu[:, at]).astype(np.float32)

    for band in range(bands):
        decode(sections[1 + band], band, anchor, scales, means)

    context = state["context_exact"]
    first = Layer(context["context"])
    layers = [Layer(entry) for entry in context["layers"]]
    anchor_shift, param_shift = int(context["anchor_shift"]), int(context["param_shift"])
    slope = float(context["slope"])
    stats: dict = {}

    plane = np.where(anchor, to_fixed(y_hat, anchor_shift), 0.0)
    ctx = first.rescale(context_sums(first, plane), anchor_shift, slope, stats)
    x = np.concatenate([to_fixed(scales, param_shift), to_fixed(means, param_shift), ctx]).reshape(4 * m, -1)
    shift = param_shift
    for layer in layers[:-1]:
        x = layer.rescale(layer.dense(x), shift, slope, stats)
        shift = layer.output_shift
    correction = layers[-1].real(layers[-1].dense(x), shift).reshape(2 * m, rows, cols)
    context_scales, context_means = scales + correction[:m], means + correction[m:]
    stats["changed"] = int((context_means[:, ~anchor] != means[:, ~anchor]).sum())

    for band in range(bands):
        decode(sections[1 + bands + band], band, ~anchor, context_scales, context_means)
    return y_hat[None], stats


@pytest.fixture(scope="module", params=["tiny.pt", "tiny-offsets.pt"])
def weights(request, tmp_path_factory) -> Path:
    """A checkerboard weights file (random context, seed 4) on a tiny hyperprior."""
    return write_checkerboard(FIXTURES / request.param, tmp_path_factory.mktemp("cb") / "cb.pt", seed=4)


def codec_latents(container: Container, weights: Path) -> np.ndarray:
    h = container.header
    model = numpy_decoder.NumpyModel.from_file(weights)
    coder = model.latent_codecs[CHECKERBOARD]
    return coder.decode(container.model_sections(), h.height, h.width, h.band_rows)


def assert_same_bits(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype == b.dtype == np.float32 and a.shape == b.shape
    assert a.tobytes() == b.tobytes()


def test_compressed_file_decodes_as_the_spec_says(weights):
    image = synthetic_image(HEIGHT, WIDTH, seed=7)
    container = unpack(neuralcodec.compress(image, QUALITY, model=weights, device="cpu", effort=0))
    assert container.header.band_rows == 16 and len(container.model_sections()) == 3
    model = numpy_decoder.NumpyModel.from_file(weights)
    ours, stats = reference_latents(container, weights, model.entropy.hyper_synthesis)
    assert stats["changed"] > 0 and stats["negative"] > 0
    assert_same_bits(ours, codec_latents(container, weights))


@pytest.mark.parametrize("band_rows", [1, 2])
def test_banded_sections_decode_as_the_spec_says(weights, band_rows):
    """The codec's latents of an image, scaled up so that the symbols are not all 0 and many
    tables are used, coded in bands of ``band_rows`` ẑ rows: 3 or 2 bands, whose non-anchors
    read anchors across the band boundaries."""
    y, z = codec.analyse(loaded_model(weights), synthetic_image(HEIGHT, WIDTH, seed=8)[None], QUALITY, "cpu")
    model = numpy_decoder.NumpyModel.from_file(weights)
    coder = model.latent_codecs[CHECKERBOARD]
    coded = coder.encode(y.numpy() * 30, z.numpy() * 30, band_rows=band_rows, keep_y_hat=True)
    header = Header("tiny", model.digest, WIDTH, HEIGHT, ColorMode.RGB, QUALITY, band_rows)
    header.architecture, header.format_version = CHECKERBOARD, 3
    container = unpack(pack(Container(header, [(SectionType.MODEL, s) for s in coded.sections])))
    assert len(container.model_sections()) == 1 + 2 * -(-3 // band_rows)
    ours, stats = reference_latents(container, weights, model.entropy.hyper_synthesis)
    assert stats["changed"] > 0 and stats["negative"] > 0
    assert len(np.unique(ours)) > 1000  # real symbols, not only ŷ = μ
    assert_same_bits(ours, codec_latents(container, weights))
    assert_same_bits(ours, coded.y_hat)


def test_also_decodes_names_the_hyperprior_whose_files_it_decodes(tmp_path):
    """A weights file made with the hyperprior's decoder digest lists it in ``also_decodes``;
    a format-2 file of that hyperprior then decodes with the checkerboard model, to the same ŷ."""
    from neuralcodec.training.context_export import checkerboard_weights
    from neuralcodec.weights_file import decoder_for

    base = FIXTURES / "tiny.pt"
    hyperprior = numpy_decoder.NumpyModel.from_file(base)
    plain = write_checkerboard(base, tmp_path / "plain.pt", seed=4)
    context = numpy_decoder.NumpyModel.from_file(plain).latent_codec.context
    state = torch.load(base, map_location="cpu", weights_only=False)
    path = tmp_path / "cb.pt"
    torch.save(checkerboard_weights(state, context, {}, hyperprior.digest), path)
    assert torch.load(path, weights_only=True)["also_decodes"] == [hyperprior.digest.hex()]

    container = unpack(
        neuralcodec.compress(synthetic_image(64, 96, seed=3), QUALITY, model=base, device="cpu", effort=0)
    )
    h = container.header
    assert (h.format_version, h.model_digest) == (2, hyperprior.digest)
    model = decoder_for(h.model_name, h.model_digest, path, numpy_decoder.NumpyModel.from_file)
    assert model.digest != hyperprior.digest and model.also_decodes == (hyperprior.digest,)
    args = (container.model_sections(), h.height, h.width, h.band_rows)
    ours = model.latent_codecs[h.architecture].decode(*args)
    assert_same_bits(ours, hyperprior.latent_codec.decode(*args))
