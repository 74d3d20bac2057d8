"""Write the benchmark tables of README.md and docs/*.md from bench/results/*.json.

Each table sits between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->` in any
of those files; nobody copies numbers by hand. Most tables are made from one
result file, `bench/results/NAME.json` (`TABLES`); a few combine several
(`COMBINED`), such as the README's `glance`. `python -m bench.report`
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).parent.parent
RESULTS = Path(__file__).parent / "results"

CLASS_ORDER = ["storehouse", "truck", "earth_berm", "cleared_site"]


def _ordered(classes) -> list[str]:
    """Class names in the order every table lists them: objects first, then regions."""
    return sorted(classes, key=lambda c: (CLASS_ORDER.index(c) if c in CLASS_ORDER else len(CLASS_ORDER), c))


def synth_scale_table(result: dict) -> str:
    m = result["machine"]
    lines = [
        f"Measured {m['date'][:10]} on {m['cpu']} ({m['cores']} cores, {m['memory_gib']} GiB), "
        f"`{m['command']}`:",
        "",
        "| scene (px) | megapixels | seconds | Mpx/s | peak RSS (MiB) | file (MiB) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in result["results"]:
        lines.append(f"| {r['size_px']} × {r['size_px']} | {r['megapixels']} | {r['seconds']} | {r['mpx_per_s']} | "
                     f"{r['peak_rss_mib']} | {r['file_mib']} |")
    return "\n".join(lines)


def train_reference_table(result: dict) -> str:
    metrics = result["metrics"]
    classes = _ordered({k.split("/", 1)[1] for k in metrics if k.startswith("ap50/")})
    hours = result["train_wall_seconds"] / 3600
    took = f"{hours:.2f} h" if hours >= 1 else f"{hours * 60:.1f} min"
    sessions = result.get("training_sessions", [])
    runs = sorted({str(Path(x["log"]).parent.parent) for x in sessions})
    resumed = (f" over {len(sessions)} sessions" if len(sessions) > 1 else "") + (
        f" in {len(runs)} runs (fine-tuned with `--model.init_weights`)" if len(runs) > 1
        else " (resumed with `--ckpt_path`)" if len(sessions) > 1 else "")
    heldout = result.get("heldout")
    kept = "last" if Path(result.get("checkpoint", "")).stem == "last" else "best"
    chose = "(which chose the checkpoint)" if kept == "best" else "(the checkpoint is the run's last)"
    lines = [
        f"`{result.get('training_command', result['config'])}` trained "
        + (f"in {took}{resumed} (the last run {result['global_step']} steps, {kept} checkpoint at epoch "
           f"{result['epoch'] + 1})" if len(runs) > 1 else
           f"{result['global_step']} steps ({kept} checkpoint at epoch {result['epoch'] + 1}) in {took}{resumed}")
        + f" on {_training_hardware(result)}, scored by `python -m bench.train_reference`: on the validation "
        f"scenes {chose} and, exported to ONNX and run by `infer run`, on a held-out "
        + (f"{heldout['scene']['size_px']}² scene (seed {heldout['scene']['seed']}) scored by `infer evaluate`:"
           if heldout else "scene (not measured in this result):"),
        "",
        "| class | validation AP@0.5 | AP@[.5:.95] | mask IoU | held-out AP@0.5 | AP@[.5:.95] | mask IoU |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]

    def cell(value) -> str:
        return "" if value is None else f"{value:.3f}"

    for c in classes:
        h = heldout["classes"].get(c, {}) if heldout else {}
        lines.append(f"| {c} | {metrics[f'ap50/{c}']:.3f} | {metrics[f'ap/{c}']:.3f} | {cell(metrics.get(f'iou/{c}'))} "
                     f"| {cell(h.get('ap@0.5'))} | {cell(h.get('ap@[.5:.95]'))} | {cell(h.get('iou'))} |")
    lines.append(f"| **all** | **{metrics['map_50']:.3f}** | **{metrics['map']:.3f}** | | "
                 + (f"**{heldout['map@0.5']:.3f}** | **{heldout['map@[.5:.95]']:.3f}** | |" if heldout else "| | |"))
    return "\n".join(lines)


def infer_speed_table(result: dict) -> str:
    m, mpx, sec = result["machine"], result["mpx_per_s"], result["median_seconds"]
    model = result["model"]
    lines = [
        f"Measured {m['date'][:10]} on {m['cpu']} ({m['cores']} cores, {result['threads']} threads), "
        f"{result['scene_px']}² px synthetic scene, {model.get('backbone')} "
        f"(FPN {model.get('fpn_channels')}, heads {model.get('head_channels')}{_stride(model)}), "
        f"tile {result['tile']}, "
        f"overlap {result['overlap']}, batch {result['batch']}, median of {result['runs']} runs, "
        f"`{m['command']}`:",
        "",
        "| what | seconds | Mpx/s |",
        "| --- | ---: | ---: |",
        f"| `infer run` pipeline (read → write) | {sec['pipeline']} | {mpx['pipeline']} |",
    ]
    if job := result.get("job"):
        lines.append(f"| `infer run` pipeline, a job of {job['scenes']} such scenes (a scene written while the next "
                     f"is detected) | {job['median_seconds']} | {job['mpx_per_s']} |")
    lines += [
        f"| ONNX Runtime alone, same tiles | {sec['onnxruntime']} | {mpx['onnxruntime']} |",
        f"| PyTorch eager, same batches | {sec['pytorch_eager']} | {mpx['pytorch_eager']} |",
        "",
        f"Pipeline efficiency (ORT alone time / pipeline time): **{result['pipeline_efficiency']}**"
        + (f", of the job (its Mpx/s / ORT alone's): **{result['job_efficiency']}**" if job else "")
        + f"; ONNX Runtime vs PyTorch eager: **{result['onnxruntime_vs_pytorch']}×**."
        + (f" ONNX Runtime alone keeps {result['onnxruntime_cores_busy']} cores busy (CPU-seconds a second)."
           if "onnxruntime_cores_busy" in result else ""),
    ]
    return "\n".join(lines)


def infer_memory_table(result: dict) -> str:
    m = result["machine"]
    lines = [
        f"Measured {m['date'][:10]} on {m['cpu']} ({m['cores']} cores), `{m['command']}`:",
        "",
        "| scene (px) | megapixels | seconds | peak RSS (MiB) | vs smallest |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    growth = result["growth_vs_smallest"]
    for r in result["results"]:
        lines.append(f"| {r['size_px']} × {r['size_px']} | {r['megapixels']} | {r['seconds']} | "
                     f"{r['peak_rss_mib']} | {growth[str(r['size_px'])] if str(r['size_px']) in growth else growth[r['size_px']]}× |")
    return "\n".join(lines)


def infer_memory_batch_table(result: dict) -> str:
    """`bench.infer_memory --batches`: peak RSS of one scene's run at each `--batch`."""
    m = result["machine"]
    lines = [f"Measured {m['date'][:10]} on {m['cpu']} ({m['cores']} cores), `{m['command']}`:", "",
             "| scene (px) | --batch | seconds | peak RSS (MiB) |", "| ---: | ---: | ---: | ---: |"]
    lines += [f"| {r['size_px']} × {r['size_px']} | {r['batch']} | {r['seconds']} | {r['peak_rss_mib']} |"
              for r in result["results"]]
    return "\n".join(lines)


def png_encoding_table(result: dict) -> str:
    """`bench.png_encoding`: each encoder's median seconds and bytes for one overview, against the first's."""
    m, rows = result["machine"], result["results"]
    width, height = result["picture_px"]
    lines = [f"Measured {m['date'][:10]} on {m['cpu']} ({m['cores']} cores), a {width} × {height} overview's "
             f"imagery, median of {result['runs']} runs, `{m['command']}`:", "",
             "| encoder | seconds | MB | seconds vs first | size vs first |", "| --- | ---: | ---: | ---: | ---: |"]
    first = rows[0]
    lines += [f"| {r['encoder']} | {r['seconds']:.3f} | {r['bytes'] / 1e6:.2f} | "
              f"{r['seconds'] / first['seconds']:.2f}× | {r['bytes'] / first['bytes']:.3f}× |" for r in rows]
    return "\n".join(lines)


def change_detection_table(result: dict) -> str:
    m, match = result["machine"], result["match"]
    lines = [
        f"Measured {m['date'][:10]} on {m['cpu']} ({m['cores']} cores): `{Path(result['model']).name}` on "
        f"{result['pairs']} generated {result['size']}² two-date pairs, `infer diff --model` at score "
        f"{result['score']}, scored against the generator's `_changes.geojson` (objects within "
        f"{match['object_distance_m']:g} m, region changes IoU ≥ {match['region_min_iou']:g}), "
        f"`{m['command']}`:",
        "",
    ]
    return "\n".join(lines + _change_rows("change", result["per_change"], result["totals"], result["precision"],
                                         result["recall"]))


def _change_rows(heading: str, per_change: dict, totals: dict, precision: float, recall: float) -> list[str]:
    """A table of found changes against true ones, a row per (class, change) and one for all."""
    lines = [f"| {heading} | true | found | matched | precision | recall |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, e in per_change.items():
        lines.append(f"| {name} | {e['true']} | {e['found']} | {e['matched']} | {e['precision']:.2f} | "
                     f"{e['recall'] if e['true'] else float('nan'):.2f} |".replace("nan", "–"))
    lines.append(f"| **all** | **{totals['true']}** | **{totals['found']}** | **{totals['matched']}** | "
                 f"**{precision:.2f}** | **{recall:.2f}** |")
    return lines


def sites_accuracy_table(result: dict) -> str:
    """`bench.sites_accuracy`: sites in a model's detections against the sites of the truth, per held-out scene."""
    m = result["machine"]
    lines = [
        f"Measured {m['date'][:10]} on {m['cpu']} ({m['cores']} cores): `{Path(result['model']).name}` on the held-out "
        f"scenes at {result['size_px']}², default options, `infer sites`' rules on its detections and on the truth, "
        f"`{m['command']}`:",
        "",
        "| scene | truth sites | predicted | found | false | storehouse count exact | within ±1 | fortified count exact |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in result["scenes"]:
        errors = r["storehouse_errors"]
        exact = sum(e == 0 for e in errors) / max(len(errors), 1)
        lines.append(f"| {r['scene']} | {r['truth_sites']} | {r['predicted_sites']} | {r['found']} | {r['false_sites']} "
                     f"| {exact:.2f} | {r['within_one_storehouse']:.2f} | {r['fortified_exact']:.2f} |")
    lines.append(f"| **all** | **{result['truth_sites']}** | | **{result['found']}** | **{result['false_sites']}** | "
                 f"**{result['storehouse_count_exact']:.2f}** | **{result['within_one_storehouse']:.2f}** | "
                 f"**{result['fortified_count_exact']:.2f}** |")
    return "\n".join(lines)


def series_accuracy_table(result: dict) -> str:
    """`bench.series_accuracy`: `infer track --model` on generated series against `infer track` on their truth."""
    m, match, t = result["machine"], result["match"], result["change_totals"]
    lines = [
        f"Measured {m['date'][:10]} on {m['cpu']} ({m['cores']} cores): `{Path(result['model']).name}` on "
        f"{result['series']} generated series of {result['dates']} dates at {result['size']}² (up to 3 m "
        f"misregistration a date), `infer track --model` at score {result['score']}, against `infer track` on the "
        f"truth; changes per consecutive pair scored as `bench.change_detection` (objects within "
        f"{match['object_distance_m']:g} m, regions IoU ≥ {match['region_min_iou']:g}), `{m['command']}`:",
        "",
        "| sites (per site and date) | |",
        "| --- | ---: |",
        f"| truth site-dates | {result['site_dates']} |",
        f"| missed | {result['missed_site_dates']} |",
        f"| model sites touching no truth site | {result['false_site_dates']} |",
        f"| storehouse count exact | {result['storehouse_count_exact']:.2f} |",
        f"| storehouse count within ±1 | {result['within_one_storehouse']:.2f} |",
        f"| fortified count within ±1 | {result['fortified_within_one']:.2f} |",
        "",
        f"Changes a neighbouring pair of dates undid, set apart as flicker: {result['flicker_set_apart']}.",
        "",
    ]
    return "\n".join(lines + _change_rows("change between consecutive dates", result["per_change"], t,
                                         result["change_precision"], result["change_recall"]))


def _stride(model: dict) -> str:
    """', objects at stride N' for results that recorded it."""
    return f", objects at stride {model['stride']}" if model.get("stride") else ""


def _trained_on(record: dict) -> str:
    """', trained on DATASET' for results that recorded it."""
    return f", trained on {record['dataset']}" if record.get("dataset") else ""


def _is_peer(system: dict) -> bool:
    return "onnx" in system


def _system_label(name: str, system: dict) -> str:
    if _is_peer(system):
        return f"{Path(system['model']).stem} + SAHI{_trained_on(system['training'])}"
    prov = system["provenance"]
    return (f"ours, {name} ({prov['backbone']}, FPN/heads {prov['fpn_channels']}/{prov['head_channels']}"
            f"{_stride(prov)}{_trained_on(prov)})")


def _budget_line(name: str, system: dict) -> str:
    training = system.get("training")
    if _is_peer(system):
        about = "about " if training.get("chips_seen_note") else ""  # estimated for runs before the batch count
        seen = f", {about}{training['chips_seen']} chips seen" if training.get("chips_seen") else ""
        return (f"`{Path(system['model']).stem}` from random init (Ultralytics' defaults), {training['epochs']} "
                f"epochs of {training['train_chips']} chips of {training['imgsz']} px{seen}, batch "
                f"{training['batch']}, {training['train_wall_seconds'] / 60:.1f} min")
    return f"ours, {name}: {training or 'training not recorded'}"


def peers_table(result: dict) -> str:
    """`bench.peers.compare`: per class AP@0.5 (mean over the held-out suite, worst scene in brackets), mAP and
    whole-pipeline speed of each system, and how each was trained."""
    m, acc, speed, systems = result["machine"], result["accuracy"], result["speed"], result["systems"]
    names = list(systems)
    peers = [n for n in names if _is_peer(systems[n])]
    classes = _ordered({c for n in names for c in acc[n]["classes"]})
    suite = result["suite"]
    lines = [
        f"Measured {m['date'][:10]} on {m['cpu']} ({m['cores']} cores, CPU only). Accuracy: the mean over "
        f"{len(suite['scenes'])} held-out {suite['size_px']}² synthetic scenes seen by no model "
        f"({_listed(suite['scenes'])}), worst scene in brackets, from runs at score ≥ {result['score_threshold']} "
        f"scored by `infer evaluate`. Speed: scene file to GeoJSON on a {result['speed_scene']['size_px']}² "
        f"held-out scene at each tool's default threshold, median of {result['runs']} runs"
        f"{_every_output_note(speed)}. Tiles of at most "
        f"{result['tile']} px (ours fitted to each scene, SAHI's slices of {result['tile']}), overlap {result['overlap']}, "
        f"batch {result['batch']}. `{m['command']}`:",
        "",
        "| AP@0.5 | " + " | ".join(_system_label(n, systems[n]) for n in names) + " |",
        "| --- |" + " ---: |" * len(names),
    ]

    def cell(figure: dict | None) -> str:
        return "" if figure is None else f"{figure['mean']:.3f} ({figure['worst']:.3f})"

    for c in classes:
        lines.append(f"| {c} | " + " | ".join(cell(acc[n]["classes"].get(c, {}).get("ap@0.5")) for n in names) + " |")
    lines.append("| **mAP@0.5** | " + " | ".join(f"**{cell(acc[n]['map@0.5'])}**" for n in names) + " |")
    lines.append("| mAP@[.5:.95] | " + " | ".join(cell(acc[n]["map@[.5:.95]"]) for n in names) + " |")
    lines.append("| whole pipeline Mpx/s (median) | " + " | ".join(f"{speed[n]['mpx_per_s']}" for n in names) + " |")
    for peer in peers:
        lines.append(f"| speed vs {Path(systems[peer]['model']).stem} + SAHI | "
                     + " | ".join(f"{speed[n]['speed_vs'][peer]:.2f}×" for n in names) + " |")
    if any("every_output" in speed[n] for n in names):  # results before `--outputs` timed ours writing everything
        every = {n: speed[n].get("every_output") for n in names}
        lines.append("| ours writing every output, Mpx/s | "
                     + " | ".join(f"{every[n]['mpx_per_s']}" if every[n] else "" for n in names) + " |")
        for peer in peers:
            lines.append(f"| every output, vs {Path(systems[peer]['model']).stem} + SAHI | "
                         + " | ".join(f"{every[n]['speed_vs'][peer]:.2f}×" if every[n] else "" for n in names) + " |")
    lines += ["", "Training: " + "; ".join(_budget_line(n, systems[n]) for n in names) + "."]
    return "\n".join(lines)


def _every_output_note(speed: dict) -> str:
    if not any("every_output" in v for v in speed.values()):
        return ""
    return (" (ours with `--outputs geojson`, as the peer writes only that; and again writing every output: "
            "GeoJSON, GeoPackage, mask COG and both pictures), all timed in turn")


def _training_hardware(result: dict) -> str:
    m = result["machine"]
    where = result.get("training_hardware", "")
    return where if where and not where.startswith("this machine") else f"{m['cpu']} ({m['cores']} cores, CPU only)"


def gpu_speed_table(result: dict) -> str:
    m = result["machine"]
    lines = [
        f"Measured {m['date'][:10]} on one {result['device']} ({m['cpu']}, {m['cores']} cores; torch "
        f"{result['torch']}), medians of runs after warm-up, `{m['command']}`. ONNX Runtime there had "
        f"{', '.join(result['onnxruntime_providers'])}, so these are the network in PyTorch, not the "
        "`infer run` pipeline:",
        "",
        "| work | variant | batch | ms | throughput | vs fp32 eager |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for work, rows, unit, key in (("training step", result["training_step"], "chips/s", "chips_per_s"),
                                  ("inference", result["inference"], "Mpx/s", "mpx_per_s")):
        base = rows[0][key]
        for row in rows:
            size = f"{row['batch']} × {row.get('chip', row.get('tile'))}²"
            ms = row.get("ms_per_step", row.get("ms_per_batch"))
            lines.append(f"| {work} | {row['variant']} | {size} | {ms:.1f} | {row[key]:.0f} {unit} "
                         f"| {row[key] / base:.2f}× |")
    loader = result["loader"]
    lines.append(f"| data loader | {loader['workers']} workers | {loader['batch']} × 256² | | "
                 f"{loader['chips_per_s']:.0f} chips/s | |")
    return "\n".join(lines)


def evaluation_table(result: dict) -> str:
    """One `infer evaluate` result (its JSON as written): per class counts, AP, precision, recall, mask IoU."""
    lines = [
        f"`infer evaluate` at IoU {result['iou_threshold']:g}, precision and recall at score ≥ "
        f"{result['score_threshold']:g}:",
        "",
        "| class | true | predicted | AP@0.5 | AP@[.5:.95] | precision | recall | mask IoU |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for c in _ordered(result["classes"]):
        e = result["classes"][c]
        iou = f"{e['iou']:.3f}" if e.get("iou") is not None else ""
        lines.append(f"| {c} | {e['truth']} | {e['predicted']} | {e['ap@0.5']:.3f} | {e['ap@[.5:.95]']:.3f} "
                     f"| {e['precision']:.2f} | {e['recall']:.2f} | {iou} |")
    lines.append(f"| **all** | | | **{result['map@0.5']:.3f}** | **{result['map@[.5:.95]']:.3f}** | | | |")
    return "\n".join(lines)


def _radius(radius_m) -> str:
    return "none" if not radius_m else f"{radius_m:g} m"


def region_closing_table(result: dict) -> str:
    """`bench.region_closing`: one `infer run` per closing radius over a dev scene, each scored."""
    m, scene, sweep = result["machine"], result["scene"], result["sweep"]
    classes = _ordered(sweep[0]["classes"])
    truth = {c: sweep[0]["classes"][c]["truth"] for c in classes}
    lines = [
        f"Measured {m['date'][:10]} on {m['cpu']} ({m['cores']} cores): `{Path(result['checkpoint']).name}` over a "
        f"{scene['size_px']}² dev scene (seed {scene['seed']}), one `infer run` per radius scored by "
        f"`infer evaluate`, `{m['command']}`:",
        "",
        "| closing | " + " | ".join(f"{c} AP@0.5 | {c} pieces ({truth[c]} true) | {c} mask IoU" for c in classes)
        + " | seconds |",
        "| --- |" + " ---: | ---: | ---: |" * len(classes) + " ---: |",
    ]
    for run in sweep:
        cells = " | ".join(f"{run['classes'][c]['ap@0.5']:.3f} | {run['classes'][c]['predicted']} | "
                           f"{run['classes'][c]['iou']:.3f}" for c in classes)
        lines.append(f"| {_radius(run['radius_m'])} | {cells} | {run['seconds']} |")
    return "\n".join(lines)


def region_closing_heldout_table(train_reference: dict, train_reference_gpu: dict | None = None) -> str:
    """The reference model's region classes on the held-out scene with and without closing.

    `bench.train_reference` scores the held-out run at the closing it was given and again
    without it (`regions_without_closing`); `train_reference_gpu.json` is the same model
    scored at another radius. Rows by radius; a radius recorded twice is listed once.
    """
    rows: dict[float, dict] = {}
    for result in (train_reference, train_reference_gpu):
        if not result:
            continue
        heldout = result["heldout"]
        rows.setdefault(0.0, heldout.get("regions_without_closing", {}))
        rows.setdefault(float(heldout.get("region_closing_m") or 0.0), heldout["classes"])
    rows = {r: v for r, v in rows.items() if v}
    classes = _ordered(set.intersection(*(set(v) for v in rows.values())))
    scene = train_reference["heldout"]["scene"]
    lines = [
        f"The reference model on the held-out {scene['size_px']}² scene (seed {scene['seed']}), run by "
        "`infer run` at each radius and scored by `infer evaluate` (`python -m bench.train_reference`):",
        "",
        "| closing | " + " | ".join(f"{c} AP@0.5 | {c} pieces" for c in classes) + " |",
        "| --- |" + " ---: | ---: |" * len(classes),
    ]
    for radius in sorted(rows):
        cells = " | ".join(f"{rows[radius][c]['ap@0.5']:.3f} | {rows[radius][c]['predicted']}" for c in classes)
        lines.append(f"| {_radius(radius)} | {cells} |")
    return "\n".join(lines)


def _listed(items: list[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def glance_table(peers: dict, infer_speed: dict | None = None) -> str:
    """The README's one table: from `peers.json`, held-out AP@0.5 per class and mAP (means over the held-out
    suite) and whole-pipeline speed of every system; `infer_speed.json` adds the reference's `infer run`
    pipeline alone."""
    acc, speed, systems, m = peers["accuracy"], peers["speed"], peers["systems"], peers["machine"]
    names = list(systems)
    classes = _ordered({c for n in names for c in acc[n]["classes"]})

    def label(name: str) -> str:
        system = systems[name]
        if _is_peer(system):
            return f"{Path(system['model']).stem} + SAHI"
        return f"ours, {name} ({system['provenance']['backbone']})"

    def ap(name: str, c: str) -> str:
        value = acc[name]["classes"].get(c, {}).get("ap@0.5")
        return "" if value is None else f"{value['mean']:.3f}"

    lines = [
        "| held-out AP@0.5 | " + " | ".join(label(n) for n in names) + " |",
        "| --- |" + " ---: |" * len(names),
    ]
    for c in classes:
        lines.append(f"| {c} | " + " | ".join(ap(n, c) for n in names) + " |")
    lines.append("| **mAP@0.5** | " + " | ".join(f"**{acc[n]['map@0.5']['mean']:.3f}**" for n in names) + " |")
    every = any("every_output" in speed[n] for n in names)
    lines.append(f"| {'scene to GeoJSON' if every else 'whole pipeline'} Mpx/s ({peers['speed_scene']['size_px']}², "
                 "median) | " + " | ".join(f"{speed[n]['mpx_per_s']}" for n in names) + " |")
    if every:
        lines.append("| ours writing every output, Mpx/s | " + " | ".join(
            f"{speed[n]['every_output']['mpx_per_s']}" if "every_output" in speed[n] else "" for n in names) + " |")
    suite = peers["suite"]
    note = (f"Means over {len(suite['scenes'])} held-out {suite['size_px']}² synthetic scenes no model trained on "
            f"({_listed(suite['scenes'])}), scored by `infer evaluate`; measured {m['date'][:10]} on {m['cpu']} "
            f"({m['cores']} cores, CPU only) by `python -m bench.peers.compare`{_every_output_note(speed)}. Training: "
            + "; ".join(_budget_line(n, systems[n]) for n in names) + ".")
    if infer_speed and "reference" in names:
        im = infer_speed["machine"]
        note += (f" The reference's `infer run` pipeline alone: {infer_speed['mpx_per_s']['pipeline']} Mpx/s "
                 f"(`bench.infer_speed`, {im['cpu']}, {im['date'][:10]}).")
    return "\n".join(lines + ["", note])


def pipeline_ceiling_table(result: dict) -> str:
    """`bench.pipeline_ceiling`: raw reads, the free model alone and the pipeline with it, per scene size and
    workers; "host" leaves out the free model's own CPU time (results from before it was measured: blank)."""
    m, model = result["machine"], result["model"]
    one = "one decoding thread" if "one_worker_decodes_in" in result else "serial"  # results before the thread
    lines = [
        f"Measured {m['date'][:10]} on {m['cpu']} ({m['cores']} cores), the free model with the interface of "
        f"`{model['like']}` (tile {model['tile']}, overlap {model['overlap']}, stride {model['stride']}, batch "
        f"{model['batch']}), median of {result['runs']} runs, `{m['command']}`; Mpx/s per core is megapixels per "
        "CPU-second of the process and its workers, host Mpx/s per core leaves out the CPU-seconds of the free "
        "model alone on the same tiles (what a GPU node spends on its GPU):",
        "",
        "| scene (px) | what | seconds | Mpx/s | Mpx/s per core | host Mpx/s per core | main thread: read / model / "
        "decode+stitch / write (s) |",
        "| ---: | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in result["results"]:
        size, mpx = f"{row['size_px']}²", row["megapixels"]
        read = row["raw_read"]
        lines.append(f"| {size} | raw rasterio read of the tiles, 1 thread | {read['wall_s']:.2f} | "
                     f"{mpx / read['wall_s']:.1f} | {read['mpx_per_s_per_core']:.1f} | | |")
        if reader := row.get("reader"):
            lines.append(f"| {size} | the pipeline's tile reader, {reader['threads']} threads | {reader['wall_s']:.2f} | "
                         f"{mpx / reader['wall_s']:.1f} | {reader['mpx_per_s_per_core']:.1f} | | |")
        for form, label in (("", ""), ("_regions_in_graph", ", regions decoded in the graph")):
            if alone := row.get("model_alone" + form):
                lines.append(f"| {size} | free model{label} alone on the tiles (ONNX Runtime) | {alone['wall_s']:.2f} | "
                             f"{mpx / alone['wall_s']:.1f} | {mpx / alone['cpu_s']:.1f} | | |")
            for workers, run in row.get("pipeline" + form, {}).items():
                split = run["split_seconds"]
                what = f"pipeline, {one} (`--workers 1`)" if workers == "1" else f"pipeline, `--workers {workers}`"
                host = f"{run['host_mpx_per_s_per_core']:.1f}" if "host_mpx_per_s_per_core" in run else ""
                lines.append(f"| {size} | {what}{label} | {run['wall_s']:.2f} | {run['mpx_per_s']:.1f} | "
                             f"{run['mpx_per_s_per_core']:.1f} | {host} | {split['read']:.2f} / {split['model']:.2f} / "
                             f"{split['decode_stitch']:.2f} / {split['write']:.2f} |")
    speedup = next((k for k in result if k.startswith("speedup_")), None)
    host = (f", host {result['host_mpx_per_s_per_core']} (**{result['host_vs_raw_read']}×**)"
            if "host_mpx_per_s_per_core" in result else "")
    lines += ["", f"Largest scene: pipeline {result['pipeline_mpx_per_s_per_core']} Mpx/s per core against raw reads' "
              f"{result['raw_read_mpx_per_s_per_core']} (**{result['pipeline_vs_raw_read']}×**){host}"
              + (f"; {speedup.split('_')[1]} workers against 1: **{result[speedup]}×**." if speedup else ".")]
    if "host_vs_raw_read_regions_in_graph" in result:
        lines[-1] += (f" With regions decoded in the graph, host {result['host_mpx_per_s_per_core_regions_in_graph']}"
                      f" Mpx/s per core (**{result['host_vs_raw_read_regions_in_graph']}×** raw reads).")
    if job := result.get("job"):
        lines += ["", f"A job of {job['scenes']} scenes of {job['size_px']}² with the free model, {one}: one after "
                  f"another {job['wall_s']['one_after_another']:.2f} s, as `infer run` does them (each scene's "
                  f"outputs written while the next one is detected) {job['wall_s']['job']:.2f} s: **{job['speedup']}×**."]
    return "\n".join(lines)


def ray_overhead_table(result: dict) -> str:
    """`bench.ray_overhead`: the same scenes through a plain `infer run` and through `--ray`."""
    m, walls, rates = result["machine"], result["median_wall_s"], result["mpx_per_s"]
    lines = [
        f"Measured {m['date'][:10]} on {m['cpu']} ({m['cores']} cores), `{result['model']}`, {result['scenes']} "
        f"synthetic scenes of {result['size_px']}² px ({result['megapixels']} Mpx), median of {result['runs']} runs "
        f"each way, alternating, `{m['command']}`; a run that starts its own cluster counts its start and stop:",
        "",
        "| how | seconds | Mpx/s |",
        "| --- | ---: | ---: |",
        f"| `infer run` (one process, ONNX Runtime on every core) | {walls['plain']:.1f} | {rates['plain']:.3f} |",
        f"| `infer run --ray` ({result['ray_workers']} workers of {result['cpus_per_worker']} CPU), starting its own "
        f"local cluster | {walls['ray']:.1f} | {rates['ray']:.3f} |",
        f"| `infer run --ray ADDRESS`, the same workers on a cluster already running | {walls['ray_joined']:.1f} | "
        f"{rates['ray_joined']:.3f} |",
        "",
        f"Ray's overhead against the plain run: **{100 * result['ray_joined_overhead_fraction']:+.1f} %** joining a "
        f"running cluster, {100 * result['ray_overhead_fraction']:+.1f} % starting one; outputs "
        + ("identical byte for byte all three ways." if result["outputs_identical"] else "**not identical**."),
    ]
    return "\n".join(lines)


def heldout_suite_table(result: dict) -> str:
    """`bench.heldout_suite`: AP@0.5 / precision per class on each held-out scene, and the worst of them."""
    m, rows = result["machine"], result["scenes"]
    classes = sorted(result["worst"])
    lines = [
        f"Measured {m['date'][:10]}, `{result['model']}` with the default options, scenes of "
        f"{result['size_px']}² px from the generator, `{m['command']}`; each cell is AP@0.5 / precision at the "
        "default score, storehouses also AP@[.5:.95]:",
        "",
        "| scene | " + " | ".join(c.replace("_", " ") for c in classes) + " | mAP@0.5 |",
        "| --- | " + " | ".join("---:" for _ in classes) + " | ---: |",
    ]

    def cell(scores: dict, name: str) -> str:
        if "ap@0.5" not in scores:
            return "–"
        text = f"{scores['ap@0.5']:.3f} / {scores['precision']:.2f}"
        return text + (f" ({scores['ap@[.5:.95]']:.2f})" if name == "storehouse" else "")

    for row in rows:
        lines.append(f"| {row['scene']} | " + " | ".join(cell(row["classes"].get(c, {}), c) for c in classes)
                     + f" | {row['map@0.5']:.3f} |")
    lines.append("| **worst** | " + " | ".join(f"**{cell(result['worst'][c], c)}**" for c in classes) + " | |")
    missed = result["targets_missed"]
    lines += ["", "Targets (AP@0.5 ≥ 0.95 and precision ≥ 0.9 for every class, storehouse AP@[.5:.95] ≥ 0.75) "
              + ("met on every scene." if not missed else "missed: " + "; ".join(missed) + ".")]
    if lengths := result.get("storehouse_length_ratio"):
        lines += ["", f"Storehouses found, predicted over true length (median over the {len(rows)} scenes): "
                  + "; ".join(f"{span} {b['median_ratio']:.3f} ({b['count']})" for span, b in lengths.items()
                              if b["count"]) + "."]
    if headings := result.get("headings"):
        lines += ["", "Headings of the objects found, against their truth's (the worst scene's median error): "
                  + "; ".join(f"{name.replace('_', ' ')} {h['heading_error_deg']:.1f}°"
                              + (f", its front the right end for {h['front_right']:.1%} or more on every scene"
                                 if "front_right" in h else "") for name, h in headings.items()) + "."]
    if ridges := result.get("berm_found_by_sun_angle"):
        lines += ["", "Berm ridge length inside a predicted berm, by the ridge's angle to the sun's direction "
                  f"(the {len(rows)} scenes together): "
                  + "; ".join(f"{span} {b['found_share']:.0%} of {b['length_m']:.0f} m ({b['pieces']} pieces)"
                              for span, b in ridges.items() if b["pieces"]) + "."]
    return "\n".join(lines)


def real_trees_table(result: dict) -> str:
    """`bench.real_trees`: each system trained on one real tile for the same budget, several times, scored on
    another tile and on its own: the median of the runs and each run's AP@0.5."""
    m = result["machine"]
    truth = {name: result["systems"][0]["runs"][0][name]["truth"] for name in ("test", "test_alive", "train_tile")}
    counts = sorted({len(row["runs"]) for row in result["systems"]})
    times = (f"{counts[0]} times (seeds 0 to {counts[0] - 1})" if len(counts) == 1 else
             f"{counts[0]} to {counts[-1]} times (seeds 0 to {counts[-1] - 1}, each row's runs in seed order)")
    lines = [
        f"Measured {m['date'][:10]} on {m['cpu']} ({m['cores']} cores), `{m['command']}`"
        + (" and the commands below" if any(r.get("command", m["command"]) != m["command"] for r in result["systems"])
           else "") + f": each system trained {times} from random init on {result['train_tile']} "
        f"for {result['budget_min']:g} minutes of wall clock, last weights; AP@0.5 (IoU 0.5), the median of the "
        "runs and, in brackets, each run:",
        "",
        f"| system | trained | {result['test_tile']}, all {truth['test']} trees | {result['test_tile']}, the "
        f"{truth['test_alive']} alive | {result['train_tile']} (its training tile, {truth['train_tile']} trees) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for row in result["systems"]:
        runs = row["runs"]
        unit = next((name for name in ("steps", "epochs") if name in runs[0]), None)
        done = f"{statistics.median(r[unit] for r in runs):g} {unit}" if unit else "untrained"
        cells = []
        for name in ("test", "test_alive", "train_tile"):
            each = ", ".join(f"{r[name]['ap@0.5']:.3f}" for r in runs)
            cells.append(f"{row[name + '_ap@0.5']:.3f} ({each})")
        lines.append(f"| {row['system']} | {done} | " + " | ".join(cells) + " |")
    commands = [f"- {row['system']}: `{row['command']}`, {row['measured_at']}" for row in result["systems"]
                if row.get("command", m["command"]) != m["command"]]
    return "\n".join(lines + _pairs_won(result["systems"]) + ([""] + commands if commands else []))


def _pairs_won(rows: list[dict], peer: str = "YOLO11n + SAHI") -> list[str]:
    """How often a run of our row with the best median on the living trees scores above a run of `peer`,
    over every pair of their runs: whether the medians' order holds run by run."""
    ours = [row for row in rows if row["system"].startswith("sitewatch")]
    other = next((row for row in rows if row["system"] == peer), None)
    if not ours or other is None:
        return []
    best = max(ours, key=lambda row: row["test_alive_ap@0.5"])

    def won(name: str) -> str:
        wins = sum(a[name]["ap@0.5"] > b[name]["ap@0.5"] for a in best["runs"] for b in other["runs"])
        return f"{wins} of {len(best['runs']) * len(other['runs'])}"

    return ["", f"Run against run, {best['system']} scores above {peer} in {won('test')} pairs on all "
                f"{best['runs'][0]['test']['truth']} trees and in {won('test_alive')} on the "
                f"{best['runs'][0]['test_alive']['truth']} alive."]


def real_trees_curve_table(result: dict) -> str:
    """`bench.real_trees --curve-every N`: AP@0.5 of each run's weights along the run, on the other tile and on
    the training tile, then the last weights (what `real_trees_table` scores)."""
    m = result["machine"]
    lines = [f"Measured {m['date'][:10]} on {m['cpu']} ({m['cores']} cores), `{m['command']}`: AP@0.5 on "
             f"{result['test_tile']} (all trees) / on {result['train_tile']} (the training tile), of the weights "
             "after each number of steps, one column per run:"]
    for row in result["systems"]:
        runs = [r for r in row["runs"] if "curve" in r]
        if not runs:
            continue
        steps = sorted({point["step"] for r in runs for point in r["curve"]})
        at = [{point["step"]: point for point in r["curve"]} for r in runs]
        lines += ["", f"{row['system']}:", "",
                  "| step | " + " | ".join(f"seed {r['seed']}" for r in runs) + " |",
                  "| ---: |" + " ---: |" * len(runs)]
        for step in steps:
            cells = [f"{a[step]['test']:.3f} / {a[step]['train_tile']:.3f}" if step in a else "—" for a in at]
            lines.append(f"| {step} | " + " | ".join(cells) + " |")
        lines.append("| last (" + ", ".join(str(r["steps"]) for r in runs) + ") | " + " | ".join(
            f"{r['test']['ap@0.5']:.3f} / {r['train_tile']['ap@0.5']:.3f}" for r in runs) + " |")
    return "\n".join(lines)


def int8_table(result: dict) -> str:
    """`bench.int8`: float32 and int8 exports of one checkpoint, accuracy and speed side by side."""
    m, systems = result["machine"], result["systems"]
    names = [n for n in ("fp32", "int8") if n in systems]
    speed = result["speed_scene"]
    lines = [
        f"Measured {m['date'][:10]} on {m['cpu']} ({m['cores']} cores), `{m['command']}`, both exported from "
        f"`{result['checkpoint']}` in that run; mAP from `infer evaluate` on the {result['heldout_size_px']}² "
        f"held-out scenes of `bench.heldout_suite`, speed on one {speed['size_px']}² scene "
        f"({speed['megapixels']} Mpx), medians of {result['runs']} runs:",
        "",
        "| | " + " | ".join("float32" if n == "fp32" else n for n in names) + " |",
        "| --- | " + " | ".join("---:" for _ in names) + " |",
        "| file (MB) | " + " | ".join(f"{systems[n]['size_mb']:g}" for n in names) + " |",
    ]
    for k, scene in enumerate(systems[names[0]]["scenes"]):
        lines.append(f"| mAP@0.5, {scene['scene']} | "
                     + " | ".join(f"{systems[n]['scenes'][k]['map@0.5']:.3f}" for n in names) + " |")
    for key in ("mean_map@0.5", "mean_map@[.5:.95]"):
        lines.append(f"| **{key.removeprefix('mean_').replace('map', 'mAP')}, mean** | "
                     + " | ".join(f"**{systems[n][key]:.3f}**" for n in names) + " |")
    for key, label in (("pipeline", "whole `infer run` pipeline"), ("onnxruntime", "ONNX Runtime alone")):
        lines.append(f"| {label}, Mpx/s | " + " | ".join(f"{systems[n]['mpx_per_s'][key]:.3f}" for n in names) + " |")
    drop, allowed = result["map@0.5_drop"], result["map_drop_allowed"]
    lines += ["", f"int8 against float32: {result['speedup']['pipeline']:.2f}× the whole pipeline's speed, "
              f"{result['speedup']['onnxruntime']:.2f}× ONNX Runtime's alone; mean mAP@0.5 "
              + (f"{drop:.3f} lower" if drop > 0 else f"{-drop:.3f} higher" if drop < 0 else "the same")
              + f" (allowed: {allowed:g} lower), target {'met' if result['target_met'] else 'missed'}."]
    return "\n".join(lines)


# Tables made from one result file, bench/results/NAME.json, keyed by the block's NAME.
TABLES: dict[str, Callable[[dict], str]] = {
    "gpu_speed": gpu_speed_table, "synth_scale": synth_scale_table, "peers": peers_table,
    "change_detection": change_detection_table, "train_reference": train_reference_table,
    "train_fast": train_reference_table, "infer_speed": infer_speed_table,
    "infer_speed_fast": infer_speed_table, "infer_speed_small": infer_speed_table,
    "infer_speed_stride4": infer_speed_table,
    "infer_memory": infer_memory_table, "infer_memory_batch": infer_memory_batch_table,
    "png_encoding": png_encoding_table,
    "region_closing": region_closing_table,
    "reference_heldout_eval": evaluation_table, "pipeline_ceiling": pipeline_ceiling_table,
    "ray_overhead": ray_overhead_table, "heldout_suite": heldout_suite_table, "real_trees": real_trees_table,
    "real_trees_curve": real_trees_curve_table,
    "sites_accuracy": sites_accuracy_table, "series_accuracy": series_accuracy_table, "int8": int8_table,
}

# Tables made from several result files: NAME -> (render, required files, optional files). The
# render function takes each file's contents as the keyword argument of the file's name.
COMBINED: dict[str, tuple[Callable[..., str], tuple[str, ...], tuple[str, ...]]] = {
    "glance": (glance_table, ("peers",), ("infer_speed",)),
    "region_closing_heldout": (region_closing_heldout_table, ("train_reference",), ("train_reference_gpu",)),
}

# A block's markers stand on lines of their own, so a marker quoted inside a sentence is text.
BLOCK = re.compile(r"^(<!-- bench:(?P<name>[\w-]+) -->)$.*?^(<!-- /bench:(?P=name) -->)$", re.S | re.M)


def documents(root: Path = ROOT) -> list[Path]:
    """The files whose tables are generated: README.md and every docs/*.md."""
    return [p for p in (root / "README.md", *sorted((root / "docs").glob("*.md"))) if p.exists()]


def render_tables(results: Path = RESULTS) -> dict[str, str]:
    """Every table whose result files exist, by block name."""
    def load(name: str) -> dict | None:
        path = results / f"{name}.json"
        return json.loads(path.read_text()) if path.exists() else None

    tables = {}
    for name, render in TABLES.items():
        result = load(name)
        if result is not None:
            tables[name] = render(result)
    for name, (render, required, optional) in COMBINED.items():
        loaded = {source: load(source) for source in (*required, *optional)}
        if all(loaded[source] is not None for source in required):
            tables[name] = render(**loaded)
    return tables


def rewrite(text: str, tables: dict[str, str]) -> tuple[str, list[str]]:
    """`text` with every block whose table is known rewritten; and the names of blocks left as they were."""
    left = []

    def fill(m: re.Match) -> str:
        name = m.group("name")
        if name not in tables:
            left.append(name)
            return m.group(0)
        return f"{m.group(1)}\n{tables[name]}\n{m.group(3)}"

    return BLOCK.sub(fill, text), left


def main(root: Path = ROOT, results: Path | None = None) -> list[Path]:
    """Rewrite the tables of README.md and docs/*.md under `root`; return the files that changed."""
    tables = render_tables(results or root / "bench" / "results")
    changed = []
    for path in documents(root):
        text = path.read_text()
        new, left = rewrite(text, tables)
        for name in left:
            print(f"{path.relative_to(root)}: no result for bench:{name}, left as it was", file=sys.stderr)
        if new != text:
            path.write_text(new)
            changed.append(path)
    for path in changed:
        print(f"rewrote {path.relative_to(root)}")
    return changed


if __name__ == "__main__":
    main()
