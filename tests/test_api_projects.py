"""Projects over the API, and the API's answers to misuse."""

import json
import time

import pytest
from django.core.cache import cache

from api.auth import _redis
from tests.factories import make_token
from wiki.models import Deployment, Project

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_key(user):
    return make_token(user, scopes=["admin"])[1]


def test_an_admin_token_creates_a_project_with_its_pages(api, admin_key):
    response = api(admin_key).post(
        "/api/v1/projects/",
        {
            "slug": "fraud",
            "name": "Fraud",
            "owner_team": "Risk",
            "tags": ["Real-time"],
            "change_reason": "Onboarding",
        },
    )
    assert response.status_code == 201, response.json()
    assert response["ETag"] == '"1"'
    assert response.json()["completeness"] == 0.0
    project = Project.objects.get(slug="fraud")
    assert (project.tags, project.pages.count()) == (["real-time"], 6)
    row = project.history.get()
    assert (row.history_source, row.history_change_reason) == ("api", "Onboarding")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"slug": "Bad Slug"}, "slug"),
        ({"slug": "new"}, "slug"),
        ({"name": ""}, "name"),
        ({"tags": "a,b"}, "tags"),
        ({"owner": "x"}, "owner"),
    ],
)
def test_bad_projects_are_400_naming_the_field(api, admin_key, body, field):
    data = {"slug": "fraud", "name": "Fraud", "owner_team": "Risk"} | body
    response = api(admin_key).post("/api/v1/projects/", data)
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not Project.objects.exists()


def test_a_duplicate_slug_is_400(api, admin_key, project):
    response = api(admin_key).post(
        "/api/v1/projects/", {"slug": "churn", "name": "x", "owner_team": "T"}
    )
    assert response.status_code == 400
    assert "slug" in response.json()["errors"]


def test_projects_are_changed_with_if_match(api, admin_key, project):
    client = api(admin_key)
    assert client.patch("/api/v1/projects/churn/", {"name": "X"}).status_code == 428
    response = client.patch("/api/v1/projects/churn/", {"name": "Churn v2"}, HTTP_IF_MATCH='"1"')
    assert response.status_code == 200, response.json()
    assert (response.json()["name"], response["ETag"]) == ("Churn v2", '"2"')
    assert (
        client.patch("/api/v1/projects/churn/", {"name": "Y"}, HTTP_IF_MATCH='"1"').status_code
        == 412
    )
    slug = client.patch("/api/v1/projects/churn/", {"slug": "other"}, HTTP_IF_MATCH='"2"')
    assert slug.status_code == 400
    project.refresh_from_db()
    assert (project.name, project.slug) == ("Churn v2", "churn")


def test_malformed_json_is_400_saying_so(api, pipeline_key, project):
    response = api(pipeline_key).post(
        "/api/v1/projects/churn/training-runs/", '{"status": ', content_type="application/json"
    )
    assert response.status_code == 400
    assert "The body is not valid JSON" in response.json()["detail"]


def test_a_body_over_one_mebibyte_is_413(api, pipeline_key, project):
    # (A training run, which may carry its learning curves, may take 4 MiB: test_series.)
    reason = "x" * (1024 * 1024)
    body = json.dumps(
        {"model_version": "1", "environment": "prod", "status": "pending", "reason": reason}
    )
    response = api(pipeline_key).post(
        "/api/v1/projects/churn/deployments/", body, content_type="application/json"
    )
    assert response.status_code == 413
    assert "1024 KiB" in response.json()["detail"]
    assert not Deployment.objects.exists()


def test_a_body_that_is_not_json_is_415(api, pipeline_key, project):
    response = api(pipeline_key).post(
        "/api/v1/projects/churn/training-runs/", "a=b", content_type="text/plain"
    )
    assert response.status_code == 415


def forget_counter(token):
    """A shared (Redis) counter may still count an earlier test run's token with this id."""
    key = f"mlwiki:throttle:token-{token.pk}:{int(time.time() // 86400)}"
    client = _redis()
    if client is not None:
        client.delete(key)
    cache.delete(key)


def test_throttled_requests_are_429_with_retry_after(api, user, project, settings):
    # A day's window: the test cannot straddle two windows (unless run at midnight UTC).
    settings.API_THROTTLE_RATE = "3/day"
    token, key = make_token(user)
    forget_counter(token)
    client = api(key)
    statuses = [client.get("/api/v1/projects/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = client.get("/api/v1/projects/")
    assert int(response["Retry-After"]) > 0
    assert "throttled" in response.json()["detail"].lower()
    # Another token has its own allowance.
    other, other_key = make_token(user)
    forget_counter(other)
    assert api(other_key).get("/api/v1/projects/").status_code == 200


def test_unknown_api_paths_are_json_404s(api, pipeline_key):
    for client in (api(pipeline_key), api()):
        response = client.get("/api/v1/nothing/here/")
        assert response.status_code == 404
        assert response.json()["detail"].startswith("There is nothing at /api/v1/nothing/here/")


def test_methods_not_offered_are_405(api, pipeline_key, project):
    response = api(pipeline_key).delete("/api/v1/projects/churn/")
    assert response.status_code == 405
    assert response.json() == {"status": 405, "detail": 'Method "DELETE" not allowed.'}


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/projects/",
        "/api/v1/projects/churn/",
        "/api/v1/projects/churn/pages/",
        "/api/v1/projects/churn/pages/overview/",
        "/api/v1/projects/churn/training-runs/",
        "/api/v1/projects/churn/training-runs/1/",
        "/api/v1/projects/churn/deployments/",
        "/api/v1/projects/churn/deployments/1/",
        "/api/v1/projects/churn/model-versions/",
    ],
)
def test_options_requests_are_answered_not_crashed(api, admin_key, project, url):
    response = api(admin_key).options(url)
    assert response.status_code == 405
    assert response.json()["detail"] == 'Method "OPTIONS" not allowed.'
