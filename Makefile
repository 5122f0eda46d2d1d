# `make train` and `make test` work on a fresh machine: each installs what is missing first,
# at the exact versions of requirements-lock.txt (pyproject.toml keeps ranges for people who
# install transferlab into an environment of their own).
PYTHON ?= python
PIP_FLAGS ?= --quiet --disable-pip-version-check
LOCK := requirements-lock.txt
# glibc returns big tensor buffers to the OS after every op and faults them back in; keeping
# them mapped made EfficientNet-Lite0 2x faster forward, 1.4x in training on 2 CPU cores.
export GLIBC_TUNABLES ?= glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=17179869184

.PHONY: install train test lint format lock facts results clean

# editable_mode=compat puts src/ on sys.path: Hydra finds our Optuna sweeper by listing the
# hydra_plugins namespace's folders, which setuptools' default editable import hook hides.
install: ## transferlab (editable) with its test, logger and sweep tools, at the lock's versions
	$(PYTHON) -m pip install $(PIP_FLAGS) -c $(LOCK) -e ".[dev]" --config-settings editable_mode=compat

train: install ## the embedded default: offline, under 2 minutes on 2 CPU cores
	$(PYTHON) train.py

# Two workers keep both cores busy while the other waits on a subprocess's imports; OpenMP
# threads sleep when idle (PASSIVE) so two workers' torch threads do not spin against each other.
test: install ## lint, then the whole suite (slow end-to-end runs included), on 2 workers
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	OMP_WAIT_POLICY=PASSIVE $(PYTHON) -m pytest -q -n 2 --dist worksteal

results: install ## every offline experiment as a seed sweep -> docs/results.md (RESULTS_QUICK=1: minutes)
	$(PYTHON) -m results.results

lint:
	$(PYTHON) -m ruff check . && $(PYTHON) -m ruff format --check .

format:
	$(PYTHON) -m ruff check --fix . && $(PYTHON) -m ruff format .

lock: ## resolve pyproject's ranges afresh in a new venv and write their versions to the lock
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install $(PIP_FLAGS) -e ".[dev]"
	( echo "# Exact versions of the whole stack: make install/train/test use them as pip"; \
	  echo "# constraints. Written by 'make lock' ($$(date -u +%F), Python $$(.lock-venv/bin/python -c 'import platform; print(platform.python_version())'))."; \
	  .lock-venv/bin/python -m pip freeze --exclude-editable ) > $(LOCK)
	rm -rf .lock-venv
	@echo "Wrote $(LOCK). Then: make test; and, where timm or torchvision moved, make facts."

facts: install ## re-measure models/model_facts.json with the locked timm and torchvision
	$(PYTHON) -m transferlab.models.measure_facts

clean:
	rm -rf logs/*/ .pytest_cache .ruff_cache
