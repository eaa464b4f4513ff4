"""The mean-scale hyperprior architecture as the codec runs it (registered as
``mean-scale-hyperprior``): weights loading here, the coding pipeline in neuralcodec.codec."""

from __future__ import annotations

import numpy as np

from neuralcodec.models.interface import DEFAULT_ARCHITECTURE, Architecture


def z_offsets(state: dict, tables, channels: int, name: str = "weights file") -> tuple[np.ndarray, int]:
    """(per-channel offsets of ẑ as float64, their fractional bits) from a weights file.

    Format 1 has none (all 0, on the integers). The offsets must lie in [-1/2, 1/2] and keep
    every value a z table can code within the exact hyper-synthesis' input range.
    """
    from neuralcodec.errors import InvalidModelError
    from neuralcodec.exact_numpy import ACTIVATION_BITS

    if "z_offsets" not in state:
        return np.zeros(channels), 0
    bits = int(state.get("z_offset_bits", -1))
    units = np.asarray(state["z_offsets"]).astype(np.int64)
    if not 0 <= bits <= 12 or units.shape != (channels,) or np.abs(units).max(initial=0) > 2**bits // 2:
        raise InvalidModelError(f"{name}: malformed z offsets")
    reach = np.maximum(np.abs(tables.offsets), np.abs(tables.offsets + tables.lengths - 1)) + 1
    if reach.max(initial=0) >= 2 ** (ACTIVATION_BITS - bits):
        raise InvalidModelError(f"{name}: z tables wider than the exact hyper-synthesis takes")
    return units / 2.0**bits, bits


def load(state: dict, name: str, digest: bytes, architecture: str = DEFAULT_ARCHITECTURE):
    """A LoadedModel from a weights file's tensors (conv transforms, exact h_s, integer tables);
    ``architecture``: the registry entry it codes with (one whose latent codec reads the
    weights' other entries, kept as ``codec_state``)."""
    from neuralcodec.entropy_models import TableSet
    from neuralcodec.exact import ExactHyperSynthesis
    from neuralcodec.models.hyperprior import HyperpriorConfig, HyperpriorTransforms
    from neuralcodec.models.loaded import LoadedModel, load_transforms
    from neuralcodec.weights_file import also_decodes

    config = HyperpriorConfig(**state["config"])
    transforms = HyperpriorTransforms(config)
    z_tables = TableSet.from_dict(state["z_tables"])
    offsets, offset_bits = z_offsets(state, z_tables, config.N, name)
    hyper = ExactHyperSynthesis.from_state_dict(state["h_s_exact"], offset_bits)
    load_transforms(transforms, state["transforms"], hyper)
    transforms.eval().requires_grad_(False)
    model = LoadedModel(
        name=name,
        digest=digest,
        config=config,
        transforms=transforms,
        hyper_synthesis=hyper,
        z_tables=z_tables,
        y_tables=TableSet.from_dict(state["y_tables"]),
        scale_table=state["scale_table"].numpy(),
        z_offsets=offsets,
        meta=state.get("meta", {}),
        architecture=architecture,
        codec_state={k: _numpy(v) for k, v in state.items() if k in CODEC_ENTRIES},
        also_decodes=also_decodes(state, name),
    )
    _ = model.latent_codecs  # built now, so that malformed weights fail to load (InvalidModelError)
    return model


CODEC_ENTRIES = ("context_exact",)  # weights entries a latent codec reads beyond the hyperprior's


def _numpy(value):
    """Tensors in a nested weights entry as numpy arrays (what the latent codecs take)."""
    if hasattr(value, "numpy"):
        return value.numpy()
    if isinstance(value, dict):
        return {k: _numpy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_numpy(v) for v in value]
    return value


def encode(
    model, x, quality: float, device="auto", effort: int = 0, progress=None, gray_output: bool = False
) -> list:
    """Analysis, then (``effort`` > 0) latent refinement of these images (neuralcodec.refine:
    ``progress(done, total)`` as it proceeds; ``gray_output``: distortion measured on the
    grayscale image the files decode to), then entropy coding."""
    from neuralcodec import codec, refine

    y, z = codec.analyse(model, x, quality, device)
    if effort:
        y, z = refine.refine_latents(
            model, x, y, z, quality, effort, device, progress=progress, gray_output=gray_output
        )
    return codec.encode_latents_batch(model, y, z)


ARCHITECTURE = Architecture(DEFAULT_ARCHITECTURE, load=load, encode=encode)
