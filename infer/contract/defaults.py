"""One table of the defaults that training, export and every command share.

A command's `--help` quotes these, and validation decodes with them, so
the numbers a user reads and the numbers a run uses cannot drift apart.
"""

from __future__ import annotations

#: Lowest object score kept by `infer run`, `infer diff --model`, `infer evaluate` and the export parity check.
DEFAULT_SCORE = 0.3
#: A region pixel is in its class when the mask probability is strictly above this.
MASK_THRESHOLD = 0.5
#: Radius in metres of the disc that closes region masks (docs/design.md, decision 5).
REGION_CLOSING_M = 2.0

#: Opacity (0-255) of a region's fill where it is drawn: the overview and the QGIS styles alike.
REGION_FILL_ALPHA = 70

__all__ = ["DEFAULT_SCORE", "MASK_THRESHOLD", "REGION_CLOSING_M", "REGION_FILL_ALPHA"]
