# `make demo` and `make test` each work on a fresh machine with only python3:
# they create .venv and install the project into it first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-test
BENCH_STAMP := $(VENV)/.installed-bench
# What `make test-fast` leaves out (the markers are in pyproject.toml).
FAST := not slow and not postgres and not browser
# pytest keeps the test modules it rewrites as bytecode; a shell that turns bytecode off
# would have it rewrite them all again on each run (seconds of every `make test-fast`).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: help demo test test-fast lint format check readme bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 12

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	touch $@

demo: $(STAMP) ## a dry run of the seeds' issue, then the stored articles
	$(BIN)/digest send --dry-run
	$(BIN)/digest articles

lint: $(STAMP) ## ruff (lint, format check), mypy, and the layer contracts (import-linter)
	$(BIN)/ruff check digest tests bench
	$(BIN)/ruff format --check digest tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

format: $(STAMP) ## ruff format, then ruff check --fix
	$(BIN)/ruff format digest tests bench
	$(BIN)/ruff check --fix digest tests bench

# Coverage is of this process only: what subprocesses run is not counted.
test: lint ## lint, then every test, with a coverage summary of digest/
	$(BIN)/python -m pytest --cov=digest --cov-report=term-missing:skip-covered

test-fast: $(STAMP) ## the tests that need no server, process, PostgreSQL or browser
	$(BIN)/python -m pytest -q -m '$(FAST)'

check: lint test-fast ## lint, then test-fast: before each commit

readme: $(STAMP) ## regenerate the README's example sessions from real runs (the suite checks them)
	DIGEST_README_REGENERATE=1 $(BIN)/python -m pytest -q tests/test_readme.py

bench: $(BENCH_STAMP) ## the benchmarks
	set -e; for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script; done

clean: ## remove the venv, the caches and var/
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .coverage
