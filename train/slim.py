"""`python -m train slim`: a checkpoint without its training state, to share, fine-tune or export.

A Lightning checkpoint is about three times its model: AdamW keeps two moments
per weight, beside the loops', callbacks' and schedulers' state. Export and
`--model.init_weights` need only the weights, the hyper-parameters and the
sitewatch entry, so a slim checkpoint does both; it cannot resume a run
(`--ckpt_path`), which needs the optimizer. `--half` stores floating-point
weights as float16 and halves the file again; export and fine-tuning load
them back into float32 networks.
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from infer.cli.console import OneLineArgumentParser, ensure_writable_folder, run_command
from infer.errors import InputError
from infer.files import atomic_write, write_failure
from train.checkpoint import read_checkpoint
from train.export import rebuild_checkpoint

KEPT = ("state_dict", "hyper_parameters", "hparams_name", "sitewatch", "epoch", "global_step",
        "pytorch-lightning_version")


def slim_checkpoint(checkpoint: Path, out: Path, half: bool = False) -> int:
    """Write `checkpoint`'s weights, hyper-parameters and metadata to `out`; returns its size in bytes.

    The source must be a sitewatch checkpoint whose weights fit the network it
    describes (checked by rebuilding it, as export does). `out` is written
    under a temporary name and renamed when complete.
    """
    checkpoint, out = Path(checkpoint), Path(out)
    full = read_checkpoint(checkpoint)
    rebuild_checkpoint(full, checkpoint)
    if out.resolve() == checkpoint.resolve():
        raise InputError(f"--out {out} is the checkpoint itself; write the slim copy elsewhere")
    slim = {key: full[key] for key in KEPT if key in full}
    if half:
        slim["state_dict"] = {name: tensor.half() if tensor.is_floating_point() else tensor
                              for name, tensor in slim["state_dict"].items()}
    ensure_writable_folder(out.parent)
    with atomic_write(out) as temporary:
        try:
            torch.save(slim, temporary)
        except RuntimeError as exc:  # torch's writer reports a short write (a full disk) as a RuntimeError
            raise OSError(errno.EIO, write_failure(exc, out.parent)) from None
    return out.stat().st_size


def build_parser() -> OneLineArgumentParser:
    parser = OneLineArgumentParser(
        prog="python -m train slim",
        description="Copy a sitewatch checkpoint without its optimizer and loop state: a third of the "
                    "size, for sharing, `--model.init_weights` and `python -m train export` (not for "
                    "resuming with --ckpt_path).")
    parser.add_argument("checkpoint", type=Path, help="a .ckpt written by `python -m train fit`")
    parser.add_argument("--out", type=Path, required=True, help="the slim .ckpt to write")
    parser.add_argument("--half", action="store_true", help="store the weights as float16 (half the size again)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    before = args.checkpoint.stat().st_size if args.checkpoint.is_file() else 0
    size = slim_checkpoint(args.checkpoint, args.out, half=args.half)
    print(f"{args.out}: {size / 2**20:.1f} MiB (from {before / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
