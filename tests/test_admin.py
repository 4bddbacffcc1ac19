import json

import pytest

from tests.factories import make_deployment, make_free_page, make_training_run
from wiki.history import Actor, Source
from wiki.models import Page, Project
from wiki.services.pages import edit_page

pytestmark = pytest.mark.django_db


def test_admin_needs_staff(client_logged_in, project):
    response = client_logged_in.get("/admin/wiki/project/")
    assert response.status_code == 302
    assert response.url.startswith("/admin/login/")


def test_every_model_has_a_list_change_and_history_view(admin_client_logged_in, project):
    run = make_training_run(project)
    deployment = make_deployment(project)
    page = project.pages.get(category="model")
    objects = {
        "project": project,
        "page": page,
        "modelversion": run.model_version,
        "trainingrun": run,
        "deployment": deployment,
    }
    for name, obj in objects.items():
        base = f"/admin/wiki/{name}/"
        assert admin_client_logged_in.get(base).status_code == 200, name
        assert admin_client_logged_in.get(f"{base}{obj.pk}/change/").status_code == 200, name
        history = admin_client_logged_in.get(f"{base}{obj.pk}/history/")
        assert history.status_code == 200, name
        assert b"Command line" in history.content or b"cli" in history.content, name


def test_admin_edit_of_a_project_goes_through_the_service_with_source_admin(
    admin_client_logged_in, admin_user, project
):
    response = admin_client_logged_in.post(
        f"/admin/wiki/project/{project.pk}/change/",
        {
            "name": "Renamed in admin",
            "owner_team": "Team",
            "summary": "",
            "tags": '["x"]',
            "change_reason": "Fix name",
            "base_revision": "1",
        },
    )
    assert response.status_code == 302, response.content
    project.refresh_from_db()
    assert (project.name, project.revision) == ("Renamed in admin", 2)
    row = project.history.first()
    assert (row.history_source, row.history_user, row.history_change_reason) == (
        "admin",
        admin_user,
        "Fix name",
    )


def test_admin_can_create_a_project_with_its_pages(admin_client_logged_in):
    response = admin_client_logged_in.post(
        "/admin/wiki/project/add/",
        {
            "slug": "fraud",
            "name": "Fraud",
            "owner_team": "Risk",
            "summary": "",
            "tags": "[]",
            "change_reason": "Set up",
        },
    )
    assert response.status_code == 302, response.content
    project = Project.objects.get(slug="fraud")
    assert project.pages.count() == 6
    assert project.history.get().history_source == "admin"


def page_form(page, **changes):
    form = {
        "title": page.title,
        "fields": json.dumps(page.fields),
        "body": page.body,
        "change_reason": "Admin edit",
        "base_revision": str(page.revision),
    }
    return form | changes


def test_admin_edit_of_a_page_validates_fields_against_the_registry(
    admin_client_logged_in, project
):
    page = project.pages.get(category="overview")
    url = f"/admin/wiki/page/{page.pk}/change/"
    response = admin_client_logged_in.post(
        url, page_form(page, fields=json.dumps({"status": "shipped"}))
    )
    assert response.status_code == 200
    assert "status: Must be one of" in response.content.decode()
    page.refresh_from_db()
    assert page.revision == 1

    response = admin_client_logged_in.post(
        url, page_form(page, fields=json.dumps({"status": "production"}), body="Edited")
    )
    assert response.status_code == 302
    page.refresh_from_db()
    assert (page.fields, page.body, page.revision) == ({"status": "production"}, "Edited", 2)
    assert page.history.first().history_source == "admin"


def test_admin_refuses_a_stale_page_edit(admin_client_logged_in, project):
    page = project.pages.get(category="overview")
    stale = page_form(page, body="admin text")
    edit_page(page, actor=Actor(None, Source.CLI), base_revision=1, change_reason="", body="new")
    response = admin_client_logged_in.post(f"/admin/wiki/page/{page.pk}/change/", stale)
    assert response.status_code == 200
    assert b"changed by someone else meanwhile" in response.content
    page.refresh_from_db()
    assert page.body == "new"


def test_admin_adds_free_pages_only(admin_client_logged_in, project):
    response = admin_client_logged_in.post(
        "/admin/wiki/page/add/",
        {
            "project": project.pk,
            "slug": "glossary",
            "title": "Glossary",
            "body": "",
            "change_reason": "Add",
        },
    )
    assert response.status_code == 302
    assert Page.objects.get(slug="glossary").category == ""
    for slug, error in [
        ("model", "&#x27;model&#x27; is reserved"),
        ("records", "&#x27;records&#x27; is reserved"),
        ("glossary", "Page with this Project and Slug already exists"),
    ]:
        response = admin_client_logged_in.post(
            "/admin/wiki/page/add/",
            {"project": project.pk, "slug": slug, "title": "Typed", "change_reason": "Add"},
        )
        # Shown on the form, with what was typed kept.
        assert response.status_code == 200
        assert error in response.content.decode()
        assert 'value="Typed"' in response.content.decode()
    assert project.pages.count() == 7


def test_admin_reports_bad_tags_on_the_form(admin_client_logged_in):
    for tags in ["[5]", '"text"', '{"a": 1}', f'["{"t" * 51}"]']:
        response = admin_client_logged_in.post(
            "/admin/wiki/project/add/",
            {"slug": "x", "name": "X", "owner_team": "T", "tags": tags, "change_reason": "r"},
        )
        assert response.status_code == 200
        assert "tags" in response.context["adminform"].form.errors, tags
    assert not Project.objects.exists()


def test_admin_cannot_delete_or_change_records(admin_client_logged_in, project):
    run = make_training_run(project)
    page = make_free_page(project)
    assert admin_client_logged_in.get(f"/admin/wiki/page/{page.pk}/delete/").status_code == 403
    assert (
        admin_client_logged_in.post(f"/admin/wiki/project/{project.pk}/delete/").status_code == 403
    )
    assert admin_client_logged_in.get("/admin/wiki/trainingrun/add/").status_code == 403
    response = admin_client_logged_in.post(
        f"/admin/wiki/trainingrun/{run.pk}/change/", {"status": "failed"}
    )
    assert response.status_code == 403
    run.refresh_from_db()
    assert run.status == "succeeded"


def test_admin_history_cannot_revert_in_place(admin_client_logged_in, project):
    page = project.pages.get(category="overview")
    edit_page(page, actor=Actor(None, Source.CLI), base_revision=1, change_reason="", body="v2")
    first = page.history.last()
    url = f"/admin/wiki/page/{page.pk}/history/{first.history_id}/"
    response = admin_client_logged_in.get(url)
    assert response.status_code == 200
    assert b"Revert" not in response.content
    # Posting the old revision's form is refused like any stale edit.
    response = admin_client_logged_in.post(url, page_form(first.instance))
    assert response.status_code == 200
    page.refresh_from_db()
    assert (page.body, page.revision) == ("v2", 2)
