"""Command-line plumbing shared by `python -m train` and `python -m infer`.

Every command prints errors as one line and exits with a code a batch
scheduler understands: 0 success, 1 some work failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from infer.errors import SitewatchError, UsageError


def finite_float(text: str) -> float:
    """An argparse type: a float that is a number (NaN and infinity are refused, as one-line usage errors)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def class_area(text: str) -> tuple[str, float]:
    """An argparse type: `CLASS=M2`, a class name and a finite area in m² >= 0."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected CLASS=M2, got {text!r}")
    area = finite_float(value)
    if area < 0:
        raise argparse.ArgumentTypeError(f"the area must be >= 0, got {text!r}")
    return name, area


def class_pair(text: str) -> tuple[str, str]:
    """An argparse type: `NAME=CLASS` of `--class` (`NAME=` leaves NAME out where that is allowed)."""
    name, sep, target = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=CLASS (or NAME= to leave NAME out), got {text!r}")
    return name, target


class OneLineArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are a single line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see --help)")


def run_command(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Run `main` and translate sitewatch errors into one line and an exit code."""
    # Pictures without georeferencing (PNG, JPEG) run in pixel coordinates on purpose and every output
    # says so; rasterio's NotGeoreferencedWarning (matched by text: importing rasterio here would slow
    # every --help) would repeat it once per file opened.
    warnings.filterwarnings("ignore", message="Dataset has no geotransform")
    try:
        return main(argv)
    except SitewatchError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


def one_line(exc: SitewatchError) -> str:
    """The error's message. Ours are one line; one that PyTorch's DataLoader raised again in the main process
    carries the worker's traceback in its text, whose last line is the original `module.Type: message`."""
    lines = str(exc).strip().splitlines()
    if len(lines) <= 1:
        return str(exc).strip()
    return lines[-1].split(f"{type(exc).__name__}: ", 1)[-1]


def ensure_writable_folder(out: Path) -> None:
    """Create `out` if needed and prove a file can be written there; else a usage error.

    A real write is the only honest test: permission bits say nothing to root,
    and read-only mounts or immutable folders refuse writes anyway.
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise UsageError(f"cannot write to output folder {out}: {exc.strerror or exc}") from None


def dispatch(usage: str, commands: dict[str, str], argv: Sequence[str], whole_argv: Sequence[str] = ()) -> int:
    """Run the command named by argv[0]: `commands` maps it to "module:function".

    Commands listed in `whole_argv` get None (they read sys.argv themselves,
    like LightningCLI); the others get the arguments after the command name.
    Modules are imported only when their command runs, so `--help` is fast.
    """
    if not argv or argv[0] in ("-h", "--help"):
        print(usage)
        return 0 if argv else 2
    command = argv[0]
    if command not in commands:
        print(f"error: unknown command {command!r}; commands: {', '.join(commands)} (see --help)", file=sys.stderr)
        return 2
    module, function = commands[command].split(":")
    main = getattr(importlib.import_module(module), function)
    return run_command(main, None if command in whole_argv else list(argv[1:]))
