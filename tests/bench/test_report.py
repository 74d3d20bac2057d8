"""`bench.report`'s peers table names what each system was trained on, where the result recorded it."""

from __future__ import annotations

from bench.report import gpu_speed_table, peers_table


def _peers_result(reference_dataset: str | None, yolo_dataset: str | None) -> dict:
    classes = {"truck": {"ap@0.5": 0.5, "ap@[.5:.95]": 0.2}}
    provenance = {"backbone": "resnet18", "fpn_channels": 64, "head_channels": 64, "stride": 2}
    training = {"model": "yolo11n.yaml", "epochs": 12, "train_chips": 1014, "imgsz": 256, "batch": 8,
                "train_wall_seconds": 1430.3}
    if reference_dataset:
        provenance["dataset"] = reference_dataset
    if yolo_dataset:
        training["dataset"] = yolo_dataset
    return {
        "machine": {"date": "2026-11-21T19:08:40", "cpu": "AMD EPYC", "cores": 2, "command": "python -m bench.peers.compare"},
        "scene": {"size_px": 4096, "seed": 4242}, "tile": 1024, "overlap": 160, "batch": 4, "score_threshold": 0.05,
        "systems": {"reference": {"model": "reference.onnx", "provenance": provenance},
                    "yolo_sahi": {"model": "yolo11n.yaml", "training": training}},
        "accuracy": {name: {"map@0.5": 0.5, "map@[.5:.95]": 0.2, "classes": classes} for name in ("reference", "yolo_sahi")},
        "speed": {name: {"mpx_per_s": 1.0, "vs_yolo_sahi": 1.0} for name in ("reference", "yolo_sahi")},
    }


def test_peers_table_names_each_systems_training_data():
    table = peers_table(_peers_result("synthetic_reference", "synthetic"))
    header = next(line for line in table.splitlines() if line.startswith("| AP@0.5"))
    assert "ours, reference (resnet18, FPN/heads 64/64, objects at stride 2, trained on synthetic_reference)" in header
    assert "YOLO + SAHI (yolo11n, trained on synthetic)" in header


def test_peers_table_reads_results_that_did_not_record_the_training_data():
    header = next(line for line in peers_table(_peers_result(None, None)).splitlines() if line.startswith("| AP@0.5"))
    assert "(resnet18, FPN/heads 64/64, objects at stride 2)" in header and "YOLO + SAHI (yolo11n) |" in header


def test_gpu_speed_table_gives_each_variant_against_fp32_eager():
    rows = [{"variant": name, "batch": 32, "chip": 256, "ms_per_step": ms, "chips_per_s": 32000 / ms}
            for name, ms in (("fp32 eager", 40.0), ("bf16", 20.0))]
    result = {"machine": {"date": "2026-11-30T19:17:33", "cpu": "Xeon", "cores": 16, "command": "python -m bench.gpu_speed"},
              "device": "NVIDIA H200", "torch": "2.11.0", "onnxruntime_providers": ["CPUExecutionProvider"],
              "training_step": rows,
              "inference": [{"variant": "fp32 eager", "batch": 8, "tile": 1024, "ms_per_batch": 20.0, "mpx_per_s": 419.4}],
              "loader": {"workers": 14, "batch": 32, "chips_per_s": 3000.0}}
    lines = gpu_speed_table(result).splitlines()
    assert "| training step | bf16 | 32 × 256² | 20.0 | 1600 chips/s | 2.00× |" in lines
    assert "| inference | fp32 eager | 8 × 1024² | 20.0 | 419 Mpx/s | 1.00× |" in lines
    assert "CPUExecutionProvider" in lines[0]
