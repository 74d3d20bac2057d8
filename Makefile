# The only commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo_out

DATA := datasets/synthetic
.PHONY: setup data demo train test test-all bench bench-quick lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[train,dev]'
	@touch $(STAMP)

# The synthetic default: 6 training and 2 held-out validation scenes, 1 km² each.
data: setup $(DATA)/val/scene_001.tif

$(DATA)/val/scene_001.tif:
	$(PY) -m train synth --out $(DATA)/train --scenes 6 --size 2048 --seed 1 --quiet
	$(PY) -m train synth --out $(DATA)/val --scenes 2 --size 2048 --seed 2 --quiet

train: data
	$(PY) -m train fit --config train/configs/synthetic.yaml

# The main job on the synthetic default: data, a short CPU training run with
# per-class validation mAP, and a scene pair at two dates for change detection.
demo: data
	$(PY) -m train synth --out $(DEMO_DIR)/scenes --scenes 1 --size 2048 --second-date --seed 7 --preview
	$(PY) -m train fit --config train/configs/demo.yaml
	@echo "Checkpoints and logs: runs/demo/   Scene pair, labels, changes, previews: $(DEMO_DIR)/scenes/"

test: setup
	$(PY) -m pytest -q

test-all: setup
	$(PY) -m pytest -q -m ''

bench: setup
	$(PY) -m bench.synth_scale --out bench/results --sizes 2048 8000 20000
	$(PY) -m bench.report

bench-quick: setup
	$(PY) -m bench.synth_scale --out bench/results/quick --sizes 1024 4096

lint: setup
	$(VENV)/bin/ruff check train infer tests bench

clean:
	rm -rf $(DEMO_DIR) runs .pytest_cache
