# `make train` and `make test` work on a fresh machine: each installs what is missing first.
PYTHON ?= python
PIP_FLAGS ?= --quiet --disable-pip-version-check
# glibc returns big tensor buffers to the OS after every op and faults them back in; keeping
# them mapped made EfficientNet-Lite0 2x faster forward, 1.4x in training on 2 CPU cores.
export GLIBC_TUNABLES ?= glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=17179869184

.PHONY: install train test lint format clean results

install: ## transferlab (editable) with its test, logger and sweep tools
	$(PYTHON) -m pip install $(PIP_FLAGS) -e ".[dev]"

train: install ## the embedded default: offline, under 2 minutes on 2 CPU cores
	$(PYTHON) train.py

test: install ## lint, then the whole suite (slow end-to-end runs included)
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m pytest -q

results: install ## every offline experiment as a seed sweep -> docs/results.md (RESULTS_QUICK=1: minutes)
	$(PYTHON) -m transferlab.report.results

lint:
	$(PYTHON) -m ruff check . && $(PYTHON) -m ruff format --check .

format:
	$(PYTHON) -m ruff check --fix . && $(PYTHON) -m ruff format .

clean:
	rm -rf logs/*/ .pytest_cache .ruff_cache
