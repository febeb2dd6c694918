# ehkit: the two commands for a fresh machine are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_DB := data/demo.db
SUDO   := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
PYTEST_ARGS ?=

.PHONY: install demo test test-fast lint bench browser postgresql hub-proxy clean baseline wheel

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# Debian's Chromium for the browser tests; Playwright is pointed at it (no browser download).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }

# Debian's PostgreSQL for the tests: they start their own server with its initdb and pg_ctl
# (tests/pg.py), so none needs to be running or configured.
PG_INITDB := /usr/lib/postgresql/15/bin/initdb
postgresql:
	@test -x $(PG_INITDB) || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql; }

# The JupyterHub deployment's proxy (tests/test_hub_browser.py), from npm, once.
PROXY := build/node/node_modules/.bin/configurable-http-proxy
hub-proxy: $(PROXY)

$(PROXY):
	@command -v npm >/dev/null 2>&1 || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nodejs npm; }
	npm install --silent --no-audit --no-fund --prefix build/node configurable-http-proxy@^5

demo: $(STAMP)
	$(BIN)/ehkit demo --db $(DEMO_DB) --force
	$(BIN)/ehkit report quarterly --db $(DEMO_DB) --audience board

lint: $(STAMP)
	$(BIN)/ruff check ehkit tests bench

test: $(STAMP) browser postgresql hub-proxy lint
	$(BIN)/python -m pytest -n auto $(PYTEST_ARGS)

# The quick loop while working: no browser, no notebooks or many processes (`make test` runs all).
test-fast: $(STAMP) postgresql lint
	$(BIN)/python -m pytest -n auto -m "not browser and not slow" $(PYTEST_ARGS)

bench: $(STAMP) browser hub-proxy
	$(BIN)/python -m bench

# After adding a migration: the schema new stores are made from, in one file.
baseline: $(STAMP)
	$(BIN)/python -c "from ehkit import db; print(db.write_baseline())"

# The package a council installs (dist/ehkit-VERSION-py3-none-any.whl).
wheel: $(STAMP)
	$(BIN)/python -m pip wheel --no-deps -w dist .

clean:
	rm -rf $(VENV) reports/*.html reports/*.csv data/*.db data/*.db-*
