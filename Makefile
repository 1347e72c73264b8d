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

.PHONY: install test reproduce report bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

reproduce: $(STAMP)
	@echo "profile=$(PROFILE) weights=$(WEIGHTS) device=$(DEVICE)"
	@echo "experiments are added by the experiments issue; nothing to run yet"

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
