#!/usr/bin/env bash
# One visit to a GPU machine for inference (docs/benchmarks.md, "On a GPU node"): the whole
# `infer run` pipeline on the GPU against ONNX Runtime alone on the same tiles, and the
# pipeline's CPU ceiling on that machine's cores. Results land in $OUT (default gpu-out/).
#
#   bash bench/gpu_infer_session.sh [SIZE]
#
# Needs what bench/gpu_bundle.sh packed, carried to .whl/: every part of site.tar.xz, and of
# onnxruntime-gpu (without those the GPU forms are skipped and the session says so).
# SIZE (default 8192) is the scene's side. Each step has its own time bound.
set -u
OUT=${OUT:-gpu-out}
SIZE=${1:-8192}
mkdir -p "$OUT" /tmp/site /tmp/ort
export PYTHONUNBUFFERED=1 NO_ALBUMENTATIONS_UPDATE=1
say() { echo "[$(date -u +%T)] $*"; }

say "packages"
cat .whl/site.tar.xz.part-* | tar -C /tmp/site -xJf - || exit 1
if cat .whl/ort-gpu.tar.xz.part-* 2>/dev/null | xz -t 2>/dev/null; then  # every part there
    cat .whl/ort-gpu.tar.xz.part-* | tar -C /tmp/ort -xJf - || exit 1
    # preload_dlls looks for the nvidia-* wheels' libraries beside the onnxruntime package
    NVIDIA=$(python3 -c "import nvidia; print(list(nvidia.__path__)[0])") && ln -sfn "$NVIDIA" /tmp/ort/nvidia
fi
export PYTHONPATH=.:/tmp/ort:/tmp/site
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import onnxruntime as o; o.preload_dlls() if hasattr(o, 'preload_dlls') else None; \
print('onnxruntime', o.__version__, o.get_available_providers())"
CUDA=$(python3 -c "import onnxruntime as o; print(int('CUDAExecutionProvider' in o.get_available_providers()))")

if [ "$CUDA" = 1 ]; then
    for form in "fp32::" "fp16:--fp16:" "fp16-regions:--fp16:--regions-in-graph" "fp16-unbound:--fp16:--no-io-binding"; do
        IFS=: read -r name fp16 regions <<<"$form"
        say "infer_speed on the GPU: $name"
        timeout 240 python3 -m bench.infer_speed --checkpoint checkpoints/reference.ckpt --device cuda \
            --size "$SIZE" --batch 8 --runs 3 --job-scenes 2 $fp16 $regions \
            --out "$OUT" --name "gpu_infer_speed_$name" 2>&1 | grep -v -i warning | tail -3
    done
else
    say "no CUDA provider: the GPU forms are skipped; the network's own GPU rate is bench.gpu_speed's"
fi

say "free-model pipeline on $(nproc) cores"
python3 -m train export checkpoints/reference.ckpt --out /tmp/reference.onnx --no-check >/dev/null 2>&1 \
    || python3 -m train export checkpoints/reference.ckpt --out /tmp/reference.onnx >/dev/null
WORKERS="1 2"
[ "$(nproc)" -ge 10 ] && WORKERS="1 4 8 $(( $(nproc) - 2 ))"
timeout 300 python3 -m bench.pipeline_ceiling --like /tmp/reference.onnx --sizes "$SIZE" \
    --workers $WORKERS --runs 2 --job-scenes 3 --out "$OUT" 2>&1 | grep -v -i warning | tail -3

say "gpu tests"
timeout 90 python3 -m pytest -q -p no:cacheprovider -m gpu tests 2>&1 | tail -3
say "done"
