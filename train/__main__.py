"""`python -m train COMMAND`: the training side of sitewatch."""

from __future__ import annotations

import sys

from infer.console import run_command

USAGE = """usage: python -m train COMMAND [options]

commands:
  synth     generate synthetic scenes with exact labels (GeoTIFF + GeoJSON)

Run `python -m train COMMAND --help` for a command's options."""


def main() -> int:
    argv = sys.argv[1:]
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "synth":
        from train.synth.cli import main as synth_main

        return run_command(synth_main, rest)
    print(f"error: unknown command {command!r}; commands: synth (see --help)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
