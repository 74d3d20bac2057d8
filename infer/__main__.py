"""`python -m infer COMMAND`: the torch-free runtime of sitewatch."""

from __future__ import annotations

import sys

from infer.cli.console import dispatch

USAGE = """usage: python -m infer COMMAND [options]

commands:
  run       find objects and regions in scenes with an exported .onnx model
  evaluate  score predicted GeoJSON against truth for a scene
  report    write a self-contained HTML page about a run folder
  diff      what changed between two dates: new, gone and persisting things
  sites     group detections into sites (compounds) and say which storehouses are fortified
  track     follow sites and objects through many dates: timelines, charts, changes, a report
  parquet   every detection of a run in one GeoParquet file (needs pyarrow)
  gpkg      a whole run in one styled GeoPackage: objects, regions, sites, changes

Run `python -m infer COMMAND --help` for a command's options."""


COMMANDS = {"run": "infer.cli.run:main", "evaluate": "infer.cli.evaluate:main", "report": "infer.cli.report:main",
            "diff": "infer.cli.diff:main", "sites": "infer.cli.sites:main",
            "track": "infer.cli.track:main", "parquet": "infer.cli.parquet:main",
            "gpkg": "infer.cli.gpkg:main"}


def main() -> int:
    return dispatch(USAGE, COMMANDS, sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
