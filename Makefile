# The only commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo_out

DATA := datasets/synthetic
.PHONY: setup data data-reference data-trees demo demo-train train test test-all bench bench-quick lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[train,dev,ray]'
	@touch $(STAMP)

# The synthetic default: 6 training and 2 held-out validation scenes, 1 km² each.
data: setup $(DATA)/val/scene_001.tif

$(DATA)/val/scene_001.tif:
	$(PY) -m synth --out $(DATA)/train --scenes 6 --size 2048 --seed 1 --quiet
	$(PY) -m synth --out $(DATA)/val --scenes 2 --size 2048 --seed 2 --quiet

# The reference recipe trains on 42 more scenes (datasets/synthetic_reference.yaml).
data-reference: data $(DATA)/train_more/scene_041.tif

$(DATA)/train_more/scene_041.tif:
	$(PY) -m synth --out $(DATA)/train_more --scenes 42 --size 2048 --seed 3 --quiet

# Real aerial imagery with hand-drawn tree boxes (PASCAL VOC), from DeepForest's wheel: the tiles
# OSBS_029 and SOAP_061 only (docs/your-own-data.md). Its 2019_YELL_2_* tiles are kept out on purpose.
TREES := datasets/trees/voc
DEEPFOREST := deepforest==2.1.0

data-trees: setup $(TREES)/SOAP_061.png

$(TREES)/SOAP_061.png:
	mkdir -p $(TREES) datasets/trees/wheel
	$(PY) -m pip download --quiet --no-deps $(DEEPFOREST) -d datasets/trees/wheel
	cd datasets/trees/wheel && $(abspath $(PY)) -c "import glob, zipfile; z = zipfile.ZipFile(glob.glob('deepforest-*.whl')[0]); \
		[open('../voc/' + n.rsplit('/', 1)[1], 'wb').write(z.read(n)) for n in z.namelist() \
		 if n.rsplit('/', 1)[-1].split('.')[0] in ('OSBS_029', 'SOAP_061') and n.endswith(('.png', '.xml'))]"

train: data-reference
	$(PY) -m train fit --config train/configs/synthetic.yaml

# The main job on the synthetic default, with the shipped reference model: export it to ONNX,
# a held-out scene through the batch job, its evaluation and HTML report, and what changed
# between the two dates of a scene pair.
DEMO_MODEL := checkpoints/reference.onnx

# The reference checkpoint predates the dataset's smallest areas: the export gives them (datasets/synthetic.yaml).
# A new model starts the demo's runs afresh: `infer run` refuses a folder another model's runs made.
$(DEMO_MODEL): checkpoints/reference.ckpt | $(STAMP)
	$(PY) -m train export checkpoints/reference.ckpt --out $@ --min-area earth_berm=10 --min-area cleared_site=400
	rm -rf $(DEMO_DIR)/run $(DEMO_DIR)/changes $(DEMO_DIR)/track

$(DEMO_DIR)/heldout/scene_000.tif: | $(STAMP)
	$(PY) -m synth --out $(DEMO_DIR)/heldout --size 8192 --seed 99 --quiet

$(DEMO_DIR)/scenes/scene_000_t2.tif: | $(STAMP)
	$(PY) -m synth --out $(DEMO_DIR)/scenes --scenes 1 --size 2048 --second-date --seed 7 --preview --quiet

# One area at three dates: a compound cleared, then built and walled in (python -m synth --dates).
SERIES := $(foreach stem,scene_000 scene_000_t2 scene_000_t3,$(DEMO_DIR)/series/$(stem).tif)

$(DEMO_DIR)/series/scene_000_t3.tif: | $(STAMP)
	$(PY) -m synth --out $(DEMO_DIR)/series --scenes 1 --size 2048 --dates 3 --seed 8 --quiet

demo: setup $(DEMO_MODEL) $(DEMO_DIR)/heldout/scene_000.tif $(DEMO_DIR)/scenes/scene_000_t2.tif \
		$(DEMO_DIR)/series/scene_000_t3.tif
	$(PY) -m infer run $(DEMO_MODEL) $(DEMO_DIR)/heldout/scene_000.tif --out $(DEMO_DIR)/run
	$(PY) -m infer evaluate $(DEMO_DIR)/run/scene_000.geojson $(DEMO_DIR)/heldout/scene_000.geojson \
		--scene $(DEMO_DIR)/heldout/scene_000.tif
	$(PY) -m infer sites $(DEMO_DIR)/run
	$(PY) -m infer report $(DEMO_DIR)/run
	$(PY) -m infer diff $(DEMO_DIR)/scenes/scene_000.tif $(DEMO_DIR)/scenes/scene_000_t2.tif \
		--model $(DEMO_MODEL) --out $(DEMO_DIR)/changes
	$(PY) -m infer track --model $(DEMO_MODEL) $(SERIES) --out $(DEMO_DIR)/track
	@echo "Report: $(DEMO_DIR)/run/report.html  Overview: $(DEMO_DIR)/run/scene_000_overlay.png"
	@echo "Best detections: $(DEMO_DIR)/run/scene_000_detections.png  GeoJSON: $(DEMO_DIR)/run/scene_000.geojson"
	@echo "Scores: $(DEMO_DIR)/run/scene_000_eval.json  Mask: $(DEMO_DIR)/run/scene_000_mask.tif  QGIS: $(DEMO_DIR)/run/scene_000.gpkg"
	@echo "Sites: $(DEMO_DIR)/run/sites.txt, sites.geojson, sites.gpkg"
	@echo "Changes: $(DEMO_DIR)/changes/changes.png, changes.txt, changes.geojson  Model: $(DEMO_MODEL)"
	@echo "Over three dates: $(DEMO_DIR)/track/report.html, track.txt, timeline.csv, track.gpkg, charts/"

# A short CPU training run of the demo recipe, with per-class validation mAP, exported to ONNX.
demo-train: data
	$(PY) -m train fit --config train/configs/demo.yaml
	$(PY) -m train export runs/demo/checkpoints/best.ckpt --out checkpoints/demo.onnx
	@echo "Checkpoints and logs: runs/demo/  Model: checkpoints/demo.onnx"

test: setup
	$(PY) -m pytest -q

test-all: setup data-trees
	$(PY) -m pytest -q -m ''

# Benchmarks need the peers (Ultralytics YOLO, SAHI) and trained models. The full bench compares the
# shipped reference model with a race on the same budget: our fast and small recipes, YOLO11n and YOLO11n-OBB,
# each trained from random init for RACE_MINUTES of wall clock on this machine on the 48 scenes of
# datasets/synthetic_reference.yaml (docs/benchmarks.md); the quick mode trains one epoch of each.
RACE_MINUTES ?= 20
BENCH_STAMP := $(VENV)/.bench-installed
RACE_YOLO := --dataset datasets/synthetic_reference.yaml --minutes $(RACE_MINUTES) --train-overlap 0

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[train,dev,ray,bench]'
	@touch $(BENCH_STAMP)

# Our race recipes (train/configs/NAME.yaml), each into runs/race_NAME, exported as runs/race_NAME/NAME.onnx.
RACE_OURS := fast small
RACE_ONNX := $(foreach name,$(RACE_OURS),runs/race_$(name)/$(name).onnx)

$(RACE_OURS:%=runs/race_%/checkpoints/best.ckpt): runs/race_%/checkpoints/best.ckpt:
	$(MAKE) data-reference
	$(PY) -m train fit --config train/configs/$*.yaml --data.dataset datasets/synthetic_reference.yaml \
		--trainer.default_root_dir runs/race_$* --trainer.max_time 00:00:$(RACE_MINUTES):00 \
		--trainer.max_epochs 12 --trainer.check_val_every_n_epoch 2

runs/race_fast/fast.onnx: runs/race_fast/checkpoints/best.ckpt
runs/race_small/small.onnx: runs/race_small/checkpoints/best.ckpt
$(RACE_ONNX):
	$(PY) -m train export $< --out $@

runs/quick/checkpoints/best.ckpt:
	$(MAKE) data
	$(PY) -m train fit --config train/configs/quick.yaml

checkpoints/%.onnx: runs/%/checkpoints/best.ckpt
	$(PY) -m train export $< --out $@

runs/race_yolo/training.json: $(BENCH_STAMP)
	$(MAKE) data-reference
	$(PY) -m bench.peers.yolo_train --model yolo11n.yaml --out runs/race_yolo $(RACE_YOLO)

runs/race_yolo_obb/training.json: $(BENCH_STAMP)
	$(MAKE) data-reference
	$(PY) -m bench.peers.yolo_train --model yolo11n-obb.yaml --out runs/race_yolo_obb $(RACE_YOLO)

runs/yolo-quick/training.json: $(BENCH_STAMP)
	$(MAKE) data
	$(PY) -m bench.peers.yolo_train --out runs/yolo-quick --epochs 1

RACE := $(RACE_ONNX) runs/race_yolo/training.json runs/race_yolo_obb/training.json

bench: $(BENCH_STAMP) $(DEMO_MODEL) $(RACE)
	$(PY) -m bench.synth_scale --out bench/results --sizes 2048 8000 20000
	$(PY) -m bench.peers.compare --ours $(DEMO_MODEL) $(RACE_ONNX) \
		--yolo runs/race_yolo runs/race_yolo_obb --budget "fast=$(RACE_MINUTES) min of wall clock" \
		--budget "small=$(RACE_MINUTES) min of wall clock" --size 4096 --runs 3
	$(PY) -m bench.infer_speed --checkpoint checkpoints/reference.ckpt --size 4096 --runs 3
	$(PY) -m bench.infer_speed --checkpoint runs/race_fast/checkpoints/best.ckpt --size 4096 --runs 3 --name infer_speed_fast
	$(PY) -m bench.infer_memory --free-like $(DEMO_MODEL) --sizes 4096 8192 16384
	$(PY) -m bench.pipeline_ceiling --like $(DEMO_MODEL) --sizes 4096 8192 --workers 1 2 --runs 3
	$(PY) -m bench.change_detection --model checkpoints/reference.onnx --pairs 3
	$(PY) -m bench.sites_accuracy --model checkpoints/reference.onnx
	$(PY) -m bench.series_accuracy --model checkpoints/reference.onnx --series 3 --dates 5
	$(PY) -m bench.ray_overhead --model checkpoints/reference.onnx --scenes 8 --size 2048 --workers 2 --runs 3
	$(PY) -m bench.region_closing --checkpoint checkpoints/reference.ckpt
	$(PY) -m bench.report

bench-quick: $(BENCH_STAMP) checkpoints/quick.onnx runs/yolo-quick/training.json
	$(PY) -m bench.synth_scale --out bench/results/quick --sizes 1024 4096
	$(PY) -m bench.peers.compare --ours checkpoints/quick.onnx --yolo runs/yolo-quick --size 2048 --suite-size 1024 --runs 2 \
		--out bench/results/quick
	$(PY) -m bench.infer_speed --checkpoint runs/quick/checkpoints/best.ckpt --size 2048 --runs 2 --out bench/results/quick
	$(PY) -m bench.infer_memory --model checkpoints/quick.onnx --sizes 1024 2048 4096 --out bench/results/quick
	@echo "Quick results (not the README's): bench/results/quick/"

lint: setup
	$(VENV)/bin/ruff check train infer synth tests bench docs

clean:
	rm -rf $(DEMO_DIR) runs .pytest_cache
