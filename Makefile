# Every step of the project, from a fresh clone: `make help` lists them.
# DVC_REMOTE=<path or url> makes that location the local default DVC remote before any pull.

.DEFAULT_GOAL := help
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
INSTALLED := $(VENV)/.installed
RAW_DATA := data/raw/raw_data.csv
DVC_REMOTE ?=
INPUT ?=
OUTPUT ?=
MODEL ?=
PORT ?= 5001
export PATH := $(BIN):$(PATH)

.PHONY: help install remote fetch data features train evaluate register package validate pipeline \
	predict serve test lint format bench bench-score bench-serve notebook clean

## Show this help
help:
	@awk '/^## /{doc=substr($$0, 4); next} /^[a-z-]+:/{if (doc) printf "  \033[36m%-12s\033[0m %s\n", substr($$1, 1, length($$1)-1), doc; doc=""}' $(MAKEFILE_LIST)

$(INSTALLED): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

## Create .venv with the project, its dependencies and its dev tools
install: $(INSTALLED)

## Make DVC_REMOTE the local default DVC remote (.dvc/config.local), if given
remote: $(INSTALLED)
	@if [ -n "$(DVC_REMOTE)" ]; then dvc remote add --local --force --default mirror "$(DVC_REMOTE)"; fi

# The pinned raw file: from the default DVC remote if there is one, else from its upstream URL.
$(RAW_DATA): data/raw/raw_data.csv.dvc | remote
	lcp fetch
	touch $@

## Get the pinned raw data: from the DVC remote (DVC_REMOTE=...), else its upstream URL
fetch: $(RAW_DATA)

## Fetch the raw data, then check, validate and clean it into data/interim/
data: $(RAW_DATA)
	lcp data

## Split the leads and fit the preprocessing into data/processed/
features: $(INSTALLED)
	lcp features

## Search the candidate models and keep the best in models/
train: $(INSTALLED)
	lcp train

## Write the holdout metrics to reports/metrics.json
evaluate: $(INSTALLED)
	lcp evaluate

## Log the candidates to MLflow, register the best, promote it if better
register: $(INSTALLED)
	lcp register

## Bundle the model artifacts into models/models.tar
package: $(INSTALLED)
	lcp package

## Check models/model.pkl as the course validator does
validate: $(INSTALLED)
	lcp validate

## Run the whole pipeline and record it in dvc.lock (`dvc repro` then has nothing to do)
pipeline: $(RAW_DATA)
	lcp pipeline

## Score a file of raw leads: make predict INPUT=leads.csv OUTPUT=scores.csv [MODEL=...]
predict: $(INSTALLED)
	@test -n "$(INPUT)" -a -n "$(OUTPUT)" || { echo "usage: make predict INPUT=<leads> OUTPUT=<scores> [MODEL=<uri or path>]"; exit 2; }
	lcp predict --input "$(INPUT)" --output "$(OUTPUT)" $(if $(MODEL),--model "$(MODEL)")

## Serve the champion over HTTP on 127.0.0.1:5001 (PORT=...), MLflow scoring server
serve: $(INSTALLED)
	lcp serve --port $(PORT)

## Run the test suite
test: $(RAW_DATA)
	pytest

## Check style, types (ruff, mypy --strict, Dagger module incl.), the CI workflow, notebooks
lint: $(INSTALLED)
	ruff check .
	ruff format --check .
	mypy
	check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/ci.yml
	zizmor --offline .github/workflows/ci.yml
	nbstripout --verify notebooks/*.ipynb

## Format the code, apply safe lint fixes, strip notebook outputs
format: $(INSTALLED)
	ruff format .
	ruff check --fix .
	nbstripout notebooks/*.ipynb

## Time a cold `make pipeline`, a no-op `dvc repro` and `lcp --help` (prints the figures)
bench: $(RAW_DATA)
	python scripts/bench_pipeline.py

## Score 100k and 1M synthetic leads; print rows/s and peak memory
bench-score: $(RAW_DATA)
	python scripts/bench_score.py

## Send 1,000 requests to a running `make serve`; print errors and latency percentiles
bench-serve: $(INSTALLED)
	python scripts/load_serve.py --url http://127.0.0.1:$(PORT)

## Open the exploration notebook in JupyterLab (installed with the dev tools)
notebook: $(INSTALLED)
	jupyter lab notebooks/01-exploration.ipynb

## Delete generated data, models and reports (keeps the raw data and the MLflow store)
clean:
	git clean -fdXq data/interim data/processed models reports
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +
	rm -rf .pytest_cache .mypy_cache .ruff_cache
