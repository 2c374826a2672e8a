# modelyard developer entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# Two installs, each (re)done when pyproject.toml changes; a stamp records the last good one.
# `make up` needs only what the stack runs (the `stack` extra); `make test` adds the test tools (`dev`).
STACK_STAMP := $(VENV)/.modelyard-stack
DEV_STAMP   := $(VENV)/.modelyard-dev
# SKIP_INSTALL=1 uses $(VENV) as it is, e.g. `make up VENV=../other/.venv SKIP_INSTALL=1`.
SKIP_INSTALL ?=
INSTALL_LOG := $(VENV)/install.log
COMPOSE := docker compose -f infra/compose.yaml
PYTEST_ARGS ?=
# pytest processes for `make test` (pytest-xdist); 0 runs everything in one process.
TEST_WORKERS ?= 2
BENCH_ARGS ?=

# Docker when an engine answers, native processes (python -m modelyard.devstack) otherwise.
# A stack that is already running natively (.stack/*.pid), or NATIVE=1, is managed natively.
NATIVE ?=
define stack
	@if [ -z "$(NATIVE)" ] && ! ls .stack/*.pid >/dev/null 2>&1 && command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then \
		echo "docker engine found: $(COMPOSE) $(2)"; $(COMPOSE) $(2); \
	else \
		$(PY) -m modelyard.devstack $(1) --root "$(CURDIR)"; \
	fi
endef

# $(call phase,NAME,COMMAND): run COMMAND, print one line "  NAME  <seconds>s"; on failure, the log's tail.
define phase
	@start=$$(date +%s%N); \
	if ! ( $(2) ) >>$(INSTALL_LOG) 2>&1; then \
		echo "  $(1): failed; the last lines of $(INSTALL_LOG):"; tail -n 30 $(INSTALL_LOG); exit 1; \
	fi; \
	printf '  %-10s %5.1fs\n' '$(1)' "$$(( ($$(date +%s%N) - start) / 1000000 ))e-3"
endef

.PHONY: help venv stack-venv test lint up down status clean bench bench-quick

help:
	@echo "make venv    create .venv and install modelyard[dev], the test tools (only when pyproject.toml changed)"
	@echo "make test    run the whole test suite (unit, integration, compat) against real servers"
	@echo "make lint    ruff check"
	@echo "make up      install modelyard[stack] in .venv, start PostgreSQL, S3 and the services on 127.0.0.1"
	@echo "             (ports: infra/local/stack.env); then: source .stack/env"
	@echo "make status  show each component of the local stack"
	@echo "make down    stop the local stack (PostgreSQL data is kept)"
	@echo "make clean   stop the stack and remove its data, state and caches"
	@echo "make bench   modelyard vs MLflow side by side (BENCH_ARGS='--scale 10'); make bench-quick: < 5 min"

venv: $(DEV_STAMP)

# The venv and its install, each a timed phase; pip's output goes to $(INSTALL_LOG).
$(VENV)/bin/python:
	@mkdir -p $(VENV) && : > $(INSTALL_LOG)
	$(call phase,venv,$(PYTHON) -m venv $(VENV) && $(PY) -m pip install --quiet --upgrade pip)

$(STACK_STAMP): pyproject.toml | $(VENV)/bin/python
	$(call phase,install,$(PY) -m pip install --quiet -e '.[stack]')
	@touch $@

$(DEV_STAMP): pyproject.toml | $(VENV)/bin/python
	$(call phase,install,$(PY) -m pip install --quiet -e '.[dev]')
	@touch $@ $(STACK_STAMP)

# What `make up` (and down, status, clean) needs: the stack's packages, unless SKIP_INSTALL is set.
stack-venv: $(if $(SKIP_INSTALL),,$(STACK_STAMP))

# torch (the pytorch flavor's tests) goes in before the workers start: installed by one of them meanwhile,
# a half-written torch broke other tests' processes that import it (a variant failing to start in CI).
test: venv
	$(PY) -c "from tests.support.torch_install import ensure_torch; ensure_torch()"
	$(PY) -m pytest -p no:cacheprovider --durations=30 -n $(TEST_WORKERS) --dist loadgroup tests/ $(PYTEST_ARGS)

lint: venv
	$(PY) -m ruff check src tests

up: stack-venv
	$(call stack,up,up -d --build --wait)

down: stack-venv
	$(call stack,down,down)

status: stack-venv
	$(call stack,status,ps)

clean: stack-venv
	$(call stack,clean,down --volumes)
	rm -rf .stack .pytest_cache .ruff_cache build dist

# Both start their own PostgreSQL, moto and services on free ports; MLflow runs from .venv-bench-mlflow.
bench: venv
	$(PY) -m bench $(BENCH_ARGS)

bench-quick: venv
	$(PY) -m bench --quick $(BENCH_ARGS)
