"""What a careless or hostile client can send the API: a clear answer, never a 500."""

import base64
import json

import pytest
from django.db import connection
from django.test import RequestFactory

from api import auth
from api.errors import csrf_failure, server_error
from tests.factories import ProjectFactory, make_deployment, make_token
from wiki.models import Deployment, Membership, ModelVersion, Project, TrainingRun

pytestmark = pytest.mark.django_db

RUNS = "/api/v1/projects/churn/training-runs/"
DEPLOYMENTS = "/api/v1/projects/churn/deployments/"
RUN = {"model_version": "1.0", "status": "succeeded", "started_at": "2024-06-01T10:00:00Z"}


def cursor(*parts):
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        (f"?cursor={cursor('-metric_value', 0.5, 1, False)}", "cursor"),  # another order's
        (f"?ordering=metric:auc&cursor={cursor('started_at', '2024-01-01', 1, 0)}", "cursor"),
        (f"?cursor={cursor('-started_at', [1], 1, False)}", "cursor"),
        (f"?cursor={cursor('-started_at', '2024-01-01T00:00:00', 1, False)}", "cursor"),
        (f"?cursor={cursor('-started_at', '2024-02-30T00:00:00+00:00', 1, False)}", "cursor"),
        (f"?ordering=-metric:auc&cursor={cursor('-metric_value', 0.5, 2**70, False)}", "cursor"),
        (f"?ordering=-metric:auc&cursor={cursor('-metric_value', None, 1, False)}", "cursor"),
        ("?model_version=a%00b", "model_version"),
        ("?ordering=metric:a%00b", "ordering"),
        ("?model_versoin=1.0", "model_versoin"),
        ("?status=failed&status=succeeded", "status"),
        ("?since=2024-13-01T00:00:00Z", "since"),
        ("?since=2024-08-01T00:00:00 02:00", "since"),
    ],
)  # fmt: skip
def test_forged_cursors_and_odd_filters_are_400_naming_the_parameter(
    api, pipeline_key, project, query, parameter
):
    response = api(pipeline_key).get(RUNS + query)
    assert response.status_code == 400, response.content
    assert parameter in response.json()["errors"]


def test_a_plus_sent_unencoded_in_a_time_is_explained(api, pipeline_key, project):
    response = api(pipeline_key).get(RUNS + "?since=2024-08-01T00:00:00+02:00")
    assert "%2B" in response.json()["errors"]["since"][0]


def test_json_nested_past_the_limit_is_400(api, pipeline_key, project):
    body = json.dumps(RUN | {"environment": {"a": "[" * 40 + "]" * 40}})
    deep = body.replace('"' + "[" * 40 + "]" * 40 + '"', "[" * 40 + "]" * 40)
    response = api(pipeline_key).post(RUNS, deep, content_type="application/json")
    assert response.status_code == 400
    assert "nested more than 32 levels" in response.json()["detail"]
    very_deep = '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = api(pipeline_key).post(RUNS, very_deep, content_type="application/json")
    assert response.status_code == 400


def test_nan_and_infinity_literals_are_refused_naming_the_field(api, pipeline_key, project):
    for field, value in (("metrics", '{"auc": NaN}'), ("hyperparameters", '{"lr": Infinity}')):
        body = json.dumps(RUN)[:-1] + f', "{field}": {value}}}'
        response = api(pipeline_key).post(RUNS, body, content_type="application/json")
        assert response.status_code == 400
        assert field in response.json()["errors"], response.json()
    assert not TrainingRun.objects.exists()


def test_a_body_that_is_not_an_object_says_so(api, pipeline_key, project):
    response = api(pipeline_key).post(RUNS, [RUN])
    assert response.status_code == 400
    assert "Send a JSON object" in response.json()["detail"]


def test_a_body_that_is_not_json_says_what_to_send(api, pipeline_key, project):
    response = api(pipeline_key).post(RUNS, "a=b", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert "Content-Type: application/json" in response.json()["detail"]


@pytest.mark.parametrize(
    "url", ["/api/v1/projects/churn/training-runs", "/api/v1/nothing/", "/api/", "/api/v2/x/"]
)
def test_writes_to_unknown_api_paths_are_json_404s_not_csrf_pages(api, pipeline_key, project, url):
    response = api(pipeline_key).post(url, RUN)
    assert response.status_code == 404
    assert response.json()["detail"].startswith(f"There is nothing at {url}")


def test_server_errors_and_csrf_failures_under_the_api_are_json():
    factory = RequestFactory()
    api_error = server_error(factory.get("/api/v1/projects/"))
    assert api_error.status_code == 500
    assert json.loads(api_error.content)["status"] == 500
    page_error = server_error(factory.get("/projects/"))
    assert page_error.status_code == 500 and b"<html" in page_error.content.lower()
    refused = csrf_failure(factory.post("/api/v1/projects/"), reason="CSRF cookie not set.")
    assert refused.status_code == 403
    assert "X-CSRFToken" in json.loads(refused.content)["detail"]


def test_options_is_neither_served_nor_offered(api, pipeline_key, project):
    response = api(pipeline_key).options(RUNS)
    assert response.status_code == 405
    assert "OPTIONS" not in response["Allow"] and "POST" in response["Allow"]


def test_created_records_say_where_they_are(api, pipeline_key, project):
    response = api(pipeline_key).post(RUNS, RUN)
    assert response["Location"] == response.json()["url"]
    response = api(pipeline_key).post(
        DEPLOYMENTS, {**RUN, "environment": "prod", "status": "pending"}
    )
    assert response["Location"] == response.json()["url"]


def test_the_project_is_checked_before_if_match(api, user, project):
    fraud = ProjectFactory(slug="fraud")
    Membership.objects.create(project=fraud, user=user, role=Membership.Role.EDITOR)
    _, key = make_token(user, scopes=["pages:write"], projects=["churn"])
    assert api(key).patch("/api/v1/projects/fraud/pages/overview/", {}).status_code == 403
    assert api(key).patch("/api/v1/projects/nope/pages/overview/", {}).status_code == 404
    assert api(key).patch("/api/v1/projects/churn/pages/nope/", {}).status_code == 404


def test_a_pipeline_token_writes_nothing_in_another_project(api, user, project):
    other = ProjectFactory(slug="fraud")
    Membership.objects.create(project=other, user=user, role=Membership.Role.MAINTAINER)
    deployment = make_deployment(other, status="in_progress")
    _, key = make_token(user, scopes=["records:write", "pages:write"], projects=["churn"])
    client = api(key)
    for method, url, body in [
        ("post", "/api/v1/projects/fraud/training-runs/", RUN),
        ("post", "/api/v1/projects/fraud/deployments/", {**RUN, "environment": "p"}),
        ("patch", f"/api/v1/projects/fraud/deployments/{deployment.pk}/", {"status": "failed"}),
        ("patch", "/api/v1/projects/fraud/pages/overview/", {"body": "x"}),
        ("post", "/api/v1/projects/fraud/model-versions/", {"version": "9"}),
        ("get", "/api/v1/projects/fraud/training-runs/", None),
    ]:
        response = getattr(client, method)(url, body, HTTP_IF_MATCH='"1"')
        assert response.status_code == 403, (method, url)
    assert not TrainingRun.objects.exists()
    assert Deployment.objects.get().status == "in_progress"
    assert other.pages.get(category="overview").revision == 1
    assert not ModelVersion.objects.filter(version="9").exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "rolled_back"}, "status"),
        ({"status": "pending", "finished_at": "2024-06-01T11:00:00Z"}, "finished_at"),
        ({"status": "pending", "checks": [{"name": "x", "passed": "yes"}]}, "checks"),
        ({"status": "pending", "checks": [{"name": "x", "passed": 1}]}, "checks"),
        (
            {
                "status": "pending",
                "checks": [{"name": f"c{i}", "passed": True} for i in range(1001)],
            },
            "checks",
        ),
    ],
)
def test_deployments_are_recorded_in_a_state_they_can_be_in(
    api, pipeline_key, project, body, field
):
    response = api(pipeline_key).post(DEPLOYMENTS, {**RUN, "environment": "prod", **body})
    assert response.status_code == 400, response.json()
    assert field in response.json()["errors"]
    assert not Deployment.objects.exists()


def test_a_deployment_recorded_after_the_fact_without_its_end_time_keeps_it_unknown(
    api, pipeline_key, project
):
    # Started in 2024 and posted today: "finished now" would be a false time.
    response = api(pipeline_key).post(DEPLOYMENTS, {**RUN, "environment": "prod"})
    assert response.status_code == 201
    assert response.json()["finished_at"] is None
    # Nor does rolling it back say when it finished.
    rolled_back = api(pipeline_key).patch(response.json()["url"], {"status": "rolled_back"})
    assert rolled_back.json()["status"] == "rolled_back"
    assert rolled_back.json()["finished_at"] is None
    given = {**RUN, "environment": "prod", "finished_at": "2024-06-01T10:20:00Z"}
    assert api(pipeline_key).post(DEPLOYMENTS, given).json()["finished_at"] == (
        "2024-06-01T10:20:00Z"
    )


def test_sending_back_the_recorded_checks_adds_only_new_ones(api, pipeline_key, project):
    client = api(pipeline_key)
    created = client.post(
        DEPLOYMENTS,
        {**RUN, "environment": "prod", "status": "in_progress",
         "checks": [{"name": "smoke", "passed": True}]},
    ).json()  # fmt: skip
    read = client.get(created["url"]).json()
    checks = read["checks"] + [{"name": "load", "passed": True}]
    response = client.patch(created["url"], {"status": "succeeded", "checks": checks})
    assert [c["name"] for c in response.json()["checks"]] == ["smoke", "load"]


def test_registering_a_model_version_is_retry_safe(api, user, project):
    _, key = make_token(user, scopes=["pages:write"])
    client = api(key)
    url = "/api/v1/projects/churn/model-versions/"
    first = client.post(url, {"version": "3.0.0"}, HTTP_IDEMPOTENCY_KEY="mv-1")
    replay = client.post(url, {"version": "3.0.0"}, HTTP_IDEMPOTENCY_KEY="mv-1")
    assert (first.status_code, replay.status_code) == (201, 200)
    assert replay.json() == first.json()


def test_lists_filter_projects_pages_and_versions(api, user, project):
    fraud = ProjectFactory(slug="fraud", owner_team="Risk", tags=["real-time"])
    Membership.objects.create(project=fraud, user=user, role="viewer")
    _, key = make_token(user, scopes=["admin"])
    client = api(key)

    def slugs(url):
        return [
            item.get("slug") or item.get("version") for item in client.get(url).json()["results"]
        ]

    assert slugs("/api/v1/projects/?tag=real-time") == ["fraud"]
    assert slugs("/api/v1/projects/?owner_team=ML%20platform") == ["churn"]
    assert slugs("/api/v1/projects/churn/pages/?kind=free") == []
    assert len(slugs("/api/v1/projects/churn/pages/?kind=category")) == 6
    client.post("/api/v1/projects/churn/model-versions/", {"version": "2.1.0"})
    client.post("/api/v1/projects/churn/model-versions/", {"version": "3.0.0"})
    assert slugs("/api/v1/projects/churn/model-versions/?version=2.") == ["2.1.0"]
    assert client.get("/api/v1/projects/?colour=red").status_code == 400
    assert client.get("/api/v1/projects/churn/pages/?kind=other").status_code == 400


@pytest.mark.parametrize(
    "query",
    ["?page_size=0", "?page_size=-1", "?page_size=1000", "?page=0", "?page=²", "?page_size=²"],
)
def test_numbered_pages_refuse_impossible_sizes(api, pipeline_key, project, query):
    response = api(pipeline_key).get("/api/v1/projects/" + query)
    assert response.status_code == 400


def test_requests_are_served_when_the_throttle_cannot_count(api, pipeline_key, project, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    auth._redis.cache_clear()
    try:
        assert api(pipeline_key).get("/api/v1/projects/").status_code == 200
    finally:
        auth._redis.cache_clear()


def test_the_docs_allow_swagger_styles_and_icons_and_nothing_else(client_logged_in):
    policy = client_logged_in.get("/api/docs/")["Content-Security-Policy"]
    assert "style-src 'self' 'unsafe-inline'" in policy
    assert "img-src 'self' https: data:" in policy
    assert "script-src" not in policy and "default-src 'self'" in policy
    page_policy = client_logged_in.get("/")["Content-Security-Policy"]
    assert "unsafe-inline" not in page_policy


def test_creating_and_moving_deployments_take_a_fixed_number_of_queries(
    api, pipeline_key, project, django_assert_max_num_queries
):
    client = api(pipeline_key)
    body = {**RUN, "environment": "prod", "status": "in_progress"}
    client.post(DEPLOYMENTS, body)  # the version exists and the token's last use is recorded
    # the access version with the project (the token is cached, wiki.access), claim, model
    # version, deployment, history, audit link (head; entry and head digest), the project's
    # records version, answer, and the test's savepoints; on PostgreSQL what follows the
    # head's advance is one statement (wiki.statements)
    postgresql = connection.vendor == "postgresql"
    with django_assert_max_num_queries(10 if postgresql else 12):
        created = client.post(DEPLOYMENTS, body, HTTP_IDEMPOTENCY_KEY="d-1")
    # the access version with the project, deployment, claim, lock, save, history (+ its
    # audit link: head; entry and head digest, one statement on PostgreSQL), the project's
    # records version, answer, and the test's savepoints
    with django_assert_max_num_queries(14 if postgresql else 15):
        client.patch(created.json()["url"], {"status": "succeeded"}, HTTP_IDEMPOTENCY_KEY="d-2")
    assert Project.objects.count() == 1


@pytest.mark.parametrize(
    "path", ["/", "/accounts/login/", "/api/v1/projects/", "/healthz/", "/no/such/page/"]
)
def test_every_response_refuses_the_browser_features_the_wiki_never_uses(client_logged_in, path):
    policy = client_logged_in.get(path)["Permissions-Policy"]
    for feature in ["camera", "microphone", "geolocation", "payment", "usb"]:
        assert f"{feature}=()" in policy
