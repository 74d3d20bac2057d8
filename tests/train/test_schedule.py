"""The learning-rate schedule: its shape, and a run bounded by time that still warms up and decays in full."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import run_cli
from tests.train.test_training import FAST
from train.schedule import warmup_cosine


def test_warmup_rises_linearly_then_a_cosine_falls_to_the_floor():
    assert warmup_cosine(0.0, 0.1, 0.02) == 0.0
    assert warmup_cosine(0.05, 0.1, 0.02) == pytest.approx(0.5)
    assert warmup_cosine(0.1, 0.1, 0.02) == pytest.approx(1.0)
    assert warmup_cosine(0.55, 0.1, 0.02) == pytest.approx(0.51)  # half way through the decay
    assert warmup_cosine(1.0, 0.1, 0.02) == pytest.approx(0.02)
    assert warmup_cosine(1.7, 0.1, 0.02) == pytest.approx(0.02)  # past the end it stays at the floor
    assert warmup_cosine(0.0, 0.0, 0.02) == pytest.approx(1.0)  # no warm-up
    decay = [warmup_cosine(p / 100, 0.1, 0.02) for p in range(10, 101)]
    assert np.all(np.diff(decay) < 0)


def test_a_run_bounded_by_time_warms_up_and_decays_within_its_minutes(tiny_dataset, tmp_path):
    """`max_epochs` far beyond what the time allows: the schedule follows the time, so the learning rate
    reaches its peak early and ends near its floor (planned by steps alone it would still be warming up)."""
    config = Path(__file__).parents[2] / "train" / "configs" / "quick.yaml"
    args = ["fit", "--config", str(config), "--data.dataset", str(tiny_dataset), *FAST[:-2],
            "--trainer.max_epochs", "100000", "--trainer.max_time", "00:00:00:15", "--data.samples_per_epoch", "4",
            "--trainer.limit_val_batches", "0", "--trainer.log_every_n_steps", "1", "--model.warmup_fraction", "0.1"]
    result = run_cli("train", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    with open(next((tmp_path / "runs" / "quick" / "csv").rglob("metrics.csv")), newline="") as f:
        rows = list(csv.DictReader(f))
    column = next(name for name in rows[0] if name.startswith("lr-AdamW"))
    rates = [float(row[column]) for row in rows if row.get(column)]
    assert len(rates) >= 10, f"only {len(rates)} steps in 15 s"
    peak = max(rates)
    assert peak > 0.9 * 0.002  # quick.yaml's model.lr
    assert rates.index(peak) < len(rates) // 2
    assert rates[-1] < 0.3 * peak
