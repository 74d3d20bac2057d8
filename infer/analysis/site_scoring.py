"""How well the sites found in predictions agree with the sites of the truth of the same scene.

A truth site is found when a predicted site's outline overlaps it; each
truth site is paired with the predicted site that overlaps it most. For
found sites the storehouse and fortified-storehouse counts are compared.
Predicted sites that overlap no truth site are false sites.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely

from infer.analysis.sites import Site


def score_sites(truth: Sequence[Site], predicted: Sequence[Site]) -> dict:
    """Counts of truth, predicted, found and false sites, and per found site the count errors
    (predicted - truth) of storehouses and fortified storehouses, with their summaries."""
    pairs = []
    used: set[int] = set()
    for t in truth:
        overlaps = [shapely.intersection(t.outline, p.outline).area for p in predicted]
        best = int(np.argmax(overlaps)) if overlaps else -1
        if best >= 0 and overlaps[best] > 0:
            pairs.append((t, predicted[best]))
            used.add(best)
    touching = {k for k, p in enumerate(predicted) if any(shapely.intersects(p.outline, t.outline) for t in truth)}
    storehouse_errors = [len(p.storehouses) - len(t.storehouses) for t, p in pairs]
    fortified_errors = [len(p.fortified) - len(t.fortified) for t, p in pairs]
    found = len(pairs)
    return {
        "truth_sites": len(truth), "predicted_sites": len(predicted), "found": found,
        "false_sites": len(predicted) - len(touching),
        "recall": round(found / len(truth), 4) if truth else None,
        "storehouse_errors": storehouse_errors, "fortified_errors": fortified_errors,
        "within_one_storehouse": round(float(np.mean(np.abs(storehouse_errors) <= 1)), 4) if pairs else None,
        "fortified_exact": round(float(np.mean(np.asarray(fortified_errors) == 0)), 4) if pairs else None,
    }


__all__ = ["score_sites"]
