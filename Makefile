# Both entry points build .venv themselves, so a fresh clone needs only python3 (>= 3.11).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test
STAMP_BENCH := $(VENV)/.installed-bench
HOST ?= 127.0.0.1
PORT ?= 5000
STORE ?= sqlite:///var/cronwell.db

.PHONY: run test test-slow test-cluster test-browser lint typecheck image-test bench bench-quick bench-scale clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP_RUN): setup.cfg | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(STAMP_TEST): setup.cfg | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(STAMP_RUN)

$(STAMP_BENCH): setup.cfg | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $@ $(STAMP_TEST) $(STAMP_RUN)

run: $(STAMP_RUN)
	mkdir -p var/scripts
	@echo "cronwell: store $(STORE), script root $(CURDIR)/var/scripts, http://$(HOST):$(PORT)"
	$(BIN)/cronwell serve --host $(HOST) --port $(PORT) --store '$(STORE)' --script-root $(CURDIR)/var/scripts

lint: $(STAMP_TEST)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports setup.cfg

typecheck: $(STAMP_TEST)
	$(BIN)/mypy engine runners stores jobs api bench

# Everything but the several-nodes and browser suites (setup.cfg's addopts leave them
# out; each has a target of its own, below).
test: $(STAMP_TEST) lint typecheck
	$(BIN)/python -m pytest -q

# Three `cronwell serve` nodes on one store, on SQLite and on the real Mongo servers
# (tests/test_cluster_processes.py and the stalled-node fence, tests/test_cluster_fence.py;
# several minutes; .ci/run runs it after make test).
# real processes killed, restarted and timed for seconds each: crash recovery, store
# outages, the README walkthroughs (about 3 minutes; .ci/run runs it after make test)
test-slow: $(STAMP_TEST)
	$(BIN)/python -m pytest -q -m "slow and not cluster"

test-cluster: $(STAMP_TEST)
	$(BIN)/python -m pytest -q -m cluster

# Builds the Dockerfile with podman on a Debian base made with mmdebstrap and runs the
# image's files under chroot as its USER (root only; tests/image/build_and_run.py).
image-test:
	$(PYTHON) tests/image/build_and_run.py

# The dashboard in a real headless browser (Playwright driving Debian's chromium at
# /usr/bin/chromium); writes docs/screenshots/. .ci/run installs chromium when missing.
test-browser: $(STAMP_TEST)
	$(BIN)/python -m pytest -q -m browser tests/browser

bench: $(STAMP_BENCH)
	$(BIN)/python -m bench.dispatch
	$(BIN)/python -m bench.store
	$(BIN)/python -m bench.api
	$(BIN)/python -m bench.idle
	$(BIN)/python -m bench.cluster
	$(BIN)/python -m bench.journal_window
	$(BIN)/python -m bench.ui

# a million jobs and a million executions in SQLite (about 15 minutes; PARENT=tree for an A/B)
bench-scale: $(STAMP_BENCH)
	$(BIN)/python -m bench.store --scale $(if $(PARENT),--parent $(PARENT))

bench-quick: $(STAMP_BENCH)
	$(BIN)/python -m bench.dispatch --quick
	$(BIN)/python -m bench.store --quick
	$(BIN)/python -m bench.api --quick
	$(BIN)/python -m bench.cluster --quick
	$(BIN)/python -m bench.journal_window --quick
	$(BIN)/python -m bench.ui --quick

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
