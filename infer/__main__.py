"""`python -m infer COMMAND`: the torch-free runtime of sitewatch."""

from __future__ import annotations

import sys

from infer.console import run_command

USAGE = """usage: python -m infer COMMAND [options]

commands:
  run       find objects and regions in scenes with an exported .onnx model
  evaluate  score predicted GeoJSON against truth for a scene

Run `python -m infer COMMAND --help` for a command's options."""


def main() -> int:
    argv = sys.argv[1:]
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "run":
        from infer.run_cli import main as run_main

        return run_command(run_main, rest)
    if command == "evaluate":
        from infer.evaluate_cli import main as evaluate_main

        return run_command(evaluate_main, rest)
    print(f"error: unknown command {command!r}; commands: run, evaluate (see --help)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
