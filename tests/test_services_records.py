from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from tests.factories import cli_actor, make_deployment, make_training_run
from wiki.models import Deployment, ModelVersion, TrainingRun
from wiki.services.records import record_training_run

pytestmark = pytest.mark.django_db


def test_training_run_creates_its_model_version_once(project):
    first = make_training_run(project, model_version="1.0.0")
    second = make_training_run(project, model_version=" 1.0.0 ")
    assert first.model_version == second.model_version
    assert ModelVersion.objects.filter(project=project).count() == 1
    version = first.model_version
    assert version.history.get().history_source == "cli"


def test_training_run_keeps_everything_posted_and_its_history(project):
    started = timezone.now() - timedelta(hours=1)
    run = make_training_run(
        project,
        started_at=started,
        finished_at=started + timedelta(minutes=5),
        git_commit="abc123",
        pipeline_url="https://ci.example.com/runs/1",
        dataset_name="customers",
        dataset_version="2024-06-30",
        hyperparameters={"lr": 0.1, "depth": 6, "name": "gbm", "early": True, "x": None},
        metrics={"auc": 0.84, "count": 3},
        tags={"trigger": "nightly"},
        environment={"python": "3.11", "libs": {"lightgbm": "4.3"}},
        notes="All good.",
    )
    run.refresh_from_db()
    assert run.metrics == {"auc": 0.84, "count": 3}
    assert run.environment["libs"] == {"lightgbm": "4.3"}
    row = run.history.get()
    assert (row.history_type, row.history_source, row.history_change_reason) == (
        "+",
        "cli",
        "Recorded training run",
    )


@pytest.mark.parametrize(
    ("attrs", "field"),
    [
        ({"status": "done"}, "status"),
        ({"metrics": {"auc": float("nan")}}, "metrics"),
        ({"metrics": {"auc": float("inf")}}, "metrics"),
        ({"metrics": {"auc": "0.8"}}, "metrics"),
        ({"metrics": {"auc": True}}, "metrics"),
        ({"metrics": [0.8]}, "metrics"),
        ({"hyperparameters": {"layers": [1, 2]}}, "hyperparameters"),
        ({"tags": {"n": 1}}, "tags"),
        ({"environment": "py3"}, "environment"),
        ({"pipeline_url": "javascript:alert(1)"}, "pipeline_url"),
        ({"finished_at": timezone.now() - timedelta(days=1)}, "finished_at"),
        ({"colour": "red"}, "colour"),
        ({"model_version": ""}, "model_version"),
        ({"model_version": "v" * 101}, "model_version"),
    ],
)
def test_invalid_training_run_saves_nothing_not_even_its_model_version(project, attrs, field):
    data = {"model_version": "9.9.9", "status": "succeeded", "started_at": timezone.now()}
    with pytest.raises(ValidationError) as e:
        record_training_run(project, actor=cli_actor(), **(data | attrs))
    assert field in e.value.message_dict
    assert not TrainingRun.objects.exists()
    assert not ModelVersion.objects.exists()


def test_deployment_keeps_its_checks(project):
    deployment = make_deployment(
        project,
        environment="staging",
        target="ml-staging",
        reason="New features",
        config={"replicas": 2},
        checks=[{"name": "smoke", "passed": True, "value": 1, "details": "ok"}],
    )
    deployment.refresh_from_db()
    assert deployment.checks[0]["name"] == "smoke"
    assert deployment.model_version.version == "1.0.0"
    assert deployment.history.get().history_change_reason == "Recorded deployment"


@pytest.mark.parametrize(
    ("attrs", "field"),
    [
        ({"status": "done"}, "status"),
        ({"environment": ""}, "environment"),
        ({"checks": {"smoke": True}}, "checks"),
        ({"checks": [{"name": "smoke"}]}, "checks"),
        ({"checks": [{"name": "", "passed": True}]}, "checks"),
        ({"checks": [{"name": "smoke", "passed": "yes"}]}, "checks"),
        ({"checks": [{"name": "smoke", "passed": True, "extra": 1}]}, "checks"),
        ({"config": ["replicas"]}, "config"),
    ],
)
def test_invalid_deployment_saves_nothing(project, attrs, field):
    with pytest.raises(ValidationError) as e:
        make_deployment(project, **attrs)
    assert field in e.value.message_dict
    assert not Deployment.objects.exists()
    assert not ModelVersion.objects.exists()


@pytest.mark.parametrize(
    ("attrs", "field"),
    [
        ({"notes": "\x00"}, "notes"),
        ({"notes": "a\x00b"}, "notes"),
        ({"metrics": {"a\x00": 1.0}}, "metrics"),
        ({"environment": {"libs": ["x\x00"]}}, "environment"),
    ],
)
def test_nul_characters_are_refused_before_they_reach_the_database(project, attrs, field):
    data = {"model_version": "1.0", "status": "succeeded", "started_at": timezone.now()}
    with pytest.raises(ValidationError) as e:
        record_training_run(project, actor=cli_actor(), **(data | attrs))
    assert "NUL" in e.value.message_dict[field][0]
    assert not TrainingRun.objects.exists()


@pytest.mark.filterwarnings("ignore:DateTimeField .* received a naive datetime")
@pytest.mark.parametrize(
    ("started_at", "finished_at", "error"),
    [
        (datetime(2024, 1, 1, 12), datetime(2024, 1, 1, 13, tzinfo=UTC), None),
        (datetime(2024, 1, 1, 12), datetime(2024, 1, 1, 11, tzinfo=UTC), "finished_at"),
        ("not a date", datetime(2024, 1, 1, 13, tzinfo=UTC), "started_at"),
    ],
)
def test_times_are_compared_whatever_their_form(project, started_at, finished_at, error):
    attrs = {"started_at": started_at, "finished_at": finished_at}
    if error is None:
        assert make_training_run(project, **attrs).pk
        return
    with pytest.raises(ValidationError) as e:
        make_training_run(project, **attrs)
    assert error in e.value.message_dict
