"""Write the README's benchmark tables from bench/results/*.json.

Each table sits between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->` in
README.md; nobody copies numbers by hand. `python -m bench.report`
"""

from __future__ import annotations

import json
import re
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
README = Path(__file__).parent.parent / "README.md"


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
    order = ["storehouse", "truck", "earth_berm", "cleared_site"]
    classes = sorted({k.split("/", 1)[1] for k in metrics if k.startswith("ap50/")},
                     key=lambda c: order.index(c) if c in order else 99)
    hours = result["train_wall_seconds"] / 3600
    took = f"{hours:.2f} h" if hours >= 1 else f"{hours * 60:.1f} min"
    sessions = result.get("training_sessions", [])
    runs = sorted({str(Path(x["log"]).parent.parent) for x in sessions})
    resumed = (f" over {len(sessions)} sessions" if len(sessions) > 1 else "") + (
        f" in {len(runs)} runs (fine-tuned with `--model.init_weights`)" if len(runs) > 1
        else " (resumed with `--ckpt_path`)" if len(sessions) > 1 else "")
    heldout = result.get("heldout")
    lines = [
        f"`{result.get('training_command', result['config'])}` trained "
        + (f"in {took}{resumed} (the last run {result['global_step']} steps, best checkpoint at epoch "
           f"{result['epoch'] + 1})" if len(runs) > 1 else
           f"{result['global_step']} steps (best checkpoint at epoch {result['epoch'] + 1}) in {took}{resumed}")
        + f" on {_training_hardware(result)}, scored by `python -m bench.train_reference`: on the validation "
        "scenes (which chose the checkpoint) and, exported to ONNX and run by `infer run`, on a held-out "
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
        f"| ONNX Runtime alone, same tiles | {sec['onnxruntime']} | {mpx['onnxruntime']} |",
        f"| PyTorch eager, same batches | {sec['pytorch_eager']} | {mpx['pytorch_eager']} |",
        "",
        f"Pipeline efficiency (ORT alone time / pipeline time): **{result['pipeline_efficiency']}**; "
        f"ONNX Runtime vs PyTorch eager: **{result['onnxruntime_vs_pytorch']}×**.",
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


def change_detection_table(result: dict) -> str:
    m, match = result["machine"], result["match"]
    lines = [
        f"Measured {m['date'][:10]} on {m['cpu']} ({m['cores']} cores): `{Path(result['model']).name}` on "
        f"{result['pairs']} generated {result['size']}² two-date pairs, `infer diff --model` at score "
        f"{result['score']}, scored against the generator's `_changes.geojson` (objects within "
        f"{match['object_distance_m']:g} m, region changes IoU ≥ {match['region_min_iou']:g}), "
        f"`{m['command']}`:",
        "",
        "| change | true | found | matched | precision | recall |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, e in result["per_change"].items():
        lines.append(f"| {name} | {e['true']} | {e['found']} | {e['matched']} | {e['precision']:.2f} | "
                     f"{e['recall'] if e['true'] else float('nan'):.2f} |".replace("nan", "–"))
    t = result["totals"]
    lines.append(f"| **all** | **{t['true']}** | **{t['found']}** | **{t['matched']}** | **{result['precision']:.2f}** "
                 f"| **{result['recall']:.2f}** |")
    return "\n".join(lines)


def _stride(model: dict) -> str:
    """', objects at stride N' for results that recorded it."""
    return f", objects at stride {model['stride']}" if model.get("stride") else ""


def _trained_on(record: dict) -> str:
    """', trained on DATASET' for results that recorded it."""
    return f", trained on {record['dataset']}" if record.get("dataset") else ""


def _system_label(name: str, system: dict) -> str:
    if name == "yolo_sahi":
        return f"YOLO + SAHI ({Path(system['model']).stem}{_trained_on(system['training'])})"
    prov = system["provenance"]
    return (f"ours, {name} ({prov['backbone']}, FPN/heads {prov['fpn_channels']}/{prov['head_channels']}"
            f"{_stride(prov)}{_trained_on(prov)})")


def peers_table(result: dict) -> str:
    m, acc, speed, systems = result["machine"], result["accuracy"], result["speed"], result["systems"]
    training = systems["yolo_sahi"]["training"]
    names = list(systems)
    labels = [_system_label(n, systems[n]) for n in names]
    classes = list(next(iter(acc.values()))["classes"])
    lines = [
        f"Measured {m['date'][:10]} on {m['cpu']} ({m['cores']} cores, CPU only), one held-out "
        f"{result['scene']['size_px']}² synthetic scene (seed {result['scene']['seed']}, seen by no model), tile "
        f"{result['tile']}, overlap {result['overlap']}, batch {result['batch']}, accuracy from runs at score ≥ "
        f"{result['score_threshold']} scored by `infer evaluate`, speed from runs at each tool's default threshold. YOLO is `{systems['yolo_sahi']['model']}` from random init, "
        f"{training['epochs']} epochs of {training['train_chips']} chips of {training['imgsz']} px, batch "
        f"{training['batch']} ({training['train_wall_seconds'] / 60:.0f} min), exported to ONNX and run through SAHI. "
        f"`{m['command']}`:",
        "",
        "| AP@0.5 | " + " | ".join(labels) + " |",
        "| --- |" + " ---: |" * len(names),
    ]
    for c in classes:
        lines.append(f"| {c} | " + " | ".join(f"{acc[n]['classes'].get(c, {}).get('ap@0.5', 0):.3f}" for n in names)
                     + " |")
    lines.append("| **mAP@0.5** | " + " | ".join(f"**{acc[n]['map@0.5']:.3f}**" for n in names) + " |")
    lines.append("| mAP@[.5:.95] | " + " | ".join(f"{acc[n]['map@[.5:.95]']:.3f}" for n in names) + " |")
    lines.append("| whole pipeline Mpx/s (median) | " + " | ".join(f"{speed[n]['mpx_per_s']}" for n in names) + " |")
    lines.append("| speed vs YOLO + SAHI | " + " | ".join(f"{speed[n]['vs_yolo_sahi']}×" for n in names) + " |")
    return "\n".join(lines)


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


TABLES = {"gpu_speed": gpu_speed_table, "synth_scale": synth_scale_table, "peers": peers_table, "change_detection": change_detection_table, "train_reference": train_reference_table, "train_fast": train_reference_table,
          "infer_speed": infer_speed_table, "infer_speed_fast": infer_speed_table, "infer_memory": infer_memory_table}


def main() -> None:
    text = README.read_text()
    for name, render in TABLES.items():
        path = RESULTS / f"{name}.json"
        if not path.exists():
            continue
        table = render(json.loads(path.read_text()))
        pattern = re.compile(rf"(<!-- bench:{name} -->).*?(<!-- /bench:{name} -->)", re.S)
        text = pattern.sub(lambda m, t=table: f"{m.group(1)}\n{t}\n{m.group(2)}", text)
    README.write_text(text)


if __name__ == "__main__":
    main()
