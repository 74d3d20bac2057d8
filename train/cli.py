"""`python -m train fit|validate|test --config …`: LightningCLI over the task and the data module.

Every constructor argument of `SiteDetectionTask` and `SiteDataModule` is a
config key and a command-line flag (`--model.lr 3e-4`, `--data.batch_size 4`).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import torch
from jsonargparse import ArgumentError
from pytorch_lightning.cli import LightningCLI

from infer.errors import UsageError
from train.data.datamodule import SiteDataModule
from train.task import SiteDetectionTask


def default_precision() -> str:
    """bf16 mixed precision where the GPU has it, else full fp32 (CPU)."""
    if torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "32-true"


class SitewatchCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data.dataset", "model.dataset")
        parser.link_arguments("model.object_stride", "data.object_stride")
        parser.set_defaults({"trainer.precision": default_precision()})


def main(argv: Sequence[str] | None = None) -> int:
    """Run LightningCLI on `argv`, or on the process's own arguments when None."""
    logging.getLogger("lightning_fabric.utilities.seed").setLevel(logging.WARNING)
    try:
        SitewatchCLI(SiteDetectionTask, SiteDataModule, args=list(argv) if argv is not None else None,
                     parser_kwargs={"exit_on_error": False}, save_config_kwargs={"overwrite": True},
                     seed_everything_default=0, auto_configure_optimizers=False)
    except ArgumentError as exc:
        raise UsageError(" ".join(str(exc).split())) from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
