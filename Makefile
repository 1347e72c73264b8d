# nstbench: `make test` and `make reproduce` work as the only command on a fresh clone:
# they create .venv and install the package (with its test and app extras) when it is missing.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

# Local image assets (laid out like ../shared/assets) when the folder exists beside the clone.
SHARED_ASSETS := $(abspath ../shared/assets)
ifneq ($(wildcard $(SHARED_ASSETS)/SOURCES.md),)
export NSTBENCH_ASSETS ?= $(SHARED_ASSETS)
endif

HAS_GPU := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo 1)
PROFILE ?= $(if $(HAS_GPU),paper,cpu)
WEIGHTS ?= auto
DEVICE  ?= $(if $(HAS_GPU),cuda,cpu)

.PHONY: install test reproduce report bench clean e1 e2 e3 e4 e5 e6 e7 app app-models

# Experiments (experiments/*.py): each writes results/<name>/ and skips itself when its results are
# up to date (same settings and code); FORCE=1 recomputes.
RESULTS ?= results
REPORTS ?= reports
EXP_ARGS = --profile $(PROFILE) --weights $(WEIGHTS) --device $(DEVICE) --out $(RESULTS) $(if $(FORCE),--force)
# Order of `make reproduce`; the fast-transfer ones (e2 e3) train on coco100 in the smoke and cpu
# profiles and need DATA=/path/to/train2014 in the paper profile.
EXPERIMENTS := e1 e2 e3 e4 e5 e6 e7

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,app]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

e1: $(STAMP)
	$(BIN)/python experiments/e1_tv_gamma.py $(EXP_ARGS)
e4: $(STAMP)
	$(BIN)/python experiments/e4_init.py $(EXP_ARGS)
e5: $(STAMP)
	$(BIN)/python experiments/e5_vgg_resnet.py $(EXP_ARGS)
e7: $(STAMP)
	$(BIN)/python experiments/e7_upes.py $(EXP_ARGS)
# e2, e3 train on coco100 at smoke/cpu; the paper profile needs DATA=/path/to/coco/train2014.
e2: $(STAMP)
	$(BIN)/python experiments/e2_fast_sweeps.py $(EXP_ARGS) $(if $(DATA),--data $(DATA))
e3: $(STAMP)
	$(BIN)/python experiments/e3_content_layer.py $(EXP_ARGS) $(if $(DATA),--data $(DATA))
e6: $(STAMP)
	$(BIN)/python experiments/e6_timing.py $(EXP_ARGS)

# Timings against plain baselines -> results/bench/bench.csv and bench.md (README "Performance").
# One thread by default: on a shared machine a 2-thread OpenMP region stalls whenever another
# process holds a core (a 64 px Gatys step: 0.08 s alone, 1.4 s so), which swamps every ratio.
BENCH_THREADS ?= 1
BENCH_ARGS ?=
bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py --threads $(BENCH_THREADS) --device $(DEVICE) $(BENCH_ARGS)

# The web app (Streamlit, on 127.0.0.1 only): `make app APP_PORT=8502 MODELS=dir`. Its fast-network
# checkpoints: `make app-models` trains the HUST app's four styles (hust preset, cpu profile, coco100)
# into runs/hust-<style>/ unless they are there (an interrupted one is resumed).
APP_PORT ?= 8501
APP_STYLES := mosaic udnie wave rain_princess
app: $(STAMP)
	$(BIN)/nstbench app --port $(APP_PORT) $(if $(MODELS),--models $(MODELS))

app-models: $(STAMP)
	@for s in $(APP_STYLES); do \
	  d=runs/hust-$$s; \
	  if [ -f $$d/transformer.pt ]; then echo "$$d/transformer.pt exists"; continue; fi; \
	  if [ -f $$d/checkpoint.pt ]; then resume=--resume; else resume=; fi; \
	  $(BIN)/nstbench train --preset hust --style $$s --profile cpu --weights $(WEIGHTS) --device $(DEVICE) \
	    --out $$d $$resume || exit 1; \
	done

report: $(STAMP)
	$(BIN)/nstbench report --results $(RESULTS) --out $(REPORTS)

# Runs the experiments one after another (a sub-make per target keeps the order under make -j),
# then builds reports/ from results/.
reproduce: $(STAMP)
	@echo "profile=$(PROFILE) weights=$(WEIGHTS) device=$(DEVICE) results=$(RESULTS) reports=$(REPORTS)"
	@for e in $(EXPERIMENTS); do $(MAKE) --no-print-directory $$e || exit 1; done
	$(MAKE) --no-print-directory report

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
