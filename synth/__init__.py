"""The synthetic scene generator: georeferenced GeoTIFFs with exact labels, torch-free (`python -m synth`)."""
