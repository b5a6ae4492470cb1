# Two commands: `make run` (the whole service, locally, no servers needed) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run manage test lint compose-check clean bench

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@ $(VENV)/.runtime

run: $(VENV)/.runtime
	DEBUG=$${DEBUG:-true} $(PY) manage.py migrate --noinput
	DEBUG=$${DEBUG:-true} $(PY) manage.py ensure_admin
	DEBUG=$${DEBUG:-true} $(PY) manage.py runstack

# Any management command with the environment `make run` gives the service (DEBUG on unless set, so no
# SECRET_KEY is needed locally), e.g. make manage ARGS="changepassword admin".
manage: $(VENV)/.runtime
	DEBUG=$${DEBUG:-true} $(PY) manage.py $(ARGS)

test: $(VENV)/.dev
	$(PY) -m tests.matrix $(PYTEST_ARGS)

# The benchmarks (docs/benchmarks.md): BENCH_SCALE=small for a quick run, BENCH_ARGS="--broker redis" etc.
bench: $(VENV)/.dev
	BENCH_SCALE=$(BENCH_SCALE) $(PY) -m bench $(BENCH_ARGS)

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# docker-compose 1.29 validates the file as CI's target format; it needs PyYAML 5, built with Cython < 3.
COMPOSE_VENV := var/compose-venv
$(COMPOSE_VENV)/bin/docker-compose:
	$(PYTHON) -m venv $(COMPOSE_VENV)
	$(COMPOSE_VENV)/bin/pip install --quiet --upgrade pip "cython<3" wheel setuptools
	$(COMPOSE_VENV)/bin/pip install --quiet --no-build-isolation "PyYAML==5.4.1"
	$(COMPOSE_VENV)/bin/pip install --quiet "docker-compose==1.29.2"

compose-check: $(COMPOSE_VENV)/bin/docker-compose
	SECRET_KEY=compose-check $(COMPOSE_VENV)/bin/docker-compose -f docker-compose.yml config --quiet
	@echo "docker-compose.yml is valid"

clean:
	rm -rf $(VENV) var
