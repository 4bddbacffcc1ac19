#!/usr/bin/env bash
# Reproduces the figures in bench/README.md: gunicorn (deploy/gunicorn.conf.py) on
# PostgreSQL and Redis, then bench/ingest.py at concurrency 1, 8 and 32.
# Needs what .ci/run starts (PostgreSQL with the mlwiki role, Redis) and `make test` once.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
PORT=${BENCH_PORT:-8001}
N=${BENCH_N:-5000}
export DATABASE_URL=${BENCH_DATABASE_URL:-postgres://mlwiki@127.0.0.1:5432/mlwiki_bench}
export REDIS_URL=${BENCH_REDIS_URL:-redis://127.0.0.1:6379/14}
export DEBUG=false ALLOWED_HOSTS=127.0.0.1 SECURE_SSL_REDIRECT=false
export SECRET_KEY=$($PY -c 'import secrets; print(secrets.token_urlsafe(50))')
export AUDIT_HMAC_KEY=$($PY -c 'import secrets; print(secrets.token_urlsafe(50))')
# AUDIT_CHAIN_ENABLED=false measures what the audit chain costs a record post.
export AUDIT_CHAIN_ENABLED=${AUDIT_CHAIN_ENABLED:-true}
export API_THROTTLE_RATE=100000000/minute   # measure the server, not the throttle
# deploy/gunicorn.conf.py as shipped: one synchronous worker per core.
export WEB_CONCURRENCY=${WEB_CONCURRENCY:-2}

db=${DATABASE_URL##*/}
psql -h 127.0.0.1 -U mlwiki -d postgres -q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
$PY manage.py migrate --noinput -v0
$PY manage.py shell --no-imports -c "
from django.contrib.auth.models import User
from wiki.history import Actor, Source
from wiki.services.projects import create_project
user = User.objects.create_user('bench')
create_project(actor=Actor(user, Source.CLI), slug='bench', name='Benchmark', owner_team='bench')
"
KEY=$($PY manage.py create_token --user bench --project bench --scope records:write)

.venv/bin/gunicorn --config deploy/gunicorn.conf.py --bind 127.0.0.1:$PORT \
  --access-logfile /dev/null --error-logfile /tmp/mlwiki-bench-gunicorn.log &
SERVER=$!
trap 'kill $SERVER' EXIT
for _ in $(seq 50); do curl -sf http://127.0.0.1:$PORT/healthz/ >/dev/null && break; sleep 0.2; done

echo "gunicorn: $WEB_CONCURRENCY workers ${GUNICORN_CMD_ARGS:-}; $(nproc) cores; $N records per run; audit chain ${AUDIT_CHAIN_ENABLED}"
$PY bench/ingest.py --url http://127.0.0.1:$PORT --token "$KEY" --project bench -n 200 -c 8 >/dev/null  # warm-up
for c in ${BENCH_CONCURRENCY:-1 8 32}; do
  $PY bench/ingest.py --url http://127.0.0.1:$PORT --token "$KEY" --project bench -n "$N" -c "$c"
done
