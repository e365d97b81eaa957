# Two commands matter: `make demo` and `make test`. Both need only Python 3.11+ (and root for
# installing Debian's chromium for the browser tests).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: demo test check lint typecheck pytest install install-dev chromium bench clean stop

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

## Start web, worker and beat on embedded PostgreSQL and Redis with a seeded demo study.
demo: install
	PORT=$(PORT) $(PY) manage.py run_platform --seed-demo

## Install what tests need, lint, type-check and run the whole suite.
test: install-dev chromium lint typecheck pytest

chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck:
	$(VENV)/bin/mypy .

pytest:
	$(PY) -m pytest -n 2 --dist loadgroup -q

bench: install-dev
	$(PY) benchmarks/rank_bench.py
	$(PY) benchmarks/bench_scoring.py

stop:
	$(PY) manage.py stop_services

clean: stop
	rm -rf .data staticfiles
