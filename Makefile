# Two entry points; each sets itself up (a virtual environment in .venv with the
# pinned dependencies) before it acts.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.layerscope-installed
CORES ?= all
SNAKEMAKE_ARGS ?=
PROFILE ?= workflow/profiles/default

.PHONY: reproduce test lint setup clean-results readme-results

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -c constraints.txt -e '.[test]'
	touch $@

reproduce: $(STAMP)
	$(BIN)/snakemake --workflow-profile $(PROFILE) --cores $(CORES) $(SNAKEMAKE_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint

# Paste the default run's generated results block into the README (between its markers).
readme-results: $(STAMP)
	$(BIN)/python -m layerscope.results.readme README.md results/default/tables/readme_results.md

clean-results:
	rm -rf results .snakemake
