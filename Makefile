# The two commands a newcomer needs: `make run` and `make test`. See README.md.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint install messages totp clean-var

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

## Start the portal with demo data on the embedded default (SQLite + file-system broker).
run: $(STAMP)
	./scripts/run.sh

## Lint and run the test suite (SQLite and eager Celery unless DATABASE_URL / CELERY_BROKER_URL are set).
## (Never assign DATABASE_URL in this Makefile, even per target: GNU make then stops passing the
## caller's value to every recipe, and the tests would silently run on SQLite. Benchmarks use
## BENCH_DB.)
test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

## Regenerate and compile translations after changing user-facing strings (docs/translations.md).
## English is the source language: only the Simplified Chinese catalogue exists.
messages: $(STAMP)
	$(PY) manage.py makemessages -l zh_Hans --ignore=.venv --ignore=tests --ignore=bench --ignore=var --no-obsolete
	$(PY) manage.py compilemessages --ignore=.venv

## Print a demo user's current TOTP code: make totp USER=reviewer
totp: $(STAMP)
	@$(PY) manage.py totp $(USER)

clean-var:
	rm -rf var/portal.sqlite3* var/celery var/private var/mail

## Bulk import benchmark (issues 3 and 7): ROWS rows as CSV (GB18030) and as XLSX through the
## real import path against PostgreSQL (creates the database if missing, migrates it); prints
## a Markdown table and writes bench-out/import-<format>-<rows>.json. make bench-import ROWS=1000
ROWS ?= 100000
.PHONY: bench-import
bench-import: BENCH_DB ?= postgres://postgres@127.0.0.1:5432/portal_bench
bench-import: $(STAMP)
	export DATABASE_URL='$(BENCH_DB)' DJANGO_SETTINGS_MODULE=blacklist_portal.settings.base; \
	$(PY) -m bench.import_bench --create-db-only && \
	$(PY) manage.py migrate --noinput && \
	$(PY) -m bench.import_bench --rows $(ROWS) --format csv && \
	$(PY) -m bench.import_bench --rows $(ROWS) --format xlsx

## Benchmarks (issue 7, docs/performance.md): a SIZE-entry data set on PostgreSQL (loaded once,
## reused), API query throughput beside the floor under gunicorn, batch screening, list pages,
## the reminder sweep and the bulk import; prints a table, writes bench-out/bench-<date>.json
## and appends the table to docs/performance.md. make bench SIZE=10000000 works too (slow load).
## bench-quick: 50,000 entries and short phases in its own database; under 5 minutes.
SIZE ?= 1000000
.PHONY: bench bench-quick
bench: BENCH_DB ?= postgres://postgres@127.0.0.1:5432/portal_bench_full
bench: $(STAMP)
	DATABASE_URL='$(BENCH_DB)' $(PY) -m bench.run --size $(SIZE) $(BENCH_ARGS)

bench-quick: BENCH_DB ?= postgres://postgres@127.0.0.1:5432/portal_bench_quick
bench-quick: $(STAMP)
	DATABASE_URL='$(BENCH_DB)' $(PY) -m bench.run --quick $(BENCH_ARGS)
