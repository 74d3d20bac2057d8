"""A site's timeline as a chart: storehouses (all and fortified) and trucks, cleared ground, berm length.

Three panels share the date axis, each with its own scale and every value
written on it, so the PNG reads without the table beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw

from infer.files import atomic_write
from infer.pictures.drawing import font

#: Series drawn in each panel: (timeline field, legend text, colour), and the panel's title.
PANELS: tuple[tuple[str, tuple[tuple[str, str, str], ...]], ...] = (
    ("count", (("storehouses", "storehouses", "#3b6fb6"), ("fortified", "fortified", "#d7301f"),
               ("trucks_inside", "trucks inside", "#7b3294"))),
    ("sq m", (("cleared_m2", "cleared ground", "#b8860b"),)),
    ("m", (("berm_m", "earth berm", "#1a9e77"),)),
)
WIDTH, PANEL_HEIGHT, LEFT, RIGHT, TOP, AXIS = 760, 150, 70, 24, 44, 40


def _number(value: float) -> str:
    return f"{value:,.0f}"


def _panel(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], unit: str,
           series: Sequence[tuple[str, str, str]], rows: Sequence[dict], xs: Sequence[float]) -> None:
    left, top, right, bottom = box
    small, tiny = font(13), font(11)
    top_value = max([float(r[field]) for r in rows for field, _, _ in series] + [1.0])
    inner_top = top + 38  # the legend, then the values written above the highest point

    def y(value: float) -> float:
        return bottom - (bottom - inner_top) * float(value) / top_value

    draw.rectangle(box, outline=(190, 190, 190))
    draw.text((left - 8, y(top_value)), _number(top_value), fill=(90, 90, 90), font=tiny, anchor="rm")
    draw.text((left - 8, bottom), "0", fill=(90, 90, 90), font=tiny, anchor="rm")
    draw.text((left - 8, top + 4), unit, fill=(90, 90, 90), font=tiny, anchor="ra")
    legend_x = left + 8
    for _, text, color in series:
        draw.rectangle([legend_x, top + 6, legend_x + 10, top + 16], fill=color)
        draw.text((legend_x + 14, top + 4), text, fill=(40, 40, 40), font=small)
        legend_x += 28 + int(draw.textlength(text, font=small))
    bar = len(series) == 1
    step = (xs[1] - xs[0]) if len(xs) > 1 else (right - left) / 2
    for n, (field, _, color) in enumerate(series):
        values = [float(r[field]) for r in rows]
        points = [(x, y(v)) for x, v in zip(xs, values, strict=True)]
        if bar:
            for (x, py), v in zip(points, values, strict=True):
                half = step * 0.3
                draw.rectangle([x - half, py, x + half, bottom], fill=color)
                draw.text((x, py - 3), _number(v), fill=(40, 40, 40), font=tiny, anchor="md")
            continue
        if len(points) > 1:
            draw.line(points, fill=color, width=4 - n)
        for (x, py), v in zip(points, values, strict=True):
            r = 5 - n
            draw.ellipse([x - r, py - r, x + r, py + r], fill=color)
            # each series' values on their own side of the point, so equal values stay readable
            draw.text((x - 8 + 16 * (n % 2), py - 6 + 18 * (n // 2)), _number(v), fill=color, font=tiny,
                      anchor="rd" if n % 2 == 0 else "ld")


def write_timeline_chart(path: Path, title: str, labels: Sequence[str], rows: Sequence[dict]) -> Path:
    """Write the chart of one timeline (`rows`: a dict of `infer.analysis.track.TIMELINE_FIELDS` per date,
    `labels`: the dates' names) to `path`, a PNG."""
    height = TOP + len(PANELS) * (PANEL_HEIGHT + 12) + AXIS
    image = Image.new("RGB", (WIDTH, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((LEFT, 12), title, fill=(20, 20, 20), font=font(17))
    n = len(rows)
    span = WIDTH - LEFT - RIGHT
    xs = [LEFT + span * (k + 0.5) / n for k in range(n)]
    for p, (unit, series) in enumerate(PANELS):
        top = TOP + p * (PANEL_HEIGHT + 12)
        _panel(draw, (LEFT, top, WIDTH - RIGHT, top + PANEL_HEIGHT), unit, series, rows, xs)
    axis_y = TOP + len(PANELS) * (PANEL_HEIGHT + 12)
    for k, (x, row) in enumerate(zip(xs, rows, strict=True)):
        name = labels[k] or f"date {k + 1}"
        color = (20, 20, 20) if row.get("present", True) else (170, 170, 170)
        draw.text((x, axis_y), f"date {k + 1}", fill=color, font=font(12), anchor="ma")
        draw.text((x, axis_y + 16), name if name != f"date {k + 1}" else "", fill=color, font=font(11), anchor="ma")
    with atomic_write(path, ".png") as temporary:
        image.save(temporary, format="PNG")
    return path


__all__ = ["PANELS", "write_timeline_chart"]
