import re

import pytest
from django.test import Client

from tests.factories import UserFactory, history_lines, make_free_page
from wiki.history import CHANGE_REASON_MAX_LENGTH, Actor, Source
from wiki.models import Membership, Page
from wiki.services.pages import edit_page

pytestmark = pytest.mark.django_db

EDIT_URL = "/projects/churn/overview/edit/"


def overview_form(**changes):
    form = {
        "purpose": "Predict churn.",
        "owners": "Product owner: Ana\n\nML lead: João",
        "stakeholders": "",
        "status": "production",
        "risk_level": "",
        "out_of_scope": "",
        "body": "See [[model]].",
        "change_reason": "First version",
        "base_revision": "1",
        "save": "",
    }
    return form | changes


def overview(project):
    return project.pages.get(category="overview")


def test_edit_form_shows_a_field_with_help_text_for_every_registry_field(client_logged_in, project):
    response = client_logged_in.get(EDIT_URL)
    assert response.status_code == 200
    html = response.content.decode()
    for name in ["purpose", "owners", "stakeholders", "status", "risk_level", "out_of_scope"]:
        assert f'name="{name}"' in html
    assert "The problem the model solves" in html
    assert 'name="base_revision" value="1"' in html


def test_saving_an_edit_creates_a_revision_with_user_reason_and_source_web(
    client_logged_in, project, user
):
    response = client_logged_in.post(EDIT_URL, overview_form())
    assert response.status_code == 302
    assert response.url == "/projects/churn/overview/"
    page = overview(project)
    assert page.revision == 2
    assert page.fields == {
        "purpose": "Predict churn.",
        "owners": [{"key": "Product owner", "value": "Ana"}, {"key": "ML lead", "value": "João"}],
        "status": "production",
    }
    row = page.history.first()
    assert (row.history_user, row.history_username, row.history_source) == (user, "alice", "web")
    assert row.history_change_reason == "First version"

    shown = client_logged_in.get("/projects/churn/overview/").content.decode()
    assert "Saved revision 2." in shown
    assert "Predict churn." in shown and '<th scope="row">ML lead</th>' in shown

    history = client_logged_in.get("/projects/churn/overview/history/").content.decode()
    assert "First version" in history and "alice" in history and "Web" in history


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"status": "shipped"}, "status"),
        ({"owners": "no colon here"}, "owners"),
        ({"owners": ": value without key"}, "owners"),
        ({"change_reason": ""}, "change_reason"),
        ({"change_reason": "r" * (CHANGE_REASON_MAX_LENGTH + 1)}, "change_reason"),
        ({"base_revision": "abc"}, "base_revision"),
        ({"base_revision": "-3"}, "base_revision"),
        ({"purpose": "p" * 100_001}, "purpose"),
    ],
)
def test_invalid_edit_saves_nothing_and_shows_the_errors(client_logged_in, project, changes, field):
    response = client_logged_in.post(EDIT_URL, overview_form(**changes))
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert b"Nothing was saved" in response.content
    # What the user typed is kept in the form.
    assert b"See [[model]]." in response.content
    page = overview(project)
    assert (page.revision, page.fields, page.history.count()) == (1, {}, 1)


def test_preview_renders_without_saving(client_logged_in, project):
    form = overview_form(preview="")
    del form["save"]
    response = client_logged_in.post(EDIT_URL, form)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Preview" in html and "(not saved yet)" in html
    assert '<a class="wikilink" href="/projects/churn/model/"' in html
    assert overview(project).revision == 1


def test_preview_reports_registry_errors(client_logged_in, project):
    # A value the form accepts but the registry refuses (table cell too long).
    form = overview_form(preview="", owners="lead: " + "x" * 600)
    del form["save"]
    response = client_logged_in.post(EDIT_URL, form)
    assert "owners" in response.context["form"].errors
    assert response.context["preview"] is None


def test_an_edit_from_a_stale_revision_is_refused_and_the_text_kept(client_logged_in, project):
    edit_page(
        overview(project),
        actor=Actor(UserFactory(username="bob"), Source.WEB),
        base_revision=1,
        change_reason="Bob's edit",
        body="Bob was here",
    )
    response = client_logged_in.post(EDIT_URL, overview_form(body="Alice's text"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "This was changed while you were editing" in html
    assert "Revision 2 was saved\n  by bob" in html and "Bob&#x27;s edit" in html
    assert 'href="/projects/churn/overview/" target="_blank"' in html
    assert "Alice&#x27;s text" in html
    assert 'name="base_revision" value="2"' in html
    page = overview(project)
    assert (page.body, page.revision) == ("Bob was here", 2)

    # Having been told, the user may save over it deliberately.
    response = client_logged_in.post(
        EDIT_URL, overview_form(body="Alice's text", base_revision="2")
    )
    assert response.status_code == 302
    assert overview(project).body == "Alice's text"


def test_saving_without_changes_makes_no_revision(client_logged_in, project):
    form = {
        "body": "",
        "change_reason": "nothing",
        "base_revision": "1",
        "save": "",
    }
    response = client_logged_in.post(EDIT_URL, form, follow=True)
    assert b"Nothing changed" in response.content
    assert overview(project).revision == 1


def test_page_view_queries_are_bounded(client_logged_in, project, django_assert_max_num_queries):
    client_logged_in.post(EDIT_URL, overview_form())
    # session, the access version with the project and the user's role (the user is
    # cached, wiki.access), page, last revision, tabs, wiki-link pages and projects; the
    # overview also shows the review states and the audit chain; alice wrote it, so who
    # else may approve it; its attachments
    with django_assert_max_num_queries(12):
        assert client_logged_in.get("/projects/churn/overview/").status_code == 200
    # Read again, its rendering, tab marks and last revision come from wiki.caching:
    # session, user, project, page, who else may approve it, whether the user is an
    # auditor (the menu), its attachments, the review states and the audit chain
    with django_assert_max_num_queries(9):
        assert client_logged_in.get("/projects/churn/overview/").status_code == 200


def test_free_pages_are_listed_and_created(client_logged_in, project, user):
    response = client_logged_in.get("/projects/churn/pages/new/?slug=runbook")
    assert 'value="runbook"' in response.content.decode()
    response = client_logged_in.post(
        "/projects/churn/pages/new/",
        {"title": "Runbook", "slug": "runbook", "body": "# Steps", "change_reason": ""},
    )
    assert response.status_code == 302
    assert response.url == "/projects/churn/runbook/"
    page = project.pages.get(slug="runbook")
    assert (page.category, page.title) == ("", "Runbook")
    assert page.history.get().history_source == "web"
    listing = client_logged_in.get("/projects/churn/pages/").content.decode()
    assert 'href="/projects/churn/runbook/">Runbook</a>' in listing


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"slug": "overview"}, "slug"),
        ({"slug": "pages"}, "slug"),
        ({"slug": "Runbook_1"}, "slug"),
        ({"slug": "bad slug"}, "slug"),
        ({"title": ""}, "title"),
        ({"body": "b" * 100_001}, "body"),
    ],
)
def test_invalid_free_page_is_shown_again_with_errors(client_logged_in, project, data, field):
    form = {"title": "Runbook", "slug": "runbook", "body": ""} | data
    response = client_logged_in.post("/projects/churn/pages/new/", form)
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert not project.pages.free().exists()


def test_duplicate_free_page_slug_is_an_error(client_logged_in, project):
    make_free_page(project, slug="runbook")
    response = client_logged_in.post(
        "/projects/churn/pages/new/", {"title": "Again", "slug": "runbook"}
    )
    assert "slug" in response.context["form"].errors
    assert project.pages.free().count() == 1


def test_free_page_edit_changes_title_and_body(client_logged_in, project):
    make_free_page(project, slug="runbook", title="Runbook")
    response = client_logged_in.post(
        "/projects/churn/runbook/edit/",
        {"title": "Retraining runbook", "body": "Steps", "change_reason": "r", "base_revision": 1},
    )
    assert response.status_code == 302
    page = Page.objects.get(slug="runbook")
    assert (page.title, page.body, page.revision) == ("Retraining runbook", "Steps", 2)


def test_history_lists_every_revision_newest_first(client_logged_in, project):
    page = overview(project)
    for number in range(1, 4):
        edit_page(
            page,
            actor=Actor(None, Source.CLI),
            base_revision=number,
            change_reason=f"step {number}",
            body=f"v{number}",
        )
    response = client_logged_in.get("/projects/churn/overview/history/")
    revisions = history_lines(response)
    assert [r.revision for r in revisions] == [4, 3, 2, 1]
    assert [r.reason for r in revisions[:3]] == ["step 3", "step 2", "step 1"]
    assert revisions[0].source == "Command line"
    for cursor in ("page=x", "before=x", "before=-1", "after=0", "before=1", "after=99"):
        response = client_logged_in.get(f"/projects/churn/overview/history/?{cursor}")
        assert response.status_code == 200, cursor


def test_get_only_views_refuse_other_methods(client_logged_in, project):
    assert client_logged_in.post("/projects/churn/overview/").status_code == 405
    assert client_logged_in.delete("/projects/churn/overview/edit/").status_code == 405
    assert client_logged_in.post("/projects/churn/overview/history/").status_code == 405


def test_preview_works_before_a_reason_is_written(client_logged_in, project):
    form = overview_form(preview="", change_reason="")
    del form["save"]
    response = client_logged_in.post(EDIT_URL, form)
    assert response.context["preview"] is not None
    assert not response.context["form"].errors
    # The form shown again to be saved marks the reason as required.
    assert re.search(r'<input[^>]*name="change_reason"[^>]*required', response.content.decode())
    # Saving still needs the reason.
    response = client_logged_in.post(EDIT_URL, overview_form(change_reason=""))
    assert "change_reason" in response.context["form"].errors


def test_preview_checks_the_body_length_before_rendering(client_logged_in, project):
    form = overview_form(preview="", body="b" * 100_001)
    del form["save"]
    response = client_logged_in.post(EDIT_URL, form)
    assert response.context["preview"] is None
    assert "body" in response.context["form"].errors


def test_a_browser_save_of_unchanged_text_makes_no_revision(client_logged_in, project):
    page = overview(project)
    edit_page(
        page,
        actor=Actor(None, Source.CLI),
        base_revision=1,
        change_reason="",
        fields={"purpose": "Line one\nLine two"},
        body="A\nB",
    )
    # Browsers send text areas back with CRLF line ends.
    form = {
        "purpose": "Line one\r\nLine two",
        "body": "A\r\nB",
        "change_reason": "no-op",
        "base_revision": "2",
        "save": "",
    }
    client_logged_in.post(EDIT_URL, form)
    assert overview(project).revision == 2


def test_a_missing_page_offers_to_create_it(client_logged_in, project):
    response = client_logged_in.get("/projects/churn/Data_Glossary/")
    assert response.status_code == 404
    html = response.content.decode()
    assert 'href="/projects/churn/pages/new/?slug=data-glossary"' in html
    response = client_logged_in.get("/projects/churn/pages/new/?slug=data-glossary")
    assert response.context["form"].initial == {"slug": "data-glossary", "title": "Data glossary"}


def test_tabs_survive_a_missing_category_page(client_logged_in, project):
    project.pages.filter(category="workflow").delete()
    response = client_logged_in.get("/projects/churn/")
    assert response.status_code == 200
    assert [c.name for c, _ in response.context["tabs"]] == [
        "overview", "data", "model", "deployment", "maintenance",
    ]  # fmt: skip


def test_a_fully_documented_page_renders_with_a_fixed_number_of_queries(
    client_logged_in, project, django_assert_max_num_queries
):
    page = project.pages.get(category="data")
    text = "See [[model]], [[fraud/data]] and [[runbook]]."
    edit_page(
        page,
        actor=Actor(None, Source.CLI),
        base_revision=1,
        change_reason="",
        fields={
            "sources": text,
            "preprocessing": text,
            "feature_engineering": text,
            "split": text,
            "dataset_versions": [{"key": "customers", "value": "v1"}],
            "limitations_bias": text,
            "personal_data_licensing": text,
        },
        body=text,
    )
    # Read first: session, user, project with the user's role, page, last revision, the
    # pages versions of the other projects linked to, tabs, one lookup of all links
    # (pages, projects), and the dataset versions new since the last edit
    with django_assert_max_num_queries(11):
        response = client_logged_in.get("/projects/churn/data/")
    assert response.content.decode().count('class="wikilink" href="/projects/churn/model/"') == 7
    # Read again (wiki.caching): session, user, project, page, the other projects'
    # pages versions, whether the user is an auditor (the menu), its attachments
    with django_assert_max_num_queries(7):
        again = client_logged_in.get("/projects/churn/data/")
    # The same page, but for the form's CSRF token (masked anew for each response)
    token = re.compile(r"[A-Za-z0-9]{64}")
    assert token.sub("", again.content.decode()) == token.sub("", response.content.decode())


LIVE_PREVIEW_URL = "/projects/churn/overview/preview/"


def test_the_live_preview_answers_the_body_as_sanitized_html(client_logged_in, project):
    make_free_page(project, slug="glossary", title="Glossary")
    body = "# Notes\n\nSee [[glossary]] and [[nowhere]].\n\n<script>alert(1)</script>**bold**"
    response = client_logged_in.post(LIVE_PREVIEW_URL, {"body": body})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    html = response.content.decode()
    assert "<strong>bold</strong>" in html
    assert '<a class="wikilink" href="/projects/churn/glossary/"' in html
    assert "/projects/churn/pages/new/?slug=nowhere" in html
    assert "<script" not in html and "alert(1)" not in html
    assert "<html" not in html  # a fragment, not a page
    assert overview(project).revision == 1


def test_the_live_preview_of_an_empty_body_says_so(client_logged_in, project):
    response = client_logged_in.post(LIVE_PREVIEW_URL, {"body": "  \r\n"})
    assert response.status_code == 200
    assert "Nothing to preview yet" in response.content.decode()


@pytest.mark.parametrize(
    ("data", "message"),
    [({}, "There was no body to preview."), ({"body": "b" * 100_001}, "at most 100000")],
)
def test_the_live_preview_refuses_bad_input_with_a_message(
    client_logged_in, project, data, message
):
    response = client_logged_in.post(LIVE_PREVIEW_URL, data)
    assert response.status_code == 400
    assert message in response.content.decode()


def test_the_live_preview_is_post_only_and_csrf_protected(user, project):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.get(LIVE_PREVIEW_URL).status_code == 405
    assert client.post(LIVE_PREVIEW_URL, {"body": "x"}).status_code == 403


def test_the_live_preview_needs_the_right_to_edit(client, project):
    response = client.post(LIVE_PREVIEW_URL, {"body": "x"})
    assert response.status_code == 302 and response.url.startswith("/accounts/login/")
    people = {"viewer": UserFactory(username="vic"), "outsider": UserFactory(username="otto")}
    Membership.objects.create(project=project, user=people["viewer"], role="viewer")
    for role, status in [("viewer", 403), ("outsider", 404)]:
        client.force_login(people[role])
        response = client.post(LIVE_PREVIEW_URL, {"body": "x"})
        assert response.status_code == status, role
        assert b"Churn model" not in response.content


def test_the_edit_form_ties_help_texts_to_their_inputs_and_offers_the_live_preview(
    client_logged_in, project
):
    html = client_logged_in.get(EDIT_URL).content.decode()
    assert 'aria-describedby="id_purpose_helptext"' in html
    assert 'id="id_purpose_helptext"' in html
    assert 'aria-describedby="id_body_helptext"' in html
    assert f'data-preview-url="{LIVE_PREVIEW_URL}"' in html
    assert "frontend/edit.js" in html
    # Without JavaScript the live preview and the shortcut hint stay hidden.
    assert '<section class="live-preview" aria-labelledby="live-preview-title" hidden>' in html
    assert "data-save-hint hidden" in html


def test_a_placeholder_field_is_marked_and_counted_as_missing(client_logged_in, project, user):
    page = overview(project)
    fields = {"purpose": "TBD", "status": "production", "out_of_scope": "n/a"}
    edit_page(page, actor=Actor(user, Source.WEB), base_revision=1, change_reason="Stub",
              fields=fields)  # fmt: skip
    html = client_logged_in.get("/projects/churn/overview/").content.decode()
    purpose = re.search(r'<div class="field-row[^"]*">\s*<dt>Purpose and intended use', html)
    assert purpose and "missing" in purpose.group(0)
    assert "<strong>Only a placeholder.</strong> It counts as missing" in html
    assert "It counts as not documented" in html  # the optional out-of-scope uses
    assert "1 of 5 required fields filled" in html  # the status only
