#!/usr/bin/env bash
# One visit to a GPU machine: the reference recipe trained from scratch on the GPU,
# and the network's GPU speed (bench/gpu_speed.py). Results land in $OUT (default
# gpu-out/): the slim checkpoint in parts of 12 MiB (cat them back together), the
# run's CSV logs, bench JSON and the log.
#
#   bash bench/gpu_session.sh [MAX_MINUTES]
#
# Needs the site parts of bench/gpu_bundle.sh carried to .whl/ (bench/gpu_common.sh unpacks
# them). Everything else is generated here (no data travels): the synthetic scenes of
# `make data-reference`, written 8 at a time. The fit is the recipe with a GPU's
# batch: 32 chips a step, 8192 an epoch, 20 epochs, validation every second
# epoch (329 s on an H200: docs/training-log.md). MAX_MINUTES (default 6) bounds it,
# keeping the best epoch so far, and so does the visit's budget (BUDGET_S, 540 s by
# default, less 120 s kept for what follows the fit); FIT_ARGS adds or overrides fit
# options; SKIP_SPEED=1 skips bench.gpu_speed.
set -u
OUT=${OUT:-gpu-out}
MINUTES=${1:-6}
RUN=runs/synthetic-gpu
WORKERS=$(( $(nproc) > 3 ? $(nproc) - 2 : 1 ))
# shellcheck source=bench/gpu_common.sh
. "$(dirname "$0")/gpu_common.sh"
mkdir -p "$OUT"
unpack_packages || exit 1

say "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv,noheader
$PY -c "import onnxruntime as o, torch; print('onnxruntime', o.__version__, o.get_available_providers()); \
print('torch', torch.__version__, torch.cuda.get_device_name(), 'bf16', torch.cuda.is_bf16_supported())" || exit 1

say "synthetic scenes"
$PY -m train synth --out datasets/synthetic/train --scenes 6 --size 2048 --seed 1 --quiet --workers 3 >/dev/null &
$PY -m train synth --out datasets/synthetic/val --scenes 2 --size 2048 --seed 2 --quiet --workers 2 >/dev/null &
$PY -m train synth --out datasets/synthetic/train_more --scenes 42 --size 2048 --seed 3 --quiet --workers 8 >/dev/null &
wait
ls datasets/synthetic/*/*.tif | wc -l

say "gpu speed"
[ -n "${SKIP_SPEED:-}" ] || within 90 30 $PY -m bench.gpu_speed --workers "$WORKERS" --runs 10 --out "$OUT"

FIT_S=$(( $(left) - 120 ))
(( FIT_S > MINUTES * 60 )) && FIT_S=$(( MINUTES * 60 ))
say "fit: reference recipe from scratch, batch 32, ${FIT_S} s at most"
sed "s#runs/synthetic#$RUN#g" train/configs/synthetic.yaml > /tmp/gpu-recipe.yaml
# shellcheck disable=SC2086  # FIT_ARGS are separate arguments
within $(( FIT_S + 60 )) 120 $PY -m train fit --config /tmp/gpu-recipe.yaml \
    --data.batch_size 32 --data.samples_per_epoch 8192 --data.num_workers "$WORKERS" \
    --trainer.max_epochs 20 --trainer.check_val_every_n_epoch 2 \
    --trainer.max_time "$(printf 00:00:%02d:%02d $(( FIT_S / 60 )) $(( FIT_S % 60 )))" --trainer.enable_progress_bar false ${FIT_ARGS:-} \
    2>&1 | tee "$OUT/fit.log" | grep -v -i "warning" | tail -40
say "fit ended"

$PY -m train slim $RUN/checkpoints/best.ckpt --out /tmp/gpu-best.ckpt --half \
    && split -b 12M /tmp/gpu-best.ckpt "$OUT/best-half.ckpt.part-"
tar czf "$OUT/run-logs.tgz" $RUN/csv $RUN/tensorboard 2>/dev/null
$PY -c "import sys; from pathlib import Path; from bench.train_reference import validation_curve
for row in validation_curve(Path(sys.argv[1])): print(row)" "$RUN"
say "gpu tests"
within 90 30 $PY -m pytest -q -p no:cacheprovider -m gpu tests 2>&1 | tail -5
say "done"
