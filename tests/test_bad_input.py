"""Hostile and malformed input gets a clear answer (a form error, 404, 405), never a 500.

The test client re-raises any exception a view lets through, so a crash fails loudly.
"""

import json

import pytest

from tests.factories import make_free_page

pytestmark = pytest.mark.django_db

NASTY_VALUES = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "x" * 200_000,
    "💥" * 50,
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "../../etc/passwd",
    "\r\n\r\n",
    "-1",
    "99999999999999999999999",
]

FORMS = {
    "/projects/new/": ["name", "slug", "owner_team", "summary", "tags"],
    "/projects/churn/settings/": [
        "name", "owner_team", "summary", "tags", "change_reason", "base_revision",
    ],
    "/projects/churn/overview/edit/": [
        "purpose", "owners", "stakeholders", "status", "risk_level", "out_of_scope", "body",
        "change_reason", "base_revision",
    ],
    "/projects/churn/runbook/edit/": ["title", "body", "change_reason", "base_revision"],
    "/projects/churn/pages/new/": ["title", "slug", "body", "change_reason"],
}  # fmt: skip


@pytest.fixture
def setup(client_logged_in, project):
    make_free_page(project, slug="runbook")
    return client_logged_in


@pytest.mark.parametrize("url", list(FORMS))
@pytest.mark.parametrize("value", NASTY_VALUES, ids=range(len(NASTY_VALUES)))
def test_every_form_answers_nasty_values_without_crashing(setup, url, value):
    for action in ["save", "preview"]:
        data = {name: value for name in FORMS[url]} | {action: ""}
        response = setup.post(url, data)
        assert response.status_code in (200, 302), (url, value[:20])


@pytest.mark.parametrize("url", list(FORMS))
def test_every_form_answers_an_empty_or_repeated_post(setup, url):
    assert setup.post(url, {}).status_code == 200
    repeated = {name: ["a", "b"] for name in FORMS[url]}
    assert setup.post(url, repeated).status_code in (200, 302)


@pytest.mark.parametrize(
    "url",
    [
        "/?page=%00",
        "/?page=-1",
        "/projects/churn/pages/new/?slug=%00",
        "/projects/churn/overview/history/?page=1e9",
        "/accounts/login/?next=https://evil.example/",
        "/projects/%00/",
        "/projects/churn/%F0%9F%92%A5/",
        "/projects/" + "a" * 5000 + "/",
    ],
)
def test_odd_urls_are_answered_without_crashing(setup, url):
    assert setup.get(url).status_code in (200, 302, 404)


def test_login_does_not_redirect_to_another_site(client, user):
    response = client.post(
        "/accounts/login/?next=https://evil.example/",
        {"username": "alice", "password": "correct-horse-battery", "next": "https://evil.example/"},
    )
    assert response.status_code == 302
    assert response.url == "/"


@pytest.mark.parametrize(
    "fields",
    ["not json", "[1, 2]", '{"purpose": 5}', '{"purpose": "\\u0000"}', '{"nope": "x"}', "null"],
)
def test_admin_page_form_answers_bad_json_without_crashing(admin_client_logged_in, project, fields):
    page = project.pages.get(category="overview")
    response = admin_client_logged_in.post(
        f"/admin/wiki/page/{page.pk}/change/",
        {
            "title": "Overview",
            "fields": fields,
            "body": "",
            "change_reason": "x",
            "base_revision": "1",
        },
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    page.refresh_from_db()
    assert page.revision == 1


def test_api_answers_json_errors(client_logged_in, project):
    response = client_logged_in.get("/api/v1/projects/?page=abc")
    assert response.status_code == 400
    assert json.loads(response.content)["errors"] == {"page": ["A page number: 1 or more."]}
    response = client_logged_in.get("/api/v1/projects/?page=9")
    assert response.status_code == 404
    assert json.loads(response.content)["detail"] == "There is no page with that number."
