#!/usr/bin/env bash
# One visit to a GPU machine for inference (docs/benchmarks.md, "On a GPU node"): the whole
# `infer run` pipeline on the GPU against ONNX Runtime alone on the same tiles, and the
# pipeline's CPU ceiling on that machine's cores. Results land in $OUT (default gpu-out/).
#
#   bash bench/gpu_infer_session.sh [SIZE]
#
# Needs what bench/gpu_bundle.sh packed, carried to .whl/: every part of site.tar.xz, and of
# onnxruntime-gpu (without those the GPU forms are skipped and the session says so).
# SIZE (default 8192) is the scene's side. The whole session fits in BUDGET_S seconds
# (default 540, under a device call's 600): the steps run most important first, each within
# its own bound and what is left, and a step that no longer fits is skipped and named.
# SITE=0 skips unpacking the bundle and PY picks the interpreter (bench/gpu_common.sh): a dry
# run on a machine without a GPU is `SITE=0 PY=.venv/bin/python BUDGET_S=300 bash $0 2048`.
set -u
OUT=${OUT:-gpu-out}
SIZE=${1:-8192}
# shellcheck source=bench/gpu_common.sh
. "$(dirname "$0")/gpu_common.sh"
mkdir -p "$OUT"

say "packages"
unpack_packages || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || say "no nvidia-smi"
$PY -c "import onnxruntime as o; o.preload_dlls() if hasattr(o, 'preload_dlls') else None; \
print('onnxruntime', o.__version__, o.get_available_providers())"
CUDA=$($PY -c "import onnxruntime as o; print(int('CUDAExecutionProvider' in o.get_available_providers()))")

gpu_form() {  # NAME [EXPORT FLAGS...]: bench.infer_speed on the GPU in one form of the graph
    local name=$1
    shift
    say "infer_speed on the GPU: $name"
    within 150 60 $PY -m bench.infer_speed --checkpoint checkpoints/reference.ckpt --device cuda \
        --size "$SIZE" --batch 8 --runs 3 --job-scenes 2 "$@" \
        --out "$OUT" --name "gpu_infer_speed_$name" 2>&1 | grep -v -i warning | tail -3
}

ceiling() {
    say "free-model pipeline on $(nproc) cores"
    within 60 20 $PY -m train export checkpoints/reference.ckpt --out /tmp/reference.onnx --no-check >/dev/null
    local workers="1 2"
    [ "$(nproc)" -ge 10 ] && workers="1 4 8 $(( $(nproc) - 2 ))"
    # shellcheck disable=SC2086  # the worker counts are separate arguments
    within 240 90 $PY -m bench.pipeline_ceiling --like /tmp/reference.onnx --sizes "$SIZE" \
        --workers $workers --runs 2 --job-scenes 3 --out "$OUT" 2>&1 | grep -v -i warning | tail -3
}

if [ "$CUDA" = 1 ]; then
    gpu_form fp16 --fp16
    ceiling
    gpu_form fp32
    gpu_form fp16-regions --fp16 --regions-in-graph
    say "gpu tests"
    within 90 30 $PY -m pytest -q -p no:cacheprovider -m gpu tests 2>&1 | tail -3
    gpu_form fp16-unbound --fp16 --no-io-binding
else
    say "no CUDA provider: the GPU forms are skipped; the network's own GPU rate is bench.gpu_speed's"
    ceiling
fi
say "done, $(left) s of the budget left"
