"""The Validation tab in the browser: open a validation, file a finding, remedy it, close
it, sign the conclusion; what each person is offered."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from tests.factories import UserFactory, make_deployment
from wiki.history import Actor, Source
from wiki.models import Finding, Membership, Validation
from wiki.services.pages import edit_page
from wiki.validations import signature

pytestmark = pytest.mark.django_db
User = get_user_model()


def logged_in(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def vera(project):
    vera = UserFactory(username="vera")
    Membership.objects.create(project=project, user=vera, role=Membership.Role.VALIDATOR)
    return logged_in(vera)


@pytest.fixture
def eddie(project):
    eddie = UserFactory(username="eddie")
    Membership.objects.create(project=project, user=eddie, role=Membership.Role.EDITOR)
    return logged_in(eddie)


def test_a_validation_from_the_tab_to_the_signed_conclusion(vera, eddie, project):
    tab = vera.get("/projects/churn/validations/")
    assert tab.status_code == 200
    assert "Open a validation" in tab.content.decode()

    form = vera.get("/projects/churn/validations/new/")
    pinned = form.context["form"].fields["pinned"].initial
    assert "data:1" in pinned
    opened = vera.post(
        "/projects/churn/validations/new/",
        {"title": "Annual validation", "scope": "All of it.", "pinned": pinned},
    )
    assert opened.status_code == 302 and opened["Location"] == "/projects/churn/validations/1/"

    due = (timezone.localdate() + timedelta(days=20)).isoformat()
    filed = vera.post(
        "/projects/churn/validations/1/findings/new/",
        {"title": "Split leaks", "severity": "high", "description": "The *test* split overlaps.",
         "page": "data", "field": "split", "owner": "eddie", "due_date": due},
    )  # fmt: skip
    assert filed.status_code == 302 and filed["Location"] == "/projects/churn/findings/1/"

    page = eddie.get("/projects/churn/findings/1/").content.decode()
    assert "<em>test</em>" in page and "Propose the remediation" in page
    assert "Close: remediated" not in page
    change = "/projects/churn/findings/1/change/"
    eddie.post(change, {"action": "propose", "base_revision": 1, "text": "Split by time."})
    assert Finding.objects.get().status == "remediation_proposed"

    page = vera.get("/projects/churn/findings/1/").content.decode()
    assert "Close: remediated" in page and "Send it back" in page
    vera.post(change, {"action": "close", "base_revision": 2, "text": "Checked."})
    assert Finding.objects.get().status == "closed"

    concluded = vera.post(
        "/projects/churn/validations/1/conclusion/",
        {"outcome": "approved_with_conditions", "conclusion": "Fit, with **conditions**."},
    )
    assert concluded.status_code == 302
    page = vera.get("/projects/churn/validations/1/").content.decode()
    validation = Validation.objects.get()
    assert "Approved with conditions" in page and "Signed by <strong>vera</strong>" in page
    assert f'<code class="digest">{signature(validation).digest}</code>' in page

    history = vera.get("/projects/churn/findings/1/").content.decode()
    for reason in ("Filed finding 1 (high)", "Proposed a remediation of finding 1",
                   "Closed finding 1"):  # fmt: skip
        assert reason in history


def test_an_editor_is_not_offered_validation_and_cannot_open_one(eddie, project):
    assert "Open a validation" not in eddie.get("/projects/churn/validations/").content.decode()
    assert eddie.get("/projects/churn/validations/new/").status_code == 403
    response = eddie.post("/projects/churn/validations/new/", {"title": "Mine"})
    assert response.status_code == 403
    assert not Validation.objects.exists()


def test_a_bad_finding_is_a_form_error_and_nothing_is_filed(vera, project):
    vera.post("/projects/churn/validations/new/", {"title": "V", "pinned": ["data:1"]})
    response = vera.post(
        "/projects/churn/validations/1/findings/new/",
        {"title": "X", "severity": "high", "description": "Y", "page": "data",
         "field": "colour"},
    )  # fmt: skip
    assert response.status_code == 200
    assert "has no field" in str(response.context["form"].errors["field"])
    assert not Finding.objects.exists()


def test_a_stale_change_is_refused_with_a_message(vera, eddie, project):
    vera.post("/projects/churn/validations/new/", {"title": "V", "pinned": ["data:1"]})
    vera.post(
        "/projects/churn/validations/1/findings/new/",
        {"title": "X", "severity": "low", "description": "Y", "page": "data", "owner": "eddie"},
    )
    change = "/projects/churn/findings/1/change/"
    eddie.post(change, {"action": "propose", "base_revision": 1, "text": "Done."})
    response = vera.post(change, {"action": "close", "base_revision": 1}, follow=True)
    assert "changed meanwhile" in response.content.decode()
    assert Finding.objects.get().status == "remediation_proposed"


def test_approval_with_unresolved_findings_is_a_form_error(vera, project):
    vera.post("/projects/churn/validations/new/", {"title": "V", "pinned": ["data:1"]})
    vera.post(
        "/projects/churn/validations/1/findings/new/",
        {"title": "X", "severity": "high", "description": "Y", "page": "data"},
    )
    response = vera.post(
        "/projects/churn/validations/1/conclusion/", {"outcome": "approved", "conclusion": "OK"}
    )
    assert response.status_code == 400
    assert "unresolved" in str(response.context["form"].errors["outcome"])
    assert Validation.objects.get().is_open


def test_maintainers_may_give_the_validator_role(client_logged_in, project):
    UserFactory(username="vic")
    page = client_logged_in.get("/projects/churn/members/").content.decode()
    assert 'value="validator"' in page
    client_logged_in.post("/projects/churn/members/", {"username": "vic", "role": "validator"})
    assert Membership.objects.get(user__username="vic").role == "validator"


def test_the_tab_is_in_the_project_header(client_logged_in, project):
    page = client_logged_in.get("/projects/churn/records/").content.decode()
    assert 'href="/projects/churn/validations/"' in page


def test_the_tab_asks_as_much_for_many_findings_as_for_one(
    vera, project, django_assert_max_num_queries
):
    vera.post("/projects/churn/validations/new/", {"title": "V", "pinned": ["data:1"]})
    for number in range(6):
        vera.post(
            "/projects/churn/validations/1/findings/new/",
            {"title": f"F{number}", "severity": "low", "description": "Y", "page": "data"},
        )
    vera.get("/projects/churn/validations/")
    # the session, the access version with the project and the role, the validations, the
    # findings with their validation and page (the tabs and the user come from the caches),
    # and the periodic review's inventory row (wiki.inventory: five, however many findings)
    with django_assert_max_num_queries(9):
        response = vera.get("/projects/churn/validations/")
    assert len(response.context["findings"]) == 6


def test_a_finding_about_a_record_links_to_it(vera, project):
    deployment = make_deployment(project, model_version="2.1.0")
    vera.post("/projects/churn/validations/new/", {"title": "V", "pinned": ["data:1"]})
    for record in (f"deployment:{deployment.pk}", "model_version:2.1.0"):
        vera.post(
            "/projects/churn/validations/1/findings/new/",
            {"title": "X", "severity": "low", "description": "Y", "record": record},
        )
    page = vera.get("/projects/churn/validations/").content.decode()
    assert f'href="/projects/churn/deployments/{deployment.pk}/">deployment #' in page
    assert 'href="/projects/churn/model-versions/2.1.0/">model version' in page


def test_the_owner_made_validator_is_not_offered_to_judge_their_remediation(vera, eddie, project):
    vera.post("/projects/churn/validations/new/", {"title": "V", "pinned": ["data:1"]})
    vera.post(
        "/projects/churn/validations/1/findings/new/",
        {"title": "X", "severity": "low", "description": "Y", "page": "data", "owner": "eddie"},
    )
    change = "/projects/churn/findings/1/change/"
    eddie.post(change, {"action": "propose", "base_revision": 1, "text": "Done."})
    Membership.objects.filter(project=project, user__username="eddie").update(
        role=Membership.Role.VALIDATOR
    )
    page = eddie.get("/projects/churn/findings/1/").content.decode()
    assert "Close: remediated" not in page
    assert "Close: remediated" in vera.get("/projects/churn/findings/1/").content.decode()
    response = eddie.post(change, {"action": "close", "base_revision": 2}, follow=True)
    assert "You own finding 1: another validator judges its remediation." in (
        response.content.decode()
    )
    assert Finding.objects.get().status == "remediation_proposed"


def test_a_validator_who_wrote_a_pinned_revision_gets_a_form_error(eddie, project):
    page_author = User.objects.get(username="eddie")
    page = project.pages.get(slug="data")
    edit_page(
        page, actor=Actor(page_author, Source.WEB), base_revision=1, change_reason="", body="M"
    )
    Membership.objects.filter(project=project, user__username="eddie").update(
        role=Membership.Role.VALIDATOR
    )
    response = eddie.post("/projects/churn/validations/new/", {"title": "V", "pinned": ["data:2"]})
    assert response.status_code == 200
    assert "You wrote Data (revision 2)" in str(response.context["form"].errors["pinned"])
    assert not Validation.objects.exists()


def test_a_maintainer_moves_the_due_date_of_a_finding_whose_owner_left(
    vera, eddie, project, client_logged_in
):
    vera.post("/projects/churn/validations/new/", {"title": "V", "pinned": ["data:1"]})
    vera.post(
        "/projects/churn/validations/1/findings/new/",
        {"title": "X", "severity": "low", "description": "Y", "page": "data", "owner": "eddie"},
    )
    Membership.objects.filter(project=project, user__username="eddie").delete()
    due = (timezone.localdate() + timedelta(days=45)).isoformat()
    form = {"action": "assign", "base_revision": 1, "owner": "eddie", "due_date": due}
    response = client_logged_in.post("/projects/churn/findings/1/change/", form, follow=True)
    assert "cannot see" not in response.content.decode()
    finding = Finding.objects.get()
    assert (finding.owner_name, finding.due_date.isoformat(), finding.revision) == (
        "eddie", due, 2,
    )  # fmt: skip
