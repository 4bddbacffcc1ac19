"""Redis stopped or hung, the database unreachable: nothing accepted is lost, no request
stalls, clients are told to retry. Each test runs its own redis-server (tests/conftest.py
``own_redis``), never the machine's."""

import logging
import uuid

import pytest
from django.db import connection
from rest_framework.test import APIClient

from api import auth
from tests.factories import cli_actor, make_token
from tests.workers import drained, needs_real_worker, start_worker, stop, until
from wiki import breaker, tasks
from wiki.models import Delivery, ExportJob
from wiki.services.notifications import configure
from wiki.services.pages import edit_page

DEPLOYMENTS = "/api/v1/projects/churn/deployments/"
EXPORTS = "/api/v1/projects/churn/exports/"


def _failed_deployment(client, number):
    body = {
        "model_version": "2.0.0", "environment": "production", "status": "failed",
        "started_at": "2024-06-02T08:00:00Z", "reason": f"Deployment {number}",
    }  # fmt: skip
    response = client.post(DEPLOYMENTS, body, format="json")
    assert response.status_code == 201, response.content
    return response


def _client(user, project):
    _, key = make_token(user, scopes=["records:write"], projects=[project.slug])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def _outage_warnings(caplog):
    return [r for r in caplog.records if r.name == "wiki.breaker" and "unavailable" in r.message]


@pytest.mark.django_db(transaction=True)
def test_what_is_raised_while_the_broker_is_down_waits_and_the_sweep_queues_it_once(
    user, project, webhook, own_redis, broker_at, settings, caplog
):
    settings.REDIS_BREAKER_SECONDS = 0.2
    configure(project, actor=cli_actor(), webhook_url=webhook.url)
    client = _client(user, project)
    broker_at(own_redis.url)
    own_redis.stop()

    for number in range(3):
        _failed_deployment(client, number)
    export = client.post(EXPORTS, {"format": "json"}, format="json")
    assert export.status_code == 202 and export.json()["status"] == "queued"
    # Kept, not failed: pending and never queued, for the sweep.
    assert list(Delivery.objects.values_list("status", "due_at")) == [("pending", None)] * 3
    assert list(ExportJob.objects.values_list("status", "due_at")) == [("queued", None)]
    # One line for the outage, not one per message.
    assert len(_outage_warnings(caplog)) == 1

    own_redis.start()
    until(lambda: breaker.of(own_redis.url).closed, "the breaker let Redis be tried again", 5)
    assert tasks.sweep() == {"deliveries_queued": 3, "exports_queued": 1, "exports_failed": 0}
    redis = own_redis.client()
    assert redis.llen("celery") == 4  # the messages are in the broker, once each
    assert not Delivery.objects.filter(due_at__isnull=True).exists()
    # Queued already: the next sweep sends nothing again.
    assert tasks.sweep()["deliveries_queued"] == 0
    assert redis.llen("celery") == 4


@pytest.mark.redis
@needs_real_worker
@pytest.mark.django_db(transaction=True)
def test_with_redis_stopped_and_started_again_every_notification_and_export_arrives_once(
    user, project, webhook, own_redis, broker_at, settings
):
    """A message queued before Redis stopped is lost with it (it keeps nothing on disk);
    what was raised while it was down was never queued. Once it is back, a worker and the
    sweep (sent through the broker, as beat sends it) deliver each exactly once."""
    settings.REDIS_BREAKER_SECONDS = 0.2
    configure(project, actor=cli_actor(), webhook_url=webhook.url)
    client = _client(user, project)
    broker_at(own_redis.url)
    _failed_deployment(client, 1)  # queued in Redis; no worker runs yet
    assert own_redis.client().llen("celery") == 1
    own_redis.stop()
    _failed_deployment(client, 2)
    job = client.post(EXPORTS, {"format": "json"}, format="json").json()
    own_redis.start()
    assert own_redis.client().llen("celery") == 0  # the first message went with Redis

    queue = f"test-{uuid.uuid4().hex}"
    # The worker runs the sweep: there, a message due more than 0 minutes ago is lost.
    worker = start_worker(queue, CELERY_BROKER_URL=own_redis.url, REQUEUE_AFTER_MINUTES="0")
    try:
        until(lambda: breaker.of(own_redis.url).closed, "the breaker let Redis be tried again", 5)
        tasks.sweep.apply_async(queue=queue)
        until(
            lambda: (
                Delivery.objects.filter(status="sent").count() == 2
                and ExportJob.objects.filter(status="done").exists()
            ),
            "both notifications sent and the export built",
            120,
        )
        tasks.sweep.apply_async(queue=queue)  # a second sweep finds nothing left to do
        until(lambda: drained(queue, own_redis.url), "the worker finished its tasks")
    finally:
        stop([worker])
    assert sorted(Delivery.objects.values_list("status", "attempts")) == [("sent", 1)] * 2
    texts = sorted(message["text"] for message in webhook.received)
    assert len(texts) == 2 and "failed" in texts[0]
    assert ExportJob.objects.get(pk=job["id"]).attempts == 1


@pytest.mark.django_db(transaction=True)
def test_a_hung_redis_is_asked_once_then_skipped_until_it_answers(
    user, project, own_redis, broker_at, settings, caplog
):
    """Redis stopped by SIGSTOP accepts connections and never answers. The first request's
    throttle waits for it (REDIS_THROTTLE_TIMEOUT), then the throttle, the Markdown cache
    and the broker all skip it until REDIS_BREAKER_SECONDS have passed; every request is
    served meanwhile, and the outage is one line in the log."""
    settings.REDIS_URL = own_redis.url
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": own_redis.url,
            "OPTIONS": {"socket_timeout": 0.2, "socket_connect_timeout": 0.2},
        }
    }
    settings.REDIS_BREAKER_SECONDS = 60  # the outage outlasts the requests below
    auth._redis.cache_clear()
    configure(project, actor=cli_actor(), webhook_url="http://127.0.0.1:9/")
    broker_at(own_redis.url)
    client = _client(user, project)
    caplog.set_level(logging.WARNING, logger="wiki.breaker")
    try:
        own_redis.pause()
        for number in range(3):
            _failed_deployment(client, number)  # throttled, and announced: the broker
            assert client.get("/api/v1/projects/churn/pages/overview/").status_code == 200
        (warning,) = _outage_warnings(caplog)
        # The throttle's call found it hung (the first call a request makes), and the
        # breaker stayed open: one timeout in all, not one per request or per use.
        assert "TimeoutError" in warning.message and not breaker.of(own_redis.url).closed
        # The notifications were never handed to the broker: they wait for the sweep.
        assert list(Delivery.objects.values_list("due_at", flat=True)) == [None] * 3

        own_redis.resume()
        settings.REDIS_BREAKER_SECONDS = 0.2
        breaker.reset_all()  # as if the pause were over
        assert client.get("/api/v1/projects/churn/pages/").status_code == 200
        assert own_redis.client().keys("mlwiki:throttle:*")  # counting again
    finally:
        auth._redis.cache_clear()


@pytest.mark.django_db
def test_redis_answering_with_an_error_is_not_an_outage(user, project, own_redis, settings, caplog):
    """A Redis out of memory answers writes with an error: that is logged with what it
    said, and Redis is not skipped as if it were down."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                    "LOCATION": own_redis.url}
    }  # fmt: skip
    overview = project.pages.get(category="overview")
    edit_page(overview, actor=cli_actor(), base_revision=None, change_reason="text",
              body="Some *Markdown* to cache.")  # fmt: skip
    own_redis.client().config_set("maxmemory", "1")  # every write: OOM
    browser = APIClient()
    browser.force_login(user)
    assert browser.get("/projects/churn/").status_code == 200
    assert breaker.of(own_redis.url).closed
    assert not _outage_warnings(caplog)
    assert any("The cache refused" in r.message and r.exc_info for r in caplog.records)


@pytest.fixture
def database_down(transactional_db):
    """database_down(): the app's connection now goes to a port nothing listens on (an
    unreachable database server), or to an SQLite file that cannot be opened; back as it
    was afterwards."""
    saved = dict(connection.settings_dict)

    def down():
        connection.close()
        if connection.vendor == "sqlite":
            connection.settings_dict["NAME"] = "/nonexistent-directory/db.sqlite3"
        else:
            connection.settings_dict["HOST"], connection.settings_dict["PORT"] = "127.0.0.1", "9"

    yield down
    connection.close()
    connection.settings_dict.update(saved)


def test_a_database_outage_is_a_503_with_retry_after_and_passes(user, project, database_down):
    client = _client(user, project)
    browser = APIClient(raise_request_exception=False)  # what a browser gets, not the error
    browser.force_login(user)
    database_down()
    api = client.get("/api/v1/projects/churn/pages/")
    assert api.status_code == 503 and api["Retry-After"] == "5"
    assert "database is unavailable" in api.json()["detail"]
    page = browser.get("/projects/churn/")
    assert page.status_code == 503 and page["Retry-After"] == "5"
    assert b"unavailable for a moment" in page.content
    health = browser.get("/healthz/")
    assert health.status_code == 503 and health["Retry-After"] == "5"
