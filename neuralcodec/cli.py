"""``ncodec``: compress, decompress and inspect ``.nc`` files.

Exit codes: 0 success; 1 usage error (bad arguments, refused overwrite, a rate target out of
the model's reach); 2 bad or corrupt input (unreadable image, damaged or foreign .nc file,
wrong model); 3 any other failure (e.g. the disk is full). Errors are one line on stderr,
never a traceback.

Start-up: this module imports only the standard library and the torch-free
neuralcodec.effort_levels at the top. ``--help``, ``--version``, ``info`` and argument errors
never import torch (tests/test_cli.py checks it); nor does decompress, unless asked for the
torch backend (``--backend torch``, ``--device cuda``); compress imports it when it starts working,
where it is installed (else it encodes at effort 0 with numpy). torch missing where a command
needs it is a usage error (exit 1), said before any file is read.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from neuralcodec.effort_levels import DEFAULT_EFFORT, DEFAULT_EFFORTS, MAX_EFFORT

EXIT_OK, EXIT_USAGE, EXIT_BAD_INPUT, EXIT_FAILURE = 0, 1, 2, 3
STDIO = "-"  # as an input: standard input; as an output: standard output
MAX_THREADS = 1024  # --threads: more is a typo, and torch's own parser overflows past 2^63
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?|mps|xpu(:\d+)?")
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([kKmM]i?[bB]?|[bB])?\s*")
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 10**6, "mb": 10**6, "mib": 2**20}

Target = Path | str  # a file, or STDIO


class UsageError(Exception):
    """Bad command line: exit code 1."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 by default; usage is 1 here
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


class _StdinBytes(io.BytesIO):
    """Standard input's bytes, named like a file in error messages."""

    def __str__(self) -> str:
        return "<stdin>"


def _say(message: str) -> None:
    """One line on stderr. A closed or broken stderr must not turn the exit code into 1."""
    from neuralcodec.errors import one_line

    if sys.stderr is None:
        return
    try:
        print(one_line(message), file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings (e.g. Pillow's about a damaged EXIF block) as one ``ncodec: warning:`` line."""
    _say(f"ncodec: warning: {message}")


def _printable(text: str) -> str:
    """Text from a file, safe for a terminal: control characters (escape sequences) are escaped."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _silence_stdout() -> None:
    """Point standard output at /dev/null, so that Python's final flush into a closed pipe
    prints no 'Exception ignored' message."""
    import os

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _name(target: Target, output: bool = False) -> str:
    if isinstance(target, str):
        return "<stdout>" if output else "<stdin>"
    return str(target)


def _progress(items: list, label: str, enabled: bool) -> Iterator:
    """A minimal stderr progress bar for batches (no extra dependency)."""
    total = len(items)
    for i, item in enumerate(items):
        if enabled:
            filled = int(30 * i / total)
            sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (30 - filled)}] {i}/{total}")
            sys.stderr.flush()
        yield item
    if enabled:
        sys.stderr.write(f"\r{label} [{'#' * 30}] {total}/{total}\n")


# ----------------------------------------------------------------------------- arguments


def _ranged(convert: Callable, ok: Callable, expected: str, bounds: str) -> Callable:
    """An argparse type: ``convert(text)``, refused with a one-line message unless ``ok``."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {text}")
        return value

    return parse


_positive_int = _ranged(int, lambda v: v >= 1, "a whole number", "at least 1")
_threads = _ranged(int, lambda v: 1 <= v <= MAX_THREADS, "a whole number", f"within 1..{MAX_THREADS}")
_effort = _ranged(
    int, lambda v: 0 <= v <= MAX_EFFORT, f"a whole number 0..{MAX_EFFORT}", f"within 0..{MAX_EFFORT}"
)


def parse_size(text: str) -> int:
    """Bytes from ``12345``, ``100k``/``100kB`` (×1000), ``100KiB`` (×1024), ``1.5M``/``1.5MB``, ``2MiB``."""
    match = _SIZE.fullmatch(text)
    if not match:
        raise argparse.ArgumentTypeError(
            f"expected a size in bytes such as 50000, 100k or 2MiB, got {text!r}"
        )
    value = float(match.group(1)) * _UNITS[(match.group(2) or "").lower()]
    if value < 1:
        raise argparse.ArgumentTypeError(f"a file size must be at least 1 byte, got {text!r}")
    return int(value)


_psnr = _ranged(float, lambda v: 0 < v < float("inf"), "dB", "a positive number of dB")
_ms_ssim = _ranged(float, lambda v: 0 < v < 1, "a number between 0 and 1", "between 0 and 1 (exclusive)")


def _image_format(suffix: str) -> str | None:
    """The Pillow format of an image extension (lower case, with the dot), or None; .nc is not
    an image output. The formats Pillow preloads (BMP, GIF, JPEG, PPM, PNG) answer without
    importing its other plugins, which would add about 30 ms to every decompress."""
    from PIL import Image

    if suffix == ".nc":
        return None
    Image.preinit()
    return Image.EXTENSION.get(suffix) or Image.registered_extensions().get(suffix)


def _is_nc_file(path: Path) -> bool:
    from neuralcodec.container import MAGIC

    try:
        with open(path, "rb") as f:
            return f.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def _is_image_file(path: Path) -> bool:
    from PIL import Image

    try:
        with Image.open(path):
            return True
    except Exception:
        return False


def _split_positionals(
    command: str, positionals: list[str], output: str | None
) -> tuple[list[Target], Target | None]:
    """Inputs and output from ``IN... [-o OUT]`` or ``IN OUT`` (refusing the ambiguous forms).

    The second of exactly two arguments is the output when it is clearly one: ``-`` (standard
    output), a ``.nc`` name (compress) or a name with an image extension Pillow knows
    (decompress). An output-like name anywhere else is refused rather than guessed at.
    """

    def output_like(arg: str) -> bool:
        suffix = Path(arg).suffix.lower()
        return suffix == ".nc" if command == "compress" else _image_format(suffix) is not None

    kind = "an image" if command == "compress" else "a .nc file"
    if len(positionals) == 2 and (positionals[1] == STDIO or output_like(positionals[1])):
        first, second = positionals
        if output is not None:
            raise UsageError(f"the output is given twice ({second} and -o {output}); give one")
        if first != STDIO and output_like(first):
            raise UsageError(f"{first} looks like an output, not {kind} to {command}; the order is IN OUT")
        if second != STDIO:
            candidate = Path(second)
            if candidate.is_file() and (
                _is_nc_file(candidate)
                if command == "decompress"
                else not _is_nc_file(candidate) and _is_image_file(candidate)
            ):
                raise UsageError(
                    f"{second} exists and is {kind}, so it could be a second input as well as the "
                    f"output; name the output with -o"
                )
        return [_target(first)], _target(second)
    first = positionals[0]
    if len(positionals) == 2 and first != STDIO and output_like(first):
        raise UsageError(f"{first} looks like an output, not {kind} to {command}; the order is IN OUT")
    for arg in positionals:
        if len(positionals) > 1 and arg != STDIO and output_like(arg):
            example = "IN.png OUT.nc" if command == "compress" else "IN.nc OUT.png"
            raise UsageError(
                f"{arg} looks like an output, not {kind} to {command}: name one output after one input "
                f"(ncodec {command} {example}) or use -o DIR for several inputs"
            )
    if STDIO in positionals and len(positionals) > 1:
        raise UsageError("- (standard input) must be the only input")
    return [_target(p) for p in positionals], None if output is None else _target(output)


def _target(arg: str) -> Target:
    return STDIO if arg == STDIO else Path(arg)


def _outputs(inputs: list[Target], output: Target | None, suffix: str) -> list[Target]:
    """Where each input goes: OUT / -o FILE (one input), -o DIR, -o - (stdout), or next to the input."""
    if output == STDIO:
        if len(inputs) != 1:
            raise UsageError("only one input can go to standard output")
        return [STDIO]
    if inputs == [STDIO]:
        if output is None:
            return [STDIO]
        assert isinstance(output, Path)
        if output.is_dir() or not output.suffix:
            raise UsageError("standard input has no name: give an output file name, or - for standard output")
        return [output]
    assert output is None or isinstance(output, Path)
    paths = [p for p in inputs if isinstance(p, Path)]
    if output is not None and len(paths) == 1 and not output.is_dir() and output.suffix:
        return [output]
    if output is not None and output.exists() and not output.is_dir():
        if len(paths) == 1:
            raise UsageError(
                f"{output} is neither a folder nor an output file name with an extension; "
                "use -o FILE.ext, -o DIR or -o - (standard output)"
            )
        raise UsageError(f"{output}: with several inputs, -o must be a directory")
    folder = output
    outs = [(folder or p.parent) / (p.stem + suffix) for p in paths]
    if len(set(o.resolve() for o in outs)) != len(outs):
        raise UsageError("two inputs would write the same output name; use separate -o folders")
    return list(outs)


def _check_device(device: str) -> None:
    if not _DEVICE.fullmatch(device):
        raise UsageError(f"unknown device {device!r}; use auto, cpu or cuda")


def _check_stdio(inputs: list[Target], outputs: list[Target]) -> None:
    if STDIO in inputs and sys.stdin is None:
        raise UsageError("standard input is closed; name a file")
    if STDIO in outputs and sys.stdout is None:
        raise UsageError("standard output is closed; name an output file")
    if STDIO in inputs and sys.stdin.isatty():
        raise UsageError("refusing to read data from a terminal; redirect standard input or name a file")
    if STDIO in outputs and sys.stdout.isatty():
        raise UsageError("refusing to write binary data to a terminal; redirect standard output or use -o")


# ----------------------------------------------------------------------------- running


# An image on standard input is read whole before Pillow sees it (Pillow needs to seek). At most
# this many bytes per pixel of the pixel limit, plus room for metadata, are read: 16-bit RGBA,
# uncompressed, is 8 bytes per pixel.
_IMAGE_BYTES_PER_PIXEL = 8
_IMAGE_METADATA_BYTES = 64 << 20


def image_input_limit(max_pixels: int | None) -> int:
    """The most bytes an image input within ``max_pixels`` (None: Pillow's own limit, which it
    enforces at twice ``Image.MAX_IMAGE_PIXELS``) and the format's limit can need."""
    from PIL import Image

    from neuralcodec.container import MAX_PIXELS

    pillow = 2 * int(Image.MAX_IMAGE_PIXELS) if Image.MAX_IMAGE_PIXELS else MAX_PIXELS
    pixels = min(MAX_PIXELS, max_pixels if max_pixels is not None else pillow)
    return _IMAGE_BYTES_PER_PIXEL * pixels + _IMAGE_METADATA_BYTES


def _read_bounded(stream, limit: int) -> bytes:
    """All of ``stream``, refused (InvalidInputError) once it holds more than ``limit`` bytes."""
    from neuralcodec.errors import InvalidInputError

    data = bytearray()
    while block := stream.read(min(1 << 20, limit + 1 - len(data))):
        data += block
        if len(data) > limit:
            raise InvalidInputError(
                f"more than {limit} bytes, more than any image within the pixel limit needs "
                "(raise it with --max-pixels if you trust this input)"
            )
    return bytes(data)


def _read(source: Target, nc: bool = False, limit: int | None = None) -> bytes:
    """The input's bytes; for a ``.nc`` input (``nc``) only as many as its header announces, so
    that a device or an endless pipe (/dev/zero) is refused instead of read into memory. An
    image on standard input is refused past ``limit`` bytes (``image_input_limit``), which
    its caller must give."""
    from neuralcodec.container import read_stream
    from neuralcodec.errors import InvalidInputError

    if source == STDIO:
        if sys.stdin is None:
            raise InvalidInputError("standard input is closed")
        if nc:
            return read_stream(sys.stdin.buffer)
        assert limit is not None, "an image on standard input needs a byte limit"
        return _read_bounded(sys.stdin.buffer, limit)
    assert isinstance(source, Path)
    try:
        if not nc:
            return source.read_bytes()
        with source.open("rb") as f:
            return read_stream(f)
    except FileNotFoundError:
        raise InvalidInputError("no such file") from None
    except IsADirectoryError:
        raise InvalidInputError("is a directory") from None
    except OSError as exc:  # unreadable (permissions, I/O error): a bad input, as for images
        raise InvalidInputError(f"cannot read ({exc.strerror or exc})") from None


def _write(dst: Target, write: Callable[[io.BytesIO | Path], None], force: bool) -> None:
    """Standard output, or a file written safely (neuralcodec.fileio)."""
    if dst == STDIO:
        buf = io.BytesIO()
        write(buf)
        sys.stdout.buffer.write(buf.getvalue())
        sys.stdout.buffer.flush()
        return
    from neuralcodec.fileio import OutputExistsError, write_atomic

    assert isinstance(dst, Path)
    try:
        write_atomic(dst, write, force=force)
    except OutputExistsError:
        raise
    except OSError as exc:  # the folder or the disk (exit 3): name the output, not only the input
        if exc.errno is None:
            raise
        raise OSError(exc.errno, f"cannot write {dst}: {exc.strerror}") from None


def _run_batch(
    inputs: list[Target],
    outputs: list[Target],
    args: argparse.Namespace,
    one: Callable[[Target, Target], str | None],
) -> int:
    """Run ``one`` per input; every failure is one line on stderr, and the worst decides the exit code."""
    from neuralcodec.errors import InvalidInputError, NeuralCodecError
    from neuralcodec.fileio import OutputExistsError, check_output
    from neuralcodec.rate_control import TargetUnreachableError

    failures: list[str] = []
    code = EXIT_OK
    show = len(inputs) > 1 and sys.stderr.isatty() and not args.verbose
    messages = sys.stderr if STDIO in outputs else sys.stdout  # never mix messages into the data
    paths = [p for p in inputs if isinstance(p, Path)]
    try:
        for src, dst in _progress(list(zip(inputs, outputs)), args.command, show):
            name = _name(src)
            try:
                if isinstance(dst, Path):
                    check_output(dst, paths, args.force)
                message = one(src, dst)
                if message and args.verbose:
                    print(message, file=messages)
            except UsageError:
                raise
            except (OutputExistsError, TargetUnreachableError) as exc:
                failures.append(str(exc) if isinstance(exc, OutputExistsError) else f"{name}: {exc}")
                code = max(code, EXIT_USAGE)
            except (InvalidInputError, NeuralCodecError, ValueError) as exc:  # bad input, however raised
                failures.append(str(exc) if str(exc).startswith(name) else f"{name}: {exc}")
                code = max(code, EXIT_BAD_INPUT)
            except MemoryError:
                failures.append(f"{name}: out of memory")
                code = EXIT_FAILURE
            except OSError as exc:
                failures.append(f"{name}: {exc.strerror or exc}")
                code = EXIT_FAILURE
            except Exception as exc:  # a bug: still one line, and the batch's other failures are kept
                failures.append(f"{name}: internal error: {type(exc).__name__}: {exc}")
                code = EXIT_FAILURE
            if failures and not args.keep_going:
                break
    finally:  # also on Ctrl-C: what failed so far is reported
        for failure in failures:
            _say(f"ncodec: {failure}")
        if failures and len(inputs) > 1:
            _say(f"ncodec: {len(failures)} of {len(inputs)} files failed")
    return code


def _set_threads(threads: int | None, torch_backend: bool = True) -> None:
    """--threads N: the BLAS's threads (read when numpy is first imported, which the commands
    do after this) and, where torch runs, torch's intra-op threads (default: one per core)."""
    if threads is None:
        return
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(threads)
    if torch_backend:
        import torch

        torch.set_num_threads(threads)


def _effort_progress(name: str, effort: int | None, enabled: bool) -> Callable[[int, int], None] | None:
    if not enabled or effort == 0:
        return None
    label = "refining" if effort is None else f"effort {effort}"

    live = sys.stderr.isatty()  # a log gets one line per image, a terminal a running count

    def report(done: int, total: int) -> None:
        if live or done >= total:
            sys.stderr.write(f"{chr(13) if live else ''}{name}: {label}: {done}/{total}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return report


def cmd_compress(args: argparse.Namespace) -> int:
    if not 0 <= args.quality <= 100:
        raise UsageError(f"-q must be within 0..100, got {args.quality}")
    target = {"target_size": args.size, "target_psnr": args.psnr, "target_ms_ssim": args.ms_ssim}
    target = {k: v for k, v in target.items() if v is not None}
    from neuralcodec.runtime import TorchRequiredError, torch_available

    tree = _tree_mode(args)
    if not tree:  # (tree workers set their own threads)
        _set_threads(args.threads, torch_backend=torch_available())  # before numpy is imported
    from neuralcodec.encoding import check_encoder, compress_with_stats

    try:
        check_encoder(args.device, args.effort, bool(target))  # without torch: effort 0 only
    except TorchRequiredError as exc:
        raise UsageError(str(exc)) from None
    if tree:
        return _cmd_tree(args)
    inputs, output = _split_positionals("compress", args.inputs, args.output)
    outputs = _outputs(inputs, output, ".nc")
    _check_stdio(inputs, outputs)
    _limit_pillow(args.max_pixels)
    input_limit = image_input_limit(args.max_pixels)

    def one(src: Target, dst: Target) -> str:
        start = time.perf_counter()
        source = _StdinBytes(_read(src, limit=input_limit)) if src == STDIO else src
        progress = _effort_progress(_name(src), args.effort, args.verbose)
        chosen = ""
        if target:
            from neuralcodec.rate_control import compress_to_target

            found = compress_to_target(
                source,
                **target,
                model=args.model,
                device=args.device,
                keep_metadata=not args.strip,
                effort=args.effort,
                progress=progress,
            )
            data, stats = found.data, found.stats
            if args.size is not None:
                asked = f"--size {args.size}"
            elif args.psnr is not None:
                asked = f"--psnr {args.psnr:g}: PSNR {found.value:.2f} dB"
            else:
                asked = f"--ms-ssim {args.ms_ssim:g}: MS-SSIM {found.value:.4f}"
            chosen = f"; quality {found.quality:g} chosen in {found.passes} passes ({asked})"
        else:
            data, stats = compress_with_stats(
                source,
                args.quality,
                args.model,
                args.device,
                keep_metadata=not args.strip,
                effort=args.effort,
                progress=progress,
            )
        _write(dst, lambda f: f.write(data) if isinstance(f, io.BytesIO) else f.write_bytes(data), args.force)
        seconds = time.perf_counter() - start
        notes = "".join(f"\n  note: {n}" for n in stats.notes)
        excess = (stats.actual_bits / max(stats.estimated_bits, 1) - 1) * 100
        return (
            f"{_name(src)} -> {_name(dst, True)}: {stats.width}x{stats.height}, {stats.file_bytes} bytes, "
            f"{stats.bpp:.4f} bpp, {seconds:.2f} s; coded bits {stats.actual_bits} vs estimated "
            f"{stats.estimated_bits:.0f} ({excess:+.2f}%){chosen}{notes}"
        )

    return _run_batch(inputs, outputs, args, one)


def _limit_pillow(max_pixels: int | None) -> None:
    """--max-pixels N: Pillow refuses input images above N pixels (its error is at twice its setting).

    Without it Pillow's own guard applies (an error above 2 x 89,478,485 pixels); its warning
    is silenced either way: the limit is the error.
    """
    import warnings

    from PIL import Image

    if max_pixels is not None:
        Image.MAX_IMAGE_PIXELS = max_pixels // 2 if max_pixels % 2 == 0 else max_pixels / 2  # type: ignore
    warnings.simplefilter("ignore", Image.DecompressionBombWarning)


def cmd_decompress(args: argparse.Namespace) -> int:
    from neuralcodec.container import MAX_PIXELS

    if args.max_pixels is not None and args.max_pixels > MAX_PIXELS:
        raise UsageError(f"--max-pixels can be at most the format's limit, {MAX_PIXELS}")
    backend = args.backend or ("numpy" if args.device in ("auto", "cpu") else "torch")
    from neuralcodec.decoding import choose_backend
    from neuralcodec.errors import DeviceUnavailableError
    from neuralcodec.runtime import TorchRequiredError

    try:
        choose_backend(backend, args.device)  # before any file is read or written
    except (TorchRequiredError, DeviceUnavailableError) as exc:
        raise UsageError(str(exc)) from None
    if _tree_mode(args):
        return _cmd_tree(args)
    inputs, output = _split_positionals("decompress", args.inputs, args.output)
    outputs = _outputs(inputs, output, ".png")
    unknown = [o for o in outputs if isinstance(o, Path) and _image_format(o.suffix.lower()) is None]
    if unknown:
        raise UsageError(f"{unknown[0]}: unknown image format for extension {unknown[0].suffix!r}")
    from PIL import Image

    for o in outputs:  # formats Pillow reads but cannot write (.psd, .fits, ...): refuse before decoding
        fmt = _image_format(o.suffix.lower()) if isinstance(o, Path) else None
        if fmt is not None and fmt not in Image.SAVE:
            raise UsageError(f"{o}: Pillow cannot write {fmt} images; pick another extension")
    _check_stdio(inputs, outputs)
    _set_threads(args.threads, torch_backend=backend == "torch")

    def one(src: Target, dst: Target) -> str:
        from neuralcodec.container import DEFAULT_MAX_PIXELS, unpack

        start = time.perf_counter()
        data = _read(src, nc=True)
        unpack(data)  # a damaged or foreign file fails here, before a model is loaded

        from neuralcodec.decoding import decompress_pixels

        limit = DEFAULT_MAX_PIXELS if args.max_pixels is None else args.max_pixels
        pixels = decompress_pixels(data, args.device, args.model, args.strip, limit, backend)
        fmt = "PNG" if dst == STDIO else _image_format(dst.suffix.lower())  # type: ignore[union-attr]
        from neuralcodec.image_modes import save_options

        # PNG is written from the decoded rows a strip at a time; other formats through Pillow
        image = None if fmt == "PNG" else pixels.image()
        extra = {} if image is None else save_options(image, fmt)  # metadata, and options

        def write_image(out: BinaryIO) -> None:
            if image is None:
                pixels.save_png(out)
            else:
                image.save(out, format=fmt, **extra)

        def save(f: io.BytesIO | Path) -> None:
            try:
                if isinstance(f, Path):
                    with _CheckedFile(io.FileIO(f, "w+")) as out:
                        write_image(out)
                else:
                    write_image(f)
            except MemoryError:
                raise
            except OSError as exc:
                if exc.errno is not None:  # the disk or the folder, not the image: exit 3
                    raise
                raise _unsavable(pixels.pil_mode, fmt, extra, exc) from None
            except Exception as exc:  # Pillow refusing the mode or the file's metadata (a damaged EXIF)
                raise _unsavable(pixels.pil_mode, fmt, extra, exc) from None

        _write(dst, save, args.force)
        width, height = pixels.size
        return (
            f"{_name(src)} -> {_name(dst, True)}: {width}x{height} {pixels.pil_mode}, "
            f"{time.perf_counter() - start:.2f} s"
        )

    return _run_batch(inputs, outputs, args, one)


def _tree_mode(args: argparse.Namespace) -> bool:
    """Whether this is ``-r SRC_DIR -o DST_DIR``; the tree options without -r are a usage error."""
    if not args.recursive:
        given = [
            o for o, v in (("--jobs", args.jobs), ("--engine", args.engine), ("--address", args.address)) if v
        ]
        if given:
            raise UsageError(
                f"{given[0]} works on whole trees: add -r (ncodec {args.command} -r SRC_DIR -o DST_DIR)"
            )
        return False
    if len(args.inputs) != 1 or args.inputs[0] == STDIO or not Path(args.inputs[0]).is_dir():
        raise UsageError(f"-r takes one source folder: ncodec {args.command} -r SRC_DIR -o DST_DIR")
    if args.output is None or args.output == STDIO:
        raise UsageError(f"-r needs an output folder: ncodec {args.command} -r SRC_DIR -o DST_DIR")
    if args.address and args.engine != "ray":
        raise UsageError("--address is for --engine ray")
    return True


def _cmd_tree(args: argparse.Namespace) -> int:
    """``-r``: the whole tree through neuralcodec.bulk; one summary, failures one line each."""
    from neuralcodec.bulk import EngineError, TreeLockedError, TreeUsageError, compress_tree, decompress_tree

    options = {
        "model": args.model,
        "strip": args.strip,
        "max_pixels": args.max_pixels,
        "device": args.device,
        "threads": args.threads,
        "jobs": args.jobs,
        "engine": args.engine or "local",
        "address": args.address,
        "force": args.force,
        "progress": sys.stderr is not None and sys.stderr.isatty(),
    }
    try:
        if args.command == "compress":
            summary = compress_tree(
                args.inputs[0],
                args.output,
                quality=args.quality,
                effort=args.effort,
                target_size=args.size,
                target_psnr=args.psnr,
                target_ms_ssim=args.ms_ssim,
                **options,
            )
        else:
            summary = decompress_tree(args.inputs[0], args.output, **options)
    except (TreeUsageError, TreeLockedError) as exc:
        raise UsageError(str(exc)) from None
    except EngineError as exc:
        _say(f"ncodec: {exc}")
        return EXIT_FAILURE
    head, failures = summary.lines()[:2], summary.lines()[2:]
    print("\n".join(head), file=sys.stdout, flush=True)
    for line in failures:
        _say(f"ncodec: {line}")
    return summary.exit_code


class _CheckedFile(io.BufferedRandom):
    """A file that Pillow has to write through ``write()``, which reports every failed write.

    Given a file descriptor, Pillow's C encoders write to it themselves and ignore short
    writes, so on a full disk (or past RLIMIT_FSIZE) a BMP or TIFF output would be cut short
    without an error; without one, every short write raises and ``ncodec`` exits non-zero.
    """

    def fileno(self) -> int:
        raise io.UnsupportedOperation("fileno")


def _unsavable(mode: str, fmt: str, extra: dict, exc: Exception) -> Exception:
    """The InvalidInputError for a ``mode`` image that will not be written as ``fmt``, naming
    the culprit."""
    from PIL import Image

    from neuralcodec.errors import InvalidInputError

    def saves(metadata: dict) -> bool:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                Image.new(mode, (1, 1)).save(io.BytesIO(), format=fmt, **metadata)
                return True
            except Exception:
                return False

    reason = str(exc) or type(exc).__name__
    if extra and saves({}) and not saves(extra):
        return InvalidInputError(
            f"its ICC profile / EXIF data cannot be written as {fmt} ({type(exc).__name__}: {reason}); "
            "--strip drops them"
        )
    return InvalidInputError(f"cannot save a mode {mode} image as {fmt}: {reason}")


def cmd_info(args: argparse.Namespace) -> int:
    from neuralcodec.container import SectionType, unpack
    from neuralcodec.errors import InvalidInputError

    code = EXIT_OK
    for arg in args.inputs:
        source = _target(arg)
        try:
            data = _read(source, nc=True)
            container = unpack(data)
        except InvalidInputError as exc:
            _say(f"ncodec: {_name(source)}: {exc}")
            code = EXIT_BAD_INPUT
            continue
        h = container.header
        print(f"{_name(source)}:")
        print(f"  image     {h.width}x{h.height} {h.mode.name}")
        print(f"  model     {h.model_name} (weights {h.model_digest.hex()})")
        print(f"  format    {h.format_version}, {h.architecture}")
        print(f"  quality   {h.quality:g}")
        print(f"  size      {len(data)} bytes, {len(data) * 8 / (h.width * h.height):.4f} bpp")
        for kind, section in container.sections:
            print(f"  section   {kind.name:<6} {len(section)} bytes")
        for note in container.section(SectionType.NOTE):
            for line in note.decode("utf-8", "replace").splitlines():
                print(f"  note      {_printable(line)}")  # a crafted note must not reach the terminal raw
    return code


def cmd_train(argv: list[str]) -> int:
    try:
        from neuralcodec.training.train import main as train_main
    except ImportError as exc:
        print(
            f"ncodec: training needs the 'train' extra (pip install 'neuralcodec[train]'): {exc}",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    train_main(argv)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="ncodec", description="Learned image codec: compress images to .nc files and back.")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    def common(sp: argparse.ArgumentParser, inputs_help: str, output_help: str) -> None:
        sp.add_argument("inputs", nargs="+", metavar="IN", help=inputs_help)
        sp.add_argument("-o", "--output", metavar="OUT|DIR", help=output_help)
        sp.add_argument(
            "-f", "--force", action="store_true", help="overwrite existing outputs (never an input)"
        )
        sp.add_argument("-v", "--verbose", action="store_true", help="report size, time and choices")
        sp.add_argument("--model", help="model name or weights file (default: the one the file needs)")
        sp.add_argument("--device", default="auto", help="auto|cpu|cuda (default auto)")
        sp.add_argument("--threads", type=_threads, metavar="N", help="CPU threads (default: all cores)")
        sp.add_argument("--strip", action="store_true", help="drop ICC profile and EXIF metadata")
        sp.add_argument(
            "--keep-going", action="store_true", help="continue after a failed file; exit non-zero"
        )
        tree = sp.add_argument_group("whole trees (-r)")
        tree.add_argument(
            "-r",
            "--recursive",
            action="store_true",
            help="IN is a folder: mirror its tree into -o DIR, resumably (a manifest in DIR records "
            "finished files; a rerun does only the rest)",
        )
        tree.add_argument(
            "--jobs",
            type=_positive_int,
            metavar="N",
            help="-r: worker processes (default 1; ray: the cluster's)",
        )
        tree.add_argument(
            "--engine", choices=["local", "ray"], default=None, help="-r: where to run (default local)"
        )
        tree.add_argument(
            "--address", metavar="ADDR", help="-r --engine ray: the cluster to join (ray start's)"
        )

    c = sub.add_parser(
        "compress",
        help="image(s) -> .nc",
        usage="ncodec compress IN [OUT.nc|-] [options] | IN... [-o DIR] [options]",
        description="Compress images. IN may be - (standard input); OUT may be - (standard output).",
    )
    common(
        c,
        "images; a second argument ending in .nc (or -) is the output",
        "output file, or folder for several inputs (default: next to the input, .nc)",
    )
    rate = c.add_mutually_exclusive_group()
    rate.add_argument(
        "-q", "--quality", type=float, default=75.0, help="0 (smallest) .. 100 (best), default 75"
    )
    rate.add_argument(
        "--size",
        type=parse_size,
        metavar="BYTES",
        help="largest quality whose file fits (e.g. 50000, 100k, 2MiB)",
    )
    rate.add_argument("--psnr", type=_psnr, metavar="DB", help="smallest file with at least this RGB PSNR")
    rate.add_argument(
        "--ms-ssim", type=_ms_ssim, metavar="VALUE", help="smallest file with at least this MS-SSIM (0..1)"
    )
    c.add_argument(
        "-e",
        "--effort",
        type=_effort,
        default=DEFAULT_EFFORT,
        metavar=f"0..{MAX_EFFORT}",
        help="encoder effort: 0 single pass, 1..4 greedy rounding, 5..9 latent refinement; higher is "
        "slower and smaller at equal quality (default up to about a megapixel: "
        f"{DEFAULT_EFFORTS['mse']} for hyperprior mse models, {DEFAULT_EFFORTS['ms-ssim']} for msssim "
        "ones; 0 above, and 0 for checkerboard models such as the shipped mse)",
    )
    c.add_argument(
        "--max-pixels",
        type=_positive_int,
        metavar="N",
        help="refuse input images above N pixels (default: Pillow's decompression-bomb guard)",
    )
    c.set_defaults(func=cmd_compress, model="msssim")
    d = sub.add_parser(
        "decompress",
        help=".nc -> image(s) (PNG, or any Pillow format by extension)",
        usage="ncodec decompress IN [OUT.png|-] [options] | IN... [-o DIR] [options]",
        description="Decompress .nc files. IN may be - (standard input); OUT may be - (standard "
        "output, as PNG).",
    )
    common(
        d,
        ".nc files; a second argument with an image extension (or -) is the output",
        "output file (format from its extension), or folder (default: next to the input, .png)",
    )
    d.add_argument(
        "--max-pixels",
        type=_positive_int,
        metavar="N",
        help="refuse images above N pixels (default 178956970, where Pillow refuses to open an "
        "image, so compress's default inputs decode; at most 2^29)",
    )
    d.add_argument(
        "--backend",
        choices=["numpy", "torch"],
        help="numpy: the CPU, no torch imported (default); torch: as the encoder runs the "
        "transforms, on any --device (default with --device cuda)",
    )
    d.set_defaults(func=cmd_decompress)
    i = sub.add_parser("info", help="print the header of .nc files")
    i.add_argument("inputs", nargs="+", metavar="FILE", help=".nc files (- for standard input)")
    i.set_defaults(func=cmd_info)
    sub.add_parser(
        "train", help="train a model (needs the train extra); see 'ncodec train --help'", add_help=False
    )
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["train"]:
        return cmd_train(argv[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (1): return, don't exit
        return int(exc.code or 0)
    if args.version:
        from neuralcodec import __version__

        print(f"ncodec {__version__}")
        return EXIT_OK
    if not args.command:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    from neuralcodec.allocator import prefer_huge_pages

    prefer_huge_pages()  # this process owns torch: before its first allocation
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning  # one line each, and restored for in-process callers
            device = getattr(args, "device", "auto")
            _check_device(device)
            from neuralcodec.errors import ConfigurationError, DeviceUnavailableError
            from neuralcodec.runtime import requested_precision, torch_available

            if device not in ("auto", "cpu") and torch_available():  # without torch: said per command
                from neuralcodec.codec import resolve_device

                try:
                    resolve_device(device)
                except DeviceUnavailableError as exc:
                    raise UsageError(str(exc)) from None
            try:
                requested_precision()  # NEURALCODEC_TRANSFORMS, checked before any file is touched
            except ConfigurationError as exc:
                raise UsageError(str(exc)) from None
            return args.func(args)
    except UsageError as exc:
        _say(f"ncodec: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _say("ncodec: interrupted")
        return 130
    except BrokenPipeError:  # e.g. ``ncodec info x.nc | head -1``: the reader has what it wanted
        _silence_stdout()
        return 141  # 128 + SIGPIPE, what the shell reports for a tool killed by it
    except Exception as exc:  # last resort: one line, never a traceback
        from neuralcodec.errors import InvalidInputError, NeuralCodecError

        if isinstance(exc, (InvalidInputError, NeuralCodecError)):
            _say(f"ncodec: {exc}")
            return EXIT_BAD_INPUT
        _say(f"ncodec: internal error: {type(exc).__name__}: {exc}")
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
