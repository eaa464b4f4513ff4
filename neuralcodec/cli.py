"""``ncodec``: compress, decompress and inspect ``.nc`` files.

Exit codes: 0 success; 1 usage error (bad arguments, refused overwrite); 2 bad or corrupt
input (unreadable image, damaged or foreign .nc file, wrong model); 3 any other failure
(e.g. the disk is full). Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

EXIT_OK, EXIT_USAGE, EXIT_BAD_INPUT, EXIT_FAILURE = 0, 1, 2, 3


class UsageError(Exception):
    """Bad command line: exit code 1."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 by default; usage is 1 here
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


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


def _outputs(inputs: list[Path], output: Path | None, suffix: str) -> list[Path]:
    """Where each input goes: -o FILE (one input), -o DIR, or next to the input."""
    if output is not None and len(inputs) == 1 and not output.is_dir() and output.suffix:
        return [output]
    if output is not None and output.exists() and not output.is_dir():
        raise UsageError(f"{output}: with several inputs, -o must be a directory")
    folder = output
    outs = [(folder or p.parent) / (p.stem + suffix) for p in inputs]
    if len(set(o.resolve() for o in outs)) != len(outs):
        raise UsageError("two inputs would write the same output name; use separate -o folders")
    return outs


def _run_batch(
    inputs: list[Path], outputs: list[Path], args: argparse.Namespace, one: Callable[[Path, Path], str | None]
) -> int:
    from neuralcodec.errors import InvalidInputError, NeuralCodecError
    from neuralcodec.fileio import OutputExistsError, check_output

    failures: list[str] = []
    code = EXIT_OK
    show = len(inputs) > 1 and sys.stderr.isatty() and not args.verbose
    for src, dst in _progress(list(zip(inputs, outputs)), args.command, show):
        try:
            check_output(dst, inputs, args.force)
            message = one(src, dst)
            if message and args.verbose:
                print(message)
        except OutputExistsError as exc:
            failures.append(str(exc))
            code = max(code, EXIT_USAGE)
        except (InvalidInputError, NeuralCodecError) as exc:
            failures.append(str(exc) if str(exc).startswith(str(src)) else f"{src}: {exc}")
            code = max(code, EXIT_BAD_INPUT)
        except OSError as exc:
            failures.append(f"{src}: {exc.strerror or exc}")
            code = EXIT_FAILURE
        if failures and not args.keep_going:
            break
    for failure in failures:
        print(f"ncodec: {failure}", file=sys.stderr)
    if failures and len(inputs) > 1:
        print(f"ncodec: {len(failures)} of {len(inputs)} files failed", file=sys.stderr)
    return code


def cmd_compress(args: argparse.Namespace) -> int:
    from neuralcodec.api import compress_with_stats
    from neuralcodec.fileio import write_atomic

    if not 0 <= args.quality <= 100:
        raise UsageError(f"-q must be within 0..100, got {args.quality}")
    outputs = _outputs(args.inputs, args.output, ".nc")

    def one(src: Path, dst: Path) -> str:
        start = time.perf_counter()
        data, stats = compress_with_stats(
            src, args.quality, args.model, args.device, keep_metadata=not args.strip
        )
        write_atomic(dst, lambda tmp: tmp.write_bytes(data))
        seconds = time.perf_counter() - start
        notes = "".join(f"\n  note: {n}" for n in stats.notes)
        return (
            f"{src} -> {dst}: {stats.width}x{stats.height}, {stats.file_bytes} bytes, {stats.bpp:.4f} bpp, "
            f"{seconds:.2f} s; coded bits {stats.actual_bits} vs estimated {stats.estimated_bits:.0f} "
            f"({(stats.actual_bits / max(stats.estimated_bits, 1) - 1) * 100:+.2f}%){notes}"
        )

    return _run_batch(args.inputs, outputs, args, one)


def cmd_decompress(args: argparse.Namespace) -> int:
    from PIL import Image

    from neuralcodec.api import decompress
    from neuralcodec.errors import InvalidInputError
    from neuralcodec.fileio import write_atomic

    outputs = _outputs(args.inputs, args.output, ".png")
    formats = Image.registered_extensions()
    unknown = [o for o in outputs if o.suffix.lower() not in formats]
    if unknown:
        raise UsageError(f"{unknown[0]}: unknown image format for extension {unknown[0].suffix!r}")

    def one(src: Path, dst: Path) -> str:
        start = time.perf_counter()
        image = decompress(_read(src), args.device, args.model, strip=args.strip)
        fmt = formats[dst.suffix.lower()]
        extra = {k: v for k, v in image.info.items() if k in ("icc_profile", "exif")}

        def save(tmp: Path) -> None:
            try:
                image.save(tmp, format=fmt, **extra)
            except (OSError, ValueError, KeyError) as exc:
                raise InvalidInputError(f"cannot save a mode {image.mode} image as {fmt}: {exc}") from None

        write_atomic(dst, save)
        return (
            f"{src} -> {dst}: {image.width}x{image.height} {image.mode}, {time.perf_counter() - start:.2f} s"
        )

    return _run_batch(args.inputs, outputs, args, one)


def _read(path: Path) -> bytes:
    from neuralcodec.errors import InvalidInputError

    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InvalidInputError("no such file") from None
    except IsADirectoryError:
        raise InvalidInputError("is a directory") from None


def cmd_info(args: argparse.Namespace) -> int:
    from neuralcodec.api import read_header
    from neuralcodec.container import SectionType
    from neuralcodec.errors import InvalidInputError

    code = EXIT_OK
    for path in args.inputs:
        try:
            container = read_header(_read(path))
        except InvalidInputError as exc:
            print(f"ncodec: {path}: {exc}", file=sys.stderr)
            code = EXIT_BAD_INPUT
            continue
        h = container.header
        print(f"{path}:")
        print(f"  image     {h.width}x{h.height} {h.mode.name}")
        print(f"  model     {h.model_name} (weights {h.model_digest.hex()})")
        print(f"  quality   {h.quality:g}")
        size = path.stat().st_size
        print(f"  size      {size} bytes, {size * 8 / (h.width * h.height):.4f} bpp")
        for kind, data in container.sections:
            print(f"  section   {kind.name:<6} {len(data)} bytes")
        for note in container.section(SectionType.NOTE):
            for line in note.decode("utf-8", "replace").splitlines():
                print(f"  note      {line}")
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

    def common(sp: argparse.ArgumentParser, multi_output_help: str) -> None:
        sp.add_argument("inputs", nargs="+", type=Path)
        sp.add_argument("-o", "--output", type=Path, help=multi_output_help)
        sp.add_argument(
            "-f", "--force", action="store_true", help="overwrite existing outputs (never an input)"
        )
        sp.add_argument("-v", "--verbose", action="store_true")
        sp.add_argument("--model", help="model name or weights file (default: the one the file needs)")
        sp.add_argument("--device", default="auto", help="auto|cpu|cuda (default auto)")
        sp.add_argument("--strip", action="store_true", help="drop ICC profile and EXIF metadata")
        sp.add_argument(
            "--keep-going", action="store_true", help="continue after a failed file; exit non-zero"
        )

    c = sub.add_parser("compress", help="image(s) -> .nc")
    common(c, "output file, or folder for several inputs (default: next to the input, .nc)")
    c.add_argument("-q", "--quality", type=float, default=75.0, help="0 (smallest) .. 100 (best), default 75")
    c.set_defaults(func=cmd_compress, model="msssim")
    d = sub.add_parser("decompress", help=".nc -> image(s) (PNG, or any Pillow format by extension)")
    common(d, "output file (format from its extension), or folder (default: next to the input, .png)")
    d.set_defaults(func=cmd_decompress)
    i = sub.add_parser("info", help="print the header of .nc files")
    i.add_argument("inputs", nargs="+", type=Path)
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
    try:
        if getattr(args, "device", "auto") != "auto":
            from neuralcodec.codec import resolve_device
            from neuralcodec.errors import DeviceUnavailableError

            try:
                resolve_device(args.device)
            except DeviceUnavailableError as exc:
                raise UsageError(str(exc)) from None
        return args.func(args)
    except UsageError as exc:
        print(f"ncodec: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("ncodec: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # last resort: one line, never a traceback
        from neuralcodec.errors import InvalidInputError, NeuralCodecError

        if isinstance(exc, (InvalidInputError, NeuralCodecError)):
            print(f"ncodec: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        print(f"ncodec: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
