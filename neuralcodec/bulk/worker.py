"""The work itself: bytes of one file in, bytes of its output out, with a model loaded once.

Engines run a :class:`Worker` per process (local) or per actor (Ray) and send it
:class:`Item` s; a worker never touches the file system, so every engine gives the same bytes
for the same settings on the same kind of device, and a killed worker leaves nothing behind.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field, replace
from typing import Any

# Failure kinds, each mapped to the CLI's exit code by the caller.
USAGE, BAD_INPUT, FAILURE, SETUP = "usage", "bad-input", "failure", "setup"


@dataclass(frozen=True)
class JobSpec:
    """How every file of a job is coded. ``settings()`` (what the manifest compares) leaves out
    where and how fast it runs: device and threads."""

    command: str  # "compress" | "decompress"
    model: str | None = None  # name or weights file; decompress: None = the one each file needs
    quality: float = 75.0
    target: dict[str, float] = field(default_factory=dict)  # target_size | target_psnr | target_ms_ssim
    effort: int | None = None
    strip: bool = False
    max_pixels: int | None = None
    device: str = "auto"
    threads: int | None = None

    def settings(self) -> dict[str, Any]:
        keys = ["model", "strip", "max_pixels"]
        if self.command == "compress":
            keys += ["quality", "target", "effort"] if not self.target else ["target", "effort"]
        return {"command": self.command, **{k: getattr(self, k) for k in keys}}

    def on(self, device: str, threads: int | None) -> JobSpec:
        """The same job on another device / thread count."""
        return replace(self, device=device, threads=threads)


@dataclass(frozen=True)
class Item:
    """One file's bytes, named by its relative path (for messages)."""

    name: str
    data: bytes


@dataclass(frozen=True)
class Outcome:
    """The output's bytes and the image size, or a failure kind and a one-line reason."""

    name: str
    data: bytes | None = None
    width: int = 0
    height: int = 0
    kind: str = ""
    reason: str = ""


class _NamedBytes(io.BytesIO):
    """Bytes that error messages name like the file they came from."""

    def __init__(self, data: bytes, name: str) -> None:
        super().__init__(data)
        self._label = name

    def __str__(self) -> str:
        return self._label


class Worker:
    """Loads the model once, then codes items one after another. A model that does not load
    makes every item fail with kind SETUP (the job stops at the first)."""

    def __init__(self, spec: JobSpec) -> None:
        self.spec = spec
        self.model: Any = None
        self.error = ""
        try:
            self._setup()
        except Exception as exc:
            from neuralcodec.errors import one_line

            self.error = one_line(exc)

    def _setup(self) -> None:
        import warnings

        from PIL import Image

        from neuralcodec.runtime import torch_available

        if self.spec.max_pixels is not None and self.spec.command == "compress":  # as ncodec's --max-pixels
            Image.MAX_IMAGE_PIXELS = self.spec.max_pixels / 2  # type: ignore[assignment]
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        self.model = self.spec.model  # without torch: a name or file, read by the numpy coder per call
        if not torch_available():
            return
        import torch

        from neuralcodec.coding import loaded_model

        if self.spec.threads:
            torch.set_num_threads(self.spec.threads)
        if self.spec.model is not None:
            self.model = loaded_model(self.spec.model)

    def run(self, item: Item) -> Outcome:
        """Code one item; every exception becomes a failed Outcome (never raised)."""
        if self.error:
            return Outcome(item.name, kind=SETUP, reason=self.error)
        from neuralcodec.errors import InvalidInputError, NeuralCodecError, one_line
        from neuralcodec.rate_control import TargetUnreachableError

        try:
            if self.spec.command == "compress":
                return self._compress(item)
            return self._decompress(item)
        except TargetUnreachableError as exc:
            kind, reason = USAGE, one_line(exc)
        except (InvalidInputError, NeuralCodecError, ValueError) as exc:
            kind, reason = BAD_INPUT, one_line(exc)
        except MemoryError:
            kind, reason = FAILURE, "out of memory"
        except Exception as exc:
            kind, reason = FAILURE, f"internal error: {type(exc).__name__}: {one_line(exc)}"
        prefix = f"{item.name}: "
        return Outcome(item.name, kind=kind, reason=reason.removeprefix(prefix))

    def _compress(self, item: Item) -> Outcome:
        from neuralcodec.encoding import compress_with_stats
        from neuralcodec.rate_control import compress_to_target

        spec, source = self.spec, _NamedBytes(item.data, item.name)
        options = {"keep_metadata": not spec.strip, "effort": spec.effort}
        if spec.target:
            found = compress_to_target(source, **spec.target, model=self.model, device=spec.device, **options)
            data, stats = found.data, found.stats
        else:
            data, stats = compress_with_stats(source, spec.quality, self.model, spec.device, **options)
        return Outcome(item.name, data, stats.width, stats.height)

    def _decompress(self, item: Item) -> Outcome:
        from neuralcodec.container import DEFAULT_MAX_PIXELS
        from neuralcodec.decoding import decompress_pixels

        spec = self.spec
        limit = DEFAULT_MAX_PIXELS if spec.max_pixels is None else spec.max_pixels
        pixels = decompress_pixels(item.data, spec.device, self.model, strip=spec.strip, max_pixels=limit)
        out = io.BytesIO()
        pixels.save_png(out)  # as ncodec decompress writes a PNG
        return Outcome(item.name, out.getvalue(), *pixels.size)
