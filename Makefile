# make demo | make notebook | make test [SPARK=4] | make bench [ARGS=--quick] | make lint | make clean
# Each target creates its virtual environment on first use: .venv for Spark 3.5 (EMR 7), .venv-spark4 for
# Spark 4.1 (EMR 8).
PYTHON ?= python3
SPARK  ?= 3.5
ifeq ($(firstword $(subst ., ,$(SPARK))),4)
VENV    ?= .venv-spark4
PYSPARK := pyspark==4.1.*
else
VENV    ?= .venv
PYSPARK := pyspark==3.5.*
endif
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(SPARK)

.PHONY: install demo notebook test lint bench clean

install: $(STAMP)

$(STAMP): setup.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing lakelib with $(PYSPARK) into $(VENV) ..."
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev,bench]" "$(PYSPARK)"
	@touch $@

demo: $(STAMP)
	@PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh

# Executes notebooks/*.ipynb against the lake `make demo` left; executed copies under build/notebooks/.
notebook: $(STAMP)
	@PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python scripts/run_notebooks.py --out build/notebooks

test: $(STAMP)
	@$(BIN)/python -m pytest -q

lint: $(STAMP)
	@$(BIN)/ruff check .
	@$(BIN)/shellcheck scripts/*.sh bootstrap/*.sh .ci/run

bench: $(STAMP)
	@PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m benchmarks.run $(ARGS)

clean:
	rm -rf lake build dist *.egg-info .pytest_cache
