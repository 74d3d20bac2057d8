#!/usr/bin/env bash
# Packs here what a lent GPU machine lacks, to travel with the device tool's `carry`
# (its image has Python 3.12, torch, Lightning, onnx and a CPU-only onnxruntime).
#
#   bash bench/gpu_bundle.sh [PART_MB]
#
# writes, under .whl/ (ignored by git):
#   site.tar.xz          the contents of the cp312 wheels of the packages the image lacks
#                        (rasterio, pyproj, shapely, pyogrio, pycocotools, albumentations,
#                        jsonargparse and their needs), versions from constraints.txt;
#   ort-gpu.tar.xz.part-*  onnxruntime-gpu of constraints.txt's onnxruntime version, its
#                        wheel's contents xz-compressed and split in parts of PART_MB
#                        (default 36: a call carries the checkout, about 26 MB, and one part
#                        within its 64 MiB).
# bench/gpu_infer_session.sh unpacks both there. Carry `.whl/site.tar.xz` and the first
# part in the first call, one more part in each call after it while the machine is warm
# (a carried path stays there until the machine goes back), then run the session.
set -euo pipefail
PART_MB=${1:-36}
PY=${PY:-.venv/bin/python}
WHEELS=$(mktemp -d)
trap 'rm -rf "$WHEELS"' EXIT
mkdir -p .whl
rm -f .whl/site.tar.xz .whl/ort-gpu.tar.xz.part-*
version() { sed -n "s/^$1==//p" constraints.txt; }
download() {
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any -d "$1" "${@:2}"
}
pinned() { local v; v=$(version "$1"); echo "$1${v:+==$v}"; }

PACKAGES=(rasterio affine cligj click-plugins pyproj shapely pyogrio pycocotools
          albumentations albucore simsimd stringzilla pydantic pydantic-core annotated-types
          typing-inspection jsonargparse docstring-parser typeshed-client)
mkdir -p "$WHEELS/site" "$WHEELS/ort"
for name in "${PACKAGES[@]}"; do
    download "$WHEELS/site" "$(pinned "$name")"
done
for wheel in "$WHEELS"/site/*.whl; do
    "$PY" -m zipfile -e "$wheel" "$WHEELS/site/tree"
done
tar -C "$WHEELS/site/tree" -cJf .whl/site.tar.xz .

download "$WHEELS/ort" "onnxruntime-gpu==$(version onnxruntime)"
"$PY" -m zipfile -e "$WHEELS"/ort/onnxruntime_gpu-*.whl "$WHEELS/ort/tree"
tar -C "$WHEELS/ort/tree" -cf - . | xz -T0 -9 > "$WHEELS/ort-gpu.tar.xz"
split -b "${PART_MB}M" "$WHEELS/ort-gpu.tar.xz" .whl/ort-gpu.tar.xz.part-
ls -l .whl
