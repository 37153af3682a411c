# Every step of the project, from a fresh clone: `make help` lists them.
# DVC_REMOTE=<path or url> makes that location the local default DVC remote before any pull.

.DEFAULT_GOAL := help
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= python3
# The interpreter the environments are made from, never one of theirs (PATH has .venv/bin first).
BASE_PYTHON := $(shell $(PYTHON) -c 'import sys; print(sys._base_executable)')
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
INSTALLED := $(VENV)/.installed
SPARK_INSTALLED := $(VENV)/.spark-installed
# The Dagger module's own environment: the Dagger SDK cannot share .venv with MLflow's UI.
DAGGER_VENV := dagger/.venv
DAGGER_PYTHON := $(CURDIR)/$(DAGGER_VENV)/bin/python
DAGGER_INSTALLED := $(DAGGER_VENV)/.installed
# What imports the SDK, type-checked in dagger/.venv (the rest is checked by `mypy` in .venv).
DAGGER_TYPED := dagger/src tests/unit/test_dagger_module.py tests/unit/test_dagger_inputs.py \
	tests/unit/test_workflow.py tests/integration/test_dagger_replay.py \
	tests/integration/test_container_environments.py tests/integration/test_workflow_run.py
# uv installs from uv.lock; pip only bootstraps it, at the version the lock pins (dev group).
UV := $(BIN)/uv
UV_VERSION := $(shell sed -n '/^name = "uv"$$/{n;s/^version = "\(.*\)"$$/\1/p;}' uv.lock)
# The Dagger SDK of the engine the module runs on (dagger.json), from PyPI: dagger/uv.lock
# records the SDK as `dagger develop`'s generated dagger/sdk/, which needs the Dagger CLI.
DAGGER_SDK_VERSION := $(shell sed -n 's/.*"engineVersion": "v\([^"]*\)".*/\1/p' dagger.json)
PIP_QUIET := --quiet --quiet --disable-pip-version-check
# `make lock` keeps each locked version the pins still allow; LOCK_ARGS=--upgrade moves every
# unpinned (transitive) package to its newest release.
LOCK_ARGS ?=
RAW_DATA := data/raw/raw_data.csv
# What the docs site is built from: its pages, and the modules its API pages are read from.
DOCS_SOURCES = $(shell find docs -type f) $(shell find lead_conversion_prediction -name '*.py')
DVC_REMOTE ?=
INPUT ?=
OUTPUT ?=
SCORES ?=
OUTCOMES ?=
BY ?=
MODEL ?=
VERSION ?=
TO ?=
BASELINE ?=
SIZES ?=
PORT ?= 5001
SERVE_WORKERS ?= 1
MLFLOW_UI_PORT ?= 5000
DOCS_PORT ?= 8000
LANE ?= unit
# pytest-xdist: one worker more than the cores, since much of the suite waits on the commands,
# servers and JVMs it starts (WORKERS=0 runs the tests in pytest's own process); the tests of a
# module run on one worker, so its module-scoped set-ups are made once.
WORKERS ?= $(shell $(PYTHON) -c 'import os; print((os.cpu_count() or 1) + 1)')
XDIST := -n $(WORKERS) --dist loadfile --no-loadscope-reorder
export PATH := $(BIN):$(PATH)
# No usage data from MLflow (it would also keep an id under ~/.config/mlflow).
export MLFLOW_DISABLE_TELEMETRY := true
# Material for MkDocs prints a notice of its end of life (May 2027) at every build and serve.
export NO_MKDOCS_2_WARNING := 1
# Spark's Python workers run this environment's interpreter, which has the project.
export PYSPARK_PYTHON := $(BIN)/python
# uv installs without compiling bytecode (compiling everything up front costs a minute here):
# let Python cache what it imports, even where the environment turned that off.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: help install dagger-env spark lock remote fetch data features train evaluate register \
	package validate pipeline release promote rollback champion predict monitor backtest serve mlflow-ui tracking-server docs site \
	plots-offline exp-show unlock postgres test test-fast test-lane lint format bench bench-train bench-score bench-serve notebook clean

## Show this help
help:
	@if [ -t 1 ]; then on='\033[36m'; off='\033[0m'; else on=; off=; fi; \
	awk -v on="$$on" -v off="$$off" -v width=80 ' \
	function wrap(text, words, n, i, line, out) { \
		n = split(text, words, " "); line = ""; out = ""; \
		for (i = 1; i <= n; i++) { \
			if (line != "" && 19 + length(line) + 1 + length(words[i]) > width) { \
				out = out line "\n" sprintf("%19s", ""); line = words[i] \
			} else { line = line == "" ? words[i] : line " " words[i] } \
		} \
		return out line \
	} \
	/^## /{doc=substr($$0, 4); next} \
	/^[a-z-]+:/{if (doc) printf "  %s%-16s%s %s\n", on, substr($$1, 1, length($$1)-1), off, wrap(doc); doc=""}' \
	$(MAKEFILE_LIST)

# The base interpreter's pip puts uv into a venv without pip (ensurepip would cost seconds);
# where it cannot, the venv gets its own pip first. `uv sync` then adds the locked pip to .venv.
$(UV):
	$(BASE_PYTHON) -m venv --without-pip $(VENV)
	$(BASE_PYTHON) -m pip --python $(BIN)/python install $(PIP_QUIET) "uv==$(UV_VERSION)" \
		|| { $(BIN)/python -m ensurepip --default-pip >/dev/null \
			&& $(BIN)/python -m pip install $(PIP_QUIET) "uv==$(UV_VERSION)"; }

# The exact environment of uv.lock (packages it does not select are removed): the runtime, the
# dev group and the project, editable; the Spark extra too once `make spark` has added it, so
# that a new sync keeps it.
$(INSTALLED): uv.lock pyproject.toml | $(UV)
	UV_PROJECT_ENVIRONMENT=$(CURDIR)/$(VENV) $(UV) sync --quiet --locked \
		$(if $(wildcard $(SPARK_INSTALLED)),--extra spark)
	touch $@

# The module's lock without the module and its generated SDK, then the SDK from PyPI.
$(DAGGER_INSTALLED): dagger/uv.lock dagger/pyproject.toml dagger.json | $(UV)
	test -x $(DAGGER_PYTHON) || $(BASE_PYTHON) -m venv --without-pip $(DAGGER_VENV)
	UV_PROJECT_ENVIRONMENT=$(CURDIR)/$(DAGGER_VENV) $(UV) sync --quiet --frozen --project dagger \
		--no-install-project --no-install-package dagger-io
	$(UV) pip install --quiet --no-deps --python $(DAGGER_PYTHON) \
		"dagger-io==$(DAGGER_SDK_VERSION)"
	touch $@

## Create .venv (project, runtime and dev tools) and dagger/.venv (Dagger SDK) from the locks
install: $(INSTALLED) $(DAGGER_INSTALLED)

## Create dagger/.venv only: the Dagger SDK, to type-check and test the Dagger module
dagger-env: $(DAGGER_INSTALLED)

# The same sync with the optional Spark extra (PySpark, cheap once uv's cache has it).
$(SPARK_INSTALLED): $(INSTALLED)
	UV_PROJECT_ENVIRONMENT=$(CURDIR)/$(VENV) $(UV) sync --quiet --locked --extra spark
	touch $@

## Add the optional Spark extra (PySpark) to .venv: lcp predict --engine spark; needs Java 17
spark: $(SPARK_INSTALLED)

## Re-resolve uv.lock and dagger/uv.lock after a change to a pin; export requirements*.txt
lock: | $(UV)
	$(UV) lock --quiet $(LOCK_ARGS)
	$(UV) export --quiet --frozen --no-dev --no-emit-project -o requirements.txt
	$(UV) export --quiet --frozen --no-emit-project -o requirements-dev.txt
	$(BIN)/python scripts/lock_dagger.py $(LOCK_ARGS)

## Make DVC_REMOTE the local default DVC remote (.dvc/config.local), if given
remote: $(INSTALLED)
	@if [ -n "$(DVC_REMOTE)" ]; then dvc remote add --quiet --local --force --default mirror "$(DVC_REMOTE)"; fi

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

## Log the candidates to MLflow and register the chosen model as the challenger
register: $(INSTALLED)
	lcp register

## Bundle the model artifacts into models/models.tar
package: $(INSTALLED)
	lcp package

## Check models/model.pkl as the course validator does
validate: $(INSTALLED)
	lcp validate --model models/model.pkl

## Run the whole pipeline and record it in dvc.lock; the new version is the challenger
pipeline: $(RAW_DATA)
	lcp pipeline

## The release path: the pipeline, then the new version is champion if better, and no worse
release: $(RAW_DATA)
	lcp pipeline --promote

## Compare the challenger (VERSION=<n> for another) with the champion; promote it if better
promote: $(INSTALLED)
	lcp promote $(if $(VERSION),--version "$(VERSION)")

## Give the champion alias to the champion before it (again: one more step back; TO=<n>)
rollback: $(INSTALLED)
	lcp rollback $(if $(TO),--to "$(TO)")

## Show the champion: metrics, data md5, git commit, when it was promoted
champion: $(INSTALLED)
	lcp champion

## Score a file of raw leads: make predict INPUT=leads.csv OUTPUT=scores.csv [MODEL=...]
predict: $(INSTALLED)
	@test -n "$(INPUT)" -a -n "$(OUTPUT)" || { echo "usage: make predict INPUT=<leads> OUTPUT=<scores> [MODEL=<uri or path>]"; exit 2; }
	lcp predict --input "$(INPUT)" --output "$(OUTPUT)" $(if $(MODEL),--model "$(MODEL)")

## Compare a batch (leads or scores) with the model's training rows: make monitor INPUT=leads.csv
monitor: $(INSTALLED)
	@test -n "$(INPUT)" || { echo "usage: make monitor INPUT=<leads or scores> [MODEL=<uri or path>] [OUTPUT=<folder>]"; exit 2; }
	lcp monitor --input "$(INPUT)" $(if $(MODEL),--model "$(MODEL)") $(if $(OUTPUT),--output "$(OUTPUT)")

## The model on real outcomes: make backtest SCORES=scores.csv OUTCOMES=outcomes.csv [BY=month]
backtest: $(INSTALLED)
	@test -n "$(SCORES)" -a -n "$(OUTCOMES)" || { echo "usage: make backtest SCORES=<scores> OUTCOMES=<outcomes> [BY=month|<column>] [OUTPUT=<folder>]"; exit 2; }
	lcp backtest --scores "$(SCORES)" --outcomes "$(OUTCOMES)" $(if $(BY),--by "$(BY)") $(if $(OUTPUT),--output "$(OUTPUT)")

## Serve the champion over HTTP on 127.0.0.1:5001 (PORT=..., SERVE_WORKERS=N processes)
serve: $(INSTALLED)
	lcp serve --port $(PORT) --workers $(SERVE_WORKERS)

## MLflow's UI on this project's runs (prints the link to open; MLFLOW_UI_PORT=5000)
mlflow-ui: $(INSTALLED)
	lcp mlflow-ui --port $(MLFLOW_UI_PORT)

## The team's MLflow server: PostgreSQL store, basic-auth (settings: docs/team-registry.md)
tracking-server: $(INSTALLED)
	lcp tracking-server

## Break the registry lock left by a promotion whose process died on another machine
unlock: $(INSTALLED)
	lcp unlock

# The headline metrics: the promotion metric and the scoring rule (params.yaml's promotion).
EXP_SHOW_METRICS := holdout\.(roc_auc|log_loss)$$
## The DVC experiments in 120 columns: the params they change and the headline holdout metrics
exp-show: $(INSTALLED)
	COLUMNS=120 dvc exp show --no-pager --only-changed \
		--drop 'Created|.*/|lead_conversion_prediction$$|cv\.|holdout\.' --keep '$(EXP_SHOW_METRICS)'

## Let `dvc plots diff` render offline: Vega's libraries (pinned, from npm) inline in its page
plots-offline: $(INSTALLED)
	python scripts/offline_plots.py .dvc/plots-offline.html
	dvc config --local plots.html_template plots-offline.html

## Start this machine's PostgreSQL cluster if it is installed and not running (the tests use it)
postgres:
	scripts/postgres.sh

## Run the unit lane: in-process tests on small frames; no Java, PostgreSQL or Chromium
test-fast: $(INSTALLED) $(DAGGER_INSTALLED)
	pytest -m unit $(XDIST)

## Run every lane (unit, integration, spark, server, browser, faults), none skipped
test: $(RAW_DATA) $(DAGGER_INSTALLED) $(SPARK_INSTALLED) postgres
	pytest $(XDIST)

## Run one lane: make test-lane LANE=integration (spark, server, browser, faults...)
test-lane: $(RAW_DATA) $(DAGGER_INSTALLED) $(SPARK_INSTALLED) postgres
	pytest -m "$(LANE)" $(XDIST)

## Check style, types (ruff, mypy --strict, Dagger module incl.), notebooks, the CI workflow, docs
lint: $(INSTALLED) $(DAGGER_INSTALLED) $(SPARK_INSTALLED) site/index.html
	pre-commit run --all-files
	$(DAGGER_PYTHON) -m mypy --follow-imports silent --cache-dir .mypy_cache/dagger \
		$(DAGGER_TYPED)
	check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/ci.yml
	zizmor --offline .github/workflows/ci.yml

## Serve the docs site on 127.0.0.1:8000 (DOCS_PORT=...), rebuilt as its pages change
docs: $(INSTALLED)
	mkdocs serve --dev-addr 127.0.0.1:$(DOCS_PORT)

# A strict build: a warning (a broken link or anchor, a page left out of the navigation, a
# module the API pages no longer find) fails it, and a failed build leaves no site/ that looks
# up to date. Not --quiet: it hides from strict mode the warnings it counts.
site/index.html: mkdocs.yml $(DOCS_SOURCES) $(INSTALLED)
	mkdocs build --strict --site-dir site || { rm -rf site; exit 1; }

## Build the docs site into site/ with `mkdocs build --strict` (make lint builds it too)
site: site/index.html

## Format the code, apply safe lint fixes, strip notebook outputs
format: $(INSTALLED)
	ruff format .
	ruff check --fix .
	nbstripout notebooks/*.ipynb

## Time a cold `make pipeline`, `dvc repro`, `lcp --help`, whole process, beside BASELINE (HEAD)
bench: $(RAW_DATA)
	python scripts/bench_pipeline.py $(if $(BASELINE),--baseline "$(BASELINE)")

## Train on 100k, 300k and 1M resampled leads (SIZES=20000,50000 to try); time and memory per stage
bench-train: $(RAW_DATA)
	python scripts/bench_train.py $(if $(SIZES),--sizes "$(SIZES)")

## Score 1k and 1M leads every way, whole process; BASELINE=REV
bench-score: $(RAW_DATA) $(SPARK_INSTALLED)
	python scripts/bench_score.py $(if $(BASELINE),--baseline "$(BASELINE)")

## Send 1,000 requests to a running `make serve`; print errors and latency percentiles
bench-serve: $(INSTALLED)
	python scripts/load_serve.py --url http://127.0.0.1:$(PORT)

## Open the exploration notebook in JupyterLab (installed with the dev tools)
notebook: $(INSTALLED)
	jupyter lab notebooks/01-exploration.ipynb $$([ "$$(id -u)" = 0 ] && echo --allow-root)

## Delete generated data, models, reports and the built docs (keeps the raw data and MLflow store)
clean:
	git clean -fdXq data/interim data/processed models reports
	rm -rf site
	find . \( -path ./$(VENV) -o -path ./$(DAGGER_VENV) \) -prune -o -type d -name __pycache__ \
		-exec rm -rf {} +
	rm -rf .pytest_cache .mypy_cache .ruff_cache
