# The two commands: `make dev` and `make test`. Everything a test needs is
# installed from the package registries by these targets.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export PYCONVEX_CACHE ?= $(CURDIR)/.cache

.PHONY: dev test check fmt bench venv dynamodb-local js-deps clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

dynamodb-local:
	bash scripts/install-dynamodb-local.sh

# The official Convex JS client and ws, pinned by tests/js/package-lock.json.
tests/js/node_modules/.installed: tests/js/package.json tests/js/package-lock.json
	npm ci --prefix tests/js --no-audit --no-fund --loglevel=error
	touch $@

js-deps: tests/js/node_modules/.installed

dev: venv
	$(PY) -m runtime dev $(DEV_ARGS)

test: venv dynamodb-local js-deps
	$(PY) -m pytest -q -m "not scale" $(PYTEST_ARGS)

check: venv
	$(VENV)/bin/ruff check runtime tests bench functions
	$(VENV)/bin/ruff format --check runtime tests bench functions
	$(VENV)/bin/mypy

fmt: venv
	$(VENV)/bin/ruff check --fix runtime tests bench functions
	$(VENV)/bin/ruff format runtime tests bench functions

bench: venv dynamodb-local
	$(PY) bench/database.py $(BENCH_ARGS)
	$(PY) bench/functions.py $(BENCH_ARGS)
	$(PY) bench/reactivity.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .cache .data .pytest_cache .mypy_cache .ruff_cache .hypothesis tests/js/node_modules
