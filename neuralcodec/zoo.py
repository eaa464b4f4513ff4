"""Shipped models: where their weights live, how they load, and which one is default.

Weights are plain tensors saved with torch.save (loaded with ``weights_only=True``), so
inference needs neither CompressAI nor pickle of arbitrary objects.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

import torch

from neuralcodec.container import MODEL_NAME
from neuralcodec.errors import InvalidModelError, ModelNotFoundError
from neuralcodec.models.loaded import LoadedModel
from neuralcodec.models.registry import DEFAULT_ARCHITECTURE, get_architecture

WEIGHTS_DIR = Path(__file__).parent / "weights"
WEIGHTS_PATH_VARIABLE = "NEURALCODEC_WEIGHTS"  # folders (os.pathsep-separated) of earlier decoders
DEFAULT_MODEL = "msssim"
WEIGHTS_FORMAT = 2  # what export writes; 2 added the z offsets (ẑ on a grid centred on the z medians)
READABLE_WEIGHTS_FORMATS = (1, 2)  # format 1: z offsets all 0 (ẑ on the integers)
Z_OFFSET_BITS = 8  # z offsets are stored as integers in units of 2^-8


def available_models() -> list[str]:
    """Names of the models shipped inside the package."""
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.pt"))


def resolve_model_path(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.suffix == ".pt" and path.is_file():
        return path
    shipped = WEIGHTS_DIR / f"{name_or_path}.pt"
    if shipped.is_file():
        return shipped
    raise ModelNotFoundError(
        f"model {str(name_or_path)!r} not found; shipped models: {', '.join(available_models()) or 'none'}"
    )


def file_digest(path: Path) -> bytes:
    return bytes_digest(path.read_bytes())


def bytes_digest(data: bytes) -> bytes:
    """The first 8 bytes of the SHA-256 of ``data`` (a weights file's contents)."""
    return hashlib.sha256(data).digest()[:8]


def decoder_digest(state: dict, path: Path, data: bytes | None = None) -> bytes:
    """The 8 bytes that name the decoder side of a weights file, written into every stream.

    A file's own ``decoder_digest`` entry (16 hex digits) when it has one: weights whose
    encoder was retrained against an unchanged decoder carry their parent's identity, so
    files written with either decode with both. Otherwise the first 8 bytes of the SHA-256
    of the weights file: of ``data``, its bytes, when given (e.g. a blob from git history;
    ``path`` then only names it in errors), else of the file at ``path``.
    """
    stored = state.get("decoder_digest")
    if stored is None:
        return file_digest(path) if data is None else bytes_digest(data)
    try:
        digest = bytes.fromhex(stored) if isinstance(stored, str) else b""
    except ValueError:
        digest = b""
    if len(digest) != 8:
        raise InvalidModelError(f"{path}: decoder_digest must be 16 hex digits, got {stored!r:.40}")
    return digest


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
