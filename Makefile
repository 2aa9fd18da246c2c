# Developer entry points. Needs only python3 >= 3.11 and git: .venv is made on demand and
# re-installed when pyproject.toml changes (the stamp files below depend on it).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LINT_PATHS := dynomatic_daemon tests tools $(wildcard benchmarks)

.DEFAULT_GOAL := test
.PHONY: test lint typecheck venv demo bench bench-adapters soak mutate clean distclean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "error: $(PYTHON) is older than Python 3.11 (try: make PYTHON=python3.11 ...)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

$(VENV)/.installed-demo: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[demo]'
	@touch $@

venv: $(VENV)/.installed-dev

lint: venv
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

typecheck: venv
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest

demo: $(VENV)/.installed-demo
	$(BIN)/dynomatic demo $(DEMO_ARGS)

bench: venv
	$(BIN)/python -m benchmarks

bench-adapters: venv
	$(BIN)/python -m benchmarks.adapters

# SOAK_MINUTES: how long the multi-process soak runs (CI runs 1.5; see docs/reliability.md).
SOAK_MINUTES ?= 30
soak: venv
	$(BIN)/python -m benchmarks.chaos
	$(BIN)/python -m benchmarks.cluster_soak --minutes $(SOAK_MINUTES)

# Mutation testing of the decision core and the adapters (tools/mutation.toml lists the targets;
# MUTATE_ARGS e.g. "dynomatic_daemon/tick.py --jobs 2"; see docs/testing.md).
mutate: venv
	$(BIN)/python tools/mutate.py $(MUTATE_ARGS)

# Build output and tool caches; the virtualenv stays (see distclean).
clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
