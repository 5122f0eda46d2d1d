# `make train` and `make test` work on a fresh machine: each installs what is missing first.
PYTHON ?= python
PIP_FLAGS ?= --quiet --disable-pip-version-check

.PHONY: install train test lint format clean

install: ## transferlab (editable) with its test, logger and sweep tools
	$(PYTHON) -m pip install $(PIP_FLAGS) -e ".[dev]"

train: install ## the embedded default: offline, under 2 minutes on 2 CPU cores
	$(PYTHON) train.py

test: install ## lint, then the whole suite (slow end-to-end runs included)
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m pytest -q

lint:
	$(PYTHON) -m ruff check . && $(PYTHON) -m ruff format --check .

format:
	$(PYTHON) -m ruff check --fix . && $(PYTHON) -m ruff format .

clean:
	rm -rf logs/*/ .pytest_cache .ruff_cache
