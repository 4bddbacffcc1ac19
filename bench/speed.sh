#!/usr/bin/env bash
# Reproduces the "Daily screens" figures in bench/README.md: builds a large wiki once in
# the database mlwiki_speed (SPEED_REBUILD=1 to start over), then times the screens.
# Needs what .ci/run starts (PostgreSQL with the mlwiki role) and `make test` once.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
export DATABASE_URL=${SPEED_DATABASE_URL:-postgres://mlwiki@127.0.0.1:5432/mlwiki_speed}
export DEBUG=false ALLOWED_HOSTS=testserver SECURE_SSL_REDIRECT=false
export SECRET_KEY=$($PY -c 'import secrets; print(secrets.token_urlsafe(50))')
export AUDIT_HMAC_KEY=bench-only-audit-key-bench-only-audit-key
unset REDIS_URL CELERY_BROKER_URL  # in-process tasks and cache: the server alone

db=${DATABASE_URL##*/}
if [ "${SPEED_REBUILD:-0}" = 1 ]; then
  psql -h 127.0.0.1 -U mlwiki -d postgres -q -c "DROP DATABASE IF EXISTS $db"
fi
psql -h 127.0.0.1 -U mlwiki -d postgres -qtc "SELECT 1 FROM pg_database WHERE datname = '$db'" \
  | grep -q 1 || psql -h 127.0.0.1 -U mlwiki -d postgres -q -c "CREATE DATABASE $db"
$PY manage.py migrate --noinput -v0
$PY manage.py collectstatic --noinput -v0
$PY -W ignore bench/speed.py
