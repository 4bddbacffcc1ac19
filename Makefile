# The two commands of the README: `make run` and `make test`. Only python3 is needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint schema worker beat clean

# Reinstalled whenever a requirements file changes.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

run: $(VENV)/.installed
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	@echo "mlwiki is at http://$(HOST):$(PORT)/"
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

test: $(VENV)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

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
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
