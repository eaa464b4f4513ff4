"""Weights files without torch: where they are (shipped models, archived decoders), which one
a stream needs, and reading one (``torch.save``'s zip format) into numpy arrays.

Only what weights files hold is accepted, as ``torch.load(weights_only=True)`` does: dicts,
lists, tuples, numbers, strings and tensors of the storage types below. Anything else in the
pickle (another class, a function) is refused with InvalidModelError, never imported or run.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from neuralcodec.container import MODEL_NAME
from neuralcodec.errors import (
    InvalidModelError,
    ModelMismatchError,
    ModelNotFoundError,
    NeuralCodecError,
    one_line,
)

SHIPPED_WEIGHTS = Path(__file__).parent / "weights"  # the models inside the package
DEFAULT_MODEL = "msssim"
READABLE_WEIGHTS_FORMATS = (1, 2)  # format 1: z offsets all 0 (ẑ on the integers)

_STORAGE_DTYPES = {
    "DoubleStorage": np.dtype("<f8"),
    "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype("<u2"),  # widened to float32 below
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class _StorageType:
    def __init__(self, name: str) -> None:
        self.name = name
        self.dtype = _STORAGE_DTYPES[name]


def _rebuild_tensor(storage: np.ndarray, offset: int, size, stride, *_ignored) -> np.ndarray:
    """A tensor as a numpy array (a copy), from its storage, offset, shape and strides."""
    shape, strides = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if any(s < 0 for s in shape + strides) or offset < 0:
        raise InvalidModelError("weights file: negative tensor size or stride")
    if shape and min(shape) > 0 and offset + sum((n - 1) * s for n, s in zip(shape, strides)) >= len(storage):
        raise InvalidModelError("weights file: a tensor reaches past its storage")
    items = np.lib.stride_tricks.as_strided(
        storage[offset:], shape, tuple(s * storage.itemsize for s in strides), writeable=False
    )
    return np.array(items)


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, read_storage: Callable[[str], bytes], prefix: str) -> None:
        super().__init__(io.BytesIO(data))
        self.read_storage, self.prefix = read_storage, prefix

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return dict
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise InvalidModelError(f"weights file: holds {module}.{name}, which a weights file never does")

    def persistent_load(self, pid: Any) -> np.ndarray:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise InvalidModelError("weights file: unknown persistent reference")
        _, storage_type, key, _location, count = pid
        if not isinstance(storage_type, _StorageType):
            raise InvalidModelError("weights file: unknown storage type")
        try:
            raw = self.read_storage(f"{self.prefix}data/{key}")
        except KeyError:
            raise InvalidModelError(f"weights file: storage {key!r} is missing") from None
        dtype = storage_type.dtype
        if len(raw) < int(count) * dtype.itemsize:
            raise InvalidModelError(f"weights file: storage {key!r} is shorter than announced")
        storage = np.frombuffer(raw, dtype=dtype, count=int(count))
        if storage_type.name == "BFloat16Storage":
            storage = (storage.astype(np.uint32) << 16).view(np.float32)
        return storage


def available_models() -> list[str]:
    """Names of the models shipped inside the package."""
    return sorted(p.stem for p in SHIPPED_WEIGHTS.glob("*.pt"))


def resolve_model_path(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.suffix == ".pt" and path.is_file():
        return path
    shipped = SHIPPED_WEIGHTS / f"{name_or_path}.pt"
    if shipped.is_file():
        return shipped
    raise ModelNotFoundError(
        f"model {str(name_or_path)!r} not found; shipped models: {', '.join(available_models()) or 'none'}"
    )


WEIGHTS_PATH_VARIABLE = "NEURALCODEC_WEIGHTS"  # folders (os.pathsep-separated) of earlier decoders


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


def archived_decoder(name: str, digest: bytes) -> Path | None:
    """The weights file ``decoder_file_name(name, digest)`` in the first folder of
    :func:`weights_search_path` that has one, or None. ``name`` must be a model name
    (letters, digits, ``_``, ``-``), never a path."""
    if not MODEL_NAME.fullmatch(name) or len(digest) != 8:
        raise ModelNotFoundError(f"{name!r} is not a model name")
    for folder in weights_search_path():
        path = folder / decoder_file_name(name, digest)
        if path.is_file():
            return path
    return None


def missing_decoder_message(name: str, digest: bytes, installed: bytes | None) -> str:
    """Why a file of model ``name``, decoder ``digest``, cannot be decoded here and how to fix
    it (``installed``: the shipped model's decoder, None when no such model is shipped)."""
    have = f"installed {name!r} has decoder {installed.hex()}" if installed else f"{name!r} is not installed"
    folders = os.pathsep.join(str(p) for p in weights_search_path()) or "(none)"
    return (
        f"file needs model {name!r} with decoder {digest.hex()}; {have}: put that decoder's "
        f"weights file {decoder_file_name(name, digest)} into {folders} "
        f"(${WEIGHTS_PATH_VARIABLE}), or name it with --model"
    )


class Decoder(Protocol):
    """A loaded model as decoding sees it (torch's LoadedModel, the numpy decoder's model):
    ``digest`` names its decoder; ``also_decodes`` lists other decoders whose files it decodes
    exactly (a checkerboard model: the hyperprior it extends)."""

    name: str
    digest: bytes
    also_decodes: tuple[bytes, ...]


ALSO_DECODES = "also_decodes"  # weights entry: 16-hex-digit decoder digests this file decodes too


def also_decodes(state: dict, path: Path | str) -> tuple[bytes, ...]:
    """The ``also_decodes`` entry of a weights file as digests (InvalidModelError if malformed)."""
    entries = state.get(ALSO_DECODES, [])
    try:
        digests = tuple(bytes.fromhex(e) for e in entries)
    except (TypeError, ValueError):
        digests = (b"",)
    if any(len(d) != 8 for d in digests):
        raise InvalidModelError(f"{path}: {ALSO_DECODES} must list 16-hex-digit decoder digests")
    return digests


def decodes(model: Decoder, digest: bytes) -> bool:
    """Whether ``model`` decodes files whose header names decoder ``digest``."""
    return digest == model.digest or digest in model.also_decodes


D = TypeVar("D", bound=Decoder)


def load_reporting(load: Callable[[Any], D], model: str | Path) -> D:
    """``load(model)``; a weights file that does not load (damaged, truncated, not a
    neuralcodec model) raises InvalidModelError with a one-line message instead of torch's,
    pickle's or a missing key's own."""
    try:
        return load(model)
    except (NeuralCodecError, MemoryError):
        raise
    except Exception as exc:
        text = one_line(exc)
        reason = type(exc).__name__ + (f": {text}" if text and len(text) <= 80 else "")
        raise InvalidModelError(f"{model}: not a usable neuralcodec weights file ({reason})") from None


def decoder_for(name: str, digest: bytes, model: Any, load: Callable[[Any], D]) -> D:
    """The model that decodes a stream of model ``name`` with decoder ``digest``.

    ``model`` (the caller's choice, loaded with ``load``) when given; else the shipped model of
    that name when its decoder is ``digest``, else that decoder's archived weights file
    (:func:`archived_decoder`), so files written before a decoder was retrained still decode
    once its weights are there. ModelMismatchError, naming what to install, otherwise.
    """
    if model is not None:  # an unknown or damaged one is reported by ``load`` as such
        loaded = load(model)
    else:
        installed = load(name) if MODEL_NAME.fullmatch(name) and name in available_models() else None
        if installed is not None and decodes(installed, digest):
            return installed
        path = archived_decoder(name, digest)
        if path is None:
            raise ModelMismatchError(
                missing_decoder_message(name, digest, installed.digest if installed else None)
            )
        loaded = load(path)
    if not decodes(loaded, digest):
        raise ModelMismatchError(
            f"file was made with model {name!r} decoder {digest.hex()}; "
            f"the weights given ({loaded.name!r}) have decoder {loaded.digest.hex()}"
        )
    return loaded


def read_weights(source: str | Path | bytes) -> dict:
    """The contents of a weights file, tensors as numpy arrays (float16 stays float16; bfloat16
    becomes float32). Raises InvalidModelError for anything that is not such a file."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
    except (OSError, zipfile.BadZipFile) as exc:
        raise InvalidModelError(f"not a weights file ({type(exc).__name__}: {exc})") from None
    with archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise InvalidModelError("not a weights file (no data.pkl)")
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = (
            archive.read(f"{prefix}byteorder") if f"{prefix}byteorder" in archive.namelist() else b"little"
        )
        if byteorder != b"little":
            raise InvalidModelError("weights file: big-endian tensors are not supported")
        try:
            state = _Unpickler(archive.read(pickles[0]), _storage_reader(archive, prefix), prefix).load()
        except InvalidModelError:
            raise
        except Exception as exc:
            raise InvalidModelError(f"weights file does not load ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict):
        raise InvalidModelError("weights file: the top level is not a dict")
    return state


MAX_STORAGE_BYTES = 1 << 30  # what a weights file's tensors may declare, together


def _storage_reader(archive: zipfile.ZipFile, prefix: str) -> Callable[[str], bytes]:
    """Member name -> bytes for the archive's tensor storages (KeyError for a missing one).
    Stored members are read as asked; deflated ones are inflated up front on two threads (zlib
    releases the GIL: about half the time). InvalidModelError when the storages declare more
    than MAX_STORAGE_BYTES (before any is read)."""
    members = [m for m in archive.infolist() if m.filename.startswith(f"{prefix}data/")]
    if sum(m.file_size for m in members) > MAX_STORAGE_BYTES:
        raise InvalidModelError(f"weights file: its tensors declare more than {MAX_STORAGE_BYTES} bytes")
    if all(m.compress_type == zipfile.ZIP_STORED for m in members):
        return archive.read
    members.sort(key=lambda m: m.compress_size, reverse=True)  # the largest first: even shares
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip((m.filename for m in members), pool.map(archive.read, members))).__getitem__


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
