"""Pages that update themselves from the records pipelines post."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import UserFactory, make_deployment, make_training_run
from wiki.history import Actor, Source
from wiki.services.records import record_deployment, update_deployment
from wiki.summaries import deployment_summary, maintenance_summary, model_summary

pytestmark = pytest.mark.django_db

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def at(days):
    return T0 + timedelta(days=days)


def test_model_summary_lists_versions_with_runs_deployments_and_the_latest_run(project):
    make_training_run(project, "1.0", started_at=at(0), metrics={"auc": 0.7, "f1": 0.5})
    make_training_run(project, "1.1", started_at=at(10), metrics={"auc": 0.8, "f1": 0.6, "x": 1})
    latest = make_training_run(
        project,
        "1.1",
        started_at=at(11),
        metrics={"auc": 0.82, "f1": 0.61},
        hyperparameters={"lr": 0.1},
    )
    make_deployment(project, "1.1", environment="production", started_at=at(12))
    summary = model_summary(project)
    assert summary["latest_run"]["id"] == latest.id
    assert summary["latest_run"]["hyperparameters"] == {"lr": 0.1}
    assert summary["key_metrics"] == ["auc", "f1"]
    versions = summary["model_versions"]
    assert [v["version"] for v in versions] == ["1.1", "1.0"]
    assert [r["metrics"] for r in versions[0]["training_runs"]] == [
        {"auc": 0.82, "f1": 0.61},
        {"auc": 0.8, "f1": 0.6},
    ]
    assert [d["environment"] for d in versions[0]["deployments"]] == ["production"]
    assert versions[1]["deployments"] == []


def test_a_run_still_running_does_not_hide_the_key_metrics(project):
    make_training_run(project, "1.0", started_at=at(0), metrics={"auc": 0.9})
    running = make_training_run(project, "1.1", status="running", started_at=at(1), metrics={})
    summary = model_summary(project)
    assert summary["latest_run"]["id"] == running.id
    assert summary["key_metrics"] == ["auc"]
    assert summary["model_versions"][1]["training_runs"][0]["metrics"] == {"auc": 0.9}


def test_model_summary_of_a_project_without_records_is_empty(project):
    assert model_summary(project) == {
        "versions_total": 0,
        "key_metrics": [],
        "latest_run": None,
        "model_versions": [],
    }


def test_model_summary_reads_a_bounded_number_of_records(project):
    for version in range(22):
        make_training_run(project, f"{version}.0", started_at=at(version))
    for day in range(15):
        make_training_run(project, "21.0", started_at=at(30 + day))
        make_deployment(project, "21.0", started_at=at(30 + day))
    with CaptureQueriesContext(connection) as queries:
        summary = model_summary(project)
    assert summary["versions_total"] == 22
    assert len(summary["model_versions"]) == 20
    latest = summary["model_versions"][0]
    assert (len(latest["training_runs"]), len(latest["deployments"])) == (10, 10)
    # The per-version limit is applied by the database, not after loading every record.
    assert sum("ROW_NUMBER()" in q["sql"] for q in queries.captured_queries) == 2


def test_the_current_version_per_environment_is_the_latest_success(project):
    make_deployment(project, "1.0", environment="production", started_at=at(0))
    make_deployment(project, "1.0", environment="staging", started_at=at(1))
    rolled = make_deployment(project, "1.1", environment="production", started_at=at(5))
    make_deployment(project, "1.2", environment="production", status="failed", started_at=at(6))
    make_deployment(project, "1.2", environment="staging", started_at=at(7))
    assert [
        (e["environment"], e["model_version"]) for e in deployment_summary(project)["environments"]
    ] == [
        ("production", "1.1"),
        ("staging", "1.2"),
    ]
    update_deployment(rolled, actor=Actor(None, Source.API), status="rolled_back")
    current = {
        e["environment"]: e["model_version"] for e in deployment_summary(project)["environments"]
    }
    assert current == {"production": "1.0", "staging": "1.2"}


def test_the_update_log_says_why_who_when_the_outcome_and_the_checks(project):
    bob = UserFactory(username="bob")
    record_deployment(
        project,
        actor=Actor(bob, Source.API),
        model_version="1.1",
        environment="production",
        status="succeeded",
        started_at=at(3),
        reason="Drift in **support** features.",
        checks=[{"name": "smoke", "passed": True, "value": 1}],
    )
    make_deployment(project, "1.0", environment="staging", started_at=at(1))
    updates = maintenance_summary(project)["updates"]
    assert [u["model_version"] for u in updates] == ["1.1", "1.0"]
    first = updates[0]
    assert (first["recorded_by"], first["status"], first["reason"]) == (
        "bob",
        "succeeded",
        "Drift in **support** features.",
    )
    assert first["checks"] == [{"name": "smoke", "passed": True, "value": 1}]
    assert updates[1]["recorded_by"] == ""


def test_the_pages_show_the_records_without_anyone_editing_them(client_logged_in, project):
    make_training_run(
        project, "2.0", started_at=at(0), metrics={"auc": 0.91}, hyperparameters={"depth": 6}
    )
    make_deployment(
        project, "2.0", environment="production", started_at=at(1), reason="Better **recall**.",
        checks=[{"name": "latency p99", "passed": False, "value": 180}],
    )  # fmt: skip
    model = client_logged_in.get("/projects/churn/model/").content.decode()
    assert "From the records" in model and "<code>2.0</code>" in model
    assert '<th scope="row">depth</th><td>6</td>' in model
    assert '<th scope="row">auc</th><td>0.91</td>' in model
    deployment = client_logged_in.get("/projects/churn/deployment/").content.decode()
    assert "<td>production</td><td><code>2.0</code></td>" in deployment
    maintenance = client_logged_in.get("/projects/churn/maintenance/").content.decode()
    assert "Better <strong>recall</strong>." in maintenance
    assert "✗ latency p99 = 180" in maintenance
    overview = client_logged_in.get("/projects/churn/overview/").content.decode()
    assert "From the records" not in overview


def test_record_pages_take_a_fixed_number_of_queries(
    client_logged_in, project, django_assert_max_num_queries
):
    for version in range(5):
        make_training_run(project, f"{version}.0", started_at=at(version))
        make_deployment(project, f"{version}.0", started_at=at(version), reason="r [[model]]")
    # What the page says, one query per kind of record that makes it stale, and its chart
    # (the model page's: the runs and the version in production; the deployment page's),
    # and the page's attachments (one query, for the panel and the Markdown's figures).
    # Read first, each; the tab marks are the model page's, cached (wiki.caching).
    for category, limit in (("model", 16), ("deployment", 8), ("maintenance", 10)):
        with django_assert_max_num_queries(limit):
            assert client_logged_in.get(f"/projects/churn/{category}/").status_code == 200
