"""`bench.train_reference`'s bookkeeping: training time over resumed sessions and fine-tuning chains."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from bench.report import train_reference_table
from bench.train_reference import earlier_runs, training_sessions, validation_curve


def _session(run: Path, version: int, epochs: range, started: float, seconds: float) -> None:
    folder = run / "csv" / f"version_{version}"
    folder.mkdir(parents=True)
    (folder / "hparams.yaml").write_text("lr: 0.002\n")
    (folder / "metrics.csv").write_text("epoch,step,val/map_50\n" + "".join(f"{e},{e},0.5\n" for e in epochs))
    os.utime(folder / "hparams.yaml", (started, started))
    os.utime(folder / "metrics.csv", (started + seconds, started + seconds))


def _checkpoint(run: Path, init_weights: str | None) -> Path:
    path = run / "checkpoints" / "best.ckpt"
    path.parent.mkdir(parents=True)
    torch.save({"hyper_parameters": {"init_weights": init_weights}}, path)
    return path


def test_a_fine_tuned_run_counts_the_sessions_of_the_runs_it_started_from(tmp_path):
    first, second, third = tmp_path / "s4", tmp_path / "s2", tmp_path / "s2b"
    _session(first, 0, range(0, 12), 1000.0, 3500.0)
    _session(first, 1, range(12, 34), 9000.0, 7000.0)  # resumed with --ckpt_path
    _session(second, 0, range(0, 6), 20000.0, 4000.0)
    _session(third, 0, range(0, 2), 30000.0, 600.0)
    first_ckpt = _checkpoint(first, None)
    second_ckpt = _checkpoint(second, str(first_ckpt))
    third_ckpt = _checkpoint(third, str(second_ckpt))

    assert [s["epochs"] for s in training_sessions(first)] == [[0, 11], [12, 33]]
    assert [s["wall_seconds"] for s in training_sessions(first)] == [3500.0, 7000.0]
    checkpoint = torch.load(third_ckpt, weights_only=False)
    assert earlier_runs(checkpoint) == [second, first]
    assert earlier_runs(torch.load(first_ckpt, weights_only=False)) == []
    # A chain whose start was deleted stops there instead of failing.
    first_ckpt.unlink()
    assert earlier_runs(checkpoint) == [second]


def test_report_says_a_model_was_fine_tuned_from_another_run(tmp_path):
    sessions = [{"log": str(tmp_path / run / "csv" / f"version_{v}"), "epochs": [0, 1], "wall_seconds": 1800.0}
                for run, v in (("s4", 0), ("s4", 1), ("s2", 0))]
    result = {"machine": {"cpu": "AMD EPYC", "cores": 2}, "config": "x.yaml", "training_command": "python -m train fit …",
              "global_step": 768, "epoch": 4, "train_wall_seconds": 5400.0, "training_sessions": sessions,
              "metrics": {"ap50/truck": 0.5, "ap/truck": 0.2, "map_50": 0.5, "map": 0.2}}
    table = train_reference_table(result)
    assert ("trained in 1.50 h over 3 sessions in 2 runs (fine-tuned with `--model.init_weights`) "
            "(the last run 768 steps, best checkpoint at epoch 5)") in table
    result["training_sessions"] = sessions[:2]
    assert ("trained 768 steps (best checkpoint at epoch 5) in 1.50 h over 2 sessions (resumed with `--ckpt_path`)"
            in train_reference_table(result))


def test_report_names_the_gpu_a_run_trained_on_and_short_runs_in_minutes():
    result = {"machine": {"cpu": "AMD EPYC", "cores": 2}, "config": "x.yaml", "training_command": "python -m train fit …",
              "training_hardware": "NVIDIA H200", "global_step": 5120, "epoch": 19, "train_wall_seconds": 329.0,
              "training_sessions": [{"log": "runs/gpu/csv/version_0", "epochs": [0, 19], "wall_seconds": 329.0}],
              "metrics": {"ap50/truck": 0.97, "ap/truck": 0.76, "map_50": 0.97, "map": 0.76}}
    table = train_reference_table(result)
    assert "trained 5120 steps (best checkpoint at epoch 20) in 5.5 min on NVIDIA H200, scored by" in table
    assert "CPU only" not in table
    del result["training_hardware"]
    assert "in 5.5 min on AMD EPYC (2 cores, CPU only)" in train_reference_table(result)


def test_the_validation_curve_keeps_strict_and_loose_ap_but_not_losses(tmp_path):
    folder = tmp_path / "run" / "csv" / "version_0"
    folder.mkdir(parents=True)
    (folder / "hparams.yaml").write_text("lr: 0.002\n")
    (folder / "metrics.csv").write_text(
        "epoch,step,train/loss,val/ap/storehouse,val/ap50/storehouse,val/iou/earth_berm,val/loss,val/map,val/map_50\n"
        "0,10,1.5,,,,,,\n"
        "1,20,,0.65,0.99,0.8,0.9,0.69,0.917\n")
    assert validation_curve(tmp_path / "run") == [
        {"epoch": 2, "ap/storehouse": 0.65, "ap50/storehouse": 0.99, "map": 0.69, "map_50": 0.917}]
