"""Structured logs (LOG_FORMAT=json): a JSON line per request and per task, no secrets,
and the request id of the history rows."""

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from wiki.logs import JsonFormatter
from wiki.models import TrainingRun
from wiki.tasks import purge_idempotency_keys

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.django_db


@pytest.fixture
def json_lines(settings):
    """The JSON lines the request and task loggers write (LOG_FORMAT=json)."""
    settings.LOG_FORMAT = "json"
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    loggers = [logging.getLogger("mlwiki.requests"), logging.getLogger("mlwiki.tasks")]
    for each in loggers:
        each.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    for each in loggers:
        each.removeHandler(handler)


def test_a_token_request_is_one_line_with_the_request_id_of_its_history_rows(
    json_lines, api, pipeline_key, project
):
    response = api(pipeline_key).post(
        "/api/v1/projects/churn/training-runs/?api_key=secret-in-the-query",
        {"model_version": "2.0.0", "status": "succeeded", "started_at": "2024-06-01T10:00:00Z"},
        format="json",
        HTTP_COOKIE="sessionid=secret-session",
    )
    assert response.status_code == 201, response.content
    (line,) = json_lines()
    run = TrainingRun.objects.get()
    row = run.history.get()
    assert line["request_id"] == str(row.history_request_id) == response["X-Request-ID"]
    assert line["token"] == pipeline_key[: len(line["token"])] and len(line["token"]) < 16
    assert (line["method"], line["status"]) == ("POST", 201)
    assert line["route"] == "/api/v1/projects/<slug:project>/training-runs/"
    assert isinstance(line["duration_ms"], float)
    assert (line["level"], line["logger"]) == ("INFO", "mlwiki.requests")
    text = json.dumps(line)
    for secret in [pipeline_key, "secret-in-the-query", "secret-session", "api_key", "churn"]:
        assert secret not in text


def test_a_browser_request_names_the_user_and_a_404_its_lack_of_route(json_lines, client_logged_in):
    assert client_logged_in.get("/").status_code == 200
    assert client_logged_in.get("/no/such/page/").status_code == 404
    page, missing = json_lines()
    assert (page["user"], page["route"], page["status"]) == ("alice", "/", 200)
    assert "token" not in page
    assert (missing["route"], missing["status"]) == ("<unmatched>", 404)
    assert "/no/such/page/" not in json.dumps(missing)


def test_an_anonymous_request_names_nobody(json_lines):
    assert Client().get("/accounts/login/").status_code == 200
    (line,) = json_lines()
    assert "user" not in line and "token" not in line and line["request_id"]


def test_a_task_is_one_line_with_its_name_state_and_duration(json_lines):
    result = purge_idempotency_keys.delay()
    (line,) = json_lines()
    assert line["task"] == "wiki.tasks.purge_idempotency_keys"
    assert line["task_id"] == result.id
    assert line["state"] == "SUCCESS"
    assert line["duration_ms"] >= 0


def test_text_logs_write_no_request_lines(settings, client_logged_in, caplog):
    settings.LOG_FORMAT = "text"
    with caplog.at_level(logging.INFO, logger="mlwiki.requests"):
        client_logged_in.get("/")
    assert not [r for r in caplog.records if r.name == "mlwiki.requests"]


def test_the_json_format_is_configured_from_the_environment_on_stdout(tmp_path):
    """A fresh process with LOG_FORMAT=json: every line on stdout is JSON, one per request
    and one per log record, and stderr stays empty."""
    code = (
        "import logging; from django.test import Client;"
        "Client().get('/accounts/login/', HTTP_HOST='localhost', HTTP_AUTHORIZATION='Token mlw_s');"
        "Client().get('/nowhere/?token=mlw_q', HTTP_HOST='localhost');"
        "logging.getLogger('wiki').warning('a %s', 'warning')"
    )
    env = os.environ | {"LOG_FORMAT": "json", "DATABASE_URL": f"sqlite:///{tmp_path / 'db'}"}
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", code],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    request, missing, not_found, warning = lines
    assert (request["route"], request["status"]) == ("/accounts/login/", 200)
    assert (not_found["logger"], not_found["message"]) == ("django.request", "Not Found: /nowhere/")
    assert (missing["route"], missing["status"]) == ("<unmatched>", 404)
    assert (warning["level"], warning["message"]) == ("WARNING", "a warning")
    assert "mlw_" not in result.stdout
    assert result.stderr == ""


def test_a_wrong_log_format_fails_loudly():
    env = os.environ | {"LOG_FORMAT": "xml"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    assert "LOG_FORMAT must be text or json" in result.stderr
