"""`python -m train COMMAND`: the training side of sitewatch."""

from __future__ import annotations

import sys

from infer.console import run_command

USAGE = """usage: python -m train COMMAND [options]

commands:
  fit       train a model (LightningCLI: --config train/configs/synthetic.yaml)
  validate  score a checkpoint on the validation split (--ckpt_path)
  test      score a checkpoint on the test split (--ckpt_path)
  synth     generate synthetic scenes with exact labels (GeoTIFF + GeoJSON)
  chips     cut a scene and its labels into GeoTIFF chips and a COCO annotations.json
  export    write a checkpoint as a self-describing ONNX file (CHECKPOINT --out model.onnx)

Run `python -m train COMMAND --help` for a command's options."""


def main() -> int:
    argv = sys.argv[1:]
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command in ("fit", "validate", "test"):
        from train.cli import main as lightning_main

        return run_command(lightning_main, None)  # LightningCLI reads sys.argv itself
    if command == "synth":
        from train.synth.cli import main as synth_main

        return run_command(synth_main, rest)
    if command == "chips":
        from train.data.chips_cli import main as chips_main

        return run_command(chips_main, rest)
    if command == "export":
        from train.export import main as export_main

        return run_command(export_main, rest)
    print(f"error: unknown command {command!r}; commands: fit, validate, test, synth, chips, export (see --help)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
