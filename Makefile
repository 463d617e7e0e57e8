PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test schemas clean

$(BIN)/herald: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

run: $(BIN)/herald  ## start every role on the embedded PostgreSQL and broker
	$(BIN)/herald run

test: $(BIN)/herald  ## the whole suite: unit, integration (real PostgreSQL + broker), end-to-end
	$(BIN)/pytest -q -n 3

schemas: $(BIN)/herald  ## regenerate the checked-in JSON Schemas from schemas/
	$(BIN)/python -m schemas.export

clean:
	rm -rf $(VENV) .herald .pytest_cache .hypothesis

bench: $(BIN)/herald  ## throughput, history and concurrency scenarios (python -m bench SCENARIO runs one; JSON last line)
	$(BIN)/python -m bench
.PHONY: bench

chaos: $(BIN)/herald  ## kill -9 roles under 2,000 posts × 5 destinations (CHAOS_POSTS=… CHAOS_KILLS=… to size it); JSON last line
	$(BIN)/python -m bench.chaos
.PHONY: chaos
