"""The exceptions neuralcodec raises (the CLI maps them to exit codes) and their one-line form."""

from __future__ import annotations


class NeuralCodecError(Exception):
    """Base class: anything the user can fix or should be told about in one line."""


class InvalidInputError(NeuralCodecError, ValueError):
    """The input (image, file, stream) is unusable: unreadable, corrupt, truncated, absurd."""


class ModelMismatchError(InvalidInputError):
    """The stream was made with weights this installation does not have."""


class ModelNotFoundError(NeuralCodecError, LookupError):
    """No shipped model and no file of that name."""


class InvalidModelError(ModelNotFoundError):
    """A weights file that exists but is no usable neuralcodec model (damaged, truncated, foreign)."""


class DeviceUnavailableError(NeuralCodecError, ValueError):
    """The requested compute device does not exist here."""


class ConfigurationError(NeuralCodecError, ValueError):
    """An environment setting the codec reads has a value it does not know."""


def one_line(text: object) -> str:
    """A message as one line: texts from other libraries (torch, pickle, Pillow) may span several."""
    return " ".join(str(text).split())
