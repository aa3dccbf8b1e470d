# The two commands of the README: `make run` and `make test`. Both set up what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Re-install when the dependency list changes.
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
UI_SOURCES := $(shell find ui/src ui/scripts -type f 2>/dev/null) ui/index.html ui/vite.config.ts \
	ui/tsconfig.json ui/package.json ui/package-lock.json
UI_BUILT := web/static/index.html
UI_DEPS := ui/node_modules/.package-lock.json
ARGS ?=

.PHONY: setup ui ui-check run demo test test-fast lint format bench api-client browser clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

setup: $(STAMP)

$(UI_DEPS): ui/package-lock.json
	cd ui && npm ci --no-audit --no-fund
	@touch $@

# The dashboard is rebuilt only when its sources changed.
$(UI_BUILT): $(UI_DEPS) $(UI_SOURCES)
	cd ui && npm run build

ui: $(UI_BUILT)

ui-check: $(UI_DEPS)
	cd ui && npm run check && npm test

run: setup ui
	$(BIN)/archipel serve $(ARGS)

# A pool plus a dozen simulated workers, set up and registered: prints the URL and login.
demo: setup ui
	$(BIN)/archipel demo $(ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Browser tests drive Debian's Chromium; install it when missing (never a downloaded browser).
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

test: lint ui ui-check browser
	$(BIN)/pytest

test-fast: setup
	$(BIN)/pytest tests/unit

# Regenerate the typed API client after an API change (a test fails while it is stale).
api-client: setup $(UI_DEPS)
	$(BIN)/python -m web.openapi > ui/src/lib/api/openapi.json
	cd ui && npm run gen:api

bench: setup
	$(BIN)/python bench/append.py
	$(BIN)/python bench/sse.py
	$(BIN)/python bench/health.py
	$(BIN)/python bench/upload.py
	$(BIN)/python bench/replication.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache ui/node_modules web/static
