"""Prometheus metrics: their definitions, the request middleware and the /metrics answer.

Counters are incremented where the thing happens (the services and tasks), after the
transaction commits where a rollback would otherwise count what never happened. Under
gunicorn each worker process keeps its own values in files under PROMETHEUS_MULTIPROC_DIR
(deploy/gunicorn.conf.py sets it) and a scrape sums them across workers; without that
directory (runserver, tests) the values live in the process.

/metrics is answered here, before host validation, the HTTPS redirect and the login
requirement, as Prometheus scrapes each pod by its address over the cluster network. It
needs ``Authorization: Bearer <METRICS_TOKEN>``: with no METRICS_TOKEN set it is 404 (as
if there were no such page); with a missing or wrong token, 401. A Celery worker, which
has no web server, answers the same on WORKER_METRICS_PORT (``serve``) with the counts of
the work it does (exports, notifications).
"""

import hmac
import logging
import os
import threading
import time
from wsgiref.simple_server import WSGIRequestHandler, make_server

import redis
from django.conf import settings
from django.db import DatabaseError
from django.http import HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

from wiki import logs

logger = logging.getLogger(__name__)

PATH = "/metrics"
# Methods a label may name; anything else is "other", so that a client inventing methods
# cannot create series without end.
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
# Seconds the scrape waits for the broker to tell its queue lengths.
QUEUE_DEPTH_TIMEOUT = 0.25

REQUEST_LATENCY = Histogram(
    "mlwiki_http_request_duration_seconds",
    "Time to answer a request, by URL pattern (never the raw path), method and status.",
    ["route", "method", "status"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DATABASE_ERRORS = Counter(
    "mlwiki_database_errors",
    "Requests that failed because the database did not answer (answered 503).",
    ["error"],
)
REDIS_ERRORS = Counter(
    "mlwiki_redis_errors",
    "Calls to Redis (cache, throttle, broker) that failed and opened its circuit breaker.",
    ["server"],
)
RECORDS_INGESTED = Counter(
    "mlwiki_records_ingested", "Records stored, by kind and project.", ["kind", "project"]
)
IDEMPOTENT_REPLAYS = Counter(
    "mlwiki_idempotent_replays",
    "Retried record posts answered with the first answer (Idempotency-Key), nothing written.",
)
PAGE_EDITS = Counter(
    "mlwiki_page_edits", "New revisions of pages (edits and restores), by source.", ["source"]
)
EXPORTS = Counter("mlwiki_exports", "Audit reports built.", ["format"])
EXPORT_FAILURES = Counter("mlwiki_export_failures", "Audit reports that failed.", ["format"])
EXPORT_DURATION = Histogram(
    "mlwiki_export_duration_seconds",
    "Time to build an audit report, from its start to the file in storage.",
    ["format"],
    buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
NOTIFICATIONS = Counter(
    "mlwiki_notification_deliveries",
    "Tries to deliver a notification, by channel and outcome: sent, retried (failed, will "
    "be tried again) or failed (given up).",
    ["channel", "outcome"],
)
AUDIT_VERIFICATION_FAILURES = Counter(
    "mlwiki_audit_verification_failures",
    "Verifications of an audit chain that found it altered.",
)
# Names of the metrics computed at scrape time (QueueDepth, and the chains' last verdicts).
QUEUE_DEPTH = "mlwiki_celery_queue_depth"
CHAINS_FAILING = "mlwiki_audit_chains_failing"
REVIEWS = "mlwiki_periodic_reviews"
FINDINGS_OVERDUE = "mlwiki_findings_overdue"


def registry():
    """What a scrape reports: the metrics of every process of this server (or of this
    process, without PROMETHEUS_MULTIPROC_DIR), then those read at scrape time."""
    return _Scrape()


class _Scrape:
    def __init__(self, read_now=True):
        self.read_now = read_now

    def collect(self):
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            yield from multiprocess.MultiProcessCollector(None).collect()
        else:
            yield from REGISTRY.collect()
        if self.read_now:
            yield from _queue_depth()
            yield from _chains_failing()
            yield from _governance()


def _queue_depth():
    """Messages waiting in the Celery queue, read from the Redis broker now (nothing when
    there is no broker, or it does not answer at once)."""
    from wiki import breaker  # it counts its failures here: imported late, no cycle

    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://")):
        return
    server = breaker.of(url)
    if not server.closed:
        return
    from wiki.celery import app  # the Celery app imports Django settings: import late

    queue = app.conf.task_default_queue
    client = redis.Redis.from_url(
        url, socket_timeout=QUEUE_DEPTH_TIMEOUT, socket_connect_timeout=QUEUE_DEPTH_TIMEOUT
    )
    try:
        depth = client.llen(queue)
    except breaker.OUTAGE as error:
        server.failed(error)
        return
    finally:
        client.close()
    server.succeeded()
    family = GaugeMetricFamily(
        QUEUE_DEPTH, "Celery messages waiting in the broker.", labels=["queue"]
    )
    family.add_metric([queue], depth)
    yield family


def _chains_failing():
    """Audit chains whose last recorded verification (verify_audit, the verify page) found
    them altered: kept in the database, so it holds whichever process verified."""
    from wiki.models import ChainHead

    try:
        failing = ChainHead.objects.filter(verified_ok=False).count()
    except DatabaseError:
        return
    yield GaugeMetricFamily(
        CHAINS_FAILING, "Audit chains whose last verification found them altered.", value=failing
    )


def _governance():
    """Projects by periodic review state (overdue, due soon, …) and unresolved findings
    past their due date, over every project (wiki.inventory)."""
    from wiki import inventory
    from wiki.models import Project

    try:
        rows = inventory.inventory(Project.objects.all())
    except DatabaseError:
        return
    reviews = GaugeMetricFamily(
        REVIEWS, "Projects by the state of their next periodic review.", labels=["state"]
    )
    for state in inventory.REVIEW_STATES:
        reviews.add_metric([state], sum(row.review_state == state for row in rows))
    yield reviews
    yield GaugeMetricFamily(
        FINDINGS_OVERDUE,
        "Validation findings still unresolved after their due date.",
        value=sum(row.overdue_findings for row in rows),
    )


def authorized(authorization):
    """Whether an Authorization header carries the metrics token (compared in constant
    time)."""
    scheme, _, token = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        token.strip().encode(), settings.METRICS_TOKEN.encode()
    )


def answer(method, authorization, scrape):
    """(status, headers, body) of /metrics: 404 without METRICS_TOKEN, 401 without the
    right one, else what ``scrape`` collects."""
    text = [("Content-Type", "text/plain; charset=utf-8")]
    if not settings.METRICS_TOKEN or method not in ("GET", "HEAD"):
        return 404, text, b"Not found."
    if not authorized(authorization):
        challenge = ("WWW-Authenticate", 'Bearer realm="mlwiki metrics"')
        return 401, [*text, challenge], b"Send Authorization: Bearer <METRICS_TOKEN>."
    headers = [("Content-Type", CONTENT_TYPE_LATEST), ("Cache-Control", "no-store")]
    return 200, headers, generate_latest(scrape)


def metrics_response(request):
    status, headers, body = answer(
        request.method, request.headers.get("Authorization", ""), registry()
    )
    return HttpResponse(body, status=status, headers=dict(headers))


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass  # one line per scrape says nothing


def serve(port):
    """Answer /metrics on ``port`` from a thread of this process (a Celery worker's main
    process; the pool's processes share PROMETHEUS_MULTIPROC_DIR with it). Only what the
    processes counted: the web's scrape reports the queue and the chains."""

    def app(environ, start_response):
        if environ.get("PATH_INFO") != PATH:
            status, headers, body = 404, [("Content-Type", "text/plain")], b"Not found."
        else:
            status, headers, body = answer(
                environ["REQUEST_METHOD"],
                environ.get("HTTP_AUTHORIZATION", ""),
                _Scrape(read_now=False),
            )
        start_response(f"{status} {'OK' if status == 200 else 'Refused'}", headers)
        return [body]

    server = make_server("0.0.0.0", port, app, handler_class=_Quiet)  # noqa: S104 - for Prometheus
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    logger.info("Metrics at :%s%s", server.server_port, PATH)
    return server


def route_of(request):
    """The URL pattern that served the request ("<unmatched>" for a 404 no pattern took)."""
    match = getattr(request, "resolver_match", None)
    return f"/{match.route}" if match is not None else "<unmatched>"


class MetricsMiddleware:
    """Answers /metrics, and times every other request by route, method and status (and
    writes its log line, wiki.logs)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info == PATH:
            return metrics_response(request)
        started = time.perf_counter()
        response = self.get_response(request)
        duration = time.perf_counter() - started
        route = route_of(request)
        method = request.method if request.method in METHODS else "other"
        REQUEST_LATENCY.labels(route, method, str(response.status_code)).observe(duration)
        logs.request_finished(request, response, route, duration)
        return response
