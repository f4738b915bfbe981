# Two entry points, reproduce and test; each sets itself up (a virtual environment in
# .venv with the pinned dependencies) before it acts. `make help` lists every target.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP = $(VENV)/.layerscope-installed$(if $(EXTRAS),-$(subst $(comma),-,$(EXTRAS)))
comma := ,
CORES ?= all
SNAKEMAKE_ARGS ?=
PROFILE ?= workflow/profiles/default
# Optional extras installed with the package: make reproduce EXTRAS=gpu (TensorFlow's CUDA
# libraries, docs/gpus-and-clusters.md). The stamp names them, so changing EXTRAS reinstalls.
EXTRAS ?=

.PHONY: help reproduce test test-slurm lint docs setup clean-results python-version readme-results smoke dry-run report

help: ## list the targets, one line each
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /\1\t/' | expand -t 16

setup: $(STAMP) ## create .venv and install the pinned dependencies (the others do this first)

# snakemake 9 and its SLURM plugins need Python >= 3.11: refuse an older interpreter
# (the one in .venv if it exists, else $(PYTHON)) in one line, before installing anything.
python-version: ## refuse a Python older than 3.11 in one line
	@py=$(PYTHON); test -x $(BIN)/python && py=$(BIN)/python; \
	$$py -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	echo "layerscope needs Python >= 3.11, but $$py is $$($$py -V 2>&1): make PYTHON=python3.11 (and rm -rf $(VENV) if it holds the old one)" >&2; exit 1; }

$(STAMP): pyproject.toml constraints.txt src/layerscope/__init__.py | python-version
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -c constraints.txt -e '.[test$(if $(EXTRAS),$(comma)$(EXTRAS))]'
	rm -f $(VENV)/.layerscope-installed*
	touch $@

reproduce: $(STAMP) ## run the whole pipeline (config/config.yaml; SNAKEMAKE_ARGS for more)
	$(BIN)/snakemake --workflow-profile $(PROFILE) --cores $(CORES) $(SNAKEMAKE_ARGS)

# Runs, previews and the report of the workflow (docs/rerunning.md); CONFIG picks the config.
CONFIG ?= config/config.yaml
EXPERIMENT = $(or $(shell sed -n 's/^experiment: *\([^ #]*\).*/\1/p' $(CONFIG)),default)
smoke: $(STAMP) ## run the tiny smoke config end to end (minutes): results/smoke/
	$(BIN)/snakemake --workflow-profile $(PROFILE) --cores $(CORES) --configfile config/smoke.yaml $(SNAKEMAKE_ARGS)

dry-run: $(STAMP) ## list the jobs a run of CONFIG would start, and why, without running any
	$(BIN)/snakemake --workflow-profile $(PROFILE) --cores $(CORES) -n --configfile $(CONFIG) $(SNAKEMAKE_ARGS)

report: $(STAMP) ## Snakemake's HTML report of a finished run of CONFIG: results/<experiment>/report.zip
	$(BIN)/snakemake --workflow-profile $(PROFILE) --cores 1 --configfile $(CONFIG) --report results/$(EXPERIMENT)/report.zip $(SNAKEMAKE_ARGS)

# Whole test files spread over TEST_WORKERS processes (pytest-xdist): a module's shared
# pipeline run is made once, on one worker.
TEST_WORKERS ?= 2
test: $(STAMP) ## run the test suite on TEST_WORKERS processes (PYTEST_ARGS for more)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

lint: $(STAMP) ## ruff, snakefmt and snakemake --lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check workflow/Snakefile workflow/rules
	$(BIN)/snakemake --lint

# The documentation site (docs/, mkdocs.yml) into site/, warnings as errors; installs the
# docs extra into .venv first.
DOCS_STAMP := $(VENV)/.layerscope-docs-installed
$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install -c constraints.txt -e '.[test,docs]'
	touch $@

docs: $(DOCS_STAMP) ## build the documentation site into site/ (mkdocs build --strict)
	$(BIN)/mkdocs build --strict

# Paste the default run's generated results: the full block into docs/results.md and the
# short one into the README (between their markers), both from the same finished run.
readme-results: $(STAMP) ## paste results/default's generated results into docs/results.md and README.md
	$(BIN)/python -m layerscope.results.readme README.md docs/results.md results/default

# A real SLURM run on a one-node cluster on localhost (installs slurm-wlm and munge; root).
test-slurm: $(STAMP) ## a real SLURM run of the smoke config on a one-node cluster here (root; installs slurm-wlm, munge; IF_POSSIBLE=1 skips where it cannot)
	benchmarks/slurm_cluster.sh

clean-results: ## delete results/ and .snakemake/
	rm -rf results .snakemake
