"""`bench.report`: the tables it makes from bench results, and the files it writes them into."""

from __future__ import annotations

import json
from pathlib import Path

from bench.report import (
    _listed,
    glance_table,
    gpu_speed_table,
    heldout_suite_table,
    infer_speed_table,
    int8_table,
    main,
    peers_table,
    pipeline_ceiling_table,
    png_encoding_table,
    real_trees_curve_table,
    real_trees_table,
    region_closing_heldout_table,
)


def _figure(mean: float, worst: float | None = None) -> dict:
    return {"mean": mean, "worst": mean if worst is None else worst}


def _peers_result(reference_dataset: str | None, yolo_dataset: str | None) -> dict:
    """The reference, the fast model and two YOLO peers, whose every number differs, so a value read from the
    wrong place shows."""
    provenance = {"backbone": "resnet18", "fpn_channels": 64, "head_channels": 64, "stride": 2}
    fast = {"backbone": "mobilenet_v3_large", "fpn_channels": 32, "head_channels": 32, "stride": 4}
    if reference_dataset:
        provenance["dataset"] = fast["dataset"] = reference_dataset

    def yolo(model: str, epochs: int) -> dict:
        training = {"model": model, "epochs": epochs, "train_chips": 3072, "imgsz": 256, "batch": 8,
                    "train_wall_seconds": 1200.0, "chips_seen": 3072 * epochs}
        if yolo_dataset:
            training["dataset"] = yolo_dataset
        return {"model": model, "onnx": "best.onnx", "training": training}

    def scores(storehouse: float, truck: float, worst_truck: float, mean: float) -> dict:
        return {"map@0.5": _figure(mean, mean - 0.1), "map@[.5:.95]": _figure(mean / 2),
                "classes": {"truck": {"ap@0.5": _figure(truck, worst_truck)},
                            "storehouse": {"ap@0.5": _figure(storehouse)}}}

    names = ("reference", "fast", "yolo11n_sahi", "yolo11n-obb_sahi")
    seconds = dict(zip(names, (40.0, 10.0, 8.0, 16.0), strict=True))
    return {
        "machine": {"date": "2026-12-03T19:08:40", "cpu": "Intel Xeon", "cores": 2,
                    "command": "python -m bench.peers.compare"},
        "suite": {"size_px": 2048, "scenes": ["0.5 m", "0.3 m", "second date"]},
        "speed_scene": {"size_px": 4096, "seed": 4242}, "tile": 1024, "overlap": 160, "batch": 4,
        "score_threshold": 0.05, "runs": 3,
        "systems": {"reference": {"model": "reference.onnx", "provenance": provenance, "training": None},
                    "fast": {"model": "fast.onnx", "provenance": fast, "training": "20 min on this CPU"},
                    "yolo11n_sahi": yolo("yolo11n.yaml", 4), "yolo11n-obb_sahi": yolo("yolo11n-obb.yaml", 3)},
        "accuracy": {"reference": scores(0.99, 0.98, 0.97, 0.95), "fast": scores(0.81, 0.61, 0.41, 0.55),
                     "yolo11n_sahi": scores(0.72, 0.0, 0.0, 0.35), "yolo11n-obb_sahi": scores(0.82, 0.52, 0.5, 0.45)},
        "speed": {n: {"mpx_per_s": round(16.78 / t, 3), "speed_vs": {peer: seconds[peer] / t for peer in names[2:]}}
                  for n, t in seconds.items()},
    }


def test_peers_table_names_each_systems_training_data():
    lines = peers_table(_peers_result("synthetic_reference", "synthetic_reference")).splitlines()
    header = next(line for line in lines if line.startswith("| AP@0.5"))
    assert "ours, reference (resnet18, FPN/heads 64/64, objects at stride 2, trained on synthetic_reference)" in header
    assert header.endswith("| yolo11n + SAHI, trained on synthetic_reference | yolo11n-obb + SAHI, trained on "
                           "synthetic_reference |")
    training = lines[-1]
    assert "ours, reference: training not recorded; ours, fast: 20 min on this CPU;" in training
    assert "`yolo11n-obb` from random init (Ultralytics' defaults), 3 epochs of 3072 chips of 256 px, 9216 chips seen" \
        in training


def test_peers_table_gives_the_mean_and_worst_scene_and_the_speed_against_each_peer():
    lines = peers_table(_peers_result(None, None)).splitlines()
    assert "(resnet18, FPN/heads 64/64, objects at stride 2) |" in lines[2] and "| yolo11n + SAHI |" in lines[2]
    assert "3 held-out 2048² synthetic scenes seen by no model (0.5 m, 0.3 m and second date)" in lines[0]
    # objects in the order of the classes, whatever order the results list them in
    assert lines[4] == "| storehouse | 0.990 (0.990) | 0.810 (0.810) | 0.720 (0.720) | 0.820 (0.820) |"
    assert lines[5] == "| truck | 0.980 (0.970) | 0.610 (0.410) | 0.000 (0.000) | 0.520 (0.500) |"
    assert "| **mAP@0.5** | **0.950 (0.850)** | **0.550 (0.450)** | **0.350 (0.250)** | **0.450 (0.350)** |" in lines
    assert "| speed vs yolo11n + SAHI | 0.20× | 0.80× | 1.00× | 0.50× |" in lines
    assert "| speed vs yolo11n-obb + SAHI | 0.40× | 1.60× | 2.00× | 1.00× |" in lines


def test_peers_table_gives_ours_writing_every_output_beside_the_geojson_alone():
    result = _peers_result(None, None)
    for name, seconds in (("reference", 50.0), ("fast", 12.0)):
        result["speed"][name]["every_output"] = {"mpx_per_s": round(16.78 / seconds, 3),
                                                 "speed_vs": {"yolo11n_sahi": 8.0 / seconds,
                                                              "yolo11n-obb_sahi": 16.0 / seconds}}
    lines = peers_table(result).splitlines()
    assert "| ours writing every output, Mpx/s | 0.336 | 1.398 |  |  |" in lines
    assert "| every output, vs yolo11n-obb + SAHI | 0.32× | 1.33× |  |  |" in lines
    assert "ours with `--outputs geojson`" in lines[0]
    assert "`--outputs geojson`" not in peers_table(_peers_result(None, None)).splitlines()[0]
    glance = glance_table(result).splitlines()
    assert "| ours writing every output, Mpx/s | 0.336 | 1.398 |  |  |" in glance
    assert "| scene to GeoJSON Mpx/s (4096², median) | 0.42 | 1.678 | 2.098 | 1.049 |" in glance
    assert "ours with `--outputs geojson`" in glance[-1]


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


def _speed(mpx: float, date: str = "2026-11-21T19:20:28+00:00") -> dict:
    return {"machine": {"date": date, "cpu": "AMD EPYC", "cores": 2}, "mpx_per_s": {"pipeline": mpx, "onnxruntime": 9.9}}


def test_glance_takes_every_column_from_peers():
    lines = glance_table(_peers_result("synthetic_reference", "synthetic_reference"),
                         infer_speed=_speed(1.089)).splitlines()
    assert lines[0] == ("| held-out AP@0.5 | ours, reference (resnet18) | ours, fast (mobilenet_v3_large) | "
                        "yolo11n + SAHI | yolo11n-obb + SAHI |")
    assert lines[2] == "| storehouse | 0.990 | 0.810 | 0.720 | 0.820 |"
    assert "| **mAP@0.5** | **0.950** | **0.550** | **0.350** | **0.450** |" in lines
    assert "| whole pipeline Mpx/s (4096², median) | 0.42 | 1.678 | 2.098 | 1.049 |" in lines
    note = lines[-1]
    assert note.startswith("Means over 3 held-out 2048² synthetic scenes no model trained on (0.5 m, 0.3 m and "
                           "second date)")
    assert "measured 2026-12-03 on Intel Xeon (2 cores, CPU only)" in note and "ours, fast: 20 min on this CPU" in note
    assert note.endswith("The reference's `infer run` pipeline alone: 1.089 Mpx/s (`bench.infer_speed`, AMD EPYC, "
                         "2026-11-21).")
    assert "infer_speed" not in glance_table(_peers_result(None, None))


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
    _write(results / "peers.json", _peers_result("synthetic_reference", None))
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
    assert "| truck | 0.980 | 0.610 | 0.000 | 0.520 |" in readme and readme.endswith("<!-- /bench:glance -->\nkept text\n")
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
    assert "A job of" not in pipeline_ceiling_table(result)  # a result from before the job was measured
    result["job"] = {"scenes": 3, "size_px": 8192, "wall_s": {"one_after_another": 15.0, "job": 12.5}, "speedup": 1.2}
    assert pipeline_ceiling_table(result).endswith(
        "A job of 3 scenes of 8192² with the free model, serial: one after another 15.00 s, as `infer run` does "
        "them (each scene's outputs written while the next one is detected) 12.50 s: **1.2×**.")
    result["one_worker_decodes_in"] = "a thread beside the model"
    assert "| 8192² | pipeline, one decoding thread (`--workers 1`) | 4.00 |" in pipeline_ceiling_table(result)
    assert "with the free model, one decoding thread: one after another" in pipeline_ceiling_table(result)


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


def test_infer_speed_table_shows_the_job_only_when_it_was_measured():
    result = {"machine": {"date": "2026-12-04T19:00:00", "cpu": "Intel(R) Xeon(R) Processor", "cores": 2,
                          "command": "python -m bench.infer_speed"},
              "scene_px": 4096, "megapixels": 16.78, "tile": 1024, "overlap": 160, "batch": 4, "runs": 3, "threads": 2,
              "model": {"backbone": "resnet18", "fpn_channels": 64, "head_channels": 64, "stride": 2},
              "median_seconds": {"pipeline": 14.0, "onnxruntime": 12.5, "pytorch_eager": 30.0},
              "mpx_per_s": {"pipeline": 1.2, "onnxruntime": 1.34, "pytorch_eager": 0.56},
              "pipeline_efficiency": 0.893, "onnxruntime_vs_pytorch": 2.4}
    assert "job" not in infer_speed_table(result)
    result.update(job={"scenes": 3, "median_seconds": 39.0, "mpx_per_s": 1.291}, job_efficiency=0.963)
    table = infer_speed_table(result).splitlines()
    assert table[5] == ("| `infer run` pipeline, a job of 3 such scenes (a scene written while the next is detected) "
                        "| 39.0 | 1.291 |")
    assert table[6].startswith("| ONNX Runtime alone, same tiles | 12.5 | 1.34 |")
    assert table[-1] == ("Pipeline efficiency (ORT alone time / pipeline time): **0.893**, of the job (its Mpx/s / "
                         "ORT alone's): **0.963**; ONNX Runtime vs PyTorch eager: **2.4×**.")


def test_real_trees_table_gives_each_systems_median_and_every_run_per_tile():
    def run(seed: int, test: float, alive: float, own: float, **trained) -> dict:
        return {"seed": seed, **trained, "test": {"truth": 37, "ap@0.5": test},
                "test_alive": {"truth": 9, "ap@0.5": alive}, "train_tile": {"truth": 61, "ap@0.5": own}}

    result = {"machine": {"date": "2026-12-06T18:00:00+00:00", "cpu": "AMD EPYC", "cores": 2,
                          "command": "python -m bench.real_trees"},
              "repeats": 3, "budget_min": 10.0, "train_tile": "OSBS_029", "test_tile": "SOAP_061",
              "systems": [{"system": "ours", "test_ap@0.5": 0.2, "test_alive_ap@0.5": 0.4, "train_tile_ap@0.5": 0.9,
                           "runs": [run(0, 0.1, 0.3, 0.8, steps=1200), run(1, 0.2, 0.4, 0.9, steps=1100),
                                    run(2, 0.25, 0.5, 0.95, steps=1300)]},
                          {"system": "peer", "test_ap@0.5": 0.03, "test_alive_ap@0.5": 0.05,
                           "train_tile_ap@0.5": 0.6,
                           "runs": [run(0, 0.03, 0.05, 0.6, epochs=900), run(1, 0.02, 0.04, 0.5, epochs=950),
                                    run(2, 0.04, 0.06, 0.7, epochs=1000)]},
                          {"system": "chance", "test_ap@0.5": 0.02, "test_alive_ap@0.5": 0.0, "train_tile_ap@0.5": 0.1,
                           "runs": [run(seed, 0.02, 0.0, 0.1) for seed in range(3)]}]}
    table = real_trees_table(result)
    assert "| SOAP_061, all 37 trees | SOAP_061, the 9 alive | OSBS_029 (its training tile, 61 trees) |" in table
    assert "| ours | 1200 steps | 0.200 (0.100, 0.200, 0.250) | 0.400 (0.300, 0.400, 0.500) | " \
           "0.900 (0.800, 0.900, 0.950) |" in table
    assert "| peer | 950 epochs | 0.030 (0.030, 0.020, 0.040) | 0.050 (0.050, 0.040, 0.060) | " \
           "0.600 (0.600, 0.500, 0.700) |" in table
    assert "| chance | untrained | 0.020 (0.020, 0.020, 0.020) |" in table
    assert "trained 3 times (seeds 0 to 2)" in table
    assert "commands below" not in table
    result["systems"][0].update(command="python -m bench.real_trees --add", measured_at="2026-12-06 19:00 UTC")
    table = real_trees_table(result)
    assert "`python -m bench.real_trees` and the commands below" in table
    assert table.endswith("- ours: `python -m bench.real_trees --add`, 2026-12-06 19:00 UTC")
    result["systems"][1]["runs"] += [run(3, 0.05, 0.07, 0.8, epochs=990), run(4, 0.01, 0.02, 0.4, epochs=970)]
    assert "trained 3 to 5 times (seeds 0 to 4, each row's runs in seed order)" in real_trees_table(result)
    assert "Run against run" not in real_trees_table(result)  # no peer of that name yet
    result["systems"][1]["system"] = "YOLO11n + SAHI"
    result["systems"][0]["system"] = "sitewatch ours"
    result["systems"].append({**result["systems"][0], "system": "sitewatch worse", "test_alive_ap@0.5": 0.1,
                              "runs": [run(0, 0.0, 0.0, 0.5)]})
    # ours' runs 0.1, 0.2, 0.25 (all 37) against the peer's 0.03, 0.02, 0.04, 0.05, 0.01: all 15 above;
    # living trees 0.3, 0.4, 0.5 against 0.05, 0.04, 0.06, 0.07, 0.02: all 15 as well
    assert ("Run against run, sitewatch ours scores above YOLO11n + SAHI in 15 of 15 pairs on all 37 trees and in 15 of 15 "
            "on the 9 alive.") in real_trees_table(result)
    result["systems"][0]["runs"][0]["test"]["ap@0.5"] = 0.035  # above 0.03, 0.02, 0.01 only: 3 of 5
    assert "in 13 of 15 pairs on all 37 trees" in real_trees_table(result)


def test_real_trees_curve_table_gives_each_runs_scores_by_step_then_its_last_weights():
    def run(seed: int, curve: list[tuple[int, float, float]], last: tuple[int, float, float]) -> dict:
        return {"seed": seed, "steps": last[0], "test": {"ap@0.5": last[1]}, "train_tile": {"ap@0.5": last[2]},
                "curve": [{"step": step, "test": test, "test_alive": 0.0, "train_tile": own}
                          for step, test, own in curve]}

    result = {"machine": {"date": "2026-12-06T21:00:00+00:00", "cpu": "AMD EPYC", "cores": 2,
                          "command": "python -m bench.real_trees --curve-every 100"},
              "train_tile": "OSBS_029", "test_tile": "SOAP_061",
              "systems": [{"system": "ours", "runs": [run(0, [(100, 0.01, 0.2), (200, 0.04, 0.5)], (250, 0.03, 0.6)),
                                                      run(1, [(100, 0.02, 0.3)], (180, 0.05, 0.4))]},
                          {"system": "peer", "runs": [{"seed": 0, "epochs": 9}]}]}
    table = real_trees_curve_table(result).splitlines()
    assert table[2:5] == ["ours:", "", "| step | seed 0 | seed 1 |"]
    assert table[6:] == ["| 100 | 0.010 / 0.200 | 0.020 / 0.300 |", "| 200 | 0.040 / 0.500 | — |",
                         "| last (250, 180) | 0.030 / 0.600 | 0.050 / 0.400 |"]
    assert "peer" not in "\n".join(table)


def test_heldout_suite_reports_each_scene_the_worst_and_berms_by_sun_angle():
    scores = {"earth_berm": {"ap@0.5": 0.787, "ap@[.5:.95]": 0.7, "precision": 0.81, "recall": 0.8},
              "storehouse": {"ap@0.5": 0.999, "ap@[.5:.95]": 0.82, "precision": 0.96, "recall": 1.0}}
    result = {"machine": {"date": "2026-12-06T00:00:00", "command": "python -m bench.heldout_suite"},
              "model": "m.onnx", "size_px": 2048, "worst": scores, "targets_missed": ["earth_berm ap@0.5 0.787 < 0.95"],
              "scenes": [{"scene": "0.7 m", "classes": scores, "map@0.5": 0.936}],
              "storehouse_length_ratio": {"0-30 m": {"count": 0, "median_ratio": None},
                                          ">= 45 m": {"count": 3, "median_ratio": 1.034}},
              "berm_found_by_sun_angle": {"0-10 deg": {"pieces": 15, "length_m": 650.1, "found_share": 0.493},
                                          "10-20 deg": {"pieces": 0, "length_m": 0.0, "found_share": None},
                                          "45-90 deg": {"pieces": 48, "length_m": 2978.7, "found_share": 1.0}}}
    lines = heldout_suite_table(result).splitlines()
    assert "| 0.7 m | 0.787 / 0.81 | 0.999 / 0.96 (0.82) | 0.936 |" in lines
    assert "| **worst** | **0.787 / 0.81** | **0.999 / 0.96 (0.82)** | |" in lines
    assert lines[-3].endswith("median over the 1 scenes): >= 45 m 1.034 (3).")
    assert lines[-1].endswith("(the 1 scenes together): 0-10 deg 49% of 650 m (15 pieces); "
                              "45-90 deg 100% of 2979 m (48 pieces).")


def test_png_encoding_table_gives_each_encoder_against_the_first():
    machine = {"date": "2026-12-07T16:00:00+00:00", "cpu": "CPU", "cores": 2, "command": "python -m bench.png_encoding"}
    result = {"machine": machine, "picture_px": [2048, 1024], "runs": 5,
              "results": [{"encoder": "Pillow", "seconds": 0.4, "bytes": 8_000_000},
                          {"encoder": "ours", "seconds": 0.1, "bytes": 8_400_000}]}
    table = png_encoding_table(result)
    assert "a 2048 × 1024 overview's imagery, median of 5 runs" in table
    assert "| Pillow | 0.400 | 8.00 | 1.00× | 1.000× |" in table
    assert "| ours | 0.100 | 8.40 | 0.25× | 1.050× |" in table
