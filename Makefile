# nstbench: `make test` and `make reproduce` work as the only command on a fresh clone:
# they create .venv and install the package (with its test extra) when it is missing.
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

.PHONY: install test test-kernels reproduce report bench clean

# Experiments: every experiments/eN_*.py is target eN (nstbench/registry.py reads the same files);
# each writes results/<name>/ and skips itself when its results are up to date (same settings and
# code); FORCE=1 recomputes. Order of `make reproduce`: numeric (e2 before e10).
RESULTS ?= results
REPORTS ?= reports
EXP_ARGS = --profile $(PROFILE) --weights $(WEIGHTS) --device $(DEVICE) --out $(RESULTS) $(if $(FORCE),--force)
EXPERIMENTS := $(shell ls experiments/e*_*.py 2>/dev/null | sed -n 's|^experiments/\(e[0-9][0-9]*\)_.*|\1|p' | sort -V)
# The fast-transfer experiments train on coco100 in the smoke and cpu profiles; the paper profile
# needs COCO train2014: DATA=/path/to/train2014 (experiments that train read it as $NSTBENCH_DATA).
ifneq ($(DATA),)
export NSTBENCH_DATA := $(abspath $(DATA))
endif

.PHONY: $(EXPERIMENTS)
$(EXPERIMENTS): $(STAMP)
	$(BIN)/python $(wildcard experiments/$@_*.py) $(EXP_ARGS)

# Timings against plain baselines -> results/bench/bench.csv and bench.md (README "Performance").
# One thread by default: on a shared machine a 2-thread OpenMP region stalls whenever another
# process holds a core (a 64 px Gatys step: 0.08 s alone, 1.4 s so), which swamps every ratio.
BENCH_THREADS ?= 1
BENCH_ARGS ?=
bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py --threads $(BENCH_THREADS) --device $(DEVICE) $(BENCH_ARGS)

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
