# modelcycle — every task has one target; CI calls the same targets.
# Needs only python3 (3.11+) and make: the first target run bootstraps uv and the .venv.

PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.synced
ANCHORS := .bench/anchors
PYTEST_ARGS ?=
# write bytecode: some machines set PYTHONDONTWRITEBYTECODE, which recompiles pandas/plotly every run
unexport PYTHONDONTWRITEBYTECODE

.DEFAULT_GOAL := help
.PHONY: help install demo test test-fast lint format typecheck check bench bench-anchors browser clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(UV):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "modelcycle needs Python 3.11 or newer (found $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): $(UV) pyproject.toml uv.lock
	UV_PYTHON=$(PYTHON) $(UV) sync --frozen --all-extras
	@touch $(STAMP)

install: $(STAMP)  ## Create .venv with modelcycle, its extras and the dev tools (from uv.lock)

demo: $(STAMP)  ## README command 1: run the lifecycle on the rent example (embedded, no servers)
	$(BIN)/modelcycle demo $(DEMO_ARGS)

test: $(STAMP)  ## README command 2: the whole test suite
	@$(BIN)/pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc

test-fast: $(STAMP)  ## Tests without the slow, browser and PostgreSQL ones
	$(BIN)/pytest -m "not slow and not browser and not postgres" $(PYTEST_ARGS)

lint: $(STAMP)  ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)  ## Format and fix what ruff can
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)  ## mypy (strict on src/)
	$(BIN)/mypy

check: lint typecheck test  ## Everything CI runs

bench: $(STAMP)  ## Benchmarks (print ratios; not tests)
	$(BIN)/python bench/data_validate.py
	$(BIN)/python bench/train.py
	$(BIN)/python bench/batch_predict.py
	$(BIN)/python bench/drift.py --anchor-repeat 1
	@command -v wrk >/dev/null && $(BIN)/python bench/serving.py || echo "bench/serving.py needs wrk (apt-get install wrk): skipped"

bench-anchors: $(ANCHORS)/.synced  ## Evidently + NannyML env for bench/drift.py (pandas 2)

$(ANCHORS)/.synced: $(UV) bench/anchors-requirements.txt
	$(UV) venv --allow-existing --python $(PYTHON) $(ANCHORS)
	$(UV) pip install --python $(ANCHORS)/bin/python -r bench/anchors-requirements.txt
	@touch $@

browser:  ## Install Debian's headless Chromium for the browser tests (root)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

clean:  ## Remove the environments and caches
	rm -rf $(VENV) $(TOOLS) .mypy_cache .ruff_cache .pytest_cache
