"""Training runs, deployments and model versions over the API."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from tests.factories import ProjectFactory, UserFactory, make_deployment, make_token
from wiki.models import (
    Deployment,
    IdempotencyKey,
    Membership,
    ModelVersion,
    RunValue,
    TrainingRun,
)

pytestmark = pytest.mark.django_db

RUNS = "/api/v1/projects/churn/training-runs/"
DEEP = 1
for _ in range(21):
    DEEP = [DEEP]
DEPLOYMENTS = "/api/v1/projects/churn/deployments/"


def run_body(**changes):
    body = {
        "model_version": "2.0.0",
        "status": "succeeded",
        "started_at": "2024-06-01T10:00:00Z",
        "finished_at": "2024-06-01T10:12:00+00:00",
        "git_commit": "a1b2c3d4e5f6",
        "pipeline_url": "https://ci.example.com/runs/42",
        "dataset": {"name": "customers", "version": "2024-05-31", "uri": "s3://data/c.parquet"},
        "hyperparameters": {"learning_rate": 0.05, "num_leaves": 63, "boosting": "gbdt"},
        "metrics": {"auc": 0.84, "logloss": 0.21},
        "tags": {"trigger": "nightly"},
        "environment": {"python": "3.11.7", "lightgbm": "4.3.0"},
        "notes": "Retrained on **May** data.",
    }
    return body | changes


def deployment_body(**changes):
    body = {
        "model_version": "2.0.0",
        "environment": "production",
        "target": "ml-prod/churn",
        "status": "pending",
        "config": {"replicas": 3},
        "reason": "Drift on support features.",
        "started_at": "2024-06-02T08:00:00Z",
    }
    return body | changes


def test_posting_a_training_run_stores_it_and_answers_201_with_id_and_url(
    api, pipeline_key, project
):
    response = api(pipeline_key).post(RUNS, run_body())
    assert response.status_code == 201, response.json()
    data = response.json()
    run = TrainingRun.objects.get(pk=data["id"])
    assert data["url"] == f"http://testserver{RUNS}{run.pk}/"
    assert (run.model_version.version, run.dataset_name, run.dataset_uri) == (
        "2.0.0",
        "customers",
        "s3://data/c.parquet",
    )
    assert run.metrics == {"auc": 0.84, "logloss": 0.21}
    assert run.finished_at == datetime(2024, 6, 1, 10, 12, tzinfo=UTC)
    assert data["dataset"] == {
        "name": "customers",
        "version": "2024-05-31",
        "uri": "s3://data/c.parquet",
    }
    assert api(pipeline_key).get(data["url"]).json() == data


def test_a_posted_run_is_recorded_with_source_api_user_and_token(api, user, project):
    token, key = make_token(user, scopes=["records:write"], projects=["churn"], name="CI churn")
    response = api(key).post(RUNS, run_body())
    row = TrainingRun.objects.get(pk=response.json()["id"]).history.get()
    assert (row.history_source, row.history_user, row.history_username) == ("api", user, "alice")
    assert (row.history_token_id, row.history_token_name) == (token.pk, "CI churn")
    version_row = ModelVersion.objects.get(version="2.0.0").history.get()
    assert version_row.history_token_name == "CI churn"


def test_a_minimal_run_needs_only_version_status_and_start(api, pipeline_key, project):
    body = {"model_version": "1", "status": "running", "started_at": "2024-06-01T10:00:00Z"}
    response = api(pipeline_key).post(RUNS, body)
    assert response.status_code == 201
    assert response.json()["metrics"] == {}


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"metrics": {"auc": "high"}}, "metrics", "finite number"),
        ({"metrics": {f"m{i}": 1 for i in range(1001)}}, "metrics", "At most 1000"),
        ({"hyperparameters": {f"p{i}": 1 for i in range(1001)}}, "hyperparameters", "1000"),
        ({"hyperparameters": {"layers": [64, 32]}}, "hyperparameters", "scalar"),
        ({"tags": {"n": 1}}, "tags", "must be a string"),
        ({"started_at": "2024-06-01T10:00:00"}, "started_at", "time zone"),
        ({"started_at": "yesterday"}, "started_at", "Not a date and time"),
        ({"started_at": "2024-02-30T10:00:00Z"}, "started_at", "No such date or time"),
        ({"started_at": "2024-06-01T10:00:00+99:00"}, "started_at", "No such date or time"),
        ({"started_at": "0001-01-01T00:00:00+14:00"}, "started_at", "Is before 1970"),
        ({"started_at": "0001-01-01T00:00:00Z"}, "started_at", "Is before 1970"),
        ({"started_at": "2024-06-01"}, "started_at", "Give the time"),
        ({"started_at": "2099-01-01T00:00:00Z"}, "started_at", "in the future"),
        ({"metrics": {"auc": 10**400}}, "metrics", "finite number"),
        ({"model_version": "2.0 \u202eevil"}, "model_version", "letters, digits"),
        ({"git_commit": "main; rm -rf /"}, "git_commit", "hexadecimal"),
        ({"pipeline_url": "ftp://ci.example.com/1"}, "pipeline_url", "valid URL"),
        ({"tags": {"t": "x" * 10_001}}, "tags", "10,000"),
        ({"metrics": {"m" * 201: 1}}, "metrics", "at most 200"),
        ({"environment": {"a": DEEP}}, "environment", "Nested more than 20"),
        ({"finished_at": "2024-06-01T09:00:00Z"}, "finished_at", "before started_at"),
        ({"status": "done"}, "status", "not a valid choice"),
        ({"model_version": ""}, "model_version", "may not be blank"),
        ({"model_version": 5}, "model_version", "Must be a string"),
        ({"pipeline_url": "javascript:alert(1)"}, "pipeline_url", "valid URL"),
        ({"dataset": {"name": "c", "colour": "x"}}, "dataset", "Unknown field"),
        ({"learning_rate": 0.1}, "learning_rate", "Unknown field"),
        ({"environment": ["py3"]}, "environment", "Must be a JSON object"),
        ({"notes": "a\x00b"}, "notes", "Null characters"),
    ],
)
def test_bad_runs_get_a_400_naming_the_field_and_save_nothing(
    api, pipeline_key, project, changes, field, message
):
    response = api(pipeline_key).post(RUNS, run_body(**changes))
    assert response.status_code == 400, response.json()
    body = response.json()
    assert field in body["errors"], body
    assert message in json.dumps(body["errors"][field]), body
    assert field in body["detail"]
    assert not TrainingRun.objects.exists()
    assert not ModelVersion.objects.exists()


@pytest.mark.parametrize("number", ["1e999", "-1e999", "NaN", "Infinity"])
def test_metrics_that_are_not_finite_numbers_are_refused(api, pipeline_key, project, number):
    body = json.dumps(run_body())[:-1] + f', "metrics": {{"auc": {number}}}}}'
    body = body.replace('"metrics": {"auc": 0.84, "logloss": 0.21}, ', "")
    response = api(pipeline_key).post(RUNS, body, content_type="application/json")
    assert response.status_code == 400
    assert "metrics" in response.json()["detail"] or "JSON" in response.json()["detail"]
    assert not TrainingRun.objects.exists()


def test_missing_required_fields_are_named(api, pipeline_key, project):
    response = api(pipeline_key).post(RUNS, {})
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"model_version", "status", "started_at"}


def test_runs_are_append_only(api, pipeline_key, project):
    run_url = api(pipeline_key).post(RUNS, run_body()).json()["url"]
    for method in ("put", "patch", "delete"):
        response = getattr(api(pipeline_key), method)(run_url, {"status": "failed"})
        assert response.status_code == 405, method
    assert TrainingRun.objects.get().status == "succeeded"


def _post_runs(api, key, *bodies):
    return [api(key).post(RUNS, body).json()["id"] for body in bodies]


def test_runs_are_listed_newest_first_and_filtered(api, pipeline_key, project):
    ids = _post_runs(
        api,
        pipeline_key,
        run_body(model_version="1.0", started_at="2024-01-01T00:00:00Z", git_commit="aaa111"),
        run_body(model_version="1.1", started_at="2024-02-01T00:00:00Z", status="failed"),
        run_body(model_version="1.1", started_at="2024-03-01T00:00:00Z", git_commit="abc999"),
    )
    client = api(pipeline_key)

    def listed(query=""):
        response = client.get(RUNS + query)
        assert response.status_code == 200, response.json()
        return [run["id"] for run in response.json()["results"]]

    assert listed() == ids[::-1]
    assert listed("?ordering=started_at") == ids
    assert listed("?model_version=1.1") == [ids[2], ids[1]]
    assert listed("?status=failed") == [ids[1]]
    assert listed("?since=2024-02-01T00:00:00Z") == [ids[2], ids[1]]
    assert listed("?until=2024-02-01T00:00:00Z") == [ids[0]]
    assert listed("?git_commit=abc") == [ids[2]]


def test_runs_can_be_ordered_by_a_metric(api, pipeline_key, project):
    ids = _post_runs(
        api,
        pipeline_key,
        run_body(metrics={"auc": 0.7}),
        run_body(metrics={"auc": 0.9}),
        run_body(metrics={"logloss": 0.3}),
        run_body(metrics={"auc": 0.8}),
    )
    client = api(pipeline_key)
    best_first = client.get(RUNS + "?ordering=-metric:auc").json()["results"]
    assert [r["id"] for r in best_first] == [ids[1], ids[3], ids[0]]
    worst_first = client.get(RUNS + "?ordering=metric:auc").json()["results"]
    assert [r["id"] for r in worst_first] == [ids[0], ids[3], ids[1]]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?status=done", "status"),
        ("?since=yesterday", "since"),
        ("?until=2024-01-01T00:00:00", "until"),
        ("?ordering=colour", "ordering"),
        ("?ordering=-metric:", "ordering"),
    ],
)
def test_bad_filters_are_400_naming_them(api, pipeline_key, project, query, field):
    response = api(pipeline_key).get(RUNS + query)
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_cursor_pages_are_stable_when_runs_arrive_meanwhile(api, pipeline_key, project):
    ids = _post_runs(
        api,
        pipeline_key,
        *[run_body(started_at=f"2024-01-{day:02d}T00:00:00Z") for day in range(1, 6)],
    )
    client = api(pipeline_key)
    first = client.get(RUNS + "?page_size=2").json()
    assert [r["id"] for r in first["results"]] == [ids[4], ids[3]]
    _post_runs(api, pipeline_key, run_body(started_at="2024-02-01T00:00:00Z"))
    second = client.get(first["next"]).json()
    assert [r["id"] for r in second["results"]] == [ids[2], ids[1]]
    third = client.get(second["next"]).json()
    assert [r["id"] for r in third["results"]] == [ids[0]]
    assert third["next"] is None


def test_creating_a_run_takes_a_fixed_number_of_queries(
    api, pipeline_key, project, django_assert_max_num_queries
):
    client = api(pipeline_key)
    client.post(RUNS, run_body())  # the version exists and the token's last use is recorded
    # the access version with the project (the token is cached, wiki.access), claim of the
    # key, model version, run, its history row, its audit link (head; entry and head
    # digest), its search entry and its metrics and parameters as rows (one insert, for the
    # runs table), the project's records version, the answer stored under the key; and the
    # savepoint pair the test's own transaction turns the request's into. On PostgreSQL,
    # the metrics and parameters go by COPY and the rest that follows the head's advance
    # is one statement (wiki.statements): 3 fewer.
    fewer = 3 if connection.vendor == "postgresql" else 0
    with django_assert_max_num_queries(14 - fewer):
        assert client.post(RUNS, run_body(), HTTP_IDEMPOTENCY_KEY="k-1").status_code == 201
    with django_assert_max_num_queries(10 - fewer):
        assert client.post(RUNS, run_body()).status_code == 201


def test_a_replayed_post_returns_the_first_response_and_creates_nothing(api, pipeline_key, project):
    client = api(pipeline_key)
    first = client.post(RUNS, run_body(), HTTP_IDEMPOTENCY_KEY="pipeline-42")
    assert first.status_code == 201
    # Same body, keys in another order and other whitespace: the same request.
    body = json.dumps(dict(reversed(list(run_body().items()))), indent=2)
    replay = client.post(
        RUNS, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="pipeline-42"
    )
    assert replay.status_code == 200
    assert replay.json() == first.json()
    assert replay["Idempotent-Replayed"] == "true"
    assert TrainingRun.objects.count() == 1


def test_the_same_key_with_another_body_is_a_422(api, pipeline_key, project):
    client = api(pipeline_key)
    client.post(RUNS, run_body(), HTTP_IDEMPOTENCY_KEY="pipeline-42")
    response = client.post(
        RUNS, run_body(metrics={"auc": 0.99}), HTTP_IDEMPOTENCY_KEY="pipeline-42"
    )
    assert response.status_code == 422
    assert "already used for a different request" in response.json()["detail"]
    assert TrainingRun.objects.count() == 1


def test_keys_are_per_project_and_failed_writes_do_not_use_them_up(api, user, project):
    Membership.objects.create(project=ProjectFactory(slug="fraud"), user=user, role="editor")
    _, key = make_token(user, scopes=["records:write"])
    client = api(key)
    bad = client.post(RUNS, run_body(status="done"), HTTP_IDEMPOTENCY_KEY="k")
    assert bad.status_code == 400
    assert client.post(RUNS, run_body(), HTTP_IDEMPOTENCY_KEY="k").status_code == 201
    other = client.post(
        "/api/v1/projects/fraud/training-runs/", run_body(), HTTP_IDEMPOTENCY_KEY="k"
    )
    assert other.status_code == 201
    assert IdempotencyKey.objects.count() == 2


@pytest.mark.parametrize("key", ["", "x" * 256, "é", "line\nbreak"])
def test_unusable_idempotency_keys_are_400(api, pipeline_key, project, key):
    response = api(pipeline_key).post(RUNS, run_body(), HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["errors"]


def test_a_deployment_moves_forward_and_every_step_is_a_revision(api, pipeline_key, project):
    client = api(pipeline_key)
    created = client.post(DEPLOYMENTS, deployment_body())
    assert created.status_code == 201, created.json()
    url = created.json()["url"]
    step = client.patch(url, {"status": "in_progress"})
    assert step.json()["status"] == "in_progress"
    done = client.patch(
        url,
        {
            "status": "succeeded",
            "finished_at": "2024-06-02T08:20:00Z",
            "checks": [{"name": "smoke", "passed": True, "value": 1, "details": "ok"}],
        },
    )
    assert done.status_code == 200, done.json()
    more = client.patch(url, {"checks": [{"name": "latency p99", "passed": True, "value": 87}]})
    assert [c["name"] for c in more.json()["checks"]] == ["smoke", "latency p99"]
    rolled = client.patch(url, {"status": "rolled_back", "model_version": "2.0.0"})
    assert rolled.json()["status"] == "rolled_back"
    deployment = Deployment.objects.get()
    statuses = [r.status for r in deployment.history.order_by("history_id")]
    assert statuses == ["pending", "in_progress", "succeeded", "succeeded", "rolled_back"]
    assert {r.history_source for r in deployment.history.all()} == {"api"}


@pytest.mark.parametrize(
    ("start", "change", "message"),
    [
        ("succeeded", {"status": "pending"}, "cannot go from succeeded to pending"),
        ("failed", {"status": "rolled_back"}, "cannot go from failed to rolled_back"),
        ("in_progress", {"status": "rolled_back"}, "cannot go from in_progress"),
        ("pending", {"status": "succeeded"}, "cannot go from pending to succeeded"),
        ("pending", {"environment": "staging"}, "environment cannot change"),
        ("pending", {"model_version": "3.0"}, "model_version cannot change"),
        ("pending", {"reason": "Other"}, "reason cannot change"),
    ],
)
def test_other_deployment_changes_are_409_with_a_message(
    api, pipeline_key, project, start, change, message
):
    url = api(pipeline_key).post(DEPLOYMENTS, deployment_body(status=start)).json()["url"]
    response = api(pipeline_key).patch(url, change)
    assert response.status_code == 409, response.json()
    assert message in response.json()["detail"]
    assert Deployment.objects.get().status == start
    assert Deployment.objects.get().history.count() == 1


def test_finished_at_is_set_once_and_only_with_a_final_status(api, pipeline_key, project):
    url = api(pipeline_key).post(DEPLOYMENTS, deployment_body(status="in_progress")).json()["url"]
    early = api(pipeline_key).patch(url, {"finished_at": "2024-06-02T09:00:00Z"})
    assert early.status_code == 400
    assert "has not finished" in early.json()["errors"]["finished_at"][0]
    done = {"status": "succeeded", "finished_at": "2024-06-02T09:00:00Z"}
    assert api(pipeline_key).patch(url, done).status_code == 200
    again = api(pipeline_key).patch(url, {"finished_at": "2024-06-02T09:00:00Z"})
    assert again.status_code == 200
    changed = api(pipeline_key).patch(url, {"finished_at": "2024-06-02T10:00:00Z"})
    assert changed.status_code == 409


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"status": "done"}, "status"),
        ({"checks": [{"name": "x"}]}, "checks"),
        ({"checks": {"name": "x", "passed": True}}, "checks"),
        ({"finished_at": "2024-06-02T09:00:00"}, "finished_at"),
        ({"finished_at": "2024-06-01T00:00:00Z"}, "finished_at"),
    ],
)
def test_bad_deployment_updates_are_400(api, pipeline_key, project, change, field):
    url = api(pipeline_key).post(DEPLOYMENTS, deployment_body()).json()["url"]
    response = api(pipeline_key).patch(url, change)
    assert response.status_code == 400, response.json()
    assert field in response.json()["errors"]


def test_a_replayed_deployment_update_appends_its_checks_once(api, pipeline_key, project):
    url = api(pipeline_key).post(DEPLOYMENTS, deployment_body(status="in_progress")).json()["url"]
    change = {"status": "succeeded", "checks": [{"name": "smoke", "passed": True}]}
    for _ in range(3):
        response = api(pipeline_key).patch(url, change, HTTP_IDEMPOTENCY_KEY="finish-7")
    assert response.status_code == 200
    assert len(Deployment.objects.get().checks) == 1


def test_deployments_are_filtered_by_environment_and_status(api, pipeline_key, project):
    client = api(pipeline_key)
    client.post(DEPLOYMENTS, deployment_body(environment="staging", status="succeeded"))
    client.post(DEPLOYMENTS, deployment_body(environment="production", status="failed"))
    staging = client.get(DEPLOYMENTS + "?environment=staging").json()["results"]
    assert [d["environment"] for d in staging] == ["staging"]
    failed = client.get(DEPLOYMENTS + "?status=failed").json()["results"]
    assert [d["status"] for d in failed] == ["failed"]


def test_a_deployment_of_another_project_is_404(api, user, project):
    other = ProjectFactory(slug="fraud")
    deployment = make_deployment(other)
    _, key = make_token(user, scopes=["records:write"])
    assert api(key).get(f"{DEPLOYMENTS}{deployment.pk}/").status_code == 404
    assert api(key).patch(f"{DEPLOYMENTS}{deployment.pk}/", {"status": "failed"}).status_code == 404


def test_model_versions_are_listed_and_registered_by_hand(api, user, project):
    _, key = make_token(user, scopes=["pages:write"])
    client = api(key)
    created = client.post(
        "/api/v1/projects/churn/model-versions/",
        {"version": "3.0.0", "description": "Planned", "change_reason": "Plan"},
    )
    assert created.status_code == 201, created.json()
    again = client.post("/api/v1/projects/churn/model-versions/", {"version": "3.0.0"})
    assert again.status_code == 409
    listed = client.get("/api/v1/projects/churn/model-versions/").json()["results"]
    assert [v["version"] for v in listed] == ["3.0.0"]
    version = ModelVersion.objects.get()
    assert version.history.get().history_change_reason == "Plan"


def test_records_time_filters_compare_instants(api, pipeline_key, project):
    _post_runs(api, pipeline_key, run_body(started_at="2024-01-01T10:00:00+02:00"))
    since = (datetime(2024, 1, 1, 8, 0, tzinfo=UTC) - timedelta(seconds=1)).isoformat()
    response = api(pipeline_key).get(RUNS, {"since": since})
    assert len(response.json()["results"]) == 1
    response = api(pipeline_key).get(RUNS, {"since": "2024-01-01T08:00:01+00:00"})
    assert response.json()["results"] == []


def test_another_users_token_for_the_project_works_too(api, project):
    bot = UserFactory(username="ci-bot")
    Membership.objects.create(project=project, user=bot, role="editor")
    _, key = make_token(bot, scopes=["records:write"], projects=["churn"])
    response = api(key).post(RUNS, run_body())
    assert response.status_code == 201
    assert TrainingRun.objects.get().history.get().history_username == "ci-bot"


def test_deployment_times_default_to_when_the_wiki_hears_of_them(api, pipeline_key, project):
    before = datetime.now(UTC)
    body = deployment_body()
    del body["started_at"]
    created = api(pipeline_key).post(DEPLOYMENTS, body).json()
    deployment = Deployment.objects.get(pk=created["id"])
    assert deployment.started_at >= before and deployment.finished_at is None
    api(pipeline_key).patch(created["url"], {"status": "in_progress"})
    assert Deployment.objects.get().finished_at is None
    api(pipeline_key).patch(created["url"], {"status": "failed"})
    assert Deployment.objects.get().finished_at >= deployment.started_at


def test_cursor_pages_walk_runs_with_equal_times_without_gaps_or_repeats(
    api, pipeline_key, project
):
    ids = _post_runs(api, pipeline_key, *[run_body() for _ in range(7)])  # one started_at
    client = api(pipeline_key)
    seen, url, pages = [], RUNS + "?page_size=3", []
    while url:
        page = client.get(url).json()
        pages.append(page)
        seen += [run["id"] for run in page["results"]]
        url = page["next"]
    assert seen == sorted(ids, reverse=True)
    assert [len(p["results"]) for p in pages] == [3, 3, 1]
    back = client.get(pages[2]["previous"]).json()
    assert [run["id"] for run in back["results"]] == [r["id"] for r in pages[1]["results"]]
    assert client.get(back["previous"]).json()["previous"] is None


def test_metric_order_pages_with_a_cursor(api, pipeline_key, project):
    ids = _post_runs(api, pipeline_key, *[run_body(metrics={"auc": v}) for v in (0.5, 0.9, 0.7)])
    client = api(pipeline_key)
    first = client.get(RUNS + "?ordering=-metric:auc&page_size=2").json()
    second = client.get(first["next"]).json()
    assert [r["id"] for r in first["results"] + second["results"]] == [ids[1], ids[2], ids[0]]


@pytest.mark.parametrize(
    "query",
    ["?cursor=nonsense", "?cursor=WzEsMl0", "?page_size=0", "?page_size=201", "?page_size=x"],
)
def test_bad_cursors_and_page_sizes_are_400(api, pipeline_key, project, query):
    response = api(pipeline_key).get(RUNS + query)
    assert response.status_code == 400
    assert set(response.json()["errors"]) <= {"cursor", "page_size"}


def test_a_parameter_too_large_for_a_float_is_kept_and_sorts_as_nothing(api, pipeline_key):
    huge = 10**400
    response = api(pipeline_key).post(RUNS, run_body(hyperparameters={"seed": huge}))
    assert response.status_code == 201, response.content
    (value,) = RunValue.objects.filter(training_run_id=response.json()["id"], kind="p")
    assert (value.number, value.text) == (None, str(huge)[:200])
