"""The mean-scale hyperprior architecture as the codec runs it (registered as
``mean-scale-hyperprior``): weights loading here, the coding pipeline in neuralcodec.codec."""

from __future__ import annotations

from neuralcodec.models.registry import DEFAULT_ARCHITECTURE, Architecture, register


def load(state: dict, name: str, digest: bytes):
    """A LoadedModel from a weights file's tensors (conv transforms, exact h_s, integer tables)."""
    from neuralcodec.entropy_models import TableSet
    from neuralcodec.exact import ExactHyperSynthesis
    from neuralcodec.models.hyperprior import HyperpriorConfig, HyperpriorTransforms
    from neuralcodec.zoo import LoadedModel, load_transforms

    config = HyperpriorConfig(**state["config"])
    transforms = HyperpriorTransforms(config)
    hyper = ExactHyperSynthesis.from_state_dict(state["h_s_exact"])
    load_transforms(transforms, state["transforms"], hyper)
    transforms.eval().requires_grad_(False)
    return LoadedModel(
        name=name,
        digest=digest,
        config=config,
        transforms=transforms,
        hyper_synthesis=hyper,
        z_tables=TableSet.from_dict(state["z_tables"]),
        y_tables=TableSet.from_dict(state["y_tables"]),
        scale_table=state["scale_table"].numpy(),
        meta=state.get("meta", {}),
        architecture=DEFAULT_ARCHITECTURE,
    )


def encode(model, x, quality: float, device="auto", effort: int = 0, progress=None) -> list:
    from neuralcodec import codec

    return codec.encode_batch(model, x, quality, device, effort=effort, progress=progress)


def decode(model, streams: list, quality: float, height: int, width: int, device="auto", band_rows: int = 16):
    from neuralcodec import codec

    return codec.decode_batch(model, streams, quality, height, width, device, band_rows)


ARCHITECTURE = register(Architecture(DEFAULT_ARCHITECTURE, load=load, encode=encode, decode=decode))
