# The two commands of the README: `make run` and `make test`. Only python3 is needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-deps tool-venvs lint schema worker beat clean

# Reinstalled whenever a requirements file changes.
$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-nodeps.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps \
	  -r requirements-nodeps.txt
	touch $@

run: $(VENV)/.installed
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	@echo "mlwiki is at http://$(HOST):$(PORT)/"
	SITE_URL=$${SITE_URL:-http://$(HOST):$(PORT)} $(BIN)/python manage.py runserver $(HOST):$(PORT)

test: $(VENV)/.installed test-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# What some tests need besides the venv, installed when possible: Debian's Chromium for the
# browser tests (tests/browser/) and pango for PDF exports (WeasyPrint), as root with apt;
# axe-core from npm (package-lock.json). What cannot be installed makes those tests skip,
# saying why (the browser tests fail instead with BROWSER_TESTS=required, as in CI).
APT_PACKAGES := chromium chromium-driver libpango-1.0-0 libpangoft2-1.0-0
test-deps: tool-venvs
	@if { [ ! -x /usr/bin/chromium ] || ! ldconfig -p | grep -q libpangoft2-1.0; } \
	    && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "Installing $(APT_PACKAGES) for the tests (apt-get)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -qq --no-install-recommends $(APT_PACKAGES) >/dev/null 2>&1 \
	  || { apt-get update -qq >/dev/null 2>&1 && \
	       apt-get install -y -qq --no-install-recommends $(APT_PACKAGES) >/dev/null 2>&1; } \
	  || echo "$(APT_PACKAGES) could not be installed: the tests that need them will skip"; \
	fi
	@if [ ! -d node_modules/axe-core ] && command -v npm >/dev/null; then \
	  npm ci --no-audit --no-fund --silent \
	  || echo "axe-core could not be installed: the accessibility checks will skip"; \
	fi

# Outside tools some tests run, each in a venv of its own (their pins clash with
# requirements*.txt's): the Kubeflow Pipelines compiler (tests/test_pipelines.py; kfp pins
# requests and protobuf) and an MLflow tracking server (tests/test_mlflow.py; MLflow pins
# much of the scientific stack). Without one (no index to install from), its tests skip,
# saying why; with KFP_TESTS / MLFLOW_TESTS=required (CI) they fail.
TOOL_VENVS := .venv-kfp .venv-mlflow
tool-venvs:
	@for venv in $(TOOL_VENVS); do \
	  requirements=requirements-$${venv#.venv-}.txt; \
	  if [ ! -f $$venv/.installed ] || [ $$requirements -nt $$venv/.installed ]; then \
	    { test -x $$venv/bin/python || $(PYTHON) -m venv $$venv; } \
	    && $$venv/bin/python -m pip install --quiet --disable-pip-version-check \
	         -r $$requirements \
	    && touch $$venv/.installed \
	    || echo "$$requirements could not be installed: the tests that need it will skip"; \
	  fi; \
	done

# The committed OpenAPI schema (api/openapi.yaml); a test fails when it drifts from the code.
schema: $(VENV)/.installed
	$(BIN)/python manage.py spectacular --validate --fail-on-warn --file api/openapi.yaml

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py makemigrations --check --dry-run

# With REDIS_URL set: a Celery worker and the scheduler, beside `make run`.
worker: $(VENV)/.installed
	$(BIN)/celery -A wiki worker --loglevel=info

beat: $(VENV)/.installed
	$(BIN)/celery -A wiki beat --loglevel=info --schedule $(VENV)/celerybeat-schedule

clean:
	rm -rf $(VENV) $(TOOL_VENVS) staticfiles .pytest_cache .ruff_cache node_modules test-artifacts
