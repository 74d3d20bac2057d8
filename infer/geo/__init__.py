"""Coordinate systems, GeoJSON and the GDAL settings every raster read and write uses."""
