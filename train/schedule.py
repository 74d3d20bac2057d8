"""The learning-rate schedule: a linear warm-up, then a cosine decay, over the share of the run done.

The share is of the run's steps (`Trainer.estimated_stepping_batches`), or of its time when
`--trainer.max_time` will end it first, as Ultralytics' `time=` does. Without the time share a
run bounded by minutes but not by epochs would spend all of it in the warm-up: 10 minutes of
`max_epochs: 100000` at 8 steps an epoch is about 850 of 800,000 planned steps, so the learning
rate never passed 4 % of its peak.
"""

from __future__ import annotations

import math

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Timer


def warmup_cosine(progress: float, warmup_fraction: float, floor: float) -> float:
    """Learning-rate factor at `progress` (share of the run done, 0 to 1): rises linearly to 1 over the
    first `warmup_fraction`, then falls along a half cosine to `floor` at the end."""
    progress = min(max(progress, 0.0), 1.0)
    if progress < warmup_fraction:
        return progress / warmup_fraction
    decayed = (progress - warmup_fraction) / (1 - warmup_fraction)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * decayed))


class RunProgress:
    """Share of a training run done after `step` optimizer steps: the larger of the steps' share and,
    when the trainer has a time limit, the time's share (training time, summed over resumes)."""

    def __init__(self, trainer: pl.Trainer) -> None:
        self.total_steps = max(1, int(trainer.estimated_stepping_batches))
        self.timer = next((cb for cb in trainer.callbacks if isinstance(cb, Timer)), None)

    def __call__(self, step: int) -> float:
        share = (step + 1) / self.total_steps
        remaining = self.timer.time_remaining() if self.timer is not None else None
        if remaining is not None:
            elapsed = self.timer.time_elapsed()
            share = max(share, elapsed / max(elapsed + remaining, 1e-9))
        return min(share, 1.0)


__all__ = ["RunProgress", "warmup_cosine"]
