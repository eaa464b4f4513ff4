"""Shipped models: where their weights live, how they load, and which one is default.

Weights are plain tensors saved with torch.save (loaded with ``weights_only=True``), so
inference needs neither CompressAI nor pickle of arbitrary objects.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import torch

from neuralcodec.container import MODEL_NAME
from neuralcodec.errors import ModelNotFoundError
from neuralcodec.models.loaded import LoadedModel
from neuralcodec.models.registry import DEFAULT_ARCHITECTURE, get_architecture
from neuralcodec.weights_file import (
    READABLE_WEIGHTS_FORMATS,
    SHIPPED_WEIGHTS,
    available_models,
    bytes_digest,
    decoder_digest,
    file_digest,
    resolve_model_path,
)

# Re-exported (torch-free, in weights_file): zoo is where callers look for them.
__all__ = ["available_models", "bytes_digest", "decoder_digest", "file_digest", "resolve_model_path"]

WEIGHTS_DIR = SHIPPED_WEIGHTS  # the shipped models' folder (patch weights_file.SHIPPED_WEIGHTS)
WEIGHTS_PATH_VARIABLE = "NEURALCODEC_WEIGHTS"  # folders (os.pathsep-separated) of earlier decoders
DEFAULT_MODEL = "msssim"
WEIGHTS_FORMAT = 2  # what export writes; 2 added the z offsets (ẑ on a grid centred on the z medians)
Z_OFFSET_BITS = 8  # z offsets are stored as integers in units of 2^-8


@lru_cache(maxsize=8)
def load_model(name_or_path: str | Path = DEFAULT_MODEL) -> LoadedModel:
    """Load (once per process) a shipped model by name, or a weights file by path."""
    path = resolve_model_path(name_or_path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("format") not in READABLE_WEIGHTS_FORMATS:
        raise ModelNotFoundError(
            f"{path} is not a neuralcodec weights file of format "
            f"{' or '.join(map(str, READABLE_WEIGHTS_FORMATS))}"
        )
    return model_from_state(state, decoder_digest(state, path))


def model_from_state(state: dict, digest: bytes) -> LoadedModel:
    """A model from a weights file's contents already in memory (e.g. training's periodic
    evaluation of real files); ``digest`` is the decoder identity its streams will carry."""
    architecture = get_architecture(state.get("architecture", DEFAULT_ARCHITECTURE))
    return architecture.load(state, state["name"], digest)


def weights_search_path() -> list[Path]:
    """Folders searched for the weights of decoders that are no longer shipped.

    The folders listed in ``$NEURALCODEC_WEIGHTS`` (separated by ``os.pathsep``) when it is
    set, else ``$XDG_DATA_HOME/neuralcodec/weights`` (``~/.local/share/neuralcodec/weights``).
    """
    listed = os.environ.get(WEIGHTS_PATH_VARIABLE)
    if listed is not None:
        return [Path(p).expanduser() for p in listed.split(os.pathsep) if p]
    try:
        data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    except RuntimeError:  # no home directory to be found: only $NEURALCODEC_WEIGHTS can say
        return []
    return [Path(data_home) / "neuralcodec" / "weights"]


def decoder_file_name(name: str, digest: bytes) -> str:
    """``NAME-DIGEST.pt``: how the weights of decoder ``digest`` of model ``name`` are filed."""
    return f"{name}-{digest.hex()}.pt"


def find_decoder(name: str, digest: bytes) -> LoadedModel | None:
    """The model that decodes streams of model ``name`` with decoder ``digest``, or None.

    The shipped model of that name when its decoder is ``digest``; else the weights file
    ``decoder_file_name(name, digest)`` in the first folder of :func:`weights_search_path`
    that has one (its digest is checked by the caller, like any other weights). ``name`` must
    be a registry name (letters, digits, ``_``, ``-``), never a path.
    """
    if not MODEL_NAME.fullmatch(name) or len(digest) != 8:
        raise ModelNotFoundError(f"{name!r} is not a model name")
    if name in available_models():
        shipped = load_model(name)
        if shipped.digest == digest:
            return shipped
    for folder in weights_search_path():
        path = folder / decoder_file_name(name, digest)
        if path.is_file():
            return load_model(path)
    return None
