"""Independent validation: a validator validates pinned revisions, files findings their
owners remedy, and signs a conclusion; every step in history and in the audit chain."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone

from tests.factories import ProjectFactory, UserFactory, cli_actor, make_deployment
from tests.test_exports import content, export
from wiki import reports, validations
from wiki.access import EDIT, VALIDATE, VALIDATOR_GROUP, VIEW, can, rights, visible_projects
from wiki.audit import head_for, verify
from wiki.history import Actor, Source
from wiki.models import Finding, FindingComment, Membership, Validation
from wiki.services import EditConflict
from wiki.services.notifications import digest_text
from wiki.services.pages import edit_page, submit_for_review
from wiki.services.records import RecordConflict
from wiki.services.validations import (
    accept_risk,
    assign_finding,
    close_finding,
    comment_on_finding,
    conclude_validation,
    file_finding,
    open_validation,
    propose_remediation,
    reopen_finding,
)

pytestmark = pytest.mark.django_db


def web(user):
    return Actor(user=user, source=Source.WEB)


@pytest.fixture
def people(project, user):
    """alice maintains churn (the project fixture); vera validates it, eddie edits it."""
    vera = UserFactory(username="vera")
    eddie = UserFactory(username="eddie")
    Membership.objects.create(project=project, user=vera, role=Membership.Role.VALIDATOR)
    Membership.objects.create(project=project, user=eddie, role=Membership.Role.EDITOR)
    return {"alice": user, "vera": vera, "eddie": eddie}


@pytest.fixture
def validation(project, people):
    return open_validation(project, actor=web(people["vera"]), title="Annual validation 2026")


def file(validation, people, **attrs):
    values = {
        "title": "Split leaks the future",
        "description": "The **test** split overlaps the training period.",
        "severity": "high",
        "page": "data",
        "field": "split",
        "owner": "eddie",
        "due_date": timezone.localdate() + timedelta(days=30),
    }
    return file_finding(validation, actor=web(people["vera"]), **(values | attrs))


# Rights


def test_a_validator_views_and_validates_but_never_edits(project, people):
    assert rights(people["vera"], project) == {VIEW, VALIDATE}
    assert not can(people["eddie"], VALIDATE, project)
    assert not can(people["alice"], VALIDATE, project)


def test_a_global_validator_validates_every_project_but_those_they_edit(project, people):
    other = ProjectFactory(slug="fraud")
    gus = UserFactory(username="gus")
    gus.groups.add(Group.objects.get_or_create(name=VALIDATOR_GROUP)[0])
    Membership.objects.create(project=project, user=gus, role=Membership.Role.EDITOR)
    assert rights(gus, other) == {VIEW, VALIDATE}
    assert rights(gus, project) == {VIEW, EDIT}
    assert set(visible_projects(gus)) == {project, other}
    with pytest.raises(PermissionDenied):
        open_validation(project, actor=web(gus), title="Self-review")


def test_superusers_may_validate(project, admin_user):
    assert can(admin_user, VALIDATE, project)


def test_an_editor_cannot_validate(project, people):
    with pytest.raises(PermissionDenied):
        open_validation(project, actor=web(people["eddie"]), title="Mine")
    assert not Validation.objects.exists()


# The whole life of a validation (the "done when")


def test_a_validation_from_opening_to_approval_with_conditions(project, people):
    vera, eddie = web(people["vera"]), web(people["eddie"])
    validation = open_validation(project, actor=vera, title="Annual validation 2026")
    assert validation.number == 1
    slugs = set(project.pages.values_list("slug", flat=True))
    assert {p["page"] for p in validation.pinned} == slugs

    finding = file(validation, people)
    assert (finding.number, finding.status, finding.revision) == (1, "open", 1)
    assert finding.page.slug == "data" and finding.field == "split"

    finding = propose_remediation(
        finding, actor=eddie, remediation="Split by time; see revision 3.", base_revision=1
    )
    assert finding.status == "remediation_proposed"
    finding = close_finding(finding, actor=vera, base_revision=2, comment="Verified.")
    assert (finding.status, finding.closed_by_name) == ("closed", "vera")
    other = file(validation, people, title="Monitoring thresholds undocumented", severity="low")

    validation = conclude_validation(
        validation, actor=vera, outcome="approved_with_conditions",
        conclusion="Fit for use once finding 2 is remedied.",
    )  # fmt: skip
    assert not validation.is_open and validation.concluded_by_name == "vera"

    steps = validations.lifecycle(finding)
    assert [(s.status, s.username) for s in steps] == [
        ("open", "vera"), ("remediation_proposed", "eddie"), ("closed", "vera"),
    ]  # fmt: skip
    assert [s.reason for s in steps] == [
        "Filed finding 1 (high)", "Proposed a remediation of finding 1", "Closed finding 1",
    ]  # fmt: skip
    assert FindingComment.objects.get(finding=finding).body == "Verified."
    assert other.status == "open"

    signed = validations.signature(validation)
    assert signed.name == "vera" and signed.at == validation.concluded_at
    head = head_for(project)
    assert head.digest == signed.digest  # the conclusion was the chain's last link
    assert verify(head).ok


def test_altering_a_findings_history_breaks_the_chain(project, people, validation):
    finding = file(validation, people)
    table = connection.ops.quote_name(Finding.history.model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET severity = 'low' WHERE id = %s",  # noqa: S608
            [finding.pk],
        )
    verdict = verify(head_for(project))
    assert not verdict.ok
    assert verdict.first_bad["kind"] == "altered"


# What a finding is about


@pytest.mark.parametrize(
    ("about", "field", "message"),
    [
        ({"page": "", "field": ""}, "page", "Say what the finding is about"),
        ({"page": "nope", "field": ""}, "page", "has no page 'nope'"),
        ({"field": "colour"}, "field", "has no field 'colour'"),
        ({"page": "", "field": "split"}, "field", "Name the page"),
        ({"page_revision": 9}, "page_revision", "has revisions 1 to 1"),
        ({"record": "deployment:99"}, "record", "has no deployment 99"),
        ({"record": "model_version:"}, "record", "Name a record as"),
        ({"record": "deployment:x"}, "record", "named by its number"),
        ({"owner": "nobody"}, "owner", "no active user"),
        ({"severity": "critical"}, "severity", "not a valid choice"),
        ({"title": "  "}, "title", "required"),
        ({"due_date": timezone.localdate() - timedelta(days=1)}, "due_date", "in the past"),
    ],
)
def test_a_finding_about_nothing_real_is_refused_naming_the_field(
    people, validation, about, field, message
):
    with pytest.raises(ValidationError) as error:
        file(validation, people, **about)
    assert message in " ".join(error.value.message_dict[field])
    assert not Finding.objects.exists()


def test_a_finding_may_be_about_a_record_or_a_page_revision(project, people, validation):
    deployment = make_deployment(project, model_version="2.1.0")
    on_record = file(validation, people, page="", field="", record=f"deployment:{deployment.pk}")
    on_version = file(validation, people, page="", field="", record="model_version:2.1.0")
    on_revision = file(validation, people, field="", page_revision=1)
    assert (on_record.record, on_version.number, on_revision.page_revision) == (
        f"deployment:{deployment.pk}", 2, 1,
    )  # fmt: skip


def test_an_owner_who_cannot_see_the_project_is_refused(people, validation):
    UserFactory(username="stranger")
    with pytest.raises(ValidationError, match="cannot see"):
        file(validation, people, owner="stranger")


def test_a_validator_cannot_own_a_finding(people, validation):
    """Otherwise they would propose the remedy and close it themselves."""
    with pytest.raises(ValidationError, match="vera validates"):
        file(validation, people, owner="vera")


def test_pinned_revisions_must_exist(project, people):
    vera = web(people["vera"])
    with pytest.raises(ValidationError, match="has revisions 1 to 1"):
        open_validation(project, actor=vera, title="V", pinned=[{"page": "data", "revision": 2}])
    with pytest.raises(ValidationError, match="no page"):
        open_validation(project, actor=vera, title="V", pinned=[{"page": "x", "revision": 1}])
    page = project.pages.get(slug="data")
    edit_page(page, actor=cli_actor(), base_revision=1, change_reason="", body="v2")
    opened = open_validation(
        project, actor=vera, title="V", pinned=[{"page": "data", "revision": 1}]
    )
    assert opened.pinned == [{"page": "data", "revision": 1}]


# The life cycle's rules


def test_only_a_finding_with_a_proposal_can_be_closed(people, validation):
    finding = file(validation, people)
    with pytest.raises(RecordConflict, match="is open: only a finding that is remediation"):
        close_finding(finding, actor=web(people["vera"]), base_revision=1)


def test_a_validator_sends_a_remediation_back_with_a_comment(people, validation):
    finding = file(validation, people)
    finding = propose_remediation(
        finding, actor=web(people["eddie"]), remediation="Fixed.", base_revision=1
    )
    with pytest.raises(ValidationError):
        reopen_finding(finding, actor=web(people["vera"]), base_revision=2, comment="")
    finding = reopen_finding(
        finding, actor=web(people["vera"]), base_revision=2, comment="Not fixed: still leaks."
    )
    assert finding.status == "open" and finding.revision == 3
    assert finding.comments.get().body == "Not fixed: still leaks."


def test_only_the_owner_an_editor_or_a_maintainer_proposes_a_remediation(project, people):
    validation = open_validation(project, actor=web(people["vera"]), title="V")
    finding = file(validation, people, owner="")
    with pytest.raises(PermissionDenied):
        propose_remediation(
            finding, actor=web(people["vera"]), remediation="I fix it myself.", base_revision=1
        )
    viewer = UserFactory(username="vic")
    Membership.objects.create(project=project, user=viewer, role=Membership.Role.VIEWER)
    assign_finding(finding, actor=web(people["vera"]), base_revision=1, owner="vic")
    finding.refresh_from_db()
    done = propose_remediation(finding, actor=web(viewer), remediation="Done.", base_revision=2)
    assert done.status == "remediation_proposed"


def test_a_stale_change_is_refused(people, validation):
    finding = file(validation, people)
    propose_remediation(finding, actor=web(people["eddie"]), remediation="A", base_revision=1)
    with pytest.raises(EditConflict):
        close_finding(finding, actor=web(people["vera"]), base_revision=1)


def test_a_maintainer_accepts_a_risk_with_a_justification(people, validation):
    finding = file(validation, people)
    with pytest.raises(PermissionDenied):
        accept_risk(finding, actor=web(people["eddie"]), justification="Fine", base_revision=1)
    with pytest.raises(ValidationError):
        accept_risk(finding, actor=web(people["alice"]), justification=" ", base_revision=1)
    finding = accept_risk(
        finding, actor=web(people["alice"]), justification="Retired in Q3.", base_revision=1
    )
    assert (finding.status, finding.accepted_by_name) == ("accepted_risk", "alice")
    assert finding.closed_at is not None
    with pytest.raises(RecordConflict):
        propose_remediation(finding, actor=web(people["eddie"]), remediation="x", base_revision=2)


def test_approval_needs_every_finding_resolved(people, validation):
    file(validation, people)
    with pytest.raises(ValidationError) as error:
        conclude_validation(
            validation, actor=web(people["vera"]), outcome="approved", conclusion="Fine."
        )
    assert "approved_with_conditions" in error.value.message_dict["outcome"][0]


def test_a_concluded_validation_takes_no_finding_and_no_second_conclusion(people, validation):
    vera = web(people["vera"])
    conclude_validation(validation, actor=vera, outcome="rejected", conclusion="Not fit.")
    with pytest.raises(RecordConflict, match="concluded"):
        file(validation, people)
    with pytest.raises(RecordConflict, match="concluded"):
        conclude_validation(validation, actor=vera, outcome="approved", conclusion="Fine.")


def test_an_auditor_cannot_comment(project, people, validation):
    finding = file(validation, people)
    auditor = UserFactory(username="audrey")
    auditor.groups.add(Group.objects.get_or_create(name="auditor")[0])
    with pytest.raises(PermissionDenied):
        comment_on_finding(finding, actor=web(auditor), body="Hm.")
    comment = comment_on_finding(finding, actor=web(people["eddie"]), body="On it.")
    assert comment.author_name == "eddie"


def test_overdue_findings_are_counted_per_project(project, people, validation):
    finding = file(validation, people)
    later = timezone.localdate() + timedelta(days=31)
    assert validations.overdue_counts([project.pk], today=later) == {project.pk: 1}
    accept_risk(finding, actor=web(people["alice"]), justification="ok", base_revision=1)
    assert validations.overdue_counts([project.pk], today=later) == {}


# Overdue findings on the dashboard and in the digest


def _pass_time(finding, days):
    """The finding's due date passes: moved back by ``days`` (time passing, not an edit,
    so no history row)."""
    Finding.objects.filter(pk=finding.pk).update(due_date=timezone.localdate() - timedelta(days))


def test_an_overdue_finding_puts_its_project_first_on_the_dashboard(
    project, people, validation, client_logged_in
):
    quiet = ProjectFactory(slug="aaa", name="Aaa")  # first by every other measure
    Membership.objects.create(project=quiet, user=people["alice"], role="maintainer")
    finding = file(validation, people)
    page = client_logged_in.get("/").content.decode()
    assert "overdue finding" not in page
    _pass_time(finding, 2)
    response = client_logged_in.get("/")
    rows = response.context["page_obj"]
    assert [row.project.slug for row in rows][0] == "churn"
    assert rows[0].overdue_findings == 1
    assert "1 overdue finding" in response.content.decode()


def test_the_dashboard_asks_no_more_for_overdue_findings(
    project, people, validation, client_logged_in, django_assert_max_num_queries
):
    _pass_time(file(validation, people), 2)
    client_logged_in.get("/")
    with django_assert_max_num_queries(5):  # as test_project_list_queries_do_not_grow_…
        client_logged_in.get("/")


def test_the_digest_lists_overdue_findings(project, people, validation):
    finding = file(validation, people)
    before = digest_text(project) or ""
    assert "Overdue validation findings" not in before
    _pass_time(finding, 3)
    text = digest_text(project)
    due = (timezone.localdate() - timedelta(3)).isoformat()
    assert (
        f"• Finding 1 (high): Split leaks the future, owner eddie, due {due}, open: "
        "http://127.0.0.1:8000/projects/churn/findings/1/"
    ) in text
    close = propose_remediation(finding, actor=web(people["eddie"]), remediation="x",
                                base_revision=1)  # fmt: skip
    close_finding(close, actor=web(people["vera"]), base_revision=2)
    assert "Overdue validation findings" not in (digest_text(project) or "")


# The audit report


@pytest.fixture
def validated(project, people, validation):
    """The issue's "done when": a high finding on a field, remedied, closed, and the
    validation concluded approved with conditions (a second finding still open)."""
    vera, eddie = web(people["vera"]), web(people["eddie"])
    finding = file(validation, people)
    propose_remediation(finding, actor=eddie, remediation="Split *by time*.", base_revision=1)
    close_finding(finding, actor=vera, base_revision=2, comment="Checked the new split.")
    file(validation, people, title="Drift alerts undocumented", severity="medium", field="")
    conclude_validation(
        validation, actor=vera, outcome="approved_with_conditions",
        conclusion="Fit for use once finding 2 is remedied.",
    )  # fmt: skip
    validation.refresh_from_db()
    return validation


def test_the_report_holds_every_validation_and_every_findings_life_cycle(validated, project):
    report = reports.build(project, report_id="t", generated_at=timezone.now(), with_history=False)
    section = report["validation"]
    (entry,) = section["validations"]
    assert entry["outcome"] == "approved_with_conditions" and entry["concluded_by"] == "vera"
    assert entry["signature"] == validations.signature(validated).digest
    assert {"page": "data", "revision": 1} in entry["pinned"]
    first, second = section["findings"]
    assert [(s["status"], s["by"]) for s in first["lifecycle"]] == [
        ("open", "vera"), ("remediation_proposed", "eddie"), ("closed", "vera"),
    ]  # fmt: skip
    assert (first["page"], first["field"], first["comments"][0]["body"]) == (
        "data", "split", "Checked the new split.",
    )  # fmt: skip
    assert second["status"] == "open"
    inventory = report["inventory"]
    assert inventory["last_validation"]["outcome"] == "approved_with_conditions"
    assert inventory["open_findings"] == {"high": 0, "medium": 1, "low": 0}


@pytest.mark.parametrize("format", ["markdown", "html"])
def test_the_exported_report_shows_the_validation(validated, project, user, format):
    job = export(project, format, user)
    assert job.status == "done", job.last_error
    text = content(job).decode()
    digest = validations.signature(validated).digest
    assert "Validation (1)" in text and digest in text
    assert "Approved with conditions" in text
    assert "Open" in text and "Remediation proposed" in text and "Closed" in text
    assert "Split leaks the future" in text and "Drift alerts undocumented" in text
    assert "1 medium" in text  # the inventory's unresolved findings
    if format == "html":
        assert "<em>by time</em>" in text  # Markdown rendered


# Independence: nobody judges their own work, whatever their rights


def made_validator(project, user, how):
    """``user`` becomes a validator of ``project``: by their role, or by the global group
    (with a viewer's role: a global validator validates no project they edit)."""
    membership = Membership.objects.get(project=project, user=user)
    if how == "role":
        membership.role = Membership.Role.VALIDATOR
    else:
        membership.role = Membership.Role.VIEWER
        user.groups.add(Group.objects.get_or_create(name=VALIDATOR_GROUP)[0])
    membership.save()
    assert can(user, VALIDATE, project)


@pytest.mark.parametrize("how", ["role", "group"])
def test_an_owner_made_validator_cannot_close_or_send_back_their_own_remediation(
    project, people, validation, how
):
    olga = UserFactory(username="olga")
    Membership.objects.create(project=project, user=olga, role=Membership.Role.EDITOR)
    finding = file(validation, people, owner="olga")
    made_validator(project, olga, how)
    finding = propose_remediation(
        finding, actor=web(olga), remediation="Split by time.", base_revision=1
    )
    with pytest.raises(PermissionDenied, match="You own finding 1: another validator"):
        close_finding(finding, actor=web(olga), base_revision=2)
    with pytest.raises(PermissionDenied, match="You own finding 1"):
        reopen_finding(finding, actor=web(olga), base_revision=2, comment="Not good enough.")
    finding.refresh_from_db()
    assert (finding.status, finding.revision, finding.closed_by) == (
        "remediation_proposed", 2, None,
    )  # fmt: skip
    closed = close_finding(finding, actor=web(people["vera"]), base_revision=2)
    assert closed.closed_by == people["vera"] != closed.owner


def test_a_superuser_judges_no_remediation_they_own_or_proposed(
    project, people, validation, admin_user
):
    root = web(admin_user)
    owned = file(validation, people, owner="root")
    owned = propose_remediation(owned, actor=root, remediation="Done.", base_revision=1)
    with pytest.raises(PermissionDenied, match="You own finding 1"):
        close_finding(owned, actor=root, base_revision=2)

    # eddie owns the second; root proposes its remedy, then vera moves its due date (a
    # row of the same status, written by her): root still proposed it.
    proposed = file(validation, people, title="No monitoring")
    proposed = propose_remediation(proposed, actor=root, remediation="Added.", base_revision=1)
    later = timezone.localdate() + timedelta(days=90)
    proposed = assign_finding(proposed, actor=web(people["vera"]), base_revision=2, due_date=later)
    for judge in (close_finding, reopen_finding):
        with pytest.raises(PermissionDenied, match="You proposed the remediation of finding 2"):
            judge(proposed, actor=root, base_revision=3, comment="Mine.")
    assert close_finding(proposed, actor=web(people["vera"]), base_revision=3).status == "closed"


def test_a_remediation_sent_back_and_proposed_again_is_judged_by_its_new_proposer(
    project, people, validation, admin_user
):
    """root proposed the first remedy; eddie, the owner, the second: root may judge it."""
    finding = file(validation, people)
    finding = propose_remediation(finding, actor=web(admin_user), remediation="A", base_revision=1)
    finding = reopen_finding(finding, actor=web(people["vera"]), base_revision=2, comment="No.")
    finding = propose_remediation(
        finding, actor=web(people["eddie"]), remediation="B", base_revision=3
    )
    closed = close_finding(finding, actor=web(admin_user), base_revision=4)
    assert closed.closed_by == admin_user


@pytest.mark.parametrize("how", ["role", "group"])
def test_a_validator_does_not_pin_revisions_they_wrote(project, people, how):
    eddie = people["eddie"]
    page = project.pages.get(slug="data")
    edit_page(page, actor=web(eddie), base_revision=1, change_reason="", body="Mine.")
    # Sending another's revision for review writes a row of it, but not its text.
    submit_for_review(project.pages.get(slug="overview"), actor=web(eddie))
    made_validator(project, eddie, how)
    with pytest.raises(ValidationError) as refused:
        open_validation(project, actor=web(eddie), title="Self-review")
    message = refused.value.message_dict["pinned"][0]
    assert "You wrote Data (revision 2)" in message and message.endswith(
        "Choose the pages to pin, leaving out Data."
    )
    with pytest.raises(ValidationError, match=r"You wrote Data \(revision 2\)"):
        open_validation(
            project, actor=web(eddie), title="V", pinned=[{"page": "data", "revision": 2}]
        )
    assert not Validation.objects.exists()
    # The revision before eddie's is someone else's text, as are the other pages.
    opened = open_validation(
        project, actor=web(eddie), title="V", pinned=[{"page": "data", "revision": 1}]
    )
    assert opened.pinned == [{"page": "data", "revision": 1}]
    others = [{"page": slug, "revision": 1} for slug in
              project.pages.exclude(slug="data").values_list("slug", flat=True)]  # fmt: skip
    assert open_validation(project, actor=web(eddie), title="W", pinned=others).number == 2


def test_the_due_date_changes_when_the_owner_has_left_or_is_deactivated(
    project, people, validation
):
    eddie = people["eddie"]
    finding = file(validation, people)
    Membership.objects.filter(project=project, user=eddie).delete()
    later = timezone.localdate() + timedelta(days=90)
    alice = web(people["alice"])
    finding = assign_finding(finding, actor=alice, base_revision=1, owner="eddie", due_date=later)
    assert (finding.owner, finding.due_date, finding.revision) == (eddie, later, 2)
    eddie.is_active = False
    eddie.save()
    finding = assign_finding(
        finding, actor=alice, base_revision=2, owner="eddie", due_date=later + timedelta(days=1)
    )
    assert (finding.owner, finding.revision) == (eddie, 3)
    # A new owner is still checked: eddie cannot be given it back.
    finding = assign_finding(finding, actor=alice, base_revision=3, owner="")
    with pytest.raises(ValidationError, match="no active user 'eddie'"):
        assign_finding(finding, actor=alice, base_revision=4, owner="eddie")
