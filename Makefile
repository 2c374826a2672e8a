# modelyard developer entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# The venv is (re)built when pyproject.toml changes; the stamp records the last good install.
STAMP  := $(VENV)/.modelyard-installed
COMPOSE := docker compose -f infra/compose.yaml
PYTEST_ARGS ?=
BENCH_ARGS ?=

# Docker when an engine answers, native processes (python -m modelyard.devstack) otherwise.
# A stack that is already running natively (.stack/*.pid) is always managed natively.
define stack
	@if ! ls .stack/*.pid >/dev/null 2>&1 && command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then \
		echo "docker engine found: $(COMPOSE) $(2)"; $(COMPOSE) $(2); \
	else \
		$(PY) -m modelyard.devstack $(1); \
	fi
endef

.PHONY: help venv test lint up down status clean bench bench-quick

help:
	@echo "make venv    create .venv and install modelyard[dev] (only when pyproject.toml changed)"
	@echo "make test    run the whole test suite (unit, integration, compat) against real servers"
	@echo "make lint    ruff check"
	@echo "make up      start PostgreSQL, S3 and the services on 127.0.0.1 (ports: infra/local/stack.env)"
	@echo "make status  show each component of the local stack"
	@echo "make down    stop the local stack (PostgreSQL data is kept)"
	@echo "make clean   stop the stack and remove its data, state and caches"
	@echo "make bench   modelyard vs MLflow side by side (BENCH_ARGS='--scale 10'); make bench-quick: < 5 min"

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

test: venv
	$(PY) -m pytest -p no:cacheprovider tests/ $(PYTEST_ARGS)

lint: venv
	$(PY) -m ruff check src tests

up: venv
	$(call stack,up,up -d --build --wait)
	@echo "point a shell at it: source .stack/env (native) -- MLFLOW_TRACKING_URI, AWS_ENDPOINT_URL_*"

down: venv
	$(call stack,down,down)

status: venv
	$(call stack,status,ps)

clean: venv
	$(call stack,clean,down --volumes)
	rm -rf .stack .pytest_cache .ruff_cache build dist

# Both start their own PostgreSQL, moto and services on free ports; MLflow runs from .venv-bench-mlflow.
bench: venv
	$(PY) -m bench $(BENCH_ARGS)

bench-quick: venv
	$(PY) -m bench --quick $(BENCH_ARGS)
