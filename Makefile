# Two commands on a fresh clone (Python 3.11, git, Node/npm and make assumed):
#   make demo   install everything, run the ingestion -> training -> drift -> retraining loop
#   make test   install everything (and Debian's chromium, for the UI test), run all the tests
PYTHON ?= python3.11
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_COMPILE_BYTECODE := 1
export UV_PYTHON := $(PYTHON)
export INGESTION_HOME ?= $(CURDIR)/.ingestion
export DAGSTER_HOME ?= $(CURDIR)

.PHONY: install demo test lint ui materialize bench clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.installed: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --extra k8s
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@

install: $(VENV)/.installed node_modules/.installed

demo: install
	$(VENV)/bin/ingestion demo

# The web UI test (ingestion_project_tests/ui) drives Debian's Chromium with Playwright: installed
# here when missing (as root, from apt); if that fails the test is skipped and says why.
CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	@log=$$(mktemp); \
	if (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium) >$$log 2>&1; \
	then echo "Installed Debian's chromium for the web UI test."; \
	else tail -n 5 $$log; echo "chromium not installed: the web UI test will be skipped."; fi; \
	rm -f $$log

# The labeling tests (ingestion_project_tests/labeling) run a real Label Studio server. It lives in
# an environment of its own, from its own lock, because its pins (Django, boto3, pydantic, ...) would
# otherwise constrain ours; the tests start .venv-label-studio/bin/label-studio.
LS_VENV := .venv-label-studio
LS_LOCK := ingestion_project_tests/labeling/label_studio_requirements.txt

$(LS_VENV)/.installed: $(UV) $(LS_LOCK)
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(LS_VENV)
	$(UV) pip sync --quiet --python $(LS_VENV) $(LS_LOCK)
	touch $@

# One worker per core (pytest-xdist), each test file on one worker: its module fixtures (a
# server, a checkout) are built once. Serial, the suite took 19 minutes on 2 cores; this, 10.
test: install $(CHROMIUM) $(LS_VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest -n auto --dist loadfile

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/pyright

# dg expects the project's environment to be the active one, as after `source .venv/bin/activate`.
DG := VIRTUAL_ENV=$(CURDIR)/$(VENV) $(VENV)/bin/dg

ui: install
	$(DG) dev

materialize: install
	$(DG) launch --assets $(SELECT)

.venv-bench/.installed: $(UV) pyproject.toml uv.lock
	UV_PROJECT_ENVIRONMENT=.venv-bench $(UV) sync --frozen --no-dev --group bench
	touch $@

# Speed figures (see benchmarks/README.md); mltable lives in its own environment.
bench: install .venv-bench/.installed $(LS_VENV)/.installed
	$(VENV)/bin/python benchmarks/listing.py
	$(VENV)/bin/python benchmarks/event_tick.py
	$(VENV)/bin/python benchmarks/daemon_latency.py
	$(VENV)/bin/python benchmarks/register_many_files.py --azurite
	$(VENV)/bin/python benchmarks/load_tabular.py --mltable-python .venv-bench/bin/python
	$(VENV)/bin/python benchmarks/load_catalog.py
	$(VENV)/bin/python benchmarks/drift_engine.py
	$(VENV)/bin/python benchmarks/drift_backfill.py
	$(VENV)/bin/python benchmarks/paged_listing.py
	$(VENV)/bin/python benchmarks/sensor_fleet.py
	$(VENV)/bin/python benchmarks/labeling_sync.py

clean:
	rm -rf $(VENV) .venv-bench $(LS_VENV) $(TOOLS) .ingestion
