PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test schemas clean browser

$(BIN)/herald: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

run: $(BIN)/herald  ## start every role on the embedded PostgreSQL and broker
	$(BIN)/herald run

# The console's browser tests drive Debian's Chromium through Playwright (which cannot download a
# browser of its own here): installed once, when missing.
browser:  ## Debian's chromium package, for tests/e2e/test_console_browser.py
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }

test: $(BIN)/herald browser  ## the whole suite: unit, integration (real PostgreSQL + broker), end-to-end, browser
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
