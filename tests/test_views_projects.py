import re
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from tests.factories import (
    PASSWORD,
    ProjectFactory,
    UserFactory,
    make_deployment,
    make_token,
    make_training_run,
)
from wiki.history import Actor, Source
from wiki.models import AuditEntry, HistoricalProject, Membership, Project
from wiki.services.pages import edit_page

pytestmark = pytest.mark.django_db

PROTECTED_URLS = [
    "/",
    "/projects/new/",
    "/projects/churn/",
    "/projects/churn/settings/",
    "/projects/churn/records/",
    "/projects/churn/pages/",
    "/projects/churn/pages/new/",
    "/projects/churn/overview/",
    "/projects/churn/overview/edit/",
    "/projects/churn/overview/history/",
    "/accounts/password/",
]


@pytest.mark.parametrize("url", PROTECTED_URLS)
def test_anonymous_users_are_sent_to_log_in(client, project, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response.url == f"/accounts/login/?next={url}"


@pytest.mark.parametrize("url", PROTECTED_URLS)
def test_anonymous_posts_change_nothing(client, project, url):
    response = client.post(url, {"name": "x", "change_reason": "x", "base_revision": 1})
    assert response.status_code in (302, 405)
    assert Project.objects.get().name == "Churn model"


def test_login_page_and_health_check_are_open(client):
    assert client.get("/accounts/login/").status_code == 200
    response = client.get("/healthz/")
    assert (response.status_code, response.content) == (200, b"ok")


def test_logging_in_and_out(client, user):
    response = client.post(
        "/accounts/login/", {"username": "alice", "password": PASSWORD, "next": "/projects/new/"}
    )
    assert response.status_code == 302 and response.url == "/projects/new/"
    assert client.get("/").status_code == 200
    assert client.get("/accounts/logout/").status_code == 405  # logging out is a POST
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/").status_code == 302


def test_wrong_password_shows_an_error(client, user):
    response = client.post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content


def test_forms_need_a_csrf_token(user, project):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post("/projects/new/", {"name": "X", "slug": "x", "owner_team": "T"})
    assert response.status_code == 403
    assert not Project.objects.filter(slug="x").exists()


def test_pages_carry_security_headers(client_logged_in, project):
    response = client_logged_in.get("/projects/churn/")
    assert "default-src 'self'" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_the_dashboard_shows_each_project_and_its_documentation_health(client_logged_in, project):
    page = project.pages.get(category="overview")
    bob = Actor(user=None, source=Source.CLI)
    edit_page(page, actor=bob, base_revision=1, change_reason="", fields={"purpose": "P"})
    run = make_training_run(project, "2.1", dataset_name="customers", dataset_version="v1")
    make_deployment(project, "2.1", environment="production")
    response = client_logged_in.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Churn model" in html and "A model under test." in html and "ML platform" in html
    (row,) = response.context["page_obj"]
    assert row.completeness == 4  # 1 of 26 required fields
    assert row.missing == 25
    assert row.stale == ["Data", "Model", "Deployment", "Maintenance"]
    assert row.latest_version == "2.1"
    assert row.environments == [("production", "2.1")]
    assert (row.approved, row.pages) == (0, 6)
    last = AuditEntry.objects.filter(chain__project=project).order_by("-seq").first()
    assert row.last_at == last.at and last.kind == "deployment"
    assert "production: <code>2.1</code>" in html
    assert f"latest <code>{run.model_version}</code>" in html


def test_the_dashboard_puts_the_projects_most_in_need_of_attention_first(client_logged_in, user):
    done, half, empty = (ProjectFactory(name=n) for n in ("Done", "Half", "Empty"))
    for project in (done, half, empty):
        Membership.objects.create(project=project, user=user, role="editor")
    for project, share in ((done, 1.0), (half, 0.5)):
        for page in project.pages.categories():
            names = [f.name for f in page.spec.required_fields]
            chosen = names[: max(1, int(len(names) * share))]
            values = {name: _filler(page.spec.get_field(name)) for name in chosen}
            edit_page(page, actor=Actor(user, Source.WEB), base_revision=1, change_reason="",
                      fields=values)  # fmt: skip

    def names(response):
        return [row.project.name for row in response.context["page_obj"]]

    assert names(client_logged_in.get("/")) == ["Empty", "Half", "Done"]
    assert names(client_logged_in.get("/?sort=name")) == ["Done", "Empty", "Half"]
    assert names(client_logged_in.get("/?sort=documented")) == ["Empty", "Half", "Done"]
    make_training_run(done, "1.0")
    assert names(client_logged_in.get("/?sort=stale"))[0] == "Done"
    assert names(client_logged_in.get("/?sort=activity"))[0] == "Done"
    assert names(client_logged_in.get("/?sort=nonsense")) == ["Empty", "Half", "Done"]
    by_name = client_logged_in.get("/?sort=name").content.decode()
    assert 'aria-sort="ascending"><a href="?sort=name">' in by_name


def test_a_maintainer_cannot_revoke_another_projects_token(client_logged_in, project, user):
    other_maintainer = UserFactory(username="olga")
    other = ProjectFactory(slug="other")
    Membership.objects.create(project=other, user=other_maintainer, role="maintainer")
    churn_token, _ = make_token(user, projects=["churn"])
    everywhere, _ = make_token(user)
    client = Client()
    client.force_login(other_maintainer)
    for token in (churn_token, everywhere):
        response = client.post(f"/projects/other/tokens/{token.pk}/revoke/")
        assert response.status_code == 403
        token.refresh_from_db()
        assert token.revoked_at is None


def _filler(field):
    if field.kind == "table":
        return [{"key": "k", "value": "v"}]
    return field.choices[0] if field.choices else "Something"


def test_project_list_queries_do_not_grow_with_projects(
    client_logged_in, user, django_assert_max_num_queries
):
    for _ in range(8):
        Membership.objects.create(project=ProjectFactory(), user=user, role="viewer")
    client_logged_in.get("/")  # the user is looked up and cached (wiki.access)
    # session + the access version (the user and whether they are an auditor: cached),
    # count, projects with last change, their category pages
    with django_assert_max_num_queries(5):
        response = client_logged_in.get("/")
    assert len(response.context["page_obj"]) == 8


def test_project_list_survives_a_bogus_page_number(client_logged_in, project):
    assert client_logged_in.get("/?page=abc").status_code == 200
    assert client_logged_in.get("/?page=999").status_code == 200


def test_empty_project_list_invites_to_create_one(client_logged_in):
    assert b"No projects yet" in client_logged_in.get("/").content


def test_creating_a_project_records_the_user_and_source_web(client_logged_in, user):
    response = client_logged_in.post(
        "/projects/new/",
        {
            "name": "Fraud",
            "slug": "fraud",
            "owner_team": "Risk",
            "summary": "Flags fraud.",
            "tags": "Fraud, real-time, fraud",
        },
    )
    assert response.status_code == 302
    assert response.url == "/projects/fraud/overview/edit/"
    project = Project.objects.get(slug="fraud")
    assert project.tags == ["fraud", "real-time"]
    assert project.pages.count() == 6
    row = HistoricalProject.objects.get(id=project.id)
    assert (row.history_user, row.history_source) == (user, "web")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"slug": "Bad Slug"}, "slug"),
        ({"slug": ""}, "slug"),
        ({"name": ""}, "name"),
        ({"owner_team": ""}, "owner_team"),
        ({"name": "n" * 300}, "name"),
        ({"tags": ",".join(f"t{i}" for i in range(30))}, "tags"),
    ],
)
def test_invalid_project_form_is_shown_again_with_errors(client_logged_in, data, field):
    form = {"name": "Fraud", "slug": "fraud", "owner_team": "Risk"} | data
    response = client_logged_in.post("/projects/new/", form)
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert b"Nothing was saved" in response.content
    assert not Project.objects.exists()


def test_duplicate_project_slug_is_an_error_on_the_form(client_logged_in, project):
    response = client_logged_in.post(
        "/projects/new/", {"name": "Other", "slug": "churn", "owner_team": "Risk"}
    )
    assert response.status_code == 200
    assert "slug" in response.context["form"].errors
    assert Project.objects.count() == 1


def test_project_page_shows_every_category_tab_and_marks_missing_fields(client_logged_in, project):
    response = client_logged_in.get("/projects/churn/")
    assert response.status_code == 200
    html = response.content.decode()
    for label in ["Overview", "Data", "Model", "Deployment", "Workflow", "Maintenance"]:
        assert f">\n    {label} <span" in html
    assert html.count("<strong>Missing.</strong>") == 5  # overview's required fields
    assert "Not documented (optional)" in html
    assert "0 of 5 required fields filled" in html


def test_unknown_project_and_page_are_404(client_logged_in, project):
    assert client_logged_in.get("/projects/nope/").status_code == 404
    assert client_logged_in.get("/projects/churn/nope/").status_code == 404
    assert client_logged_in.get("/projects/churn/nope/edit/").status_code == 404
    assert client_logged_in.get("/projects/nope/records/").status_code == 404
    assert client_logged_in.get("/projects/nope/settings/").status_code == 404
    response = client_logged_in.get("/projects/nope/pages/new/")
    assert response.status_code == 404
    assert b"There is no such project or page" in response.content


def test_project_settings_save_a_new_revision(client_logged_in, project, user):
    response = client_logged_in.post(
        "/projects/churn/settings/",
        {
            "name": "Churn v2",
            "owner_team": "Retention",
            "summary": "",
            "tags": "a, b",
            "change_reason": "Team moved",
            "base_revision": 1,
        },
    )
    assert response.status_code == 302
    project.refresh_from_db()
    assert (project.name, project.owner_team, project.tags, project.revision) == (
        "Churn v2",
        "Retention",
        ["a", "b"],
        2,
    )
    row = project.history.first()
    assert (row.history_change_reason, row.history_source, row.history_user) == (
        "Team moved",
        "web",
        user,
    )


def test_project_settings_from_a_stale_form_are_refused(client_logged_in, project):
    form = {"name": "A", "owner_team": "T", "change_reason": "r", "base_revision": 1}
    assert client_logged_in.post("/projects/churn/settings/", form).status_code == 302
    response = client_logged_in.post("/projects/churn/settings/", form | {"name": "B"})
    assert response.status_code == 200
    assert b"This was changed while you were editing" in response.content
    project.refresh_from_db()
    assert project.name == "A"


def test_project_settings_need_a_reason(client_logged_in, project):
    response = client_logged_in.post(
        "/projects/churn/settings/", {"name": "A", "owner_team": "T", "base_revision": 1}
    )
    assert "change_reason" in response.context["form"].errors


def test_records_tab_lists_versions_runs_and_deployments(client_logged_in, project):
    make_training_run(project, model_version="2.0.0", metrics={"auc": 0.91})
    make_deployment(
        project,
        model_version="2.0.0",
        environment="staging",
        checks=[{"name": "smoke test", "passed": False}],
    )
    response = client_logged_in.get("/projects/churn/records/")
    html = response.content.decode()
    assert "2.0.0" in html and "auc = 0.91" in html and "staging" in html
    assert "✗ smoke test" in html


def test_records_tab_says_when_a_deployment_s_end_is_not_reported(client_logged_in, project):
    started = datetime(2024, 6, 1, 10, 0, tzinfo=UTC)
    unknown = make_deployment(project, started_at=started)
    known = make_deployment(project, started_at=started, finished_at=started + timedelta(minutes=7))
    running = make_deployment(project, started_at=started, status="in_progress")
    html = client_logged_in.get("/projects/churn/records/").content.decode()

    def finished(deployment):
        row = html.split(f'<tr id="deployment-{deployment.pk}">')[1].split("</tr>")[0]
        return re.search(r'<td data-label="Finished">(.*?)</td>', row).group(1)

    assert "not reported" in finished(unknown)
    assert finished(known) == "2024-06-01 10:07"
    assert "not yet" in finished(running)


def test_health_check_answers_head_and_any_host(client, settings):
    settings.ALLOWED_HOSTS = ["wiki.example.com"]
    assert client.head("/healthz/").status_code == 200
    assert client.get("/healthz/", HTTP_HOST="127.0.0.1:8000").status_code == 200


def test_pages_answer_head(client_logged_in, project):
    assert client_logged_in.head("/projects/churn/").status_code == 200
    assert client_logged_in.head("/").status_code == 200


def test_projects_path_leads_to_the_project_list(client_logged_in):
    response = client_logged_in.get("/projects/")
    assert (response.status_code, response.url) == (302, "/")


def test_new_is_not_a_project_slug(client_logged_in):
    response = client_logged_in.post(
        "/projects/new/", {"name": "New", "slug": "new", "owner_team": "T"}
    )
    assert "reserved" in response.context["form"].errors["slug"][0]
    assert not Project.objects.exists()


def test_records_tab_copes_with_any_metric_name(client_logged_in, project):
    make_training_run(project, metrics={"items": 1.0, "keys": 2.0, "auc": 0.5})
    html = client_logged_in.get("/projects/churn/records/").content.decode()
    assert "auc = 0.5" in html and "items = 1.0" in html and "keys = 2.0" in html
