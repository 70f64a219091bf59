#!/usr/bin/env bash
# make run: migrate, load demo data, start the web server and a Celery worker with beat.
# Ctrl-C stops all of it.
set -euo pipefail
cd "$(dirname "$0")/.."
export DJANGO_SETTINGS_MODULE=blacklist_portal.settings.base
export DJANGO_DEBUG="${DJANGO_DEBUG:-true}"
PY=.venv/bin/python
HOST="${PORTAL_HOST:-127.0.0.1}"
PORT="${PORTAL_PORT:-8000}"

VAR="${PORTAL_VAR_DIR:-var}"
mkdir -p "$VAR/celery" "$VAR/mail" "$VAR/private"
$PY manage.py migrate --noinput
$PY manage.py seed_demo

trap 'trap - INT TERM EXIT; echo; echo "Stopping…"; kill 0 2>/dev/null; wait' INT TERM EXIT
.venv/bin/celery -A blacklist_portal worker --beat --loglevel=INFO --concurrency=2 \
    --schedule "$VAR/celery/beat-schedule" &
$PY manage.py runserver --noreload "$HOST:$PORT" &
echo
echo "  Portal: http://$HOST:$PORT/   (Ctrl-C stops the web server and the Celery worker)"
echo
wait
