"""Real aerial trees: our recipes and YOLO11n + SAHI, from random init, on the same tile for the same budget.

`python -m bench.real_trees --budget-min 10` (after `make data-trees` and `make bench`'s peers install):

1. `train import voc` of DeepForest's NEON tile OSBS_029 (61 hand-drawn tree boxes, 0.1 m, PNG);
2. each system trains on that one tile for the same wall-clock budget on this machine, random init,
   with its own recipe (ours: `train fit --trainer.max_time`; YOLO: Ultralytics' `time`), and keeps its
   last weights (the only validation image would be the training tile);
3. each predicts SOAP_061 (37 trees: 9 labeled Alive, 28 Dead), and its own training tile, ours with
   `infer run`, YOLO through SAHI;
4. `infer evaluate` scores both: on SOAP_061 counting every tree, and its 9 living ones alone (the
   training tile has no dead trees), and on the training tile (how well each learned what it saw).

Each system trains `--repeats` times with seeds 0, 1, …: one 10-minute run of either moves by more
than the difference between them. The record keeps every run and the medians. `--add --first-seed 3
--repeats 2` adds the runs of seeds 3 and 4 to rows already in the record (same names), and their
medians are taken over all of a row's runs.

`--curve-every 100` also scores each of our runs' weights after every 100 steps: how the other tile's
score moves while the training tile is learned (`--out bench/results/real_trees_curve.json`).

Writes `bench/results/real_trees.json`. The 2019_YELL_2_* tiles of the wheel are not used.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from bench.machine import describe
from infer.analysis.evaluate import evaluate
from infer.contract.label_formats import read_voc
from infer.geo.geojson import feature, write_feature_collection
from infer.runtime.vectors import PIXEL_COORDINATES
from train.data.config import load_dataset_config
from train.data.importer import import_images

ROOT = Path(__file__).resolve().parents[1]
TREES = ROOT / "datasets" / "trees" / "voc"
TRAIN, TEST = "OSBS_029", "SOAP_061"


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=cwd)
    if result.returncode:
        raise SystemExit(f"{' '.join(args[:2])} failed: {result.stderr.strip().splitlines()[-1:]}")
    return result


def prepare(work: Path) -> Path:
    """The one-tile chip folder and its dataset YAML; returns the YAML."""
    source = work / "source"
    source.mkdir(parents=True)
    for suffix in (".png", ".xml"):
        shutil.copy(TREES / f"{TRAIN}{suffix}", source / f"{TRAIN}{suffix}")
    dataset = work / "trees.yaml"
    dataset.write_text(yaml.safe_dump({
        "name": "trees", "bands": ["red", "green", "blue"], "gsd_m": 0.1, "train": "chips/train",
        "val": "chips/train", "classes": [{"name": "tree", "kind": "object", "color": "#30d030", "oriented": False}]}))
    import_images(read_voc(source), load_dataset_config(dataset), work / "chips", val_fraction=0)
    return dataset


def _recipe_saving_every(recipe: Path, steps: int, out: Path) -> Path:
    """The recipe with one more checkpoint callback, keeping every `steps`-th step's weights."""
    config = yaml.safe_load(recipe.read_text())
    config["trainer"]["callbacks"].append({
        "class_path": "pytorch_lightning.callbacks.ModelCheckpoint",
        "init_args": {"dirpath": str(out), "filename": "{step}", "every_n_train_steps": steps, "save_top_k": -1,
                      "enable_version_counter": False}})
    out.parent.mkdir(parents=True, exist_ok=True)
    path = out.parent / f"{recipe.stem}-every-{steps}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _score_model(work: Path, checkpoint: Path, name: str) -> tuple[dict, float]:
    """Export a checkpoint, run it on both tiles, score it; returns the scores and the test tile's run time."""
    model = work / f"{name}.onnx"
    _cli("train", "export", str(checkpoint), "--out", str(model))
    out = work / f"{name}-run"
    scores, infer_wall = {}, {}
    for tile in (TRAIN, TEST):
        start = time.perf_counter()
        _cli("infer", "run", str(model), str(TREES / f"{tile}.png"), "--out", str(out), "--score", "0.05", "--quiet")
        infer_wall[tile] = time.perf_counter() - start
        scores.update(_tree_scores(out / f"{tile}.geojson", tile))
    return scores, infer_wall[TEST]


def train_ours(work: Path, dataset: Path, recipe: str, minutes: float, seed: int,
               extra: tuple[str, ...] = (), curve_every: int = 0) -> dict:
    """One time-bounded run of a recipe, scored from its last weights; with `curve_every`, also the weights
    of every `curve_every`-th step (`curve`: how the scores move along the run)."""
    run = work / f"ours-{recipe}-{seed}"
    config = ROOT / "train" / "configs" / f"{recipe}.yaml"
    if curve_every:
        config = _recipe_saving_every(config, curve_every, run / "curve")
    limit = time.strftime("%H:%M:%S", time.gmtime(minutes * 60))
    start = time.perf_counter()
    _cli("train", "fit", "--config", str(config), "--data.dataset",
         str(dataset), "--trainer.max_time", f"00:{limit}", "--trainer.max_epochs", "100000",
         "--data.samples_per_epoch", "64", "--data.num_workers", "1", "--trainer.limit_val_batches", "0",
         "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(run),
         "--seed_everything", str(seed), "--data.seed", str(seed), *extra, cwd=work)
    wall = time.perf_counter() - start
    import torch

    steps = int(torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["global_step"])
    scores, infer_wall = _score_model(work, run / "checkpoints" / "last.ckpt", f"ours-{recipe}-{seed}")
    result = {"seed": seed, "train_wall_s": round(wall, 1), "steps": steps, "infer_wall_s": round(infer_wall, 2),
              **scores}
    if curve_every:
        saved = sorted(run.glob("curve/step=*.ckpt"), key=lambda path: int(path.stem.removeprefix("step=")))
        result["curve"] = [{"step": int(path.stem.removeprefix("step=")),
                            **{name: score["ap@0.5"] for name, score in
                               _score_model(work, path, f"ours-{recipe}-{seed}-{path.stem}")[0].items()}}
                           for path in saved]
    return result


def train_yolo(work: Path, minutes: float, seed: int, model_yaml: str = "yolo11n.yaml",
               imgsz: int = 416) -> dict:
    """YOLO on the same tile: its own dataset layout, its own recipe, the same wall-clock budget."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from sahi import AutoDetectionModel
    from ultralytics import YOLO

    data = work / "yolo"
    if not (data / "data.yaml").is_file():
        (data / "images" / "train").mkdir(parents=True)
        (data / "labels" / "train").mkdir(parents=True)
        coco = json.loads((work / "chips" / "train" / "annotations.json").read_text())
        for im in coco["images"]:
            shutil.copy(work / "chips" / "train" / im["file_name"],
                        data / "images" / "train" / Path(im["file_name"]).name)
            lines = [f"0 {(x + w / 2) / im['width']:.6f} {(y + h / 2) / im['height']:.6f} {w / im['width']:.6f} "
                     f"{h / im['height']:.6f}" for a in coco["annotations"] if a["image_id"] == im["id"]
                     for x, y, w, h in [a["bbox"]]]
            (data / "labels" / "train" / f"{Path(im['file_name']).stem}.txt").write_text("\n".join(lines) + "\n")
        (data / "data.yaml").write_text(yaml.safe_dump({"path": str(data), "train": "images/train",
                                                        "val": "images/train", "names": {0: "tree"}}))
    name = f"yolo-run-{seed}"
    start = time.perf_counter()
    model = YOLO(model_yaml)
    model.train(data=str(data / "data.yaml"), epochs=100000, time=minutes / 60, imgsz=imgsz, batch=8, device="cpu",
                workers=1, patience=0, pretrained=False, amp=False, plots=False, project=str(work), name=name,
                exist_ok=True, seed=seed, verbose=False)
    wall = time.perf_counter() - start
    weights = work / name / "weights" / "last.pt"
    results = work / name / "results.csv"
    epochs = max(0, len(results.read_text().splitlines()) - 1) if results.is_file() else None
    onnx_path = Path(YOLO(str(weights)).export(format="onnx", imgsz=imgsz, dynamic=True, simplify=False,
                                               verbose=False))
    sahi_model = AutoDetectionModel.from_pretrained(model_type="ultralytics", model_path=str(onnx_path),
                                                    confidence_threshold=0.05, device="cpu", image_size=imgsz)
    scores, infer_wall = {}, {}
    for tile in (TRAIN, TEST):
        start = time.perf_counter()
        pred = _sahi_geojson(sahi_model, tile, imgsz, work / f"{name}-{tile}.geojson")
        infer_wall[tile] = time.perf_counter() - start
        scores.update(_tree_scores(pred, tile))
    return {"seed": seed, "train_wall_s": round(wall, 1), "epochs": epochs,
            "infer_wall_s": round(infer_wall[TEST], 2), **scores}


def chance_run(work: Path, seed: int) -> dict:
    """What knowing only the crowns' size scores: boxes of the training tile's median size, centred every half
    box on a grid over each tile, with uniformly random scores. The floor the trained systems are read against."""
    from shapely.geometry import box

    (labeled,) = read_voc(TREES / f"{TRAIN}.xml")
    width, height = np.median([np.ptp(label.points, axis=0) for label in labeled.labels], axis=0)
    rng = np.random.default_rng(seed)
    scores = {}
    for tile in (TRAIN, TEST):
        cols, rows = Image.open(TREES / f"{tile}.png").size
        centres = [(x, y) for y in np.arange(height / 2, rows, height / 2) for x in np.arange(width / 2, cols, width / 2)]
        features = [feature(box(max(x - width / 2, 0), max(y - height / 2, 0), min(x + width / 2, cols),
                                min(y + height / 2, rows)), {"class": "tree", "score": round(float(rng.random()), 4)})
                    for x, y in centres]
        scores.update(_tree_scores(_pixel_geojson(work / f"chance-{seed}-{tile}.geojson", features, tile, "chance"),
                                   tile))
    return {"seed": seed, "boxes_px": [round(float(width), 1), round(float(height), 1)], **scores}


def _sahi_geojson(sahi_model, tile: str, imgsz: int, path: Path) -> Path:
    """SAHI's sliced prediction of one tile, written as our GeoJSON in pixel coordinates."""
    from sahi.predict import get_sliced_prediction
    from shapely.geometry import box

    rgb = np.asarray(Image.open(TREES / f"{tile}.png").convert("RGB"))
    result = get_sliced_prediction(rgb, sahi_model, slice_height=imgsz, slice_width=imgsz,
                                   overlap_height_ratio=0.2, overlap_width_ratio=0.2, perform_standard_pred=False,
                                   postprocess_type="NMS", postprocess_match_metric="IOU",
                                   postprocess_match_threshold=0.5, verbose=0)
    features = [feature(box(p.bbox.minx, p.bbox.miny, p.bbox.maxx, p.bbox.maxy),
                        {"class": "tree", "score": round(float(p.score.value), 4)})
                for p in result.object_prediction_list]
    return _pixel_geojson(path, features, tile, "yolo11n+sahi")


def _pixel_geojson(path: Path, features: list[dict], tile: str, model: str) -> Path:
    """Tree boxes of one tile as our GeoJSON in pixel coordinates, as `infer run` writes for a PNG."""
    return write_feature_collection(path, features, {"scene": f"{tile}.png", "model": model,
                                                     "classes": {"tree": "object"}, **PIXEL_COORDINATES})


#: What each tile's score counts as a tree: OSBS_029 labels every tree `Tree`; SOAP_061 labels them
#: `Alive` (9) or `Dead` (28, grey snags, a kind of tree the training tile does not show).
SCORED = {TRAIN: {"train_tile": {"Tree": "tree"}},
          TEST: {"test": {"Alive": "tree", "Dead": "tree"}, "test_alive": {"Alive": "tree", "Dead": ""}}}


def _tree_scores(pred: Path, tile: str) -> dict:
    out = {}
    for name, renamed in SCORED[tile].items():
        report = evaluate(pred, TREES / f"{tile}.xml", TREES / f"{tile}.png", 0.5, 0.3, truth_format="voc",
                          renamed=renamed)
        tree = report["classes"]["tree"]
        out[name] = {key: tree.get(key) for key in ("truth", "predicted", "ap@0.5", "ap@[.5:.95]", "precision",
                                                    "recall")}
    return out


def summarize(system: str, runs: list[dict]) -> dict:
    """A system's runs and the median of each AP@0.5 over them."""
    medians = {f"{name}_ap@0.5": round(statistics.median(r[name]["ap@0.5"] for r in runs), 4)
               for name in ("train_tile", "test", "test_alive")}
    return {"system": system, **medians, "runs": runs}


def extend_row(rows: list[dict], row: dict) -> dict:
    """`row`'s runs added to those of the row of the same name in `rows` (if any), medians over them all;
    both commands kept."""
    earlier = next((r for r in rows if r["system"] == row["system"]), None)
    if earlier is None:
        return row
    seeds = {r["seed"] for r in earlier["runs"]}
    if seeds & {r["seed"] for r in row["runs"]}:
        raise SystemExit(f"--first-seed: {row['system']!r} already has runs of seeds {sorted(seeds)}")
    runs = sorted(earlier["runs"] + row["runs"], key=lambda r: r["seed"])
    return {**summarize(row["system"], runs), "measured_at": row["measured_at"],
            "command": f"{earlier['command']} ({earlier['measured_at']}), then {row['command']}"}


def merge_rows(rows: list[dict], new: list[dict], extend: bool) -> list[dict]:
    """The record's `rows` with `new` ones: a row of a name already there takes its place (its runs added
    to the old row's when `extend`, `extend_row`), the others come last."""
    fresh = {row["system"]: extend_row(rows, row) if extend else row for row in new}
    return [fresh.pop(row["system"], row) for row in rows] + list(fresh.values())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget-min", type=float, default=10.0, help="training wall-clock minutes per system")
    p.add_argument("--recipes", default="synthetic,fast", help="our recipes to train, comma-separated")
    p.add_argument("--no-yolo", action="store_true", help="ours only")
    p.add_argument("--chance", action="store_true",
                   help="also score boxes of the median training size on a grid with random scores (the floor)")
    p.add_argument("--repeats", type=int, default=3, help="training runs per system, seeds 0, 1, ...")
    p.add_argument("--first-seed", type=int, default=0,
                   help="seed of the first run; with --add, a row already in the record gets these runs added to "
                        "its own (its seeds must not repeat)")
    p.add_argument("--ours-args", default="",
                   help="more `train fit` options for our recipes, e.g. '--data.scale_jitter 0.3'")
    p.add_argument("--label", default="",
                   help="words added to our rows' names, for a change of code rather than of options "
                        "(e.g. 'crowns encoded by their extents'), so that --add keeps the rows from before it")
    p.add_argument("--curve-every", type=int, default=0, metavar="STEPS",
                   help="also score our weights at every STEPS-th step of each run (AP@0.5 along the run)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "real_trees.json")
    p.add_argument("--add", action="store_true",
                   help="add these systems to the record in --out (same budget and repeats), replacing rows of the "
                        "same name; each row keeps its own time and command")
    args = p.parse_args()
    if not (TREES / f"{TEST}.png").is_file():
        raise SystemExit("the DeepForest tiles are missing: make data-trees")
    if args.curve_every < 0:
        raise SystemExit(f"--curve-every must be 0 (off) or a number of steps, got {args.curve_every}")
    if args.add and not args.out.is_file():
        raise SystemExit(f"--add: no record to add to at {args.out}")
    if args.first_seed < 0 or args.repeats < 1:
        raise SystemExit(f"--first-seed must be >= 0 and --repeats >= 1, got {args.first_seed} and {args.repeats}")
    if args.first_seed and not args.add:
        raise SystemExit("--first-seed adds runs to a record's rows: give --add as well")
    work = ROOT / "bench" / "results" / "tmp" / "real_trees"
    shutil.rmtree(work, ignore_errors=True)
    dataset = prepare(work)
    command = "python -m bench.real_trees " + shlex.join(sys.argv[1:])
    record = {"command": command, "budget_min": args.budget_min, "repeats": args.repeats, "train_tile": TRAIN,
              "test_tile": TEST, "machine": describe(), "systems": []}
    if args.add:
        earlier = json.loads(args.out.read_text())
        if earlier["budget_min"] != args.budget_min or (not args.first_seed and earlier["repeats"] != args.repeats):
            raise SystemExit(f"--add: {args.out} has {earlier['budget_min']:g} min and {earlier['repeats']} repeats")
        record = earlier
        for row in record["systems"]:  # a record written by one run stamps its rows once, at the top
            row.setdefault("command", earlier["command"])
            row.setdefault("measured_at", earlier.get("measured_at"))
    seeds = range(args.first_seed, args.first_seed + args.repeats)
    extra = tuple(shlex.split(args.ours_args))
    rows = []
    for recipe in filter(None, args.recipes.split(",")):
        runs = [train_ours(work, dataset, recipe, args.budget_min, seed, extra, args.curve_every) for seed in seeds]
        rows.append(summarize(f"sitewatch {recipe} recipe" + (f", {args.ours_args}" if extra else "")
                              + (f", {args.label}" if args.label else ""), runs))
        print(json.dumps(rows[-1]))
    if args.chance:
        rows.append(summarize("chance: boxes of the median training size on a grid, random scores",
                              [chance_run(work, seed) for seed in seeds]))
        print(json.dumps(rows[-1]))
    if not args.no_yolo:
        rows.append(summarize("YOLO11n + SAHI", [train_yolo(work, args.budget_min, seed) for seed in seeds]))
        print(json.dumps(rows[-1]))
    stamp = {"measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "command": command}
    record["systems"] = merge_rows(record["systems"], [{**row, **stamp} for row in rows], args.first_seed > 0)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
