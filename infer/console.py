"""Command-line plumbing shared by `python -m train` and `python -m infer`.

Every command prints errors as one line and exits with a code a batch
scheduler understands: 0 success, 1 some work failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from infer.errors import SitewatchError, UsageError


class OneLineArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are a single line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see --help)")


def run_command(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Run `main` and translate sitewatch errors into one line and an exit code."""
    try:
        return main(argv)
    except SitewatchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
