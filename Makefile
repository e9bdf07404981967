# `make run` and `make test` set up everything themselves in a local virtual environment.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: run test clean

$(VENV)/.base: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.test: $(VENV)/.base
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

run: $(VENV)/.base
	$(VENV)/bin/bptt tutorial --out tutorial_output

test: $(VENV)/.test
	$(PY) -m pytest -q src tests

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .hypothesis
