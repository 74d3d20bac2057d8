"""`DIR/report.html` of `infer track`: the area's and each site's timeline, charts inline, every file linked.

Self-contained like the run report (`infer.analysis.report`): the charts are
data URIs, the styles inline.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from infer.analysis.report import STYLE, data_uri
from infer.analysis.track import TIMELINE_FIELDS, Tracking
from infer.files import write_text_atomic

HEADINGS = {"present": "seen", "storehouses": "storehouses", "fortified": "fortified", "cleared_m2": "cleared m²",
            "berm_m": "berm m", "trucks_inside": "trucks inside", "trucks_near": "trucks near"}


def _when(labels: Sequence[str], k: int) -> str:
    return f"{k + 1}" + (f" ({html.escape(labels[k])})" if labels[k] else "")


def _timeline_table(rows: Sequence[dict], labels: Sequence[str]) -> str:
    head = "<th>date</th>" + "".join(f"<th>{HEADINGS[f]}</th>" for f in TIMELINE_FIELDS)
    body = "".join("<tr><td>" + _when(labels, k) + "</td>"
                   + "".join(f"<td>{'yes' if r[f] is True else '' if r[f] is False else r[f]}</td>"
                             for f in TIMELINE_FIELDS) + "</tr>"
                   for k, r in enumerate(rows))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _changes_table(tracking: Tracking, labels: Sequence[str]) -> str:
    """Per consecutive pair, how many things of each class came (new) and went (gone)."""
    kinds = sorted({(c.cls, c.change) for pair in tracking.changes for c in pair if c.change != "persisting"})
    if not kinds:
        return "<p>Nothing changed between consecutive dates.</p>"
    head = "<th>dates</th>" + "".join(f"<th>{html.escape(cls)} {change}</th>" for cls, change in kinds)
    rows = []
    for k, pair in enumerate(tracking.changes):
        counts = Counter((c.cls, c.change) for c in pair)
        rows.append(f"<tr><td>{_when(labels, k)} → {_when(labels, k + 1)}</td>"
                    + "".join(f"<td>{counts.get(kind, 0)}</td>" for kind in kinds) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def write_track_report(folder: Path, tracking: Tracking, labels: Sequence[str], sources: Sequence[str],
                       lines: Sequence[str], charts: dict[int, Path], files: Sequence[str],
                       notes: Sequence[str] = ()) -> Path:
    """The page: `notes` first, then registration, the area's chart, each site's line, chart and table, the
    changes per pair, and links to `files` (names in `folder`). `charts`: site number → PNG, 0 for the whole
    area."""
    registration = "".join(
        f"<tr><td>{_when(labels, k)}</td><td>{html.escape(Path(src).name)}</td><td>{x:+.2f}</td><td>{y:+.2f}</td>"
        f"<td>{support}</td></tr>"
        for k, (src, (x, y), support) in enumerate(zip(sources, tracking.offsets, tracking.support, strict=True)))
    persistent = sum(len(t.dates_seen()) == len(labels) for t in tracking.objects)
    body = [f"<h1>sitewatch track: {len(labels)} dates, {len(tracking.sites)} site(s)</h1>",
            "<p class=files>Files: " + " · ".join(f"<a href='{html.escape(n)}'>{html.escape(n)}</a>" for n in files)
            + "</p>",
            *(f"<p class=note>{html.escape(note)}</p>" for note in notes),
            "<h2>Registration to the first date</h2><table><thead><tr><th>date</th><th>source</th>"
            "<th>shift east m</th><th>shift north m</th><th>objects agreeing</th></tr></thead>"
            f"<tbody>{registration}</tbody></table>",
            f"<p>{len(tracking.objects)} object track(s), {persistent} seen at every date.</p>"]
    dropped = sum(map(len, tracking.flicker))
    if dropped:
        body.append(f"<p class=note>{dropped} change(s) undone by the next pair of dates (an object missed at one "
                    "date, a region piece found at one date only) are not counted as changes; "
                    "<code>--keep-flicker</code> counts them.</p>")
    if 0 in charts:
        body.append(f"<h2>The whole area</h2><img alt='area timeline' src='{data_uri(charts[0])}'>")
    body.append("<h2>Changes between consecutive dates</h2>" + _changes_table(tracking, labels))
    for site, line in zip(tracking.sites, lines, strict=False):
        body.append(f"<h2 id=site{site.number}>Site {site.number}</h2><p>{html.escape(line)}</p>")
        if site.number in charts:
            body.append(f"<img alt='site {site.number} timeline' src='{data_uri(charts[site.number])}'>")
        body.append(_timeline_table(site.timeline(), labels))
    page = (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>sitewatch track</title>"
            f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>")
    return write_text_atomic(folder / "report.html", page)


__all__ = ["write_track_report"]
