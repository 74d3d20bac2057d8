"""`python -m infer report DIR`: a self-contained HTML page about an `infer run` output folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from infer.analysis.report import write_report
from infer.cli.console import OneLineArgumentParser, ensure_writable_folder
from infer.errors import UsageError


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog="python -m infer report",
                              description="Write DIR/report.html: run summary, per-scene overviews, counts, contact "
                                          "sheets and a sortable table of detections; one file that works offline.")
    p.add_argument("folder", type=Path, help="an `infer run` output folder")
    p.add_argument("--title", help="page title (default: the folder's name)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.folder.is_dir():
        raise UsageError(f"not a folder: {args.folder}")
    ensure_writable_folder(args.folder)
    path = write_report(args.folder, args.title)
    print(f"report: {path}")
    return 0
