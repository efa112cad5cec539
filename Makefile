# make demo | make notebook | make test [SPARK=3.5|4.0|4.1] | make bench [ARGS=--quick] | make lint | make jar | make clean
# Each Spark line has its own virtual environment, created on first use: .venv for Spark 3.5 (EMR 7),
# .venv-spark40 for Spark 4.0 (EMR 8.0), .venv-spark4 for Spark 4.1 (EMR 8.1; SPARK=4 means 4.1).
# make test PYTEST_ARGS="tests/test_emr.py -x" runs part of the suite.
# make test-airflow: Airflow 2.10 and the Amazon provider in .venv-airflow (their own environment, never lakelib's),
# then the test that loads `lake schedule`'s DAG with Airflow's DagBag (skipped by `make test` without that venv).
PYTHON ?= python3
SPARK  ?= 3.5
ifeq ($(SPARK),3.5)
LINE    := 3.5
VENV    ?= .venv
else ifeq ($(SPARK),4.0)
LINE    := 4.0
VENV    ?= .venv-spark40
else ifneq ($(filter 4 4.1,$(SPARK)),)
LINE    := 4.1
VENV    ?= .venv-spark4
else
$(error SPARK=$(SPARK): expected 3.5, 4.0 or 4.1)
endif
PYSPARK := pyspark==$(LINE).*
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(LINE)
PYTEST_ARGS ?=

AIRFLOW_VENV := .venv-airflow
AIRFLOW_PINS := "apache-airflow==2.10.5" "apache-airflow-providers-amazon==9.2.0"

.PHONY: install demo notebook test test-airflow lint bench jar clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing lakelib with $(PYSPARK) into $(VENV) ..."
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev,bench]" "$(PYSPARK)"
	@rm -f $(VENV)/.installed-*
	@touch $@

demo: $(STAMP)
	@PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh

# Executes notebooks/*.ipynb against the lake `make demo` left; executed copies under build/notebooks/.
notebook: $(STAMP)
	@PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python scripts/run_notebooks.py --out build/notebooks

# pytest's own exit status: 0 all passed, 1 failures, 2-4 interrupted or misused, 5 no test collected (a failure).
test: $(STAMP)
	@PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q $(PYTEST_ARGS)

$(AIRFLOW_VENV)/.installed: Makefile
	@test -x $(AIRFLOW_VENV)/bin/python || $(PYTHON) -m venv $(AIRFLOW_VENV)
	@echo "installing $(AIRFLOW_PINS) into $(AIRFLOW_VENV) ..."
	@$(AIRFLOW_VENV)/bin/python -m pip install --quiet --disable-pip-version-check $(AIRFLOW_PINS) 2>&1 \
		| grep -v "^WARNING: Location" || true
	@$(AIRFLOW_VENV)/bin/python -c "import airflow.providers.amazon.aws.operators.emr"
	@touch $@

test-airflow: $(STAMP) $(AIRFLOW_VENV)/.installed
	@LAKELIB_REQUIRE_AIRFLOW=1 LAKELIB_AIRFLOW_VENV=$(abspath $(AIRFLOW_VENV)) $(BIN)/python -m pytest -q tests/test_schedule.py -k airflow

lint: $(STAMP)
	@$(BIN)/ruff check .
	@$(BIN)/shellcheck scripts/*.sh bootstrap/*.sh .ci/run
	@$(BIN)/mypy

bench: $(STAMP)
	@PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m benchmarks.run $(ARGS)

# lakelib's JVM half (java/: the JSON UDFs of lakelib/json_udfs.py) as Java 8 bytecode, so that one jar serves Spark 3.5
# and 4.x. The jar is committed: using lakelib needs no JDK; tests/test_json_udfs.py checks it matches java/.
jar: $(STAMP)
	@rm -rf build/jar && mkdir -p build/jar
	@javac --release 8 -Xlint:-options -cp "$$($(BIN)/python -c 'import glob, os, pyspark; print(os.pathsep.join(glob.glob(os.path.join(os.path.dirname(pyspark.__file__), "jars", "*.jar"))))')" \
		-d build/jar $$(find java -name '*.java' | sort)
	@jar --create --date=1980-01-01T00:00:02Z --file lakelib/resources/lakelib-json.jar -C build/jar .
	@echo "built lakelib/resources/lakelib-json.jar"

clean:
	rm -rf lake build dist *.egg-info .pytest_cache .mypy_cache
