"""QGIS layer styles (QML) that draw each class in its colour, as the overlay does.

A GeoPackage carries them in its `layer_styles` table, which QGIS reads when the
layer is opened: the analyst drags one file in and sees the classes coloured.
The document is a categorized renderer on the `class` field, one fill symbol
per class: regions lightly filled and outlined, objects outlined.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from infer.contract.defaults import REGION_FILL_ALPHA
from infer.contract.schema import hex_rgb


def _option(parent: ET.Element, name: str, value: str) -> None:
    ET.SubElement(parent, "Option", {"name": name, "type": "QString", "value": value})


def class_style(colors: dict[str, str], filled: bool, field: str = "class") -> str:
    """A QML document colouring features by their `field` value: `colors` maps each value to "#rrggbb"."""
    root = ET.Element("qgis", {"version": "3.28.0", "styleCategories": "Symbology"})
    renderer = ET.SubElement(root, "renderer-v2", {"type": "categorizedSymbol", "attr": field, "symbollevels": "0",
                                                   "enableorderby": "0", "forceraster": "0"})
    categories = ET.SubElement(renderer, "categories")
    symbols = ET.SubElement(renderer, "symbols")
    for index, (name, color) in enumerate(colors.items()):
        ET.SubElement(categories, "category", {"value": name, "symbol": str(index), "label": name, "render": "true"})
        symbol = ET.SubElement(symbols, "symbol", {"type": "fill", "name": str(index), "alpha": "1",
                                                   "clip_to_extent": "1", "force_rhr": "0"})
        layer = ET.SubElement(symbol, "layer", {"class": "SimpleFill", "enabled": "1", "locked": "0", "pass": "0"})
        options = ET.SubElement(layer, "Option", {"type": "Map"})
        r, g, b = hex_rgb(color)
        _option(options, "color", f"{r},{g},{b},{REGION_FILL_ALPHA if filled else 0}")
        _option(options, "style", "solid" if filled else "no")
        _option(options, "outline_color", f"{r},{g},{b},255")
        _option(options, "outline_style", "solid")
        _option(options, "outline_width", "0.6")
        _option(options, "outline_width_unit", "MM")
    return "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + ET.tostring(root, encoding="unicode")


__all__ = ["class_style"]
