# The two commands a newcomer runs: `make run` and `make test`. Both install what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint typecheck pytest browser redis bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## Start the node with its embedded defaults (local Ray, LMDB under ./var, demo co-op).
run: $(STAMP)
	$(BIN)/coopnode serve --demo

## Lint (ruff, the layers' import contracts), type-check and run the whole test suite.
test: $(STAMP) lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

## The browser tests drive Debian's Chromium (Playwright cannot download its own browser
## here) with Japanese fonts, so that the screenshots show the pages as members see them.
browser:
	@command -v chromium >/dev/null || (apt-get update && apt-get install -y --no-install-recommends chromium)
	@test -d /usr/share/fonts/opentype/noto || (apt-get update && apt-get install -y --no-install-recommends fonts-noto-cjk)

## The cluster tests run a Ray head that keeps its state in Debian's Redis (GCS fault
## tolerance), as a co-op's cluster would.
redis:
	@command -v redis-server >/dev/null || (apt-get update && apt-get install -y --no-install-recommends redis-server)

pytest: $(STAMP) browser redis
	$(BIN)/pytest

## Run every benchmark and print its figures, the node's taps beside the PostgreSQL peer's
## among them (benchmarks/side_by_side.py; the peer installs Debian's PostgreSQL if missing),
## and one front against two on a cluster on this machine (benchmarks/fronts.py, whose Ray
## head keeps its state in Debian's Redis).
bench: $(STAMP) redis
	$(BIN)/python -m benchmarks.run_all

clean:
	rm -rf $(VENV) var .mypy_cache .pytest_cache .ruff_cache
