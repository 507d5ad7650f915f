# The README's quick start: `make run` and `make test`, each from a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-embeddings test-faults test-cluster test-browser browser-deps screenshots conformance bench-peers bench-floor bench-ab bench-console format clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python >= 3.11 is required")'
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/tenantgraph serve --host 127.0.0.1 --port 8123

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/pytest

# The recall test with the real MiniLM model. torch==2.13.0 is the CPU build; a bare
# `torch` would pull the multi-GB CUDA one. Kept out of `make test`'s install on purpose.
test-embeddings: $(STAMP)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev,embeddings]'
	$(BIN)/pytest tests_embeddings

# Kills and restarts Postgres and Valkey under running servers: slow (outages are held
# open for tens of seconds), so kept out of `make test`.
test-faults: $(STAMP)
	$(BIN)/pytest tests_faults

# The Valkey suites against a 3-master Valkey Cluster started from the embedded binaries,
# a slot moved while its org's runs stream, and every command checked to touch one slot.
test-cluster: $(STAMP)
	$(BIN)/pytest tests_cluster

# A real Chromium: the web console's views and CORS from another origin. Playwright's Python
# package goes into the venv (the `browser` extra); its own browser download is not used:
# the distribution's Chromium is, installed with apt-get (as root) when it is missing.
browser-deps: $(STAMP)
	test -x /usr/bin/chromium || (apt-get update && apt-get install -y chromium chromium-driver)
	$(BIN)/pip install --quiet -e '.[dev,browser]'

test-browser: browser-deps
	$(BIN)/pytest tests_browser

# The console's pictures in docs/console/ (linked from the README): the browser tests, each
# view's main test photographing its view.
screenshots: browser-deps
	CONSOLE_SCREENSHOTS=docs/console $(BIN)/pytest tests_browser

# The console's page weight and first load on loopback, cold and warm, beside the sign-in
# page and GET /ok (bench/console_bench.py).
bench-console: browser-deps
	$(BIN)/python bench/console_bench.py

# The same scenario through langgraph-sdk (Python) and @langchain/langgraph-sdk (JS) against
# `langgraph dev` and tenantgraph, compared call by call (conformance/README.md). Needs the
# network for pip and npm, so it is not part of `make test`.
CONFORMANCE := .conformance
CONFORMANCE_BIN := $(CONFORMANCE)/venv/bin
CONFORMANCE_STAMP := $(CONFORMANCE)/.installed

# tenantgraph goes in with --no-deps: langgraph dev needs only tenantgraph.scope (standard
# library) for the example graphs' imports.

$(CONFORMANCE_STAMP): conformance/requirements.txt conformance/js/package-lock.json
	test -d $(CONFORMANCE)/venv || $(PYTHON) -m venv $(CONFORMANCE)/venv
	$(CONFORMANCE_BIN)/pip install --quiet --upgrade pip
	$(CONFORMANCE_BIN)/pip install --quiet -r conformance/requirements.txt
	$(CONFORMANCE_BIN)/pip install --quiet --no-deps -e .
	cd conformance/js && npm ci --no-audit --no-fund --silent
	touch $@

conformance: $(STAMP) $(CONFORMANCE_STAMP)
	$(CONFORMANCE_BIN)/python conformance/run.py --tenantgraph "$(abspath $(BIN))/python -m tenantgraph.cli"

# tenantgraph against `langgraph dev` (installed into .bench-peers/venv, pinned as the
# conformance harness's), same graph and client, alternating rounds (bench/peer_bench.py).
bench-peers: $(STAMP)
	$(BIN)/python bench/peer_bench.py

# How near langgraph dev a durable server comes on this machine: the least one, with
# tenantgraph's rate limit and tenant transaction, and tenantgraph (bench/floor_bench.py).
bench-floor: $(STAMP)
	$(BIN)/python bench/floor_bench.py

# This tree against BASELINE (a commit), both servers under the same load at once: the
# ratio of a change smaller than the machine's swings (bench/ab_bench.py).
BASELINE ?= HEAD
bench-ab: $(STAMP)
	$(BIN)/python bench/ab_bench.py --baseline $(BASELINE)

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache $(CONFORMANCE) .bench-peers .bench-ab conformance/js/node_modules
