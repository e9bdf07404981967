# `make run` and `make test` set up everything themselves in a local virtual environment.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: run test clean mutation mutation-ci mutation-ci-baseline

$(VENV)/.base: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.test: $(VENV)/.base
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

run: $(VENV)/.base
	$(VENV)/bin/bptt tutorial --out tutorial_output

# tools/warm_kernels.py first: on an empty Numba cache (a fresh clone, CI) it compiles the kernels
# on both cores, where the suite would compile them one after another; on a warm one it does nothing.
# The suite then runs in $(TEST_WORKERS) pytest-xdist processes, one per core by default (on the
# 2-core AMD EPYC of 2026-12-07, warm: 231 s against 359 s in one); TEST_WORKERS=0 runs it in one.
TEST_WORKERS ?= auto

test: $(VENV)/.test
	$(PY) tools/warm_kernels.py
	$(PY) -m pytest -q -n $(TEST_WORKERS) src tests

# Kernel benchmark against PyTorch (BENCHMARKS.md; benchmarks/run.py --help for the options), e.g.
# make bench BENCH_ARGS="--quick" or BENCH_ARGS="--rows large --json results.json".
BENCH_ARGS ?=

.PHONY: bench
bench: $(VENV)/.test
	$(PY) benchmarks/run.py $(BENCH_ARGS)

# Mutation testing (docs/mutation.md): mutmut on the Python modules outside the compiled kernels.
# `mutation` runs every module against its own tests (long: see docs/mutation.md for the time) and
# keeps the results in docs/mutation/results.json; `mutation-ci` runs CI's short fixed subset and
# fails if a mutant that its kept results (docs/mutation/results-ci.json, written by
# `mutation-ci-baseline`) list as killed survives. All run under nice, $(MUTATION_JOBS) mutants at a time.
MUTATION_JOBS ?= 2

$(VENV)/.mutation: $(VENV)/.test
	$(PY) -m pip install --quiet -e '.[mutation]'
	touch $@

mutation: $(VENV)/.mutation
	nice -n 10 $(PY) tools/mutation.py run --profile full --jobs $(MUTATION_JOBS) --save docs/mutation/results.json

mutation-ci: $(VENV)/.mutation
	nice -n 10 $(PY) tools/mutation.py run --profile ci --jobs $(MUTATION_JOBS)
	$(PY) tools/mutation.py check build/mutation/ci/results.json --baseline docs/mutation/results-ci.json

mutation-ci-baseline: $(VENV)/.mutation
	nice -n 10 $(PY) tools/mutation.py run --profile ci --jobs $(MUTATION_JOBS) --save docs/mutation/results-ci.json

# The ROOT files of tests/fixtures/, written by real ROOT (tools/make_root_fixtures.py): a venv of its
# own with the package index's `root` package (PyROOT; seconds to install), kept in build/rootvenv.
ROOTVENV ?= build/rootvenv

$(ROOTVENV)/.root:
	$(PYTHON) -m venv $(ROOTVENV)
	$(ROOTVENV)/bin/python -m pip install --quiet root
	touch $@

.PHONY: fixtures
fixtures: $(ROOTVENV)/.root
	$(ROOTVENV)/bin/python tools/make_root_fixtures.py --out tests/fixtures

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .hypothesis
