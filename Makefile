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
bench-import: DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/portal_bench
bench-import: $(STAMP)
	export DATABASE_URL='$(DATABASE_URL)' DJANGO_SETTINGS_MODULE=blacklist_portal.settings.base; \
	$(PY) -m bench.import_bench --create-db-only && \
	$(PY) manage.py migrate --noinput && \
	$(PY) -m bench.import_bench --rows $(ROWS) --format csv && \
	$(PY) -m bench.import_bench --rows $(ROWS) --format xlsx
