# The README's quick start: `make run` and `make test`, each from a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-embeddings test-faults format clean

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

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
