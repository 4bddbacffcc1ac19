"""The role matrix: every browser view and API endpoint for anonymous users, a project's
viewer, editor and maintainer, a global auditor, and a member of another project only.

Who may not see a project gets 404 (its existence is not revealed), who sees it but lacks
the right gets 403, and a refused request changes nothing.
"""

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from rest_framework.test import APIClient

from tests.factories import (
    ProjectFactory,
    UserFactory,
    cli_actor,
    make_deployment,
    make_free_page,
    make_token,
    make_training_run,
)
from wiki.access import AUDITOR_GROUP, EDIT, MAINTAIN, VIEW
from wiki.models import AuditEntry, Membership
from wiki.services.exports import build, request_export
from wiki.services.pages import edit_page

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "viewer", "editor", "maintainer", "auditor", "outsider"]
RIGHTS = {
    "anonymous": set(),
    "viewer": {VIEW},
    "editor": {VIEW, EDIT},
    "maintainer": {VIEW, EDIT, MAINTAIN},
    "auditor": {VIEW},
    "outsider": set(),
}
ALL_SCOPES = ["read", "pages:write", "records:write", "admin"]


@pytest.fixture
def world(project, user):
    """churn (alice maintains it) with a member of each role, an auditor, an outsider who
    maintains another project, a free page, a run, a deployment, a member and a token."""
    people = {"maintainer": user}
    for role in ("viewer", "editor"):
        people[role] = UserFactory(username=role)
        Membership.objects.create(project=project, user=people[role], role=role)
    people["auditor"] = UserFactory(username="auditor")
    people["auditor"].groups.add(Group.objects.get_or_create(name=AUDITOR_GROUP)[0])
    people["outsider"] = UserFactory(username="outsider")
    fraud = ProjectFactory(slug="fraud", name="Fraud model")
    Membership.objects.create(project=fraud, user=people["outsider"], role="maintainer")
    edit_page(project.pages.get(slug="overview"), actor=cli_actor(), base_revision=1,
              change_reason="", body="Revision 2.")  # fmt: skip
    make_free_page(project)
    run = make_training_run(project)
    deployment = make_deployment(project, status="in_progress")
    leaving = UserFactory(username="leaving")
    membership = Membership.objects.create(project=project, user=leaving, role="viewer")
    token, _ = make_token(user, projects=["churn"], name="churn bot")
    report = request_export(project, actor=cli_actor(), format="markdown", enqueue=False)
    build(report.pk)
    return {
        "people": people,
        "ids": {
            "run": run.pk,
            "deployment": deployment.pk,
            "member": membership.pk,
            "token": token.pk,
            "export": report.pk,
        },  # fmt: skip
    }


def expected_status(role, right):
    """What a refused request answers; None when the role has the right."""
    if right in RIGHTS[role]:
        return None
    return 404 if VIEW not in RIGHTS[role] else 403


# (method, URL, right needed, form data). {run}, {deployment}, {member}, {token} are ids.
BROWSER = [
    ("get", "/projects/churn/", VIEW, None),
    ("get", "/projects/churn/model/", VIEW, None),
    ("get", "/projects/churn/runbook/", VIEW, None),
    ("get", "/projects/churn/pages/", VIEW, None),
    ("get", "/projects/churn/overview/history/", VIEW, None),
    ("get", "/projects/churn/overview/revisions/1/", VIEW, None),
    ("get", "/projects/churn/overview/compare/?from=1&to=1", VIEW, None),
    ("get", "/projects/churn/records/", VIEW, None),
    ("get", "/projects/churn/activity/", VIEW, None),
    ("get", "/projects/churn/activity/?format=csv", VIEW, None),
    ("post", "/projects/churn/audit/verify/", VIEW, {}),
    ("get", "/projects/churn/exports/", VIEW, None),
    ("post", "/projects/churn/exports/", VIEW, {"format": "markdown"}),
    ("post", "/projects/churn/exports/{export}/download/", VIEW, {}),
    ("get", "/projects/churn/overview/edit/", EDIT, None),
    ("post", "/projects/churn/overview/edit/", EDIT,
     {"body": "x", "change_reason": "r", "base_revision": "2", "save": ""}),
    ("post", "/projects/churn/overview/preview/", EDIT, {"body": "x"}),
    ("get", "/projects/churn/pages/new/", EDIT, None),
    ("post", "/projects/churn/pages/new/", EDIT, {"slug": "faq", "title": "FAQ", "body": ""}),
    ("get", "/projects/churn/overview/revisions/1/restore/", EDIT, None),
    ("post", "/projects/churn/overview/revisions/1/restore/", EDIT,
     {"base_revision": "2", "change_reason": "r"}),
    ("post", "/projects/churn/overview/review/", EDIT, {}),
    ("get", "/projects/churn/settings/", MAINTAIN, None),
    ("post", "/projects/churn/settings/", MAINTAIN,
     {"name": "Churn", "owner_team": "t", "base_revision": "1", "change_reason": "r"}),
    ("get", "/projects/churn/members/", MAINTAIN, None),
    ("post", "/projects/churn/members/", MAINTAIN, {"username": "leaving", "role": "editor"}),
    ("post", "/projects/churn/members/{member}/remove/", MAINTAIN, {}),
    ("get", "/projects/churn/notifications/", MAINTAIN, None),
    ("post", "/projects/churn/notifications/", MAINTAIN, {"events": "on", "change_reason": "r"}),
    ("post", "/projects/churn/tokens/{token}/revoke/", MAINTAIN, {}),
    ("post", "/projects/churn/overview/approve/", MAINTAIN, {"revision": "2"}),
]  # fmt: skip
# POSTs that need more than VIEW but only render (the live preview): they change nothing.
RENDER_ONLY = {"/projects/churn/overview/preview/"}


def browser_for(world, role):
    client = Client()
    if role != "anonymous":
        client.force_login(world["people"][role])
    return client


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "url", "right", "data"), BROWSER)
def test_browser_matrix(world, role, method, url, right, data):
    client = browser_for(world, role)
    entries = AuditEntry.objects.count()
    response = getattr(client, method)(url.format(**world["ids"]), data)
    refused = expected_status(role, right)
    if role == "anonymous":
        assert response.status_code == 302
        assert response.url.startswith("/accounts/login/")
    elif refused:
        assert response.status_code == refused
    else:
        assert response.status_code in (200, 302)
    if role == "anonymous" or refused:
        assert AuditEntry.objects.count() == entries, "a refused request changed something"
        if response.status_code != 302:
            assert b"Churn model" not in response.content
    elif method == "post" and right != VIEW and url not in RENDER_ONLY:
        assert AuditEntry.objects.count() > entries, "an allowed write changed nothing"


RUN = {"model_version": "2.0", "status": "succeeded", "started_at": "2024-06-01T10:00:00Z"}
DEPLOY = RUN | {"environment": "staging"}
PAGE = "/api/v1/projects/churn/pages/overview/"

# (method, URL, right needed, JSON body, headers).
API = [
    ("get", "/api/v1/projects/churn/", VIEW, None, {}),
    ("get", "/api/v1/projects/churn/pages/", VIEW, None, {}),
    ("get", PAGE, VIEW, None, {}),
    ("get", f"{PAGE}revisions/", VIEW, None, {}),
    ("get", f"{PAGE}revisions/1/", VIEW, None, {}),
    ("get", f"{PAGE}diff/?from=1&to=1", VIEW, None, {}),
    ("get", "/api/v1/projects/churn/training-runs/", VIEW, None, {}),
    ("get", "/api/v1/projects/churn/training-runs/{run}/", VIEW, None, {}),
    ("get", "/api/v1/projects/churn/deployments/", VIEW, None, {}),
    ("get", "/api/v1/projects/churn/deployments/{deployment}/", VIEW, None, {}),
    ("get", "/api/v1/projects/churn/model-versions/", VIEW, None, {}),
    ("get", "/api/v1/projects/churn/activity/", VIEW, None, {}),
    ("get", "/api/v1/projects/churn/activity/export/", VIEW, None, {}),
    ("get", "/api/v1/projects/churn/audit/verify/", VIEW, None, {}),
    ("get", "/api/v1/projects/churn/exports/", VIEW, None, {}),
    ("post", "/api/v1/projects/churn/exports/", VIEW, {"format": "markdown"}, {}),
    ("get", "/api/v1/exports/{export}/", VIEW, None, {}),
    ("post", "/api/v1/exports/{export}/download/", VIEW, None, {}),
    ("patch", PAGE, EDIT, {"body": "x"}, {"If-Match": '"2"'}),
    ("put", PAGE, EDIT, {"fields": {}, "body": "x"}, {"If-Match": '"2"'}),
    ("post", f"{PAGE}restore/", EDIT, {"revision": 1, "change_reason": "r"}, {}),
    ("post", f"{PAGE}review/", EDIT, None, {}),
    ("post", "/api/v1/projects/churn/training-runs/", EDIT, RUN, {}),
    ("post", "/api/v1/projects/churn/deployments/", EDIT, DEPLOY, {}),
    ("patch", "/api/v1/projects/churn/deployments/{deployment}/", EDIT,
     {"status": "succeeded"}, {}),
    ("post", "/api/v1/projects/churn/model-versions/", EDIT, {"version": "3.0"}, {}),
    ("patch", "/api/v1/projects/churn/", MAINTAIN, {"summary": "s"}, {"If-Match": '"1"'}),
    ("post", f"{PAGE}approve/", MAINTAIN, {"revision": 2}, {}),
]  # fmt: skip


def api_for(world, role):
    client = APIClient()
    if role != "anonymous":
        _, key = make_token(world["people"][role], scopes=ALL_SCOPES, name=f"{role} key")
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "url", "right", "body", "headers"), API)
def test_api_matrix(world, role, method, url, right, body, headers):
    client = api_for(world, role)
    entries = AuditEntry.objects.count()
    response = getattr(client, method)(
        url.format(**world["ids"]), body, format="json", headers=headers
    )
    refused = expected_status(role, right)
    if role == "anonymous":
        assert response.status_code == 401
    elif refused:
        assert response.status_code == refused, response.content
    else:
        assert response.status_code in (200, 201, 202), response.content
    if role == "anonymous" or refused:
        assert AuditEntry.objects.count() == entries, "a refused request changed something"
        assert b"Churn model" not in response.content
    elif method != "get":
        assert AuditEntry.objects.count() > entries, "an allowed write changed nothing"


@pytest.mark.parametrize("role", ROLES[1:])
def test_project_lists_show_only_what_the_user_may_see(world, role):
    expected = {"churn", "fraud"} if role == "auditor" else {"churn"}
    if role == "outsider":
        expected = {"fraud"}
    listed = api_for(world, role).get("/api/v1/projects/").json()["results"]
    assert {p["slug"] for p in listed} == expected
    page = browser_for(world, role).get("/").content.decode()
    assert ("Churn model" in page) == ("churn" in expected)
    assert ("Fraud model" in page) == ("fraud" in expected)


@pytest.mark.parametrize("role", ROLES[1:])
def test_only_auditors_may_not_start_projects(world, role):
    created = browser_for(world, role).post(
        "/projects/new/", {"slug": f"new-{role}", "name": "New", "owner_team": "t"}
    )
    api = api_for(world, role).post(
        "/api/v1/projects/", {"slug": f"api-{role}", "name": "New", "owner_team": "t"},
        format="json",
    )  # fmt: skip
    if role == "auditor":
        assert (created.status_code, api.status_code) == (403, 403)
        assert "New project" not in browser_for(world, role).get("/").content.decode()
    else:
        assert (created.status_code, api.status_code) == (302, 201)


@pytest.mark.parametrize("role", ROLES[1:])
def test_the_admin_is_for_superusers_only(world, role):
    person = world["people"][role]
    person.is_staff = True
    person.save()
    response = browser_for(world, role).get("/admin/wiki/page/")
    assert response.status_code == 302
    assert response.url.startswith("/admin/login/")


def test_a_superuser_may_do_everything_in_any_project(world):
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    client = Client()
    client.force_login(root)
    assert client.get("/projects/churn/members/").status_code == 200
    assert client.get("/admin/wiki/page/").status_code == 200
