# Studio: `make demo` runs everything on one machine; `make test` runs the whole test suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test install lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## Run Studio: migrate, seed the demo project, start the web server and a worker.
demo: $(STAMP)
	DEBUG=1 $(BIN)/python manage.py migrate --noinput
	DEBUG=1 $(BIN)/python manage.py seed_demo
	@echo "Sign in at http://127.0.0.1:8000/ as demo / demo-studio"
	DEBUG=1 $(BIN)/python manage.py run_studio 127.0.0.1:8000

## Run the whole test suite (unit, API, worker integration, browser).
test: $(STAMP)
	scripts/ensure-chromium
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	DEBUG=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports

## Benchmarks (not part of the test suite): prints ratios against peer libraries.
bench: $(STAMP)
	DEBUG=1 $(BIN)/python -m pytest tests/benchmarks -m benchmark $(PYTEST_ARGS)

clean:
	rm -rf var/test var/test-studio-*.sqlite3* var/test-broker-*
