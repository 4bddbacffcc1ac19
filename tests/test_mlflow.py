"""The MLflow bridge (issue 14, item 1) against a real MLflow tracking server (mlflow from
PyPI, started on 127.0.0.1 with an SQLite store, filled through the MLflow client)."""

from datetime import UTC, datetime

import pytest
from django.core.management import CommandError, call_command

from tests.factories import cli_actor
from tests.mlflow_server import mlflow_server  # noqa: F401 - a fixture
from wiki.history import mlflow_origin
from wiki.mlflow import MlflowError
from wiki.models import Attachment, AuditEntry, MlflowRun, ModelVersion, SeriesChunk, TrainingRun
from wiki.services import mlflow
from wiki.series import curves

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
                "params": {"learning_rate": 0.01 * (i + 1), "depth": 3 + i % 5, "booster": "gbtree"},
                "metrics": {"auc": 0.7 + i / 1000, "loss": [1.0, 0.8, 0.6, 0.5, 0.45 - i / 1000]},
                "tags": {"team": "risk", "mlflow.source.git.commit": f"{number:040x}"},
                "dataset": {"name": "customers", "digest": f"d{number % 3}", "uri": "https://data.example.com/customers.csv"},
                "image": "roc.png" if i % 10 == 0 else None,
                "status": "FAILED" if i % 20 == 19 else "FINISHED",
            })  # fmt: skip
    return operations


@pytest.fixture(scope="module")
def filled(mlflow_server):  # noqa: F811
    ids = mlflow_server.client(_runs())
    versions = mlflow_server.client([
        {"op": "register", "model": MODEL, "run_id": ids[0], "description": "First cut."},
        {"op": "register", "model": MODEL, "run_id": ids[1]},
        {"op": "register", "model": MODEL, "run_id": ids[2], "alias": "champion"},
    ])  # fmt: skip
    assert versions == ["1", "2", "3"]
    return {"server": mlflow_server, "ids": ids}


def run_import(project, server, **options):
    options.setdefault("experiments", list(EXPERIMENTS))
    return mlflow.import_runs(
        project, actor=cli_actor(), tracking_uri=server.url, **options
    )


def test_an_import_brings_in_every_run_version_and_image_and_again_changes_nothing(
    filled, project
):
    server, ids = filled["server"], filled["ids"]
    report = run_import(project, server, registered_models=[MODEL])
    assert (report.runs, report.created, report.updated) == (200, 200, 0)
    assert (report.versions_created, report.attachments) == (3, 20)
    assert report.deleted == [] and report.problems == []

    versions = dict(ModelVersion.objects.filter(project=project).values_list("version", "description"))
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
    assert first.pipeline_url == f"{server.url}/#/experiments/{first.pipeline_url.split('/')[-3]}/runs/{ids[0]}"
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
    again = run_import(project, server, registered_models=[MODEL])
    assert (again.created, again.updated, again.unchanged, again.versions_created) == (0, 0, 200, 0)
    assert (again.versions_updated, again.attachments) == (0, 0)
    assert counts == (TrainingRun.history.count(), AuditEntry.objects.count(),
                      Attachment.objects.count(), SeriesChunk.objects.count())  # fmt: skip
