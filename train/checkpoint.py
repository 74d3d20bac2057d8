"""Reading a sitewatch training checkpoint file: the one place that opens one, for export, slim, fine-tuning
(`--model.init_weights`) and resuming (`--ckpt_path`).

Checkpoints are loaded as data only (`weights_only`): unpickling arbitrary objects would run their code.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch

from infer.errors import InputError

#: The checkpoint entry that carries what export needs (classes, bands, GSD, normalization, ...).
CHECKPOINT_KEY = "sitewatch"
#: What that entry must hold for a checkpoint to be exported.
EXPORT_NEEDS = ("classes", "bands", "gsd_m", "normalization")


def read_checkpoint(path: Path, needs: tuple[str, ...] = EXPORT_NEEDS) -> dict:
    """The raw dict of a sitewatch checkpoint file; `InputError` (one line) for a missing file, one that is
    not a PyTorch checkpoint, one that carries pickled objects, or one without a sitewatch entry holding
    `needs`."""
    if not path.is_file():
        raise InputError(f"checkpoint not found: {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises pickle, zip and runtime errors alike for foreign files
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if isinstance(exc, pickle.UnpicklingError) and found:
            raise InputError(f"{path} holds pickled Python objects ({found.group(1)}), not only weights and plain "
                             "data; sitewatch loads weights only and will not run code a checkpoint carries") from None
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(f"{path} is not a readable PyTorch checkpoint ({type(exc).__name__}: {first[:200]})") from None
    if not isinstance(checkpoint, dict) or CHECKPOINT_KEY not in checkpoint or "state_dict" not in checkpoint:
        raise InputError(f"{path} is not a sitewatch checkpoint (no {CHECKPOINT_KEY!r} entry); "
                         "use checkpoints written by `python -m train fit`")
    info = checkpoint[CHECKPOINT_KEY]
    if missing := [key for key in needs if not info.get(key)]:
        raise InputError(f"{path} lacks {', '.join(missing)} in its sitewatch entry "
                         "(was it saved before training started?)")
    return checkpoint


__all__ = ["CHECKPOINT_KEY", "EXPORT_NEEDS", "read_checkpoint"]
