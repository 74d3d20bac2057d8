"""`python -m train COMMAND`: the training side of sitewatch."""

from __future__ import annotations

import sys

from infer.cli.console import dispatch

USAGE = """usage: python -m train COMMAND [options]

commands:
  fit       train a model (LightningCLI: --config train/configs/synthetic.yaml)
  validate  score a checkpoint on the validation split (--ckpt_path)
  test      score a checkpoint on the test split (--ckpt_path)
  synth     generate synthetic scenes with exact labels (GeoTIFF + GeoJSON); same as `python -m synth`
  chips     cut a scene and its labels into GeoTIFF chips and a COCO annotations.json
  import    turn a VOC, YOLO, DOTA or COCO image set (pixels) into chip folders with a validation split
  export    write a checkpoint as a self-describing ONNX file (CHECKPOINT --out model.onnx)
  slim      copy a checkpoint without its optimizer state, for sharing and fine-tuning (--out, --half)

Run `python -m train COMMAND --help` for a command's options."""


COMMANDS = {
    "fit": "train.cli:main",
    "validate": "train.cli:main",
    "test": "train.cli:main",
    "synth": "synth.cli:main",
    "chips": "train.data.chips_cli:main",
    "import": "train.data.import_cli:main",
    "export": "train.export:main",
    "slim": "train.slim:main",
}


def main() -> int:
    return dispatch(USAGE, COMMANDS, sys.argv[1:], whole_argv=("fit", "validate", "test"))


if __name__ == "__main__":
    sys.exit(main())
