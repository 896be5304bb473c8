# Two entry points a new user needs (see README): `make run` and `make test`.
# Both create .venv on first use and install exact pins from requirements/lock.txt,
# with the optional extras whose tests must run (cluster: the Dask tests start a real LocalCluster).
# torch is pinned to 2.13.0: on this kind of machine that takes the local CPU
# wheel; an unpinned torch would pull a ~3 GB CUDA build (DESIGN.md section 7).
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed-stamp
FIND_LINKS = $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)

.PHONY: run test bench clean

$(STAMP): pyproject.toml requirements/lock.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(FIND_LINKS) -c requirements/lock.txt -e '.[test,cluster,lightning]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) main.py

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m pip install -q $(FIND_LINKS) -c requirements/lock.txt -e '.[bench]'
	$(PY) benchmarks/overhead.py

clean:
	rm -rf $(VENV) build *.egg-info
