"""Prometheus metrics at /metrics: who may read them, and the counters moving as the wiki
is used (through the API and the services, as in production)."""

import json
import re
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.db import OperationalError, connection
from django.test import Client
from prometheus_client import REGISTRY
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families
from ruamel.yaml import YAML

from tests.factories import make_token, make_training_run
from tests.workers import (
    drained,
    free_port,
    needs_real_worker,
    start_web,
    start_worker,
    stop,
    until,
    until_serving,
)
from wiki import breaker, metrics, outbox
from wiki.audit import head_for, verify
from wiki.celery import app as celery_app
from wiki.history import Actor, Source
from wiki.models import AuditEntry, Delivery, ExportJob
from wiki.services.notifications import configure, deliver, deliver_notification

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "metrics-token-for-the-tests"  # noqa: S105
RUNS = "/api/v1/projects/churn/training-runs/"

# Counters move when the write commits: these tests commit for real.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN


def parse(text):
    """{(sample name, frozenset of labels): value} of an exposition."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape():
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content
    return parse(response.content.decode())


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def run_body(**changes):
    body = {"model_version": "2.0.0", "status": "succeeded", "started_at": "2024-06-01T10:00:00Z"}
    return body | changes


# Who may read them ---------------------------------------------------------------------


def test_without_a_token_configured_metrics_do_not_exist(settings):
    settings.METRICS_TOKEN = ""
    response = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer ")
    assert response.status_code == 404
    assert b"mlwiki" not in response.content


@pytest.mark.parametrize(
    "header", [None, f"Token {TOKEN}", "Bearer wrong", f"Bearer {TOKEN}x", "Bearer"]
)
def test_a_missing_or_wrong_token_is_401(header):
    extra = {"HTTP_AUTHORIZATION": header} if header is not None else {}
    response = Client().get("/metrics", **extra)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"mlwiki_" not in response.content


def test_the_right_token_reads_them_whatever_the_host_and_without_login(settings):
    # Prometheus scrapes a pod by its address, over plain HTTP inside the cluster.
    settings.ALLOWED_HOSTS = ["wiki.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", HTTP_HOST="10.1.2.3")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    assert "mlwiki_records_ingested_total" in response.content.decode()
    assert "Permissions-Policy" in response


def test_a_post_to_metrics_is_refused():
    response = Client().post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 404


# What they count -------------------------------------------------------------------------


def test_a_record_post_moves_the_records_and_latency_metrics(api, pipeline_key, project):
    before = scrape()
    response = api(pipeline_key).post(RUNS, run_body(), format="json")
    assert response.status_code == 201, response.content
    after = scrape()
    ingested = "mlwiki_records_ingested_total"
    labels = {"kind": "training_run", "project": "churn"}
    assert value(after, ingested, **labels) == value(before, ingested, **labels) + 1
    # Labelled by the URL pattern, never by the path with its slug in it.
    route = "/api/v1/projects/<slug:project>/training-runs/"
    count = "mlwiki_http_request_duration_seconds_count"
    labels = {"route": route, "method": "POST", "status": "201"}
    assert value(after, count, **labels) == value(before, count, **labels) + 1
    assert not any("churn" in dict(labels).get("route", "") for _, labels in after)


def test_a_replayed_post_counts_as_a_replay_and_not_as_a_record(api, pipeline_key, project):
    client = api(pipeline_key)
    assert (
        client.post(RUNS, run_body(), format="json", HTTP_IDEMPOTENCY_KEY="k1").status_code == 201
    )
    before = scrape()
    assert (
        client.post(RUNS, run_body(), format="json", HTTP_IDEMPOTENCY_KEY="k1").status_code == 200
    )
    after = scrape()
    replays = "mlwiki_idempotent_replays_total"
    assert value(after, replays) == value(before, replays) + 1
    ingested = "mlwiki_records_ingested_total"
    labels = {"kind": "training_run", "project": "churn"}
    assert value(after, ingested, **labels) == value(before, ingested, **labels)


def test_a_refused_record_is_not_counted(api, pipeline_key, project):
    before = scrape()
    response = api(pipeline_key).post(RUNS, run_body(status="unheard-of"), format="json")
    assert response.status_code == 400
    after = scrape()
    ingested = "mlwiki_records_ingested_total"
    labels = {"kind": "training_run", "project": "churn"}
    assert value(after, ingested, **labels) == value(before, ingested, **labels)
    count = "mlwiki_http_request_duration_seconds_count"
    labels = {"route": "/api/v1/projects/<slug:project>/training-runs/", "method": "POST"}
    assert (
        value(after, count, status="400", **labels)
        == value(before, count, status="400", **labels) + 1
    )


def test_a_page_edit_is_counted_by_source(api, user, project):
    _, key = make_token(user, scopes=["pages:write"], projects=["churn"])
    before = scrape()
    response = api(key).patch(
        "/api/v1/projects/churn/pages/overview/", {"body": "Edited."}, HTTP_IF_MATCH='"1"'
    )
    assert response.status_code == 200, response.content
    stale = api(key).patch(
        "/api/v1/projects/churn/pages/overview/", {"body": "Again."}, HTTP_IF_MATCH='"1"'
    )
    assert stale.status_code == 412
    after = scrape()
    edits = "mlwiki_page_edits_total"
    assert value(after, edits, source="api") == value(before, edits, source="api") + 1


def test_an_export_is_counted_with_its_duration_and_a_failure_too(api, user, project):
    _, key = make_token(user, projects=["churn"])
    before = scrape()
    response = api(key).post("/api/v1/projects/churn/exports/", {"format": "markdown"})
    assert response.status_code == 202, response.content
    job = ExportJob.objects.get(pk=response.json()["id"])
    assert job.status == "done"  # built in-process once the request committed
    after = scrape()
    built, duration = "mlwiki_exports_total", "mlwiki_export_duration_seconds_count"
    assert value(after, built, format="markdown") == value(before, built, format="markdown") + 1
    assert (
        value(after, duration, format="markdown") == value(before, duration, format="markdown") + 1
    )

    from wiki.services.exports import fail, request_export

    failing = request_export(project, actor=Actor(user, Source.WEB), format="json", enqueue=False)
    fail(failing.pk, "The report could not be built: a test.")
    fail(failing.pk, "Failed twice: counted once.")
    failures = "mlwiki_export_failures_total"
    assert value(scrape(), failures, format="json") == value(after, failures, format="json") + 1


def test_notification_deliveries_are_counted_sent_retried_and_failed(project, webhook):
    configure(project, actor=Actor(None, Source.CLI), webhook_url=webhook.url, daily_digest=False)
    deliveries = [
        Delivery.objects.create(
            project=project, key=f"k{n}", kind="test", channel="webhook", target=webhook.url,
            subject="s", text="t",
        )
        for n in range(3)
    ]  # fmt: skip
    before = scrape()
    webhook.statuses = [200, 500, 500]
    deliver(deliveries[0].pk)
    deliver(deliveries[1].pk, final=False)
    deliver(deliveries[2].pk, final=True)
    after = scrape()
    name = "mlwiki_notification_deliveries_total"
    for outcome in ["sent", "retried", "failed"]:
        labels = {"channel": "webhook", "outcome": outcome}
        assert value(after, name, **labels) == value(before, name, **labels) + 1, outcome


def test_a_failed_chain_verification_is_counted_and_shown_until_verified_again(project):
    make_training_run(project)
    head = head_for(project)
    assert verify(head).ok
    samples = scrape()
    assert value(samples, "mlwiki_audit_chains_failing") == 0
    entry = AuditEntry.objects.filter(chain=head).order_by("seq").last()
    AuditEntry.objects.filter(pk=entry.pk).update(digest="0" * 64)
    assert not verify(head).ok
    after = scrape()
    failures = "mlwiki_audit_verification_failures_total"
    assert value(after, failures) == value(samples, failures) + 1
    assert value(after, "mlwiki_audit_chains_failing") == 1


def test_a_redis_outage_is_counted_once_per_failure(own_redis):
    server = breaker.of(own_redis.url)
    name = "mlwiki_redis_errors_total"
    before = scrape()
    server.failed(ConnectionError("refused"))
    assert value(scrape(), name, server=server.name) == value(before, name, server=server.name) + 1


def test_a_redis_server_is_labelled_by_its_address_never_its_password():
    assert breaker.of("redis://:hunter2@cache.internal:6380/1").name == "cache.internal:6380"
    assert breaker.of("unix://:hunter2@/run/redis/redis.sock?db=0").name == "/run/redis/redis.sock"


def test_a_database_outage_during_a_request_is_counted(api, pipeline_key, project, monkeypatch):
    before = scrape()

    # The database drops the connection as the view writes (the API answers 503).
    def refuse(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith("INSERT"):
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(refuse):
        response = api(pipeline_key).post(RUNS, run_body(), format="json")
    assert response.status_code == 503
    after = scrape()
    name = "mlwiki_database_errors_total"
    assert (
        value(after, name, error="OperationalError")
        == value(before, name, error="OperationalError") + 1
    )


def test_the_celery_queue_depth_is_read_from_the_broker(own_redis, settings):
    settings.CELERY_BROKER_URL = own_redis.url
    own_redis.client().rpush("celery", "a", "b", "c")
    assert value(scrape(), "mlwiki_celery_queue_depth", queue="celery") == 3
    own_redis.pause()  # hung: the scrape goes on without it
    try:
        samples = scrape()
    finally:
        own_redis.resume()
    assert ("mlwiki_celery_queue_depth", frozenset({("queue", "celery")})) not in samples


# The example Prometheus configuration ---------------------------------------------------


def _metric_names():
    """Every metric name a scrape can show, whether it has counted anything yet or not."""
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}
    names = {metrics.QUEUE_DEPTH, metrics.CHAINS_FAILING}
    for family in REGISTRY.collect():
        names |= {family.name + suffix for suffix in suffixes.get(family.type, [""])}
    return names


def test_the_example_scrape_config_sends_the_token_to_metrics():
    config = YAML(typ="safe").load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert {"mlwiki", "mlwiki-worker"} <= set(jobs)
    for job in jobs.values():
        assert job["metrics_path"] == "/metrics"
        assert job["authorization"]["type"] == "Bearer"
        assert job["authorization"]["credentials_file"]
    assert "alerts.yml" in config["rule_files"]


def test_the_alert_rules_name_metrics_that_exist():
    rules = YAML(typ="safe").load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    assert {rule["alert"] for rule in alerts} == {
        "MlwikiAuditChainVerificationFailed",
        "MlwikiNotificationsFailing",
    }
    known = _metric_names()
    for rule in alerts:
        used = set(re.findall(r"\bmlwiki_[a-z_]+", rule["expr"]))
        assert used and used <= known, (rule["alert"], used - known)
        assert rule["annotations"]["summary"] and rule["labels"]["severity"]


# Several gunicorn workers -----------------------------------------------------------------


def _get(url, token=None):
    request = urllib.request.Request(url)  # noqa: S310 - 127.0.0.1
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - 127.0.0.1
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _post_run(base, key, number):
    request = urllib.request.Request(  # noqa: S310 - 127.0.0.1
        f"{base}{RUNS}",
        data=json.dumps(run_body(model_version=f"1.{number}.0")).encode(),
        headers={"Authorization": f"Token {key}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - 127.0.0.1
        assert response.status == 201


def test_gunicorn_workers_sum_their_counts_in_one_scrape(tmp_path, user, project):
    """Posts until both workers have served some: any scrape reports them all."""
    _, key = make_token(user, scopes=["records:write"], projects=["churn"])
    metrics_dir = tmp_path / "metrics"
    server = start_web(
        METRICS_TOKEN=TOKEN, WEB_CONCURRENCY="2", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)
    )
    base = server.url
    try:
        until_serving(server)
        posts = 0

        def both_workers_counted():
            nonlocal posts
            # Two at once, so that one worker is busy while the other takes the next.
            with ThreadPoolExecutor(2) as pool:
                list(pool.map(lambda n: _post_run(base, key, n), [posts, posts + 1]))
            posts += 2
            return len(workers_that_stored_records()) >= 2

        def workers_that_stored_records():
            # Each worker's counters are in a file of its own (counter_<pid>.db); every
            # worker has one from its start, but only those that stored a run count one.
            return {
                path.name
                for path in metrics_dir.glob("counter_*.db")
                for key, count, *_ in MmapedDict.read_all_values_from_file(str(path))
                if "mlwiki_records_ingested" in key and count > 0
            }

        until(both_workers_counted, "posts served by both workers")
        assert _get(f"{base}/metrics")[0] == 401
        labels = {"kind": "training_run", "project": "churn"}
        for _ in range(4):  # whichever worker answers, the sums are the same
            status, text = _get(f"{base}/metrics", TOKEN)
            assert status == 200
            assert value(parse(text), "mlwiki_records_ingested_total", **labels) == posts
    finally:
        stop([server])


def test_recycled_workers_start_from_the_preloaded_app_and_their_counts_stay(
    tmp_path, user, project
):
    """gunicorn as shipped imports the app once, in the master (preload_app), and recycles
    its workers after max_requests: a new worker serves at once, on a database connection
    of its own, and the counts of the workers gone stay in the sums."""
    _, key = make_token(user, scopes=["records:write"], projects=["churn"])
    metrics_dir = tmp_path / "metrics"
    server = start_web(
        METRICS_TOKEN=TOKEN,
        WEB_CONCURRENCY="1",
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        GUNICORN_CMD_ARGS="--max-requests 3 --max-requests-jitter 0",
    )
    try:
        until_serving(server)
        # The master imported the app (and so prometheus_client, whose files it opened
        # with its own pid) before forking: workers do not import it again.
        assert (metrics_dir / f"counter_{server.pid}.db").exists()
        posts = 10
        for number in range(posts):
            _post_run(server.url, key, number)

        counted = {
            path.name
            for path in metrics_dir.glob("counter_*.db")
            for key_, count, *_ in MmapedDict.read_all_values_from_file(str(path))
            if "mlwiki_records_ingested" in key_ and count > 0
        }
        assert len(counted) >= 3, "one worker served at most 3 requests"
        status, text = _get(f"{server.url}/metrics", TOKEN)
        assert status == 200
        labels = {"kind": "training_run", "project": "churn"}
        assert value(parse(text), "mlwiki_records_ingested_total", **labels) == posts
    finally:
        stop([server])


@pytest.mark.redis
@needs_real_worker
def test_a_worker_answers_for_the_notifications_its_pool_sent(tmp_path, project, webhook):
    """A real worker with two pool processes: its /metrics counts what they sent."""
    configure(project, actor=Actor(None, Source.CLI), webhook_url=webhook.url, daily_digest=False)
    port = free_port()
    queue = f"test-{uuid.uuid4().hex}"
    worker = start_worker(
        queue, pool="prefork", METRICS_TOKEN=TOKEN, WORKER_METRICS_PORT=str(port),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path),
    )  # fmt: skip
    celery_app.conf.task_always_eager = False
    try:

        def answers():
            assert worker.poll() is None, "the worker exited"
            try:
                return _get(f"http://127.0.0.1:{port}/metrics")[0] == 401
            except OSError:
                return False

        until(answers, "the worker answering /metrics")
        sent = 4
        deliveries = [
            Delivery.objects.create(
                project=project, key=f"k{n}", kind="test", channel="webhook",
                target=webhook.url, subject="s", text="t",
            ).pk
            for n in range(sent)
        ]  # fmt: skip
        assert outbox.send_now(deliver_notification, Delivery, deliveries) == sent
        until(lambda: len(webhook.received) == sent, "the notifications sent")
        until(lambda: drained(queue), "the worker done")
        status, text = _get(f"http://127.0.0.1:{port}/metrics", TOKEN)
        assert status == 200
        labels = {"channel": "webhook", "outcome": "sent"}
        assert value(parse(text), "mlwiki_notification_deliveries_total", **labels) == sent
        assert metrics.QUEUE_DEPTH not in text  # the web's scrape reports the queue
    finally:
        stop([worker])
