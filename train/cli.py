"""`python -m train fit|validate|test --config …`: LightningCLI over the task and the data module.

Every constructor argument of `SiteDetectionTask` and `SiteDataModule` is a
config key and a command-line flag (`--model.lr 3e-4`, `--data.batch_size 4`).
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from jsonargparse import ArgumentError, Namespace
from pytorch_lightning.cli import LightningCLI
from pytorch_lightning.utilities import rank_zero_info
from rasterio.errors import NotGeoreferencedWarning

from infer.errors import InputError, UsageError
from train.checkpoint import read_checkpoint
from train.data.datamodule import SiteDataModule
from train.task import SiteDetectionTask


def default_precision() -> str:
    """bf16 mixed precision where the GPU has it, else full fp32 (CPU)."""
    if torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "32-true"


def place_run_outputs(trainer: Namespace) -> None:
    """Loggers whose `save_dir` is "" write under `trainer.default_root_dir`, checkpoint callbacks without a
    `dirpath` into its `checkpoints/`: the recipes name neither folder, so that one option moves every
    output of a run (an explicit path still wins). Loggers need "" where callbacks take None: their
    `save_dir` is required."""
    root = Path(trainer.get("default_root_dir") or ".")
    for key, field, unset, folder in (("logger", "save_dir", "", root),
                                      ("callbacks", "dirpath", None, root / "checkpoints")):
        entries = trainer.get(key)
        for entry in entries if isinstance(entries, list) else [entries]:
            args = entry.get("init_args") if isinstance(entry, Namespace) else None
            if isinstance(args, Namespace) and field in args and args[field] == unset:
                args[field] = str(folder)


def drop_monitors_without_validation(trainer: Namespace) -> None:
    """With validation off (`limit_val_batches` 0), checkpoint callbacks that follow a validation metric
    are left out, with one line saying so, instead of Lightning warning at every epoch; `last.ckpt` stays."""
    if trainer.get("limit_val_batches") not in (0, 0.0) or not isinstance(trainer.get("callbacks"), list):
        return
    kept = [c for c in trainer.callbacks if not (isinstance(c, Namespace) and c.get("class_path", "").endswith(
        "ModelCheckpoint") and isinstance(c.get("init_args"), Namespace) and c.init_args.get("monitor"))]
    if len(kept) < len(trainer.callbacks):
        rank_zero_info("validation is off (limit_val_batches 0): no best checkpoint, only the others")
        trainer.callbacks = kept


#: `--ckpt_path` values Lightning resolves itself, not file names.
CKPT_PATH_WORDS = ("best", "last", "hpc", "registry")


def check_ckpt_path(value: str | None) -> None:
    """A `--ckpt_path` file that is not there or not a sitewatch checkpoint is one line (`read_checkpoint`'s);
    Lightning raised it as a traceback (a missing file once the run had started)."""
    if value is None or str(value) in CKPT_PATH_WORDS:
        return
    try:
        read_checkpoint(Path(value), needs=())
    except InputError as exc:
        raise UsageError(f"--ckpt_path: {exc}") from None


class SitewatchCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data.dataset", "model.dataset")
        parser.link_arguments("model.object_stride", "data.object_stride")
        parser.set_defaults({"trainer.precision": default_precision()})

    def _parse_ckpt_path(self) -> None:
        """Lightning reads `--ckpt_path`'s hyperparameters here, as the arguments are parsed: the file is
        checked first (`check_ckpt_path`)."""
        if self.config.get("subcommand"):
            check_ckpt_path(self.config[self.config.subcommand].get("ckpt_path"))
        super()._parse_ckpt_path()

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        place_run_outputs(config.trainer)
        drop_monitors_without_validation(config.trainer)


def main(argv: Sequence[str] | None = None) -> int:
    """Run LightningCLI on `argv`, or on the process's own arguments when None."""
    logging.getLogger("lightning_fabric.utilities.seed").setLevel(logging.WARNING)
    # Chips in pixels (PNG, JPEG, TIFF without a transform) are meant: rasterio would say so for every file.
    warnings.filterwarnings("ignore", category=NotGeoreferencedWarning)
    try:
        SitewatchCLI(SiteDetectionTask, SiteDataModule, args=list(argv) if argv is not None else None,
                     parser_kwargs={"exit_on_error": False}, save_config_kwargs={"overwrite": True},
                     seed_everything_default=0, auto_configure_optimizers=False)
    except ArgumentError as exc:
        raise UsageError(" ".join(str(exc).split())) from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
