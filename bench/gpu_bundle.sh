#!/usr/bin/env bash
# Packs here what a lent GPU machine lacks, to travel with the device tool's `carry`
# (its image has Python 3.12, torch, Lightning, onnx and a CPU-only onnxruntime).
#
#   bash bench/gpu_bundle.sh [PART_MB]
#
# writes, under .whl/ (ignored by git), xz-compressed tar streams split in parts of
# PART_MB MiB (default 36: a call carries the checkout, about 27 MB, and one part
# within its 64 MiB):
#   site.tar.xz.part-*     the contents of the cp312 wheels of the packages the image lacks
#                          (rasterio, pyproj, shapely, pyogrio, pycocotools, albumentations,
#                          jsonargparse and their needs), the versions installed here; 2 parts;
#   ort-gpu.tar.xz.part-*  onnxruntime-gpu of the onnxruntime version installed here; 6 parts.
# Each device call carries one part (a carried path stays there while the machine is warm),
# the site parts first; bench/gpu_infer_session.sh joins and unpacks them there, and runs
# without the GPU forms of the pipeline when onnxruntime-gpu's parts are not all there.
set -euo pipefail
PART_MB=${1:-36}
PY=${PY:-.venv/bin/python}
WHEELS=$(mktemp -d)
trap 'rm -rf "$WHEELS"' EXIT
mkdir -p .whl
rm -f .whl/site.tar.xz* .whl/ort-gpu.tar.xz*
download() {
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any -d "$1" "${@:2}"
}
# The version installed here, which the tests ran with.
installed() { "$PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$1"; }

PACKAGES=(rasterio affine cligj click-plugins pyproj shapely pyogrio pycocotools
          albumentations albucore simsimd stringzilla pydantic pydantic-core annotated-types
          typing-inspection jsonargparse docstring-parser typeshed-client)
mkdir -p "$WHEELS/site" "$WHEELS/ort"
for name in "${PACKAGES[@]}"; do
    download "$WHEELS/site" "$name==$(installed "$name")"
done
for wheel in "$WHEELS"/site/*.whl; do
    "$PY" -m zipfile -e "$wheel" "$WHEELS/site/tree"
done
tar -C "$WHEELS/site/tree" -cf - . | xz -T0 -9 | split -b "${PART_MB}M" - .whl/site.tar.xz.part-

download "$WHEELS/ort" "onnxruntime-gpu==$(installed onnxruntime)"
"$PY" -m zipfile -e "$WHEELS"/ort/onnxruntime_gpu-*.whl "$WHEELS/ort/tree"
tar -C "$WHEELS/ort/tree" -cf - . | xz -T0 -9 | split -b "${PART_MB}M" - .whl/ort-gpu.tar.xz.part-
ls -l .whl
