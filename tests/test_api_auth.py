"""Tokens: issued hashed, checked on every request, limited to scopes and projects."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from tests.factories import ProjectFactory, UserFactory, make_token
from wiki.history import Actor, Source
from wiki.models import ApiToken, Membership
from wiki.services.tokens import hash_key, revoke_token

pytestmark = pytest.mark.django_db


def test_the_key_is_stored_only_as_a_hash(user):
    token, key = make_token(user)
    assert key.startswith("mlw_") and len(key) > 40
    stored = ApiToken.objects.get(pk=token.pk)
    assert stored.key_hash == hash_key(key) != key
    assert key.startswith(stored.prefix) and len(stored.prefix) == 12
    assert key not in str(stored.history.values())


@pytest.mark.parametrize("scheme", ["Token", "Bearer", "token"])
def test_token_and_bearer_headers_authenticate(api, user, project, scheme):
    _, key = make_token(user)
    response = api(key, scheme).get("/api/v1/projects/")
    assert response.status_code == 200
    assert response.json()["results"][0]["slug"] == "churn"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "Authentication credentials were not provided."),
        ("Token nope", "Invalid token."),
        ("Token", "Malformed Authorization header"),
        ("Token a b", "Malformed Authorization header"),
        ("Basic dXNlcjpwYXNz", "Authentication credentials were not provided."),
    ],
)
def test_missing_or_wrong_credentials_are_401(client, project, header, message):
    headers = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.get("/api/v1/projects/", **headers)
    assert response.status_code == 401
    assert message in response.json()["detail"]
    assert response["WWW-Authenticate"] == 'Token realm="mlwiki"'


def test_revoked_and_expired_tokens_are_401_saying_so(api, user, project):
    revoked, revoked_key = make_token(user)
    revoke_token(revoked, actor=Actor(user, Source.WEB))
    response = api(revoked_key).get("/api/v1/projects/")
    assert (response.status_code, response.json()["detail"]) == (
        401,
        "This token has been revoked.",
    )
    expired, expired_key = make_token(user, expires_in_days=1)
    ApiToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = api(expired_key).get("/api/v1/projects/")
    assert (response.status_code, response.json()["detail"]) == (401, "This token has expired.")


def test_a_token_of_a_deactivated_user_is_refused(api, user, project):
    _, key = make_token(user)
    user.is_active = False
    user.save()
    assert api(key).get("/api/v1/projects/").status_code == 401


def test_last_use_is_recorded_once_a_minute_not_on_every_request(api, user, project):
    token, key = make_token(user)
    assert token.last_used_at is None
    client = api(key)
    client.get("/api/v1/projects/churn/")
    token.refresh_from_db()
    first = token.last_used_at
    assert first is not None
    client.get("/api/v1/projects/churn/")
    token.refresh_from_db()
    assert token.last_used_at == first


def test_a_token_sees_only_its_projects(api, user, project):
    fraud = ProjectFactory(slug="fraud")
    Membership.objects.create(project=fraud, user=user, role=Membership.Role.VIEWER)
    _, key = make_token(user, projects=["churn"])
    client = api(key)
    assert [p["slug"] for p in client.get("/api/v1/projects/").json()["results"]] == ["churn"]
    response = client.get("/api/v1/projects/fraud/")
    assert response.status_code == 403
    assert response.json()["detail"] == "This token is not valid for project 'fraud'."
    assert client.get("/api/v1/projects/nope/").status_code == 404


@pytest.mark.parametrize(
    ("scopes", "method", "url", "allowed"),
    [
        (["read"], "post", "/api/v1/projects/churn/training-runs/", False),
        (["pages:write"], "post", "/api/v1/projects/churn/training-runs/", False),
        (["records:write"], "post", "/api/v1/projects/churn/training-runs/", True),
        (["records:write"], "get", "/api/v1/projects/churn/pages/overview/", True),
        (["records:write"], "patch", "/api/v1/projects/churn/pages/overview/", False),
        (["pages:write"], "patch", "/api/v1/projects/churn/pages/overview/", True),
        (["read"], "post", "/api/v1/projects/", False),
        (["records:write"], "post", "/api/v1/projects/", False),
        (["admin"], "post", "/api/v1/projects/", True),
        (["admin"], "post", "/api/v1/projects/churn/training-runs/", True),
        (["read"], "post", "/api/v1/projects/churn/model-versions/", False),
        (["pages:write"], "post", "/api/v1/projects/churn/model-versions/", True),
    ],
)
def test_scopes_decide_what_a_token_may_do(api, user, project, scopes, method, url, allowed):
    _, key = make_token(user, scopes=scopes)
    response = getattr(api(key), method)(url, {}, HTTP_IF_MATCH='"1"')
    if allowed:
        assert response.status_code != 403, response.json()
    else:
        assert response.status_code == 403
        assert "lacks the" in response.json()["detail"]


def test_creating_projects_needs_a_token_for_all_projects(api, user, project):
    _, key = make_token(user, scopes=["admin"], projects=["churn"])
    response = api(key).post(
        "/api/v1/projects/", {"slug": "new-one", "name": "N", "owner_team": "T"}
    )
    assert response.status_code == 403
    assert "all projects" in response.json()["detail"]


def test_browser_sessions_work_on_the_api_with_csrf(user, project):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.get("/api/v1/projects/").status_code == 200
    response = client.post(
        "/api/v1/projects/churn/training-runs/",
        {"model_version": "1", "status": "running", "started_at": "2024-01-01T00:00:00Z"},
    )
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_create_token_command_prints_only_the_key(user, project):
    out, err = StringIO(), StringIO()
    call_command(
        "create_token", "--user", "alice", "--project", "churn", "--scope", "records:write",
        "--scope", "read", "--expires-in-days", "30", "--name", "CI", stdout=out, stderr=err,
    )  # fmt: skip
    key = out.getvalue().strip()
    assert key.startswith("mlw_") and "\n" not in key
    token = ApiToken.objects.get(key_hash=hash_key(key))
    assert (token.name, token.scopes, token.projects, token.all_projects) == (
        "CI",
        ["read", "records:write"],
        ["churn"],
        False,
    )
    assert timedelta(days=29) < token.expires_at - timezone.now() <= timedelta(days=30)
    row = token.history.get()
    assert (row.history_source, row.history_username) == ("cli", "alice")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user", "nobody", "--scope", "read"], "There is no user 'nobody'"),
        (["--user", "alice", "--scope", "read", "--project", "nope"], "No such project: nope"),
        (["--user", "alice", "--scope", "read", "--expires-in-days", "0"], "expires_in_days"),
    ],
)
def test_create_token_command_explains_bad_arguments(user, project, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("create_token", *args, stdout=StringIO())
    assert not ApiToken.objects.exists()


def test_tokens_page_issues_shows_once_and_revokes(client_logged_in, user, project):
    response = client_logged_in.post(
        "/tokens/",
        {"name": "CI", "scopes": ["records:write"], "projects": ["churn"], "expires_in_days": 30},
        follow=True,
    )
    assert response.redirect_chain == [("/tokens/", 302)]
    key = response.context["key"]
    assert key and key in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    token = ApiToken.objects.get(key_hash=hash_key(key))
    assert token.history.get().history_source == "web"
    # Shown once: the next view of the page lists the token by its prefix only.
    listing = client_logged_in.get("/tokens/").content.decode()
    assert token.prefix in listing and key not in listing

    assert client_logged_in.post(f"/tokens/{token.pk}/revoke/").status_code == 302
    token.refresh_from_db()
    assert token.state == "revoked"
    assert token.history.first().history_change_reason == "Revoked API token CI"


def test_tokens_page_validates_and_keeps_to_its_owner(client_logged_in, user, project):
    response = client_logged_in.post("/tokens/", {"name": "x", "scopes": ["read"]})
    assert "projects" in response.context["form"].errors
    other, _ = make_token(UserFactory(username="bob"))
    assert client_logged_in.post(f"/tokens/{other.pk}/revoke/").status_code == 404
    assert other.__class__.objects.get(pk=other.pk).state == "active"
    assert client_logged_in.get(f"/tokens/{other.pk}/revoke/").status_code == 405
