"""`DIR/report.html`: one self-contained page about an `infer run` folder.

Everything is inside the file — pictures as data URIs (overviews re-encoded
as JPEG to keep the page light), styles and the table-sorting script inline —
so it opens offline, from a mail attachment or a share, with no CDN.
"""

from __future__ import annotations

import base64
import html
import io
import os
import urllib.parse
from pathlib import Path
from typing import Any

import shapely
from PIL import Image

from infer.files import write_text_atomic
from infer.geo.crs import centre_lonlat
from infer.geo.geojson import read_feature_collection
from infer.runtime.runfolder import read_summaries
from infer.runtime.scenes import scene_name

OVERVIEW_SIDE = 1600
MAX_ROWS_PER_SCENE = 5000

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1400px;padding:16px;color:#1b1b1b;background:#fafafa}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-top:1px solid #ccc;padding-top:16px}
table{border-collapse:collapse;margin:8px 0}td,th{padding:3px 8px;border-bottom:1px solid #e2e2e2;text-align:right}
th{background:#eee;position:sticky;top:0}.detections th{cursor:pointer}.detections th:after{content:" \\2195";color:#999}
td:first-child,th:first-child,td.cls{text-align:left}img{max-width:100%;border:1px solid #ccc}
.swatch{display:inline-block;width:10px;height:10px;margin-right:6px}.failed{color:#b00020}
.scroll{max-height:480px;overflow:auto;border:1px solid #ddd}.note{color:#666}
"""

SORT_SCRIPT = """
function sortBy(th){const table=th.closest('table');const body=table.tBodies[0];const col=th.cellIndex;
const asc=table.dataset.sortCol==String(col)&&table.dataset.sortDir!='asc';
const key=r=>{const c=r.cells[col];const v=c.dataset.v!==undefined?c.dataset.v:c.textContent;const n=parseFloat(v);
return isNaN(n)?v:n};
const rows=Array.from(body.rows).sort((a,b)=>{const x=key(a),y=key(b);return (x<y?-1:x>y?1:0)*(asc?1:-1)});
rows.forEach(r=>body.appendChild(r));table.dataset.sortCol=col;table.dataset.sortDir=asc?'asc':'desc'}
document.querySelectorAll('table.detections').forEach(t=>{
t.querySelectorAll('th').forEach(th=>th.addEventListener('click',()=>sortBy(th)));
const score=Array.from(t.tHead.rows[0].cells).find(c=>c.textContent=='score');if(score)sortBy(score)});
"""


def data_uri(path: Path, max_side: int | None = None) -> str:
    """A PNG as a data URI; with `max_side`, shrunk and re-encoded as JPEG."""
    if max_side is None:
        return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()
    with Image.open(path) as image:
        image = image.convert("RGB")
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def _detection_rows(geojson: Path) -> tuple[list[str], int]:
    collection = read_feature_collection(geojson)
    colors = collection.get("colors") or {}  # the model's class colours, written by `infer run`
    pixel = "coordinates" in collection
    rows = []
    features = collection["features"]
    for n, feat in enumerate(features[:MAX_ROWS_PER_SCENE], start=1):
        p = feat["properties"]
        geom = shapely.geometry.shape(feat["geometry"])
        x, y = (geom.centroid.x, geom.centroid.y) if pixel else centre_lonlat(geom)
        size = (f"{p['length_m']:.1f} x {p['width_m']:.1f} m" if "length_m" in p else f"{p.get('area_m2', 0):,.0f} m²")
        size_key = p.get("area_m2", p.get("length_m", 0) * p.get("width_m", 0))
        heading = f"{p['heading_deg']:.0f}" if "heading_deg" in p else ""
        color = colors.get(p["class"], "#888")
        xy = f"{x:.1f}</td><td>{y:.1f}" if pixel else f"{x:.6f}</td><td>{y:.6f}"
        rows.append(f"<tr><td>{n}</td><td class=cls><span class=swatch style='background:{color}'></span>"
                    f"{html.escape(p['class'])}</td><td>{p.get('score', 1.0):.3f}</td>"
                    f"<td data-v='{size_key}'>{size}</td><td>{heading}</td><td>{xy}</td></tr>")
    return rows, len(features)


#: How the report names each output of a scene it links to.
ARTEFACTS = {"geojson": "GeoJSON", "geopackage": "GeoPackage (QGIS)", "mask": "mask (COG)", "overlay": "overview",
             "detections": "best detections"}


def href(target: str) -> str:
    """A file name or `#id` as a link's target in the page: percent-encoded (a scene called `site #2 é.tif`
    would otherwise link to `site `), then escaped for the attribute."""
    fragment = target.startswith("#")
    return html.escape(("#" if fragment else "") + urllib.parse.quote(target.removeprefix("#")), quote=True)


def _files_line(outputs: dict[str, Path], folder: Path) -> str:
    """Links to the scene's outputs that exist, relative to the report's folder, which they travel with."""
    links = [f"<a href='{href(os.path.relpath(outputs[kind], folder))}'>{label}</a>"
             for kind, label in ARTEFACTS.items() if outputs.get(kind, Path()).is_file()]
    return f"<p class=files>Files: {' · '.join(links)}</p>" if links else ""


def _scene_section(entry: dict[str, Any], folder: Path) -> str:
    name = scene_name(Path(entry["scene"]))
    if entry.get("status") != "done":
        return f"<h2>{html.escape(name)}</h2><p class=failed>failed: {html.escape(entry.get('error', ''))}</p>"
    outputs = {k: Path(v) for k, v in entry["outputs"].items()}
    date = f" · {entry['date']}" if entry.get("date") else ""
    counts = "".join(f"<tr><td>{html.escape(k)}</td><td>{v}</td></tr>" for k, v in entry["counts"].items())
    parts = [f"<h2 id='{html.escape(name)}'>{html.escape(name)}{date}</h2>",
             f"<p>{entry['megapixels']} Mpx in {entry['seconds']} s ({entry['mpx_per_s']} Mpx/s), "
             f"{entry['tiles']} tiles{'' if entry.get('georeferenced', True) else ', pixel coordinates'}</p>",
             f"<table><thead><tr><th>class</th><th>count</th></tr></thead><tbody>{counts}</tbody></table>",
             _files_line(outputs, folder)]
    if outputs.get("overlay", Path()).is_file():
        parts.append(f"<h3>Overview</h3><img alt='overview of {html.escape(name)}' "
                     f"src='{data_uri(outputs['overlay'], OVERVIEW_SIDE)}'>")
    if outputs.get("detections", Path()).is_file():
        parts.append(f"<h3>Best detections per class</h3><img alt='detections of {html.escape(name)}' "
                     f"src='{data_uri(outputs['detections'])}'>")
    if outputs.get("geojson", Path()).is_file():
        rows, total = _detection_rows(outputs["geojson"])
        pixel = not entry.get("georeferenced", True)
        x, y = ("x (px)", "y (px)") if pixel else ("longitude", "latitude")
        shown = "" if total <= len(rows) else f" <span class=note>(first {len(rows)} of {total})</span>"
        parts.append(f"<h3>Detections: {total}{shown}</h3><div class=scroll><table class=detections><thead><tr>"
                     f"<th>#</th><th>class</th><th>score</th><th>size</th><th>heading°</th><th>{x}</th><th>{y}</th>"
                     f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")
    return "\n".join(parts)


def _sites_section(folder: Path) -> str:
    """The sites `infer sites` wrote into the run folder, a row each; empty when it has not run there."""
    path = folder / "sites.geojson"
    if not path.is_file():
        return ""
    sites = [f["properties"] for f in read_feature_collection(path)["features"]]
    columns = ("scene", "site", "length_m", "width_m", "area_m2", "storehouses", "fortified_storehouses", "berm_m",
               "cleared_m2", "trucks_inside", "trucks_near")
    heading = ("scene", "site", "length m", "width m", "area m²", "storehouses", "fortified", "berm m", "cleared m²",
               "trucks inside", "trucks near")
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(p.get(c, '')))}</td>" for c in columns) + "</tr>"
                   for p in sites)
    links = " · ".join(f"<a href='{name}'>{name}</a>" for name in ("sites.geojson", "sites.gpkg", "sites.txt")
                       if (folder / name).is_file())
    return (f"<h2 id=sites>Sites: {len(sites)}</h2><p class=files>Files: {links}</p><div class=scroll>"
            f"<table class=detections><thead><tr>{''.join(f'<th>{h}</th>' for h in heading)}</tr></thead>"
            f"<tbody>{rows}</tbody></table></div>")


def write_report(folder: Path, title: str | None = None) -> Path:
    entries = read_summaries(folder)
    done = [e for e in entries if e.get("status") == "done"]
    totals: dict[str, int] = {}
    for e in done:
        for k, v in e["counts"].items():
            totals[k] = totals.get(k, 0) + v
    megapixels = sum(e["megapixels"] for e in done)
    seconds = sum(e["seconds"] for e in done)
    index = "".join(
        f"<tr><td><a href='{href('#' + scene_name(Path(e['scene'])))}'>"
        f"{html.escape(scene_name(Path(e['scene'])))}</a></td>"
        f"<td>{e.get('date') or ''}</td><td>{e.get('status')}</td>"
        + "".join(f"<td>{e.get('counts', {}).get(k, '')}</td>" for k in totals) + "</tr>"
        for e in entries)
    heading = "".join(f"<th>{html.escape(k)}</th>" for k in totals)
    total_row = "".join(f"<td><b>{v}</b></td>" for v in totals.values())
    body = [f"<h1>{html.escape(title or f'sitewatch run: {folder.resolve().name}')}</h1>",
            f"<p>{len(done)} of {len(entries)} scene(s) done, {megapixels:.1f} Mpx in {seconds:.0f} s"
            f"{f' ({megapixels / seconds:.2f} Mpx/s)' if seconds else ''}.</p>",
            f"<table><thead><tr><th>scene</th><th>date</th><th>status</th>{heading}</tr></thead>"
            f"<tbody>{index}<tr><td><b>all</b></td><td></td><td></td>{total_row}</tr></tbody></table>"]
    run_files = [name for name in ("summary.json", "detections.parquet") if (folder / name).is_file()]
    run_files += sorted(p.name for p in folder.glob("summary-*-of-*.json"))
    body.append("<p class=files>Run files: " + " · ".join(f"<a href='{href(n)}'>{html.escape(n)}</a>"
                                                          for n in run_files) + "</p>")
    body.append(_sites_section(folder))
    body += [_scene_section(e, folder) for e in entries]
    page = (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(folder.name)} report"
            f"</title><style>{STYLE}</style></head><body>{''.join(body)}<script>{SORT_SCRIPT}</script></body></html>")
    path = folder / "report.html"
    return write_text_atomic(path, page)
