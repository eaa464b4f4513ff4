"""Shipped models: where their weights live, how they load, and which one is default.

Weights are plain tensors saved with torch.save (loaded with ``weights_only=True``), so
inference needs neither CompressAI nor pickle of arbitrary objects.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch

from neuralcodec.container import MODEL_NAME
from neuralcodec.errors import ModelNotFoundError
from neuralcodec.models.loaded import LoadedModel
from neuralcodec.models.registry import DEFAULT_ARCHITECTURE, get_architecture
from neuralcodec.weights_file import (
    DEFAULT_MODEL,
    READABLE_WEIGHTS_FORMATS,
    SHIPPED_WEIGHTS,
    WEIGHTS_PATH_VARIABLE,
    archived_decoder,
    available_models,
    bytes_digest,
    decoder_digest,
    decoder_file_name,
    decodes,
    file_digest,
    resolve_model_path,
    weights_search_path,
)

# Re-exported (torch-free, in weights_file): zoo is where callers look for them.
__all__ = [
    "DEFAULT_MODEL",
    "WEIGHTS_PATH_VARIABLE",
    "available_models",
    "bytes_digest",
    "decoder_digest",
    "decoder_file_name",
    "file_digest",
    "resolve_model_path",
    "weights_search_path",
]

WEIGHTS_DIR = SHIPPED_WEIGHTS  # the shipped models' folder (patch weights_file.SHIPPED_WEIGHTS)
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


def find_decoder(name: str, digest: bytes) -> LoadedModel | None:
    """The model that decodes streams of model ``name`` with decoder ``digest``, or None.

    The shipped model of that name when its decoder is ``digest``; else the weights file
    ``decoder_file_name(name, digest)`` in the first folder of :func:`weights_search_path`
    that has one (its digest is checked by the caller, like any other weights). ``name`` must
    be a registry name (letters, digits, ``_``, ``-``), never a path.
    """
    if name in available_models() and MODEL_NAME.fullmatch(name):
        shipped = load_model(name)
        if decodes(shipped, digest):
            return shipped
    path = archived_decoder(name, digest)
    return None if path is None else load_model(path)
