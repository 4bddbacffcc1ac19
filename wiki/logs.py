"""Structured logs: with LOG_FORMAT=json, one JSON object per line on stdout.

Every log record becomes a line with its time, level, logger and message; a request (from
wiki.metrics.MetricsMiddleware) and a Celery task add a line of their own with what an
operator looks for. A request's line carries the request id of every history row it wrote
(X-Request-ID), so an auditor can go from a revision to the request. Nothing secret is
written: no headers, cookies, tokens or query strings; of an API token, only its prefix
(the part the API tokens page shows).
"""

import json
import logging
import time
from datetime import UTC, datetime

from celery import signals
from django.conf import settings

request_logger = logging.getLogger("mlwiki.requests")
task_logger = logging.getLogger("mlwiki.tasks")

# What a log record has besides the attributes passed in ``extra`` (which go to the line);
# and the request Django's loggers pass, whose text is the full path with its query string.
_LEFT_OUT = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request"}


class JsonFormatter(logging.Formatter):
    """A log record as one line of JSON (the ``extra`` fields included)."""

    def format(self, record):
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({k: v for k, v in vars(record).items() if k not in _LEFT_OUT})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def _who(request, response):
    """The user name, or the API token's prefix for a token request ("" if anonymous)."""
    # DRF keeps the token on its own request, which its responses carry.
    drf_request = getattr(response, "renderer_context", {}).get("request")
    token = getattr(drf_request, "auth", None)
    prefix = getattr(token, "prefix", None)
    if prefix:
        return {"token": prefix}
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return {"user": user.get_username()}
    return {}


def request_finished(request, response, route, duration):
    """The request's log line (LOG_FORMAT=json only: in text mode gunicorn's access log
    says it)."""
    if settings.LOG_FORMAT != "json":
        return
    request_logger.info(
        "%s %s %s",
        request.method,
        route,
        response.status_code,
        extra={
            "request_id": response.get("X-Request-ID", ""),
            **_who(request, response),
            "method": request.method,
            "route": route,
            "status": response.status_code,
            "duration_ms": round(duration * 1000, 1),
        },
    )


_started = {}


def _task_started(task_id=None, **kwargs):
    _started[task_id] = time.perf_counter()


def _task_finished(task_id=None, task=None, state=None, **kwargs):
    started = _started.pop(task_id, None)
    if settings.LOG_FORMAT != "json" or started is None:
        return
    task_logger.info(
        "%s %s",
        task.name,
        state,
        extra={
            "task": task.name,
            "task_id": task_id,
            "state": state,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        },
    )


def connect_task_logging():
    """Write a line per Celery task run (wired by wiki.celery)."""
    signals.task_prerun.connect(_task_started, weak=False)
    signals.task_postrun.connect(_task_finished, weak=False)
