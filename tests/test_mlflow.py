"""The MLflow bridge (issue 14, item 1) against a real MLflow tracking server (mlflow from
PyPI, started on 127.0.0.1 with an SQLite store, filled through the MLflow client)."""

import threading
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from tests.factories import UserFactory, cli_actor
from tests.mlflow_server import mlflow_server  # noqa: F401 - a fixture
from tests.workers import start_worker, stop, until
from wiki.celery import app as celery_app
from wiki.history import mlflow_origin
from wiki.mlflow import MlflowError
from wiki.models import (
    Attachment,
    AuditEntry,
    Membership,
    MlflowRun,
    MlflowSync,
    ModelVersion,
    SeriesChunk,
    TrainingRun,
)
from wiki.series import curves
from wiki.services import mlflow
from wiki.services.mlflow import configure_sync, queue_due_syncs
from wiki.services.records import create_model_version

pytestmark = pytest.mark.django_db(transaction=True)

START = int(datetime(2026, 6, 1, tzinfo=UTC).timestamp() * 1000)
EXPERIMENTS = {"churn-baseline": 100, "churn-tuning": 60, "churn-features": 40}
MODEL = "churn classifier"


def _runs():
    """The 200 runs of the three experiments: each with parameters, a final metric, a
    loss history of five steps, tags and a dataset; one in ten with an image; one in
    twenty failed."""
    operations, number = [], 0
    for experiment, count in EXPERIMENTS.items():
        for i in range(count):
            number += 1
            operations.append({
                "op": "run", "experiment": experiment, "name": f"{experiment}-{i}",
                "start": START + number * 60_000,
                "params": {"learning_rate": 0.01 * (i + 1), "depth": 3 + i % 5,
                           "booster": "gbtree"},
                "metrics": {"auc": 0.7 + i / 1000, "loss": [1.0, 0.8, 0.6, 0.5, 0.45 - i / 1000]},
                "tags": {"team": "risk", "mlflow.source.git.commit": f"{number:040x}"},
                "dataset": {"name": "customers", "digest": f"d{number % 3}", "uri": "https://data.example.com/customers.csv"},
                "image": "roc.png" if i % 10 == 0 else None,
                "status": "FAILED" if i % 20 == 19 else "FINISHED",
            })  # fmt: skip
    return operations


def MLFLOW_PREFILL():  # noqa: N802 - read by the mlflow_server fixture
    """What the module's MLflow server holds when it starts: the 200 runs, and three
    versions of a registered model made from the first three."""
    return [
        *_runs(),
        {"op": "register", "model": MODEL, "run": 0, "description": "First cut."},
        {"op": "register", "model": MODEL, "run": 1},
        {"op": "register", "model": MODEL, "run": 2, "alias": "champion"},
    ]


@pytest.fixture(scope="module")
def filled(mlflow_server):  # noqa: F811
    *ids, one, two, three = mlflow_server.prefilled
    assert [str(v) for v in (one, two, three)] == ["1", "2", "3"]
    return {"server": mlflow_server, "ids": ids}


def run_import(server, project, **options):
    options.setdefault("experiments", list(EXPERIMENTS))
    return mlflow.import_runs(project, actor=cli_actor(), tracking_uri=server.url, **options)


def test_an_import_brings_in_every_run_version_and_image_and_again_changes_nothing(filled, project):
    server, ids = filled["server"], filled["ids"]
    report = run_import(server, project, registered_models=[MODEL])
    assert (report.runs, report.created, report.updated) == (200, 200, 0)
    assert (report.versions_created, report.attachments) == (3, 20)
    assert report.deleted == [] and report.problems == []

    versions = dict(
        ModelVersion.objects.filter(project=project).values_list("version", "description")
    )
    assert set(versions) >= {"churn-classifier:1", "churn-classifier:2", "churn-classifier:3"}
    assert versions["churn-classifier:1"].startswith("First cut.\n\nMLflow registered model")
    assert "aliases champion" in versions["churn-classifier:3"]
    assert f"source run {ids[2]}" in versions["churn-classifier:3"]

    first = MlflowRun.objects.get(run_id=ids[0]).training_run
    assert first.model_version.version == "churn-classifier:1"
    assert first.hyperparameters == {"learning_rate": 0.01, "depth": 3, "booster": "gbtree"}
    assert first.metrics == {"auc": 0.7, "loss": 0.45}
    assert first.tags["team"] == "risk" and first.tags["mlflow.runName"] == "churn-baseline-0"
    assert first.git_commit == f"{1:040x}"
    assert (first.dataset_name, first.dataset_version, first.dataset_uri) == (
        "customers", "d1", "https://data.example.com/customers.csv")  # fmt: skip
    assert first.status == "succeeded"
    assert first.started_at == datetime.fromtimestamp((START + 60_000) / 1000, UTC)
    assert first.pipeline_url.startswith(f"{server.url}/#/experiments/")
    assert first.pipeline_url.endswith(f"/runs/{ids[0]}")
    loss = curves(first, ["loss"])[0]
    assert loss.points == [(0, 1.0), (1, 0.8), (2, 0.6), (3, 0.5), (4, 0.45)]
    assert Attachment.objects.get(training_run=first).name == "plots-roc.png"
    unregistered = MlflowRun.objects.get(run_id=ids[150]).training_run
    assert unregistered.model_version.version == "churn-tuning"
    assert MlflowRun.objects.get(run_id=ids[19]).training_run.status == "failed"
    row = first.history.get()
    assert row.history_origin == mlflow_origin(tracking_uri=server.url, run_id=ids[0])

    counts = (TrainingRun.history.count(), AuditEntry.objects.count(), Attachment.objects.count(),
              SeriesChunk.objects.count())  # fmt: skip
    again = run_import(server, project, registered_models=[MODEL])
    assert (again.created, again.updated, again.unchanged, again.versions_created) == (0, 0, 200, 0)
    assert (again.versions_updated, again.attachments) == (0, 0)
    assert counts == (TrainingRun.history.count(), AuditEntry.objects.count(),
                      Attachment.objects.count(), SeriesChunk.objects.count())  # fmt: skip


def test_a_new_run_arrives_and_a_changed_run_is_a_new_revision(mlflow_server, project):  # noqa: F811
    live = {"op": "run", "experiment": "churn-live", "start": START, "params": {"lr": 0.1},
            "metrics": {"loss": [0.9, 0.7]}}  # fmt: skip
    (running,) = mlflow_server.client([live])
    first = run_import(mlflow_server, project, experiments=["churn-live"])
    assert (first.created, first.updated) == (1, 0)
    record = MlflowRun.objects.get(run_id=running).training_run
    assert (record.status, record.finished_at, record.metrics) == ("running", None, {"loss": 0.7})

    # The run logs two more steps and finishes; another run starts.
    end = START + 3_600_000
    mlflow_server.client([
        {"op": "log", "run_id": running, "start": START, "metrics": {"loss": [0.5, 0.4]},
         "first_step": 2, "status": "FINISHED", "end": end},
        live | {"start": START + 10_000},
    ])  # fmt: skip
    second = run_import(mlflow_server, project, experiments=["churn-live"])
    assert (second.created, second.updated, second.unchanged) == (1, 1, 0)
    record.refresh_from_db()
    assert (record.status, record.metrics) == ("succeeded", {"loss": 0.4})
    assert record.finished_at == datetime.fromtimestamp(end / 1000, UTC)
    rows = list(record.history.order_by("history_id"))
    assert [row.status for row in rows] == ["running", "succeeded"]
    assert {row.history_origin["run_id"] for row in rows} == {running}
    assert rows[1].history_change_reason == f"Updated from MLflow ({mlflow_server.url})"
    # The history's steps 0 and 1 were there; the new points are added after them.
    assert curves(record, ["loss"])[0].points == [(0, 0.9), (1, 0.7), (2, 0.5), (3, 0.4)]
    assert TrainingRun.objects.filter(project=project).count() == 2


def test_runs_deleted_in_mlflow_are_reported_and_kept(mlflow_server, project, capsys):  # noqa: F811
    run = {"op": "run", "experiment": "churn-gone", "start": START, "status": "FINISHED",
           "metrics": {"auc": 0.8, "broken": float("nan")}}  # fmt: skip
    kept, deleted = mlflow_server.client([run, run | {"start": START + 1000}])
    call_command("import_mlflow", "--tracking-uri", mlflow_server.url, "--project", "churn",
                 "--experiment", "churn-gone")  # fmt: skip
    out = capsys.readouterr()
    assert "2 runs: 2 new, 0 changed, 0 unchanged" in out.out
    assert f"run {kept}: metric 'broken' is not a finite number" in out.out
    assert "2 of 2 runs" in out.err
    mlflow_server.client([{"op": "delete", "run_id": deleted}])
    call_command("import_mlflow", "--tracking-uri", mlflow_server.url, "--project", "churn",
                 "--experiment", "churn-gone")  # fmt: skip
    out = capsys.readouterr().out
    assert f"1 runs deleted in MLflow (kept in the wiki): {deleted}" in out
    assert MlflowRun.objects.get(run_id=deleted).training_run.metrics == {"auc": 0.8}
    assert TrainingRun.objects.filter(project=project).count() == 2


def test_a_dry_run_says_what_it_would_import_and_writes_nothing(filled, project, capsys):
    counts = (TrainingRun.history.count(), AuditEntry.objects.count())
    call_command(
        "import_mlflow", "--tracking-uri", filled["server"].url, "--project", "churn",
        "--experiment", "churn-features", "--registered-model", MODEL, "--dry-run",
    )  # fmt: skip
    out = capsys.readouterr().out
    # The features runs and the three registered versions' runs (from churn-baseline).
    assert "Would import (dry run): 43 runs: 43 new" in out
    assert "model versions: 3 new" in out
    assert counts == (TrainingRun.history.count(), AuditEntry.objects.count())
    assert not ModelVersion.objects.filter(project=project).exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--experiment", "nope"], "has no experiment 'nope'"),
        (["--registered-model", "nope"], "has no registered model 'nope'"),
        ([], "Name at least one --experiment or --registered-model"),
    ],
)
def test_the_command_refuses_what_it_cannot_import_clearly(filled, project, options, message):
    with pytest.raises(CommandError, match=message):
        call_command("import_mlflow", "--tracking-uri", filled["server"].url,
                     "--project", "churn", *options)  # fmt: skip
    assert not TrainingRun.objects.exists()


@pytest.mark.parametrize(
    ("uri", "message"),
    [("http://127.0.0.1:9", "cannot be reached"), ("file:///tmp/mlruns", r"an http\(s\) address")],
)
def test_an_unreachable_or_unusable_tracking_uri_is_a_clear_error(project, uri, message):
    with pytest.raises(CommandError, match=message):
        call_command("import_mlflow", "--tracking-uri", uri, "--project", "churn",
                     "--experiment", "x")  # fmt: skip


@pytest.fixture
def tasks(transactional_db):
    """Where Celery tasks run: a real worker through Redis when there is a broker (the
    PostgreSQL + Redis pass), else in-process (the zero-configuration default)."""
    if not settings.CELERY_BROKER_URL:
        yield
        return
    process = start_worker(f"test-{uuid.uuid4().hex}")
    celery_app.conf.task_always_eager = False
    try:
        yield
    finally:
        stop([process])


def synced(sync):
    """Wait until ``sync`` ran (its worker may be another process); return it."""
    until(
        lambda: (
            MlflowSync.objects.filter(pk=sync.pk, status="idle", finished_at__isnull=False)
            .exclude(finished_at=sync.finished_at)
            .exists()
        ),
        "the sync to finish",
        seconds=120,
    )
    return MlflowSync.objects.get(pk=sync.pk)


def test_a_new_run_arrives_at_the_next_scheduled_sync(mlflow_server, project, user, tasks):  # noqa: F811
    run = {"op": "run", "experiment": "churn-sync", "start": START, "status": "FINISHED",
           "metrics": {"auc": 0.8}}  # fmt: skip
    (first,) = mlflow_server.client([run])
    client = Client()
    client.force_login(user)
    page = f"/projects/{project.slug}/mlflow/"
    saved = client.post(page, {
        "tracking_uri": mlflow_server.url, "experiments": "churn-sync\n", "registered_models": "",
        "every_hours": "1", "attach_images": "on", "change_reason": "Follow the sync experiment",
    })  # fmt: skip
    assert saved.status_code == 302, saved.content
    sync = MlflowSync.objects.get(project=project)
    assert (sync.experiments, sync.every_hours, sync.status) == (["churn-sync"], 1, "idle")
    assert sync.history.get().history_change_reason == "Follow the sync experiment"

    assert queue_due_syncs() == 1  # due at once when configured
    sync = synced(sync)
    assert (sync.last_error, sync.report["created"], sync.processed) == ("", 1, 1)
    assert sync.due_at > timezone.now() + timedelta(minutes=59)
    assert queue_due_syncs() == 0  # not due again for an hour

    (second,) = mlflow_server.client([run | {"start": START + 1000}])
    MlflowSync.objects.filter(pk=sync.pk).update(due_at=timezone.now())  # the hour passed
    assert queue_due_syncs() == 1
    sync = synced(sync)
    assert (sync.report["created"], sync.report["unchanged"]) == (1, 1)
    assert set(MlflowRun.objects.values_list("run_id", flat=True)) == {first, second}
    shown = client.get(page).content.decode()
    assert "2 runs: 1 new, 0 changed, 1 unchanged" in shown

    # "Sync now" from the browser: queued, run, nothing new.
    assert client.post(page, {"now": "1"}).status_code == 302
    sync = synced(sync)
    assert sync.report["unchanged"] == 2


def test_a_sync_that_lost_its_worker_runs_again_and_errors_are_kept(project):
    sync = configure_sync(
        project, actor=cli_actor(), tracking_uri="http://127.0.0.1:9", experiments=["x"],
        registered_models=[], every_hours=0, attach_images=False,
    )  # fmt: skip
    assert sync.due_at is None  # only when asked
    assert queue_due_syncs() == 0
    long_ago = timezone.now() - timedelta(hours=1)
    MlflowSync.objects.filter(pk=sync.pk).update(status="running", heartbeat_at=long_ago)
    assert queue_due_syncs() == 1  # in-process here: it ran
    sync.refresh_from_db()
    assert sync.status == "idle"
    assert "cannot be reached" in sync.last_error
    assert sync.due_at is None


def test_the_sync_page_is_for_maintainers_and_refuses_bad_settings(project, user):
    reader = UserFactory()
    Membership.objects.create(project=project, user=reader, role=Membership.Role.VIEWER)
    client = Client()
    client.force_login(reader)
    page = f"/projects/{project.slug}/mlflow/"
    assert client.get(page).status_code == 403
    client.force_login(user)
    refused = client.post(page, {"tracking_uri": "ftp://mlflow", "experiments": "",
                                 "registered_models": "", "every_hours": "24"})  # fmt: skip
    assert refused.status_code == 200
    errors = refused.context["form"].errors
    assert "tracking_uri" in errors
    assert not MlflowSync.objects.exists()
    refused = client.post(page, {"tracking_uri": "https://mlflow.example.com", "experiments": "",
                                 "registered_models": "", "every_hours": "24"})  # fmt: skip
    assert "Name at least one experiment or registered model." in refused.content.decode()
    assert not MlflowSync.objects.exists()


def test_an_image_over_the_limit_is_reported_not_attached(mlflow_server, project, settings):  # noqa: F811
    settings.ATTACHMENT_MAX_BYTES = 40  # the client's 8x8 PNG is larger
    (big,) = mlflow_server.client([
        {"op": "run", "experiment": "churn-big", "start": START, "image": "big.png",
         "status": "FINISHED", "metrics": {"auc": 0.8}},
    ])  # fmt: skip
    report = run_import(mlflow_server, project, experiments=["churn-big"])
    assert report.created == 1 and report.attachments == 0
    (problem,) = report.problems
    assert problem.startswith(f"run {big}: plots/big.png not attached (")
    assert problem.endswith("bytes; at most 40)")
    assert not Attachment.objects.exists()
    # Left out for good: the next import neither tries again nor says it again.
    assert run_import(mlflow_server, project, experiments=["churn-big"]).problems == []


def test_long_histories_are_imported_whole_in_pieces(mlflow_server, project, settings):  # noqa: F811
    settings.SERIES_MAX_POINTS = 50  # a posted call's limit, not an import's
    losses = [1 / (step + 1) for step in range(120)]
    (long,) = mlflow_server.client([
        {"op": "run", "experiment": "churn-long", "start": START, "status": "FINISHED",
         "metrics": {"loss": losses, "auc": [0.5, 0.6]}},
    ])  # fmt: skip
    report = run_import(mlflow_server, project, experiments=["churn-long"])
    assert (report.created, report.problems) == (1, [])
    record = MlflowRun.objects.get(run_id=long).training_run
    curve = {c.metric: c for c in curves(record)}
    assert curve["loss"].total == 120 and curve["auc"].total == 2
    assert [value for _, value in curve["loss"].points] == losses
    assert SeriesChunk.objects.filter(training_run=record).count() == 4  # 50 + 50 + 20 + 2
    assert {row.history_origin["run_id"] for row in SeriesChunk.history.all()} == {long}


def test_a_version_described_in_the_wiki_keeps_its_description(filled, project):
    create_model_version(
        project, actor=cli_actor(), version="churn-classifier:2", description="Approved: EU-123."
    )
    report = run_import(filled["server"], project, experiments=[], registered_models=[MODEL])
    assert (report.versions_created, report.versions_updated) == (2, 0)
    assert report.problems == [
        "model version churn-classifier:2: its description was written in the wiki and is "
        "kept; MLflow's is not applied"
    ]
    kept = ModelVersion.objects.get(project=project, version="churn-classifier:2")
    assert kept.description == "Approved: EU-123."
    # The versions' source runs (of churn-baseline) came with them.
    assert report.created == 3


@pytest.fixture
def answering(tmp_path):
    """A web server on 127.0.0.1 that is not MLflow: it answers ``answer[path]`` as
    (status, headers, body)."""
    answers = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the standard library's name
            status, headers, body = answers.get(self.path.split("?")[0], (404, {}, b""))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", answers
    server.shutdown()
    server.server_close()


def test_what_is_not_an_mlflow_server_is_refused_clearly(answering, project):
    url, answers = answering
    path = "/api/2.0/mlflow/experiments/get-by-name"
    answers[path] = (302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b"")
    with pytest.raises(MlflowError, match="a redirect to http://169.254.169.254"):
        run_import(SimpleNamespace(url=url), project, experiments=["x"])
    answers[path] = (200, {"Content-Type": "application/json"}, b"[1, 2]")
    with pytest.raises(MlflowError, match="not MLflow's"):
        run_import(SimpleNamespace(url=url), project, experiments=["x"])
    answers[path] = (200, {"Content-Type": "application/json"}, b'{"experiment": 5}')
    with pytest.raises(MlflowError, match="answered in a form this import does not know"):
        run_import(SimpleNamespace(url=url), project, experiments=["x"])
    answers[path] = (500, {}, b"<html>internal admin page: secrets</html>")
    with pytest.raises(MlflowError) as refused:
        run_import(SimpleNamespace(url=url), project, experiments=["x"])
    assert "secrets" not in str(refused.value) and "not an MLflow answer" in str(refused.value)


@pytest.mark.parametrize(
    ("uri", "hosts", "message"),
    [
        ("http://169.254.169.254", [], "link-local"),
        ("https://user:token@mlflow.example.com", [], "user name or password"),
        ("http://127.0.0.1:5000", ["mlflow.example.com"], "MLFLOW_TRACKING_HOSTS"),
    ],
)
def test_a_tracking_uri_the_wiki_must_not_read_is_refused(project, settings, uri, hosts, message):
    settings.MLFLOW_TRACKING_HOSTS = hosts
    with pytest.raises(MlflowError, match=message):
        run_import(SimpleNamespace(url=uri), project, experiments=["x"])
    with pytest.raises(ValidationError) as refused:
        configure_sync(
            project, actor=cli_actor(), tracking_uri=uri, experiments=["x"],
            registered_models=[], every_hours=0, attach_images=False,
        )  # fmt: skip
    assert message in " ".join(refused.value.message_dict["tracking_uri"])
