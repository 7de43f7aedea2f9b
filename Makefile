# The README's two commands: `make run` (the main job) and `make test`.
# Both create .venv if missing, install the project, and are quick when it exists.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
# without PREFECT_API_URL the flow starts a temporary Prefect server; it can take >20 s here
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 120
export MLFLOW_DISABLE_TELEMETRY := true
export DVC_NO_ANALYTICS := 1
export DO_NOT_TRACK := 1
# the venv first on PATH: dvc runs `tokenskip`, `mlflow models serve` runs `uvicorn`
export PATH := $(CURDIR)/$(BIN):$(PATH)
# torch==2.13.0 is the CPU build on disk here; see README for a CUDA build on a GPU box.
TORCH_SPEC ?= torch==2.13.0

.PHONY: run test test-unit install lock data lint mutation ablation

# constraints.txt: the library versions the committed reports were made with (see `make lock`)
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_SPEC)
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[test,scale]"
	touch $(STAMP)

install: $(STAMP)

# after a change to pyproject.toml's dependencies: pin what .venv now holds (torch: TORCH_SPEC)
lock: $(STAMP)
	{ sed -n '1,/^$$/p' constraints.txt; $(BIN)/python -m pip freeze --exclude-editable | grep -v '^torch=='; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

data: $(STAMP)
	$(BIN)/dvc pull -q data.dvc

# the main job: the Prefect flow runs every DVC stage (dvc repro <stage>) in order, then prints
# the evaluation table and the champion. `dvc repro` alone reproduces the same stages.
# `tokenskip ui` then shows the MLflow registry and the Prefect flow run on 127.0.0.1.
run: data
	$(BIN)/tokenskip run

# Does importance matter? One DVC experiment per pruning variant through evaluate (self-information,
# random, and llmlingua2 when prune.scorer_model names a classifier), compared at matched actual
# ratios: reports/ablation.json and .png, `dvc exp show`. e.g. ABLATION_ARGS="--ratio 0.5 --ratio 0.6"
ablation: data
	$(BIN)/tokenskip ablation $(ABLATION_ARGS)

test: data
	$(BIN)/python -m pytest -q

# the unit tier alone: pure functions, small files and one-process stage runs, no model training
# (about a minute on a quiet 2-core box); `make test` runs it with the data, model and pipeline tiers
test-unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

lint: $(STAMP)
	$(BIN)/ruff check src tests flows bench experiments

# mutation score of the pure core (answers, prompts, io, gate, samples, pruning) against its unit
# tests, with mutmut 3 in a scratch copy (settings: tests/mutation.cfg); not part of `make test`.
MUTATION_DIR ?= $(or $(TMPDIR),/tmp)/tokenskip-mutation
mutation: $(STAMP)
	rm -rf $(MUTATION_DIR) && mkdir -p $(MUTATION_DIR)
	cp -r src tests params.yaml $(MUTATION_DIR)/
	cp tests/mutation.cfg $(MUTATION_DIR)/setup.cfg
	cd $(MUTATION_DIR) && nice -n 19 $(CURDIR)/$(BIN)/mutmut run --max-children 2 \
		&& $(CURDIR)/$(BIN)/mutmut results
