# Two commands set everything up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
MANIFEST := dbt_features/target/manifest.json
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export QUANT_HOME ?= $(HOME)/.quant

.PHONY: install demo test ui mlflow bench clean

install: $(STAMP) $(MANIFEST)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip > $(VENV)/install.log 2>&1 || (tail -40 $(VENV)/install.log; exit 1)
	$(PY) -m pip install -q -e '.[dev]' >> $(VENV)/install.log 2>&1 || (tail -40 $(VENV)/install.log; exit 1)
	touch $(STAMP)

# The dbt manifest is prepared here, offline, never at import time.
$(MANIFEST): $(STAMP) $(shell find dbt_features -name '*.sql' -o -name '*.yml' | grep -v target/)
	QUANT_WAREHOUSE=$(QUANT_HOME)/warehouse.duckdb $(VENV)/bin/dbt parse --quiet --project-dir dbt_features --profiles-dir dbt_features

demo: install
	$(PY) -m quant_assets.demo

test: install
	$(PY) -m pytest -q

# The instance configuration (run queue, one run per core) from the checked-in template; `dagster dev` runs the
# daemon, which starts the daily schedules, the automation sensor and the freshness sensor (all on by default).
ui: install
	mkdir -p $(QUANT_HOME)/dagster && sed "s/@CORES@/$$(nproc)/" dagster.yaml > $(QUANT_HOME)/dagster/dagster.yaml
	DAGSTER_HOME=$(QUANT_HOME)/dagster $(VENV)/bin/dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml

mlflow: install
	$(VENV)/bin/mlflow ui --host 127.0.0.1 --port 5000 --backend-store-uri sqlite:///$(QUANT_HOME)/mlflow.db

bench: install
	for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) dbt_features/target dbt_features/logs
