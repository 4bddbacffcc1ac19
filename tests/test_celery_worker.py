"""Background tasks: in-process without a broker, and through Redis to a real worker."""

import json
import time
import uuid
from datetime import timedelta

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.utils import timezone

from deploy.audit.verify_bundle import verify as verify_bundle
from tests.factories import ProjectFactory, make_training_run
from tests.workers import drained, needs_real_worker, start_worker, stop, until
from wiki.celery import app as celery_app
from wiki.history import Actor, Source
from wiki.models import Delivery, ExportJob, IdempotencyKey
from wiki.services.exports import request_export
from wiki.services.notifications import configure
from wiki.tasks import clear_expired_sessions, purge_idempotency_keys, send_daily_digest


def _session(expires_in):
    store = SessionStore()
    store["user"] = "someone"
    store.set_expiry(expires_in)
    store.create()
    return store.session_key


@pytest.fixture
def worker(transactional_db):
    """A celery worker on a queue of its own; yields the queue's name."""
    queue = f"test-{uuid.uuid4().hex}"
    process = start_worker(queue)
    celery_app.conf.task_always_eager = False
    try:
        yield queue
    finally:
        stop([process])


@pytest.fixture
def two_workers(transactional_db):
    """Two celery workers sharing a queue (as two hosts would); yields the queue's name.
    A failed delivery is retried after 1 s, then 2 s."""
    queue = f"test-{uuid.uuid4().hex}"
    processes = [start_worker(queue, NOTIFY_RETRY_DELAY="1") for _ in range(2)]
    celery_app.conf.task_always_eager = False
    try:
        yield queue
    finally:
        stop(processes)


@pytest.mark.django_db
def test_clear_expired_sessions_deletes_only_expired_ones_in_process():
    expired, alive = _session(-timedelta(days=1)), _session(timedelta(days=1))
    clear_expired_sessions.delay()
    assert not Session.objects.filter(session_key=expired).exists()
    assert Session.objects.filter(session_key=alive).exists()


@pytest.mark.redis
@needs_real_worker
def test_clear_expired_sessions_runs_on_a_real_worker(worker):
    expired = _session(-timedelta(days=1))
    alive = _session(timedelta(days=1))
    assert Session.objects.filter(session_key=expired).exists()

    clear_expired_sessions.apply_async(queue=worker)

    deadline = time.monotonic() + 60
    while Session.objects.filter(session_key=expired).exists():
        assert time.monotonic() < deadline, "the worker did not run the task within 60 s"
        time.sleep(0.2)
    assert Session.objects.filter(session_key=alive).exists()
    assert Session.objects.filter(expire_date__lt=timezone.now()).count() == 0


@pytest.mark.django_db
def test_old_idempotency_keys_are_forgotten(project, settings):
    settings.IDEMPOTENCY_KEYS_KEPT_DAYS = 30
    keep = IdempotencyKey.objects.create(
        project=project, key="new", fingerprint="f", response_status=201, response_body={}
    )
    old = IdempotencyKey.objects.create(
        project=project, key="old", fingerprint="f", response_status=201, response_body={}
    )
    IdempotencyKey.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=31))
    purge_idempotency_keys.delay()
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == [keep.key]


@pytest.mark.redis
@needs_real_worker
def test_an_export_is_built_by_a_real_worker_through_redis(worker, settings):
    """The whole path: the request commits, the task goes through Redis to the worker,
    which builds the JSON bundle into storage; the bundle verifies offline."""
    project = ProjectFactory(slug="worker-export")
    make_training_run(project, metrics={"auc": 0.91})
    job = request_export(project, actor=Actor(None, Source.CLI), format="json")
    deadline = time.monotonic() + 120
    while (job := ExportJob.objects.get(pk=job.pk)).status in ("queued", "running"):
        assert time.monotonic() < deadline, "the worker did not build the export in 120 s"
        time.sleep(0.3)
    assert job.status == "done", job.last_error
    with job.file.open("rb") as handle:
        bundle = json.load(handle)
    assert bundle["training_runs"][0]["metrics"] == {"auc": 0.91}
    assert verify_bundle(bundle, settings.AUDIT_HMAC_KEY) is None


@pytest.mark.redis
@needs_real_worker
def test_the_digest_reaches_a_webhook_exactly_once_with_two_workers(two_workers, webhook):
    """Two beats fire the digest at once, two workers take one each: one delivery, one
    POST; its first try fails (500) and a retry on a worker sends it."""
    project = ProjectFactory(slug="digest-twice")
    configure(project, actor=Actor(None, Source.CLI), webhook_url=webhook.url)
    webhook.statuses = [500]
    send_daily_digest.apply_async(queue=two_workers)
    send_daily_digest.apply_async(queue=two_workers)

    until(lambda: Delivery.objects.filter(status="sent").exists(), "the digest was not sent")
    # With acks_late a task leaves the broker once it ran: nothing is left in flight.
    until(lambda: drained(two_workers), "the workers did not finish their tasks")
    delivery = Delivery.objects.get()
    assert (delivery.kind, delivery.attempts) == ("digest", 2)
    assert len(webhook.received) == 2  # the failed try and its retry
    assert webhook.received[0] == webhook.received[1]
    assert "documentation digest" in webhook.received[1]["text"]
