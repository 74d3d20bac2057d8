"""`bench.report`: the tables it makes from bench results, and the files it writes them into."""

from __future__ import annotations

import json
from pathlib import Path

from bench.report import (
    _listed,
    glance_table,
    gpu_speed_table,
    int8_table,
    main,
    peers_table,
    pipeline_ceiling_table,
    region_closing_heldout_table,
)


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


def _train_reference_result(heldout_ap: dict, heldout_map: float) -> dict:
    return {
        "machine": {"date": "2026-11-30T19:47:13+00:00", "cpu": "AMD EPYC", "cores": 2, "command": "python -m bench.train_reference"},
        "training_hardware": "NVIDIA H200 (141 GB), 16 CPU cores; torch 2.11.0+cu130",
        "checkpoint": "runs/synthetic-gpu/checkpoints/best.ckpt", "config": "train/configs/synthetic.yaml",
        "epoch": 19, "global_step": 5120, "train_wall_seconds": 329.0,
        "metrics": {"ap50/truck": 0.97, "ap/truck": 0.76, "map_50": 0.97, "map": 0.76},
        "hyper_parameters": {"backbone": "resnet18", "fpn_channels": 64, "head_channels": 64, "object_stride": 2},
        "heldout": {"scene": {"size_px": 4096, "seed": 4242}, "map@0.5": heldout_map, "map@[.5:.95]": 0.6,
                    "classes": {c: {"ap@0.5": v} for c, v in heldout_ap.items()},
                    "region_closing_m": 2.0,
                    "regions_without_closing": {"earth_berm": {"predicted": 49, "ap@0.5": 0.811}}},
    }


def _glance_peers() -> dict:
    """Three systems whose every number differs, so a value read from the wrong place shows."""
    peers = _peers_result("synthetic_reference", "synthetic")
    peers["machine"]["date"] = "2026-11-22T03:30:30+00:00"
    fast_provenance = {"backbone": "mobilenet_v3_large", "fpn_channels": 32, "head_channels": 32, "stride": 4}
    peers["systems"] = {"reference": peers["systems"]["reference"],
                        "fast": {"model": "fast.onnx", "provenance": fast_provenance},
                        "yolo_sahi": peers["systems"]["yolo_sahi"]}
    peers["accuracy"] = {
        "reference": {"map@0.5": 0.7, "map@[.5:.95]": 0.5, "classes": {"truck": {"ap@0.5": 0.71}, "earth_berm": {"ap@0.5": 0.72}}},
        "fast": {"map@0.5": 0.4, "map@[.5:.95]": 0.2, "classes": {"truck": {"ap@0.5": 0.41}, "earth_berm": {"ap@0.5": 0.42}}},
        "yolo_sahi": {"map@0.5": 0.3, "map@[.5:.95]": 0.1, "classes": {"truck": {"ap@0.5": 0.0}, "earth_berm": {"ap@0.5": 0.32}}},
    }
    peers["speed"] = {"reference": {"mpx_per_s": 0.415, "vs_yolo_sahi": 0.169},
                      "fast": {"mpx_per_s": 1.629, "vs_yolo_sahi": 0.662},
                      "yolo_sahi": {"mpx_per_s": 2.459, "vs_yolo_sahi": 1.0}}
    return peers


def _speed(mpx: float, date: str = "2026-11-21T19:20:28+00:00") -> dict:
    return {"machine": {"date": date, "cpu": "AMD EPYC", "cores": 2}, "mpx_per_s": {"pipeline": mpx, "onnxruntime": 9.9}}


def test_glance_takes_the_reference_from_train_reference_and_the_peers_from_peers():
    table = glance_table(_train_reference_result({"earth_berm": 0.926, "truck": 0.98}, 0.953), _glance_peers(),
                         infer_speed=_speed(0.441), infer_speed_fast=_speed(1.489))
    lines = table.splitlines()
    assert lines[0] == "| held-out AP@0.5 | ours, reference (resnet18) | ours, fast (mobilenet_v3_large) | YOLO + SAHI (yolo11n) |"
    # objects before regions, whatever order the results list them in
    assert lines[2] == "| truck | 0.980 | 0.410 | 0.000 |"
    assert lines[3] == "| earth_berm | 0.926 | 0.420 | 0.320 |"
    assert "| **mAP@0.5** | **0.953** | **0.400** | **0.300** |" in lines
    assert "| whole pipeline Mpx/s (`bench.peers.compare`, median) | 0.415 | 1.629 | 2.459 |" in lines
    assert "| whole pipeline Mpx/s (`bench.infer_speed`, median) | 0.441 | 1.489 |  |" in lines
    note = lines[-1]
    assert note.startswith("One held-out 4096² synthetic scene (seed 4242)")
    assert "trained on NVIDIA H200 (141 GB), 16 CPU cores and" in note and "torch" not in note
    assert "AMD EPYC (2 cores, CPU only; 2026-11-21 and 2026-11-22)" in note
    # peers.json timed the reference network with weights that score 0.7, not the shipped 0.953
    assert note.endswith("the reference's `bench.peers.compare` speed is its network's, measured with other weights "
                         "of it.")


def test_glance_names_each_machine_when_the_speeds_come_from_two():
    table = glance_table(_train_reference_result({"earth_berm": 0.926, "truck": 0.98}, 0.953), _glance_peers(),
                         infer_speed={**_speed(1.089, "2026-12-03T12:32:39+00:00"),
                                      "machine": {"date": "2026-12-03T12:32:39+00:00", "cpu": "Intel Xeon"}},
                         infer_speed_fast=_speed(1.489))
    note = table.splitlines()[-1]
    assert ("the other columns and the `bench.peers.compare` speeds are on AMD EPYC (2 cores, CPU only; 2026-11-22), "
            "the `bench.infer_speed` speeds on AMD EPYC and Intel Xeon (2026-11-21 and 2026-12-03)") in note


def test_glance_says_nothing_of_other_weights_when_the_peers_timed_the_shipped_model():
    peers = _glance_peers()
    note = glance_table(_train_reference_result({"truck": 0.71, "earth_berm": 0.72}, 0.7), peers).splitlines()[-1]
    assert note.endswith("(2 cores, CPU only; 2026-11-22).") and "other weights" not in note
    assert not any("bench.infer_speed" in line for line in glance_table(
        _train_reference_result({"truck": 0.71}, 0.7), peers).splitlines())


def test_glance_names_another_network_and_another_scene():
    result = _train_reference_result({"truck": 0.9}, 0.9)
    result["hyper_parameters"]["object_stride"] = 4
    result["heldout"]["scene"] = {"size_px": 8192, "seed": 99}
    note = glance_table(result, _glance_peers()).splitlines()[-1]
    assert "(8192², seed 99, for the reference; 4096², seed 4242, for the others)" in note
    assert note.endswith("measured with another network (resnet18, FPN/heads 64/64, objects at stride 2, "
                         "group-norm heads).")
    # The same widths and stride, but the shipped heads have batch norm and the timed file (no record) group norm.
    result = _train_reference_result({"truck": 0.9}, 0.9)
    result["hyper_parameters"]["head_norm"] = "batch"
    note = glance_table(result, _glance_peers()).splitlines()[-1]
    assert note.endswith("measured with another network (resnet18, FPN/heads 64/64, objects at stride 2, "
                         "group-norm heads).")


def test_region_closing_heldout_lists_each_radius_once_in_order():
    at_two = _train_reference_result({"earth_berm": 0.926}, 0.96)
    at_two["heldout"]["classes"]["earth_berm"]["predicted"] = 45
    at_six = _train_reference_result({"earth_berm": 0.87}, 0.95)
    at_six["heldout"]["classes"]["earth_berm"]["predicted"] = 47
    at_six["heldout"]["region_closing_m"] = 6.0
    at_six["heldout"]["regions_without_closing"]["earth_berm"]["ap@0.5"] = 0.5  # the first file's wins
    lines = region_closing_heldout_table(at_two, at_six).splitlines()
    assert lines[2] == "| closing | earth_berm AP@0.5 | earth_berm pieces |"
    rows = lines[4:]
    assert rows == ["| none | 0.811 | 49 |", "| 2 m | 0.926 | 45 |", "| 6 m | 0.870 | 47 |"]


def _write(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))


def test_main_rewrites_every_block_in_the_readme_and_the_docs(tmp_path):
    results = tmp_path / "bench" / "results"
    _write(results / "train_reference.json", _train_reference_result({"truck": 0.98}, 0.953))
    _write(results / "peers.json", _glance_peers())
    _write(results / "synth_scale.json", {
        "machine": {"date": "2026-11-21T14:48:42", "cpu": "AMD EPYC", "cores": 2, "memory_gib": 23.5,
                    "command": "python -m bench.synth_scale"},
        "results": [{"size_px": 2048, "megapixels": 4.2, "seconds": 2.3, "mpx_per_s": 1.86,
                     "peak_rss_mib": 387.3, "file_mib": 7.2}]})
    _write(tmp_path / "README.md", "# top\n<!-- bench:glance -->\nstale\n<!-- /bench:glance -->\nkept text\n")
    _write(tmp_path / "docs" / "synthetic.md", "intro\n<!-- bench:synth_scale -->\nold\n<!-- /bench:synth_scale -->\n")
    # a block in a second docs file, a block whose result does not exist, and text around both
    # and markers quoted inside a sentence, which are text, not a block
    quoted = "tables sit between `<!-- bench:synth_scale -->` and `<!-- /bench:synth_scale -->`\n"
    _write(tmp_path / "docs" / "benchmarks.md", quoted + "a\n<!-- bench:infer_memory -->\nkeep me\n<!-- /bench:infer_memory -->\n"
           "b\n<!-- bench:synth_scale -->\n<!-- /bench:synth_scale -->\nc\n")
    _write(tmp_path / "docs" / "notes.txt", "<!-- bench:synth_scale -->\nnot markdown\n<!-- /bench:synth_scale -->\n")

    changed = main(tmp_path)

    assert sorted(p.name for p in changed) == ["README.md", "benchmarks.md", "synthetic.md"]
    readme = (tmp_path / "README.md").read_text()
    assert "stale" not in readme and readme.startswith("# top\n<!-- bench:glance -->\n| held-out AP@0.5 |")
    assert "| truck | 0.980 | 0.410 | 0.000 |" in readme and readme.endswith("<!-- /bench:glance -->\nkept text\n")
    row = "| 2048 × 2048 | 4.2 | 2.3 | 1.86 | 387.3 | 7.2 |"
    synthetic = (tmp_path / "docs" / "synthetic.md").read_text()
    assert "old" not in synthetic and row in synthetic and synthetic.startswith("intro\n<!-- bench:synth_scale -->\nMeasured 2026-11-21")
    benchmarks = (tmp_path / "docs" / "benchmarks.md").read_text()
    assert benchmarks.startswith(quoted + "a\n<!-- bench:infer_memory -->\nkeep me\n<!-- /bench:infer_memory -->\nb\n")
    assert row in benchmarks and benchmarks.endswith("<!-- /bench:synth_scale -->\nc\n")
    assert "not markdown" in (tmp_path / "docs" / "notes.txt").read_text()
    assert main(tmp_path) == []  # a second run finds every table already written


def test_pipeline_ceiling_table_shows_each_run_and_the_ratios():
    run = {"wall_s": 4.0, "cpu_s": 6.0, "mpx_per_s": 16.78, "mpx_per_s_per_core": 11.18,
           "split_seconds": {"read": 0.1, "model": 1.25, "decode_stitch": 2.5, "write": 0.75}}
    result = {"machine": {"date": "2026-12-02T01:00:00", "cpu": "AMD EPYC", "cores": 2,
                          "command": "python -m bench.pipeline_ceiling"},
              "model": {"like": "checkpoints/reference.onnx", "tile": 1024, "overlap": 160, "stride": 2, "batch": 4},
              "runs": 3,
              "results": [{"size_px": 8192, "megapixels": 67.11, "raw_read": {"wall_s": 0.8, "mpx_per_s_per_core": 80.0},
                           "pipeline": {"1": run, "2": {**run, "wall_s": 3.0, "mpx_per_s": 22.37}}}],
              "pipeline_mpx_per_s_per_core": 11.18, "raw_read_mpx_per_s_per_core": 80.0, "speedup_2_workers_vs_1": 1.333,
              "pipeline_vs_raw_read": 0.14}
    table = pipeline_ceiling_table(result)
    rows = [line for line in table.splitlines() if line.startswith("| 8192²")]
    assert rows[0] == "| 8192² | raw rasterio read of the tiles, 1 thread | 0.80 | 83.9 | 80.0 | | |"
    assert rows[1] == "| 8192² | pipeline, serial (`--workers 1`) | 4.00 | 16.8 | 11.2 |  | 0.10 / 1.25 / 2.50 / 0.75 |"
    assert rows[2].startswith("| 8192² | pipeline, `--workers 2` | 3.00 | 22.4 |")
    assert "(**0.14×**); 2 workers against 1: **1.333×**." in table  # a result from before host figures

    result["results"][0]["model_alone"] = {"wall_s": 1.0, "cpu_s": 2.0}
    result["results"][0]["reader"] = {"threads": 2, "wall_s": 0.5, "mpx_per_s_per_core": 70.0}
    run["host_mpx_per_s_per_core"] = 16.78
    result.update(host_mpx_per_s_per_core=16.78, host_vs_raw_read=0.21)
    rows = [line for line in pipeline_ceiling_table(result).splitlines() if line.startswith("| 8192²")]
    assert rows[1] == "| 8192² | the pipeline's tile reader, 2 threads | 0.50 | 134.2 | 70.0 | | |"
    assert rows[2] == "| 8192² | free model alone on the tiles (ONNX Runtime) | 1.00 | 67.1 | 33.6 | | |"
    assert rows[3] == "| 8192² | pipeline, serial (`--workers 1`) | 4.00 | 16.8 | 11.2 | 16.8 | 0.10 / 1.25 / 2.50 / 0.75 |"
    assert "(**0.14×**), host 16.78 (**0.21×**); 2 workers" in pipeline_ceiling_table(result)


def test_dates_are_listed_as_a_reader_writes_them():
    assert [_listed(d) for d in (["a"], ["a", "b"], ["a", "b", "c"])] == ["a", "a and b", "a, b and c"]


def test_int8_table_puts_the_two_precisions_side_by_side_and_says_which_way_map_moved():
    def system(size, maps, pipeline, alone):
        scenes = [{"scene": name, "map@0.5": v} for name, v in zip(("0.5 m", "0.7 m"), maps, strict=True)]
        return {"size_mb": size, "scenes": scenes, "mean_map@0.5": sum(maps) / 2, "mean_map@[.5:.95]": 0.8,
                "mpx_per_s": {"pipeline": pipeline, "onnxruntime": alone}}
    result = {"machine": {"date": "2026-12-03T09:00:00", "cpu": "AMD EPYC", "cores": 2, "command": "python -m bench.int8"},
              "checkpoint": "checkpoints/reference.ckpt", "heldout_size_px": 2048, "runs": 3,
              "speed_scene": {"size_px": 4096, "megapixels": 16.78},
              "systems": {"fp32": system(47.7, [1.0, 0.95], 0.5, 0.6), "int8": system(12.2, [1.0, 0.93], 1.0, 1.5)},
              "map@0.5_drop": 0.01, "map_drop_allowed": 0.01, "target_met": True,
              "speedup": {"pipeline": 2.0, "onnxruntime": 2.5}}
    table = int8_table(result)
    assert "| | float32 | int8 |" in table and "| file (MB) | 47.7 | 12.2 |" in table
    assert "| mAP@0.5, 0.7 m | 0.950 | 0.930 |" in table and "| **mAP@0.5, mean** | **0.975** | **0.965** |" in table
    assert "| whole `infer run` pipeline, Mpx/s | 0.500 | 1.000 |" in table
    assert "2.00× the whole pipeline's speed, 2.50× ONNX Runtime's alone; mean mAP@0.5 0.010 lower" in table
    assert table.endswith("target met.")
    result.update({"map@0.5_drop": -0.011, "target_met": False})
    assert "mean mAP@0.5 0.011 higher (allowed: 0.01 lower), target missed." in int8_table(result)
