# Two commands for a newcomer: `make demo` and `make test`. Both create the virtualenv when missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export NO_ALBUMENTATIONS_UPDATE := 1
export HF_HUB_OFFLINE := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

.PHONY: demo test test-fast lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: pip takes these two from this machine's disk (see README, set-up).
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	# dev: the tests; gcp: Dataflow's offline dry run; dask: the DaskRunner cluster test.
	$(PY) -m pip install -q -e ".[dev,gcp,dask]"
	# img2dataset pulls the Python 3.6 `dataclasses` backport, which shadows the standard library.
	$(PY) -m pip uninstall -y -q dataclasses
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/pairsmith demo --out demo-out

test: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -q

# The tests that run no whole pipeline (pytest -m "not slow"): minutes instead of the full suite's.
test-fast: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -q -m "not slow"

bench: $(VENV)/.installed
	$(PY) benchmarks/download_throughput.py

clean:
	rm -rf $(VENV) demo-out
