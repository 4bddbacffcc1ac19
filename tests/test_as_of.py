"""The documentation as it stood at a moment (?as_of=): from a deployment of a year ago,
every page as it was then, in the browser, the API and the audit report.

The history is written through the services, each step at its own time: the clock the
services read (django.utils.timezone.now, which simple-history and auto_now fields read
too) is set to that time, so every history row is sealed into the chain as it would
have been then.
"""

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from deploy.audit.verify_bundle import verify as verify_bundle
from tests.factories import UserFactory, cli_actor, make_deployment, make_free_page
from tests.test_exports import KEY, content, export
from tests.test_read_only import _database
from wiki import as_of, inventory, validations
from wiki.audit import head_for, verify
from wiki.history import Actor, Source
from wiki.models import ExportJob, Membership, Page, Template
from wiki.services.pages import approve_page, edit_page
from wiki.services.projects import create_project
from wiki.services.templates import upgrade_project
from wiki.services.validations import (
    close_finding,
    comment_on_finding,
    conclude_validation,
    file_finding,
    open_validation,
    propose_remediation,
)

pytestmark = pytest.mark.django_db

NOW = timezone.now()
YEAR_AGO = NOW - timedelta(days=365)


@pytest.fixture
def clock(monkeypatch):
    """clock.at(t): what the application reads as now is ``t`` until moved again."""
    real = timezone.now

    class Clock:
        moment = None

        def at(self, moment):
            self.moment = moment

    clock = Clock()
    monkeypatch.setattr(timezone, "now", lambda: clock.moment or real())
    return clock


def _edit(page, user, **changes):
    page.refresh_from_db()
    return edit_page(
        page, actor=cli_actor(user), base_revision=page.revision, change_reason="edit", **changes
    )


@pytest.fixture
def released(clock, user):
    """The project "churn" documented and approved, deployed to production a year ago
    (1.2.0), then changed since: the model page rewritten, a free page added."""
    bob = UserFactory(username="bob")
    clock.at(YEAR_AGO - timedelta(days=3))
    project = create_project(
        actor=cli_actor(user), slug="churn", name="Churn model", owner_team="Growth"
    )
    # alice maintains the project she created; bob, a second maintainer, approves.
    Membership.objects.create(project=project, user=bob, role=Membership.Role.MAINTAINER)
    pages = {page.category: page for page in project.pages.all()}
    clock.at(YEAR_AGO - timedelta(days=2))
    owners = [{"key": "Owner", "value": "Ana"}]
    _edit(pages["overview"], user, fields={"purpose": "Predict churn.", "owners": owners})
    _edit(
        pages["model"], user,
        fields={"architecture": "Logistic regression", "training_algorithm": "L-BFGS"},
        body="See [[runbook]].",
    )  # fmt: skip
    make_free_page(project, slug="runbook", title="Runbook", body="Restart it.")
    other = create_project(actor=cli_actor(user), slug="fraud", name="Fraud", owner_team="Risk")
    make_free_page(other, slug="glossary", title="Glossary", body="Terms.")
    _edit(pages["data"], user, body="Terms: [[fraud/glossary]].")
    clock.at(YEAR_AGO - timedelta(days=1))
    pages["model"].refresh_from_db()
    approve_page(pages["model"], actor=cli_actor(bob), revision=2, comment="Fine.")
    clock.at(YEAR_AGO)
    deployment = make_deployment(project, model_version="1.2.0", started_at=YEAR_AGO)
    clock.at(YEAR_AGO + timedelta(days=30))
    _edit(pages["model"], user, fields={"architecture": "Gradient boosting"})
    _edit(pages["overview"], user, fields={"purpose": "Predict churn and its cost."}, body="")
    make_free_page(project, slug="postmortem", title="Postmortem", body="It broke.")
    clock.at(None)
    return {"project": project, "deployment": deployment, "bob": bob}


def test_the_history_written_in_the_past_still_verifies(released):
    assert verify(head_for(released["project"]), record=False).ok


# The moment and the documentation then


def test_a_deployment_names_the_moment_it_started(released):
    deployment = released["deployment"]
    moment = as_of.parse(released["project"], f"deployment:{deployment.pk}")
    assert moment.at == YEAR_AGO
    assert moment.label.endswith(f"(deployment {deployment.pk} of 1.2.0 to production)")


def test_a_model_version_names_the_moment_it_was_registered(released):
    moment = as_of.parse(released["project"], "model-version:1.2.0")
    assert moment.at == YEAR_AGO and moment.model_version.version == "1.2.0"


def test_a_date_means_the_end_of_that_day_in_utc(released):
    day = (YEAR_AGO + timedelta(days=30)).date()
    moment = as_of.parse(released["project"], day.isoformat())
    assert moment.at == datetime.combine(day, datetime.max.time(), UTC)
    # A time without an offset is UTC; one with an offset is that moment.
    naive = as_of.parse(released["project"], YEAR_AGO.replace(tzinfo=None).isoformat())
    assert naive.at == YEAR_AGO


@pytest.mark.parametrize(
    "value",
    ["", "yesterday", "deployment:", "deployment:x", "deployment:\u00b2", "2025-13-01",
     "9999-12-31", "0001-01-01T00:00:00+05:00", "x" * 500, "2025\x00"],
)  # fmt: skip
def test_what_is_no_moment_is_refused_naming_as_of(released, value):
    with pytest.raises(as_of.ValidationError) as caught:
        as_of.parse(released["project"], value)
    assert not isinstance(caught.value, as_of.UnknownRecord)
    assert list(caught.value.message_dict) == ["as_of"]


def test_a_moment_before_the_project_existed_is_refused(released):
    with pytest.raises(as_of.ValidationError, match="did not exist yet"):
        as_of.parse(released["project"], (YEAR_AGO - timedelta(days=10)).isoformat())


@pytest.mark.parametrize("value", ["deployment:999999", "model-version:9.9.9"])
def test_a_record_the_project_does_not_have_is_unknown(released, value):
    with pytest.raises(as_of.UnknownRecord):
        as_of.parse(released["project"], value)


def test_the_documentation_then_has_each_page_at_its_revision_then(
    released, django_assert_num_queries
):
    moment = as_of.parse(released["project"], f"deployment:{released['deployment'].pk}")
    with django_assert_num_queries(2):  # the project's row, the pages' rows
        then = as_of.documentation(released["project"], moment)
    model = then.page("model")
    assert (model.revision, model.fields["architecture"]) == (2, "Logistic regression")
    assert (model.review_state, model.approved_revision) == ("approved", 2)
    assert model.approved_by_name == "bob"
    assert then.page("overview").fields["purpose"] == "Predict churn."
    assert then.page("runbook").body == "Restart it."
    assert then.page("postmortem") is None  # created later
    assert then.project.name == "Churn model"
    # Today the model page is a later, unapproved revision.
    today = Page.objects.get(project=released["project"], slug="model")
    assert (today.revision, today.review_state) == (3, "draft")


# The browser


def _html(response):
    return response.content.decode()


def _main(response):
    """What the page shows, without the site's header (its log-out form, say)."""
    html = _html(response)
    return html[html.index('<main id="main"') : html.index("</main>")]


def test_one_click_on_the_deployment_shows_the_documentation_as_released(
    released, client_logged_in
):
    deployment = released["deployment"]
    page = _html(client_logged_in.get(f"/projects/churn/deployments/{deployment.pk}/"))
    link = re.search(r'href="([^"]+)">Documentation as released<', page).group(1)
    assert link == f"/projects/churn/?as_of=deployment:{deployment.pk}"
    overview = client_logged_in.get(link)
    assert overview.status_code == 200
    html = _html(overview)
    assert "You are reading the documentation as it stood on" in html
    assert f"(deployment {deployment.pk} of 1.2.0 to production)" in html
    assert "this is the past" in html and 'href="/projects/churn/">see today' in html
    assert "Predict churn." in html and "its cost" not in html
    # The reviews then: the model page approved, revision 2; no postmortem yet.
    assert "revision 2 by bob" in html and "Postmortem" not in html
    # Links to the other pages keep the moment.
    query = f"?as_of=deployment%3A{deployment.pk}"
    assert f'href="/projects/churn/model/{query}"' in html
    assert f'href="/projects/churn/pages/{query}"' in html


def test_a_page_as_of_a_deployment_shows_its_revision_and_approval_then_read_only(
    released, client_logged_in
):
    query = f"?as_of=deployment%3A{released['deployment'].pk}"
    html = _main(client_logged_in.get(f"/projects/churn/model/{query}"))
    assert "Logistic regression" in html and "Gradient boosting" not in html
    assert "Revision 2" in html
    assert "<strong>Approved</strong>: revision 2, by bob" in html
    # Its wiki link keeps the moment too.
    assert f'href="/projects/churn/runbook/{query}"' in html
    # Nothing to write with: no edit, approval, review, upload or verify form.
    assert "/edit/" not in html and "<form" not in html
    assert "Upload" not in html and "Verify now" not in html
    # Today's page is the later revision, with its buttons.
    today = _main(client_logged_in.get("/projects/churn/model/"))
    assert "Gradient boosting" in today and "/edit/" in today


def test_the_past_reads_with_the_template_of_then(released, client_logged_in, user):
    project = released["project"]
    eu = Template.objects.get(slug="eu-ai-act-high-risk", version=1)
    upgrade_project(project, eu, actor=cli_actor(user))
    query = f"?as_of=deployment%3A{released['deployment'].pk}"
    then = _html(client_logged_in.get(f"/projects/churn/{query}"))
    assert "It followed the template Default (<code>default v1</code>)" in then
    assert "/projects/churn/compliance/" not in then  # the pack's category came later
    today = _html(client_logged_in.get("/projects/churn/"))
    assert "/projects/churn/compliance/" in today
    # The API and the report as of the deployment read the template of then too.
    documentation = as_of.documentation(project, as_of.parse(project, "model-version:1.2.0"))
    assert documentation.project.spec.name == "default v1"


def test_a_project_row_from_before_templates_reads_as_the_first_default(released, user):
    project = released["project"]
    upgrade_project(project, Template.objects.get(slug="sr-11-7", version=1), actor=cli_actor(user))
    # Rows written before migration 0018 have no template: it pinned them to default v1.
    project.history.filter(history_date__lte=YEAR_AGO).update(template=None)
    documentation = as_of.documentation(project, as_of.parse(project, "model-version:1.2.0"))
    assert documentation.project.spec.name == "default v1"


def test_a_link_to_another_project_keeps_the_moment_as_a_time(released, client_logged_in):
    value = f"deployment:{released['deployment'].pk}"
    html = _html(client_logged_in.get("/projects/churn/data/", {"as_of": value}))
    when = YEAR_AGO.isoformat().replace(":", "%3A").replace("+", "%2B")
    assert f'href="/projects/fraud/glossary/?as_of={when}"' in html
    # That moment in the other project shows its page as it was then.
    shown = client_logged_in.get("/projects/fraud/glossary/", {"as_of": YEAR_AGO.isoformat()})
    assert shown.status_code == 200 and "Terms." in _html(shown)


def test_the_pages_then_are_listed_without_those_created_later(released, client_logged_in):
    html = _html(client_logged_in.get("/projects/churn/pages/?as_of=model-version:1.2.0"))
    assert "Runbook" in html and "Postmortem" not in html and "New page" not in html
    assert "(model version 1.2.0 registered)" in html


def test_a_page_that_did_not_exist_then_is_a_clear_404(released, client_logged_in):
    query = f"?as_of=deployment%3A{released['deployment'].pk}"
    response = client_logged_in.get(f"/projects/churn/postmortem/{query}")
    assert response.status_code == 404
    assert "This page did not exist then" in _html(response)
    assert 'href="/projects/churn/postmortem/"' in _html(response)  # today's version


@pytest.mark.parametrize(
    ("value", "status"),
    [("nonsense", 400), ("deployment:999999", 404), ("model-version:0.0.1", 404),
     ("2999-01-01", 400), ("", 400)],
)  # fmt: skip
def test_a_bad_as_of_in_the_browser_says_why(released, client_logged_in, value, status):
    for url in ("/projects/churn/", "/projects/churn/model/", "/projects/churn/pages/"):
        response = client_logged_in.get(url, {"as_of": value})
        assert response.status_code == status
        assert "cannot be shown as of that" in _html(response)


def test_the_model_version_page_links_to_the_documentation_as_released(released, client_logged_in):
    html = _html(client_logged_in.get("/projects/churn/model-versions/1.2.0/"))
    assert 'href="/projects/churn/?as_of=model-version:1.2.0">Documentation as released' in html


def test_a_viewer_outside_the_project_sees_nothing_of_its_past(released):
    stranger = Client()
    stranger.force_login(UserFactory(username="mallory"))
    query = {"as_of": f"deployment:{released['deployment'].pk}"}
    assert stranger.get("/projects/churn/", query).status_code == 404
    assert stranger.get("/api/v1/projects/churn/pages/", query).status_code == 404


def test_the_page_as_of_a_moment_costs_a_bounded_number_of_queries(
    released, client_logged_in, django_assert_max_num_queries
):
    client_logged_in.get("/projects/churn/")  # the session and the caches warm
    query = f"?as_of=deployment%3A{released['deployment'].pk}"
    # The deployment, the project's and the pages' rows, the revision's author, the
    # attachments then; not one per page.
    with django_assert_max_num_queries(8):
        assert client_logged_in.get(f"/projects/churn/{query}").status_code == 200


# The API


def test_the_api_gives_the_same_documentation_then(released, user, api):
    from tests.factories import make_token

    _, key = make_token(user, scopes=["read"], projects=["churn"])
    client = api(key)
    deployment = released["deployment"].pk
    listed = client.get(f"/api/v1/projects/churn/pages/?as_of=deployment:{deployment}").json()
    by_slug = {page["slug"]: page for page in listed["results"]}
    assert "postmortem" not in by_slug and "runbook" in by_slug
    assert by_slug["model"]["revision"] == 2 and by_slug["model"]["review_state"] == "approved"
    assert by_slug["model"]["as_of"] == YEAR_AGO.astimezone(UTC).isoformat()
    detail = client.get(f"/api/v1/projects/churn/pages/model/?as_of=deployment:{deployment}")
    assert detail.status_code == 200 and "ETag" not in detail
    body = detail.json()
    assert body["fields"]["architecture"] == "Logistic regression"
    assert body["approval"]["revision"] == 2 and body["approval"]["by"] == "bob"
    assert body["approval"]["current"] is True
    assert body["updated_by"] == "alice" and body["records_summary"] is None
    today = client.get("/api/v1/projects/churn/pages/model/").json()
    assert today["revision"] == 3 and today["as_of"] is None
    missing = client.get(f"/api/v1/projects/churn/pages/postmortem/?as_of=deployment:{deployment}")
    assert missing.status_code == 404


def test_the_api_list_as_of_a_moment_costs_a_bounded_number_of_queries(
    released, client_logged_in, django_assert_max_num_queries
):
    client_logged_in.get("/api/v1/projects/churn/pages/")  # the session and the caches warm
    query = {"as_of": f"deployment:{released['deployment'].pk}"}
    with django_assert_max_num_queries(6):  # the deployment, the project's and pages' rows
        assert client_logged_in.get("/api/v1/projects/churn/pages/", query).status_code == 200


@pytest.mark.parametrize(
    ("value", "status"),
    [("nonsense", 400), ("", 400), ("2999-01-01T00:00:00Z", 400), ("deployment:999999", 404),
     ("deployment:\u00b2", 400)],
)  # fmt: skip
def test_a_bad_as_of_in_the_api_is_an_error_naming_it(released, client_logged_in, value, status):
    for url in ("/api/v1/projects/churn/pages/", "/api/v1/projects/churn/pages/model/"):
        response = client_logged_in.get(url, {"as_of": value})
        assert response.status_code == status, url
        assert "as_of" in response.json()["detail"]
        if status == 400:
            assert "as_of" in response.json()["errors"]


def test_reading_the_past_writes_nothing(released, client_logged_in):
    query = {"as_of": f"deployment:{released['deployment'].pk}"}
    before = _database()
    for url in (
        "/projects/churn/", "/projects/churn/model/", "/projects/churn/pages/",
        "/projects/churn/postmortem/", "/api/v1/projects/churn/pages/",
        "/api/v1/projects/churn/pages/model/",
    ):  # fmt: skip
        assert client_logged_in.get(url, query).status_code in (200, 404)
    assert _database() == before


# The audit report as of a deployment


def _report(project, format, as_of_value, user=None):
    job = export(project, format, user, as_of=as_of_value)
    assert job.status == "done", job.last_error
    return job, content(job).decode()


def test_the_audit_report_as_of_the_deployment_matches_what_the_browser_showed(
    released, client_logged_in, settings
):
    settings.AUDIT_HMAC_KEY = KEY
    deployment = released["deployment"]
    value = f"deployment:{deployment.pk}"
    job, text = _report(released["project"], "json", value)
    assert job.as_of == value
    bundle = json.loads(text)
    dc = bundle["document_control"]
    assert dc["as_of"] == {
        "value": value,
        "at": YEAR_AGO.astimezone(UTC).isoformat(),
        "record": f"deployment {deployment.pk} of 1.2.0 to production",
    }
    pages = {page["slug"]: page for page in bundle["documentation"]}
    assert "postmortem" not in pages and "runbook" in pages
    model = {f["name"]: f["value"] for f in pages["model"]["fields"]}
    assert pages["model"]["revision"] == 2 and model["architecture"] == "Logistic regression"
    overview = {f["name"]: f["value"] for f in pages["overview"]["fields"]}
    assert overview["purpose"] == "Predict churn."
    approvals = {a["page"]: a for a in dc["approvals"]}
    assert approvals["model"]["approved_revision"] == 2
    assert approvals["model"]["approved_by"] == "bob"
    assert not approvals["model"]["current_differs"]
    # The same revisions the browser shows as of that deployment.
    html = _html(client_logged_in.get(f"/projects/churn/?as_of={value}"))
    for slug, page in pages.items():
        shown = _html(client_logged_in.get(f"/projects/churn/{slug}/?as_of={value}"))
        assert f"Revision {page['revision']}," in shown, slug
    assert "Predict churn." in html
    # Nothing after the moment: the change log ends with it, the deployment is in it.
    assert all(c["at"] <= dc["as_of"]["at"] for c in bundle["change_log"])
    assert [d["id"] for d in bundle["deployments"]] == [deployment.pk]
    assert bundle["inventory"]["production_version"] == "1.2.0"
    # And it verifies offline against the history as it stood then, sealed and whole.
    assert verify_bundle(bundle, KEY) is None
    assert len(bundle["history"]) == dc["audit_chain"]["entries"]


def test_a_forged_page_in_a_report_as_of_a_moment_is_caught(released, settings):
    settings.AUDIT_HMAC_KEY = KEY
    value = f"deployment:{released['deployment'].pk}"
    bundle = json.loads(_report(released["project"], "json", value)[1])
    model = next(p for p in bundle["documentation"] if p["slug"] == "model")
    # Today's text put in the report of then: history then says otherwise.
    next(f for f in model["fields"] if f["name"] == "architecture")["value"] = "Gradient boosting"
    assert "is not what its history says" in verify_bundle(bundle)


def test_the_markdown_report_says_as_of_what_in_its_title(released):
    value = f"deployment:{released['deployment'].pk}"
    _, text = _report(released["project"], "markdown", value)
    when = YEAR_AGO.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    first = text.splitlines()[0]
    assert first == (
        f"# Audit report: Churn model, as of {when} "
        f"(deployment {released['deployment'].pk} of 1.2.0 to production)"
    )
    assert "Logistic regression" in text and "Gradient boosting" not in text
    # A report of today has the plain title and today's text.
    _, today = _report(released["project"], "markdown", None)
    assert today.splitlines()[0] == "# Audit report: Churn model"
    assert "Gradient boosting" in today


def test_the_html_report_as_of_a_model_version_is_titled_so(released):
    _, text = _report(released["project"], "html", "model-version:1.2.0")
    assert "<h1>Audit report: Churn model, as of" in text
    assert "(model version 1.2.0 registered)</h1>" in text


def test_an_export_as_of_nothing_known_is_refused_naming_as_of(released, client_logged_in, api):
    response = client_logged_in.post(
        "/projects/churn/exports/", {"format": "markdown", "as_of": "deployment:999999"}
    )
    assert response.status_code == 400
    assert "has no deployment 999999" in _html(response)
    answer = client_logged_in.post(
        "/api/v1/projects/churn/exports/",
        {"format": "markdown", "as_of": "soon"},
        content_type="application/json",
    )
    assert answer.status_code == 400 and "as_of" in answer.json()["errors"]
    assert not ExportJob.objects.exists()


def test_the_export_link_of_the_past_fills_in_the_moment(released, client_logged_in):
    value = f"deployment:{released['deployment'].pk}"
    html = _html(client_logged_in.get(f"/projects/churn/?as_of={value}"))
    link = re.search(r'href="(/projects/churn/exports/[^"]*)"', html).group(1)
    form = _html(client_logged_in.get(link.replace("&amp;", "&")))
    assert f'name="as_of" value="{value}"' in form
    response = client_logged_in.post(
        "/projects/churn/exports/", {"format": "markdown", "as_of": value}
    )
    assert response.status_code == 302
    job = ExportJob.objects.get()
    assert job.as_of == value
    assert job.history.earliest("history_id").history_change_reason.endswith(f"as of {value}")
    assert verify(head_for(released["project"]), record=False).ok


def test_the_api_asks_for_a_report_as_of_a_deployment(released, client_logged_in):
    value = f"deployment:{released['deployment'].pk}"
    answer = client_logged_in.post(
        "/api/v1/projects/churn/exports/",
        {"format": "json", "as_of": value},
        content_type="application/json",
    )
    assert answer.status_code == 202 and answer.json()["as_of"] == value


def test_each_deployment_in_the_records_links_to_its_documentation(released, client_logged_in):
    html = _html(client_logged_in.get("/projects/churn/records/"))
    pk = released["deployment"].pk
    assert f'href="/projects/churn/?as_of=deployment:{pk}">As released' in html


def test_a_deployment_from_before_the_project_existed_offers_no_documentation(
    released, client_logged_in
):
    older = make_deployment(
        released["project"], model_version="0.9.0", started_at=YEAR_AGO - timedelta(days=90)
    )
    html = _html(client_logged_in.get(f"/projects/churn/deployments/{older.pk}/"))
    assert "Documentation as released" not in html
    response = client_logged_in.get("/projects/churn/", {"as_of": f"deployment:{older.pk}"})
    assert response.status_code == 400 and "did not exist yet" in _html(response)


# The validations and findings as they stood then


@pytest.fixture
def validated(released, clock, user):
    """On top of ``released``: vera's validation #1 of the documentation, concluded
    "approved with conditions" before the deployment with its high finding on the data
    page still unresolved (a remediation proposed); after it, validation #2 opened, the
    finding closed with a comment and #2 concluded "approved"."""
    project = released["project"]
    vera = UserFactory(username="vera")
    Membership.objects.create(project=project, user=vera, role=Membership.Role.VALIDATOR)
    by_vera, by_alice = Actor(vera, Source.WEB), Actor(user, Source.WEB)
    clock.at(YEAR_AGO - timedelta(hours=12))
    first = open_validation(project, actor=by_vera, title="Pre-release validation")
    finding = file_finding(
        first, actor=by_vera, title="Split leaks the future", description="Overlaps.",
        severity="high", page="data", owner="alice",
        due_date=(YEAR_AGO + timedelta(days=5)).date(),
    )  # fmt: skip
    clock.at(YEAR_AGO - timedelta(hours=8))
    finding = propose_remediation(
        finding, actor=by_alice, remediation="Split by time.", base_revision=finding.revision
    )
    clock.at(YEAR_AGO - timedelta(hours=4))
    first = conclude_validation(
        first, actor=by_vera, outcome="approved_with_conditions", conclusion="Fix the split."
    )
    clock.at(YEAR_AGO + timedelta(days=10))
    second = open_validation(project, actor=by_vera, title="Annual validation")
    clock.at(YEAR_AGO + timedelta(days=20))
    close_finding(finding, actor=by_vera, base_revision=finding.revision, comment="Fixed.")
    comment_on_finding(finding, actor=by_alice, body="Thanks.")
    clock.at(YEAR_AGO + timedelta(days=21))
    second = conclude_validation(second, actor=by_vera, outcome="approved", conclusion="Sound.")
    clock.at(None)
    return released | {"first": first, "second": second, "finding": finding}


def test_the_audit_report_as_of_the_deployment_has_the_validations_of_then(validated, settings):
    settings.AUDIT_HMAC_KEY = KEY
    value = f"deployment:{validated['deployment'].pk}"
    bundle = json.loads(_report(validated["project"], "json", value)[1])
    section = bundle["validation"]
    # Only the validation opened by then, concluded and signed as it was then.
    [first] = section["validations"]
    assert first["number"] == 1 and first["outcome"] == "approved_with_conditions"
    assert first["concluded_at"] == (YEAR_AGO - timedelta(hours=4)).astimezone(UTC).isoformat()
    assert first["signature"] == validations.signatures(validated["project"])[validated["first"].pk]
    # The finding as it stood then: unresolved, its life cycle up to then, no comments.
    [finding] = section["findings"]
    assert finding["status"] == "remediation_proposed" and finding["validation"] == 1
    assert finding["page"] == "data" and finding["remediation"] == "Split by time."
    assert finding["closed_by"] == "" and finding["closed_at"] is None
    assert not finding["overdue"]  # due 5 days after the moment
    assert [step["status"] for step in finding["lifecycle"]] == ["open", "remediation_proposed"]
    assert finding["comments"] == []
    # The inventory header of then: the first validation, the finding unresolved.
    header = bundle["inventory"]
    assert header["last_validation"] == {
        "number": 1,
        "outcome": "approved_with_conditions",
        "concluded_at": first["concluded_at"],
        "validator": "vera",
    }
    assert header["open_findings"] == {"high": 1, "medium": 0, "low": 0}
    tier, spec = header["risk_level"], validated["project"].spec
    review = inventory.next_review(spec, tier, YEAR_AGO - timedelta(hours=4))
    assert header["next_review"] == (review.isoformat() if review else None)
    # Still verifies offline, sealed and whole.
    assert verify_bundle(bundle, KEY) is None
    # The Markdown report of then says the same.
    text = _report(validated["project"], "markdown", value)[1]
    assert "## Validation (1)" in text and "Annual validation" not in text
    assert "Fixed." not in text and "Thanks." not in text


def test_the_report_of_today_still_has_every_validation_and_step(validated):
    bundle = json.loads(_report(validated["project"], "json", None)[1])
    section = bundle["validation"]
    assert [v["number"] for v in section["validations"]] == [1, 2]
    assert [v["outcome"] for v in section["validations"]] == [
        "approved_with_conditions", "approved",
    ]  # fmt: skip
    assert all(v["signature"] for v in section["validations"])
    [finding] = section["findings"]
    assert finding["status"] == "closed" and finding["closed_by"] == "vera"
    assert [step["status"] for step in finding["lifecycle"]] == [
        "open", "remediation_proposed", "closed",
    ]  # fmt: skip
    assert [c["body"] for c in finding["comments"]] == ["Fixed.", "Thanks."]
    header = bundle["inventory"]
    assert header["last_validation"]["number"] == 2
    assert header["open_findings"] == {"high": 0, "medium": 0, "low": 0}


def test_between_the_two_the_second_validation_is_open_and_unsigned(validated):
    project = validated["project"]
    moment = YEAR_AGO + timedelta(days=15)
    section = validations.report_section(project, moment)
    assert [(v["number"], v["outcome"], v["signature"]) for v in section["validations"]] == [
        (1, "approved_with_conditions", validations.signatures(project)[validated["first"].pk]),
        (2, "", ""),
    ]
    assert section["validations"][1]["concluded_at"] is None
    assert validations.last_concluded(project, moment)["number"] == 1
    # Past its due date then and still unresolved: overdue then (closed today).
    [finding] = section["findings"]
    assert finding["overdue"] and finding["status"] == "remediation_proposed"
    assert validations.open_counts(project, moment)["high"] == 1


def test_before_any_validation_the_report_has_none(validated):
    project = validated["project"]
    moment = YEAR_AGO - timedelta(days=1)
    assert validations.report_section(project, moment) == {"validations": [], "findings": []}
    assert validations.last_concluded(project, moment) is None
    assert validations.open_counts(project, moment) == {"high": 0, "medium": 0, "low": 0}


def test_the_validation_section_then_costs_a_bounded_number_of_queries(
    validated, django_assert_max_num_queries
):
    project, vera = validated["project"], validated["second"].validator
    third = open_validation(project, actor=Actor(vera, Source.WEB), title="More")
    for n in range(5):
        file_finding(
            third, actor=Actor(vera, Source.WEB), title=f"Finding {n}", description="x",
            severity="low", page="model",
        )  # fmt: skip
    with django_assert_max_num_queries(7):
        section = validations.report_section(project, timezone.now())
    assert len(section["findings"]) == 6
