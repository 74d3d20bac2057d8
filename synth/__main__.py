"""`python -m synth --out DIR ...`: write synthetic scenes with exact labels (`python -m train synth` is the same)."""

from __future__ import annotations

import sys

from infer.cli.console import run_command
from synth.cli import main

if __name__ == "__main__":
    sys.exit(run_command(main, sys.argv[1:]))
