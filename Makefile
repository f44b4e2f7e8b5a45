# Two commands set everything up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
MANIFEST := dbt_features/target/manifest.json
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export QUANT_HOME ?= $(HOME)/.quant

.PHONY: install demo test ui mlflow bench clean serve web chromium cluster-demo cluster-services

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

test: install web chromium cluster-services
	$(PY) -m pytest -q -n 2 --durations=15

# The instance configuration (run queue, one run per core) from the checked-in template; `dagster dev` runs the
# daemon, which starts the daily schedules, the automation sensor and the freshness sensor (all on by default).
ui: install
	mkdir -p $(QUANT_HOME)/dagster && sed "s/@CORES@/$$(nproc)/; s|@DAGSTER_HOME@|$(QUANT_HOME)/dagster|" dagster.yaml > $(QUANT_HOME)/dagster/dagster.yaml
	DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS=true DAGSTER_EVENT_BATCH_SIZE=1000 DAGSTER_HOME=$(QUANT_HOME)/dagster $(VENV)/bin/dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml

mlflow: install
	$(VENV)/bin/mlflow ui --host 127.0.0.1 --port 5000 --backend-store-uri sqlite:///$(QUANT_HOME)/mlflow.db

bench: install
	for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) dbt_features/target dbt_features/logs web/node_modules web/.next web/out

# The web app: built from the committed package-lock.json into web/out, which the API serves at "/".
# Node and npm come from Debian's packages when missing.
PORT ?= 8000
HOST ?= 127.0.0.1
WEB_OUT := web/out/index.html
APT_INSTALL := DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends

web: $(WEB_OUT)

$(WEB_OUT): web/package-lock.json $(shell find web/app web/components -type f) web/next.config.ts web/tsconfig.json
	command -v npm > /dev/null || (apt-get update -q > /dev/null && $(APT_INSTALL) nodejs npm > /dev/null)
	node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a == 20 && b >= 9) ? 0 : 1)' \
		|| (echo "Next.js 16 needs Node >= 20.9, found $$(node --version); install a newer nodejs package"; exit 1)
	cd web && npm ci --no-audit --no-fund --loglevel=error && NEXT_TELEMETRY_DISABLED=1 npx next build > .next-build.log 2>&1 \
		|| (tail -40 .next-build.log; exit 1)

# The browser tests drive Debian's Chromium through Playwright (`playwright install` cannot download here).
chromium:
	test -x /usr/bin/chromium || (apt-get update -q > /dev/null && $(APT_INSTALL) chromium fonts-dejavu-core > /dev/null)

# The API and the web app from one process; 127.0.0.1 unless HOST is given (which then needs QUANT_API_TOKEN).
serve: install web
	$(PY) -m quant_assets.api --host $(HOST) --port $(PORT)

# The distributed profile (deploy/, README "Beyond one machine"), on this machine: PostgreSQL and Redis from Debian's
# packages when missing; the demo starts them privately with moto's S3 server, MLflow, two Celery workers and the
# daemon, backfills four windows through Celery, compares with one machine, and stops everything it started.
cluster-services:
	command -v redis-server > /dev/null || (apt-get update -q > /dev/null && $(APT_INSTALL) redis-server > /dev/null)
	command -v initdb > /dev/null || ls /usr/lib/postgresql/*/bin/initdb > /dev/null 2>&1 \
		|| (apt-get update -q > /dev/null && $(APT_INSTALL) postgresql > /dev/null)

cluster-demo: install cluster-services
	$(PY) -m quant_assets.deploy.demo
