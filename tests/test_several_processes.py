"""Several web processes and workers at once, the normal case in production: two gunicorn
servers (deploy/gunicorn.conf.py, two processes each) and two Celery workers on one
PostgreSQL and one Redis, with clients writing to both servers at the same moment.
Nothing is lost or written twice, the audit chain does not fork, and each notification
goes out once."""

import json
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import uuid
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.db import connection

from tests.factories import ProjectFactory, UserFactory, cli_actor, make_token
from tests.workers import (
    ROOT,
    drained,
    start_web,
    start_worker,
    stop,
    subprocess_env,
    until,
    until_serving,
)
from wiki.celery import app as celery_app
from wiki.models import AuditEntry, ChainHead, Delivery, Deployment, TrainingRun
from wiki.services.notifications import configure
from wiki.services.pages import revision_of
from wiki.services.records import record_deployment
from wiki.tasks import sweep

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(
        connection.vendor == "sqlite" or not settings.CELERY_BROKER_URL,
        reason="SQLite is the one-process default (make run); several web processes and "
        "workers share PostgreSQL and Redis (the .ci/run PostgreSQL + Redis pass)",
    ),
]

RUNS = 24  # training runs, each under its own Idempotency-Key…
TWICE = 8  # …the first of them sent to both servers at the same moment
DEPLOYMENTS = 6  # failed deployments (each announced), every one sent to both servers
ROLLBACKS = 3  # deployments rolled back (announced) by two pipelines at once, one per server
EDITORS = 6  # editors of one page, half on each server…
EDITS = 3  # …each of whom gets this many edits saved
STARTED = "2024-06-01T10:00:00Z"


@pytest.fixture
def servers(transactional_db):
    """Two web servers and two workers on the test database and the same Redis; yields
    their addresses and the workers' queue. Every process is stopped, whatever happens."""
    queue = f"test-{uuid.uuid4().hex}"
    # REQUEUE_AFTER_MINUTES=0: each sweep queues every pending delivery again, so the two
    # workers get several messages for one delivery; its claim must keep it to one send.
    processes = [
        start_worker(queue, hostname=f"worker{number}@%h", REQUEUE_AFTER_MINUTES="0")
        for number in (1, 2)
    ]
    try:
        webs = [start_web(WEB_CONCURRENCY="2") for _ in range(2)]
        processes += webs
        for web in webs:
            until_serving(web)
        celery_app.conf.task_always_eager = False  # the test's sweeps go to the workers
        yield SimpleNamespace(urls=[web.url for web in webs], queue=queue)
    finally:
        stop(processes)


def call(method, url, key, body=None, headers=()):
    """One JSON API request with the token ``key``: (status, headers, JSON body)."""
    request = urllib.request.Request(  # noqa: S310  http://127.0.0.1 only
        url,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Token {key}", "Content-Type": "application/json"}
        | dict(headers),
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read() or b"null")


def at_once(calls):
    """Run ``calls`` in threads released at the same moment; their results in order (an
    exception is a result: the test says which call failed)."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(index, function):
        try:
            barrier.wait(timeout=60)
            results[index] = function()
        except Exception as error:  # noqa: BLE001  reported by the assertions
            results[index] = error

    threads = [threading.Thread(target=run, args=pair) for pair in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a client hung for 120 s"
    return results


def test_two_servers_and_two_workers_lose_nothing_fork_nothing_and_notify_once(servers, webhook):
    owner = UserFactory(username="alice")
    project = ProjectFactory(slug="churn", actor=cli_actor(owner))  # alice maintains it
    _, key = make_token(owner, scopes=["records:write", "pages:write"], projects=["churn"])
    configure(project, actor=cli_actor(owner), webhook_url=webhook.url, events=True)
    live = [
        record_deployment(
            project,
            actor=cli_actor(owner),
            model_version=f"1.{number}",
            status="succeeded",
            environment="production",
            started_at=STARTED,
            finished_at=STARTED,
        )
        for number in range(ROLLBACKS)
    ]
    first, second = servers.urls
    api = "/api/v1/projects/churn"

    def post(server, kind, idempotency_key, body):
        url = f"{server}{api}/{kind}/"
        return lambda: call("POST", url, key, body, {"Idempotency-Key": idempotency_key})

    def edit(number):
        """An editor on one server: read the page, send a change with its ETag, again
        after each 412, until EDITS changes were saved. (revision, text) of each saved."""
        url = f"{servers.urls[number % 2]}{api}/pages/overview/"

        def editing():
            saved, refused = [], []
            while len(saved) < EDITS:
                assert len(refused) < 200, f"editor {number} never got an edit through"
                _, headers, _ = call("GET", url, key)
                text = f"Editor {number}, edit {len(saved) + 1}."
                status, _, page = call(
                    "PATCH", url, key, {"body": text}, {"If-Match": headers["ETag"]}
                )
                if status == 200:
                    saved.append((page["revision"], text))
                else:
                    refused.append(status)
            return saved, refused

        return editing

    runs, deployments = {}, {}
    for number in range(RUNS):
        body = {"model_version": "1.0", "status": "succeeded", "started_at": STARTED}
        body["metrics"] = {"run": number}
        sent_to = servers.urls if number < TWICE else [servers.urls[number % 2]]
        runs[f"run-{number}"] = [
            post(url, "training-runs", f"run-{number}", body) for url in sent_to
        ]
    for number in range(DEPLOYMENTS):
        body = {
            "model_version": f"2.{number}", "environment": "production", "status": "failed",
            "started_at": STARTED, "finished_at": STARTED,
        }  # fmt: skip
        deployments[f"deploy-{number}"] = [
            post(url, "deployments", f"deploy-{number}", body) for url in (first, second)
        ]
    rollbacks = [
        lambda url=url, deployment=deployment: call(
            "PATCH", f"{url}{api}/deployments/{deployment.pk}/", key, {"status": "rolled_back"}
        )
        for deployment in live
        for url in (first, second)
    ]
    editors = [edit(number) for number in range(EDITORS)]

    # While they write, the workers are told to sweep again and again (beat does it every
    # minute): a sweep queues every pending delivery once more, so that deliveries get
    # several messages, taken by both workers.
    writing_done = threading.Event()

    def sweeping():
        while not writing_done.wait(0.05):  # the pace of the sweeps, not a wait for luck
            sweep.apply_async(queue=servers.queue)

    sweeper = threading.Thread(target=sweeping)
    sweeper.start()
    try:
        calls = [*sum(runs.values(), []), *sum(deployments.values(), []), *rollbacks, *editors]
        results = iter(at_once(calls))
    finally:
        writing_done.set()
        sweeper.join()
    answers = {name: [next(results) for _ in sent] for name, sent in runs.items()}
    answers |= {name: [next(results) for _ in sent] for name, sent in deployments.items()}
    rolled_back = [next(results) for _ in rollbacks]
    edited = [next(results) for _ in editors]
    everything = [*sum(answers.values(), []), *rolled_back, *edited]
    failed = [result for result in everything if isinstance(result, Exception)]
    assert not failed, failed

    # Records: one per Idempotency-Key, whichever server and however many times it came.
    for name, sent in answers.items():
        statuses = sorted(status for status, _, _ in sent)
        assert statuses == ([200, 201] if len(sent) == 2 else [201]), (name, sent)
        assert len({body["id"] for _, _, body in sent}) == 1, (name, sent)
        replays = [headers for status, headers, _ in sent if status == 200]
        assert all(headers["Idempotent-Replayed"] == "true" for headers in replays)
    ids = {name: sent[0][2]["id"] for name, sent in answers.items()}
    stored_runs = TrainingRun.objects.filter(project=project)
    assert sorted(stored_runs.values_list("pk", flat=True)) == sorted(ids[n] for n in runs)
    assert sorted(run.metrics["run"] for run in stored_runs) == list(range(RUNS))
    failed_deployments = Deployment.objects.filter(project=project, status="failed")
    assert sorted(failed_deployments.values_list("pk", flat=True)) == sorted(
        ids[n] for n in deployments
    )
    # A rollback sent by two pipelines at once: both told it is done, one change recorded.
    assert [status for status, _, _ in rolled_back] == [200] * 2 * ROLLBACKS, rolled_back
    for deployment in live:
        statuses = deployment.history.values_list("status", flat=True)
        assert sorted(statuses) == ["rolled_back", "succeeded"]

    # Page edits: every edit a server accepted is a revision of its own, in the history;
    # the others were told (412), none was silently overwritten.
    saved = sorted(sum((accepted for accepted, _ in edited), []))
    assert [revision for revision, _ in saved] == list(range(2, 2 + EDITORS * EDITS))
    assert {status for _, refused in edited for status in refused} <= {412}
    page = project.pages.get(category="overview")
    assert page.revision == 1 + EDITORS * EDITS
    assert page.history.count() == 1 + EDITORS * EDITS
    for revision, text in saved:
        assert revision_of(page, revision).body == text

    # Notifications: each failure and each rollback announced once, by one of the two
    # workers, however many messages the sweeps added. A sweep also sends what a web
    # process could not hand to Redis in time (its broker timeout is short under load).
    announced = DEPLOYMENTS + ROLLBACKS

    def all_sent():
        sweep.apply_async(queue=servers.queue)
        return Delivery.objects.filter(status=Delivery.Status.SENT).count() == announced

    until(all_sent, "the workers did not send every notification")
    until(lambda: drained(servers.queue), "the workers did not finish their tasks")
    deliveries = Delivery.objects.filter(project=project)
    assert sorted(deliveries.values_list("status", "attempts")) == [("sent", 1)] * announced
    assert len(webhook.received) == announced
    for deployment in [*failed_deployments, *live]:
        told = [
            hook for hook in webhook.received if f"Deployment #{deployment.pk} " in hook["text"]
        ]
        assert len(told) == 1, (deployment.pk, webhook.received)

    # The audit chain: no fork (each entry follows exactly one other, numbered 1 to the
    # head's, and the head is the last one), and verify_audit finds every link intact.
    for head in ChainHead.objects.all():
        entries = AuditEntry.objects.filter(chain=head).order_by("seq")
        assert list(entries.values_list("seq", flat=True)) == list(range(1, head.seq + 1))
        assert entries.last().digest == head.digest
    verified = subprocess.run(
        [sys.executable, "manage.py", "verify_audit"],
        cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "churn: intact" in verified.stdout
    assert "global: intact" in verified.stdout
