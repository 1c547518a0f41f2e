# Two entry points: `make demo` and `make test`. Both set everything up first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.rds-installed
DEMO_DIR ?= .rds-demo
DEMO_PORT ?= 8081
LAB_PORT ?= 8888
# The extension's scripts call jlpm and jupyter-builder by name: the venv's bin comes first.
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: demo test setup system lint bench clean

setup: system $(STAMP) extension

# Debian packages the sandbox and the browser tests need.
system:
	@if ! command -v bwrap >/dev/null || ! command -v chromium >/dev/null; then \
	  echo "Installing bubblewrap and chromium (apt)…"; \
	  $(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq && \
	  $(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -qq bubblewrap chromium >/dev/null; \
	fi
	@if ! command -v node >/dev/null; then \
	  echo "Installing Node.js (apt), to build the Remote Data panel…"; \
	  $(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq && \
	  $(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -qq nodejs >/dev/null; \
	fi

# torch first and explicitly (an unpinned torch pulls a multi-GB CUDA build), then the
# whole set against the lock generated from one resolver run with syft 0.9.5.
$(STAMP): pyproject.toml requirements.lock
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -c requirements.lock -e '.[dev]'
	@touch $(STAMP)

# The Remote Data panel: `pip install -e .` builds it (hatch-jupyter-builder, with jlpm);
# rebuilt here when its sources change, then linked into the venv's JupyterLab (a symlink:
# the copy an editable install leaves would go stale) and the server extension enabled (a
# wheel install does both through its shared data).
EXT_SOURCES := $(shell find extension/src extension/style -type f 2>/dev/null) \
  extension/package.json extension/yarn.lock extension/tsconfig.json
EXT_BUILT := rds/labextension/static/style.js

.PHONY: extension
extension: $(EXT_BUILT)
	@test -L $(VENV)/share/jupyter/labextensions/rds-jupyterlab || \
	  $(VENV)/bin/jupyter labextension develop --overwrite . >/dev/null
	@$(VENV)/bin/jupyter server extension enable rds --sys-prefix >/dev/null

$(EXT_BUILT): $(EXT_SOURCES) | $(STAMP)
	cd extension && jlpm install --immutable && jlpm build:prod
	@touch $(EXT_BUILT)

# exec: the demo is make's own child, so make's death (SIGTERM) reaches it (PR_SET_PDEATHSIG).
demo: setup
	exec $(PY) -m rds.demo --path $(DEMO_DIR) --port $(DEMO_PORT) --lab-port $(LAB_PORT)

lint: setup
	$(VENV)/bin/ruff format --check rds tests benchmarks
	$(VENV)/bin/ruff check rds tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache
	cd extension && jlpm prettier:check

test: setup lint
	cd extension && jlpm test
	$(VENV)/bin/pytest -q

bench: setup
	$(PIP) install -q -c requirements.lock -e '.[dev,bench]'
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) build dist *.egg-info rds/labextension extension/lib extension/node_modules
