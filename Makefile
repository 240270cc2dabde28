# Two entry points: `make demo` and `make test`. Both create .venv and install everything first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first and pinned, so that no multi-GB CUDA build is pulled in by a looser requirement.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[meshlab,blender,test,ray]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/sape-geom demo

test: $(STAMP)
	$(PY) -m pytest -q

# ruff's rules and format and pyright's settings are in pyproject.toml; .ci/run runs this before the tests.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/pyright
