import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from tests.factories import ProjectFactory, UserFactory, make_free_page
from wiki.categories import MARKDOWN_MAX_LENGTH
from wiki.history import Actor, Source
from wiki.models import HistoricalPage, Membership, Page
from wiki.services import EditConflict
from wiki.services.pages import (
    approval_for,
    approve_page,
    create_free_page,
    edit_page,
    revision_of,
    submit_for_review,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def overview(project):
    return project.pages.get(category="overview")


def web(user):
    return Actor(user=user, source=Source.WEB)


def test_edit_page_saves_fields_and_body_as_a_new_revision(overview, user):
    saved = edit_page(
        overview,
        actor=web(user),
        base_revision=1,
        change_reason="First draft",
        fields={"purpose": "Predict churn.", "status": "production"},
        body="## Notes\n",
    )
    assert saved.revision == 2
    overview.refresh_from_db()
    assert overview.fields == {"purpose": "Predict churn.", "status": "production"}
    assert overview.body == "## Notes"
    row = overview.history.first()
    assert (row.revision, row.history_type, row.history_source) == (2, "~", "web")
    assert (row.history_user, row.history_change_reason) == (user, "First draft")
    assert row.fields == {"purpose": "Predict churn.", "status": "production"}


def test_edit_page_replaces_only_the_parts_given(overview, user):
    edit_page(overview, actor=web(user), base_revision=1, change_reason="", body="Body")
    edit_page(overview, actor=web(user), base_revision=2, change_reason="", fields={"purpose": "P"})
    overview.refresh_from_db()
    assert (overview.body, overview.fields, overview.revision) == ("Body", {"purpose": "P"}, 3)


def test_invalid_field_saves_nothing(overview, user):
    with pytest.raises(ValidationError) as e:
        edit_page(
            overview,
            actor=web(user),
            base_revision=1,
            change_reason="",
            fields={"purpose": "ok", "status": "shipped"},
            body="new body",
        )
    assert list(e.value.message_dict) == ["status"]
    overview.refresh_from_db()
    assert (overview.fields, overview.body, overview.revision) == ({}, "", 1)
    assert overview.history.count() == 1


def test_stale_base_revision_is_a_conflict_and_saves_nothing(overview, user):
    edit_page(overview, actor=web(user), base_revision=1, change_reason="", body="winner")
    with pytest.raises(EditConflict) as e:
        edit_page(overview, actor=web(user), base_revision=1, change_reason="", body="loser")
    assert e.value.current.body == "winner"
    assert e.value.current.revision == 2
    overview.refresh_from_db()
    assert overview.body == "winner"
    assert overview.history.count() == 2


def test_no_base_revision_skips_the_conflict_check_for_scripts(overview):
    edit_page(
        overview, actor=Actor(None, Source.CLI), base_revision=None, change_reason="", body="x"
    )
    saved = edit_page(
        overview, actor=Actor(None, Source.CLI), base_revision=None, change_reason="", body="y"
    )
    assert (saved.body, saved.revision) == ("y", 3)


def test_edit_that_changes_nothing_saves_no_revision(overview, user):
    same = edit_page(
        overview, actor=web(user), base_revision=1, change_reason="noop", fields={}, body=""
    )
    assert same.revision == 1
    assert overview.history.count() == 1


def test_body_too_long_is_refused(overview, user):
    with pytest.raises(ValidationError) as e:
        edit_page(
            overview,
            actor=web(user),
            base_revision=1,
            change_reason="",
            body="x" * (MARKDOWN_MAX_LENGTH + 1),
        )
    assert "body" in e.value.message_dict


def test_free_page_refuses_structured_fields(project, user):
    page = make_free_page(project)
    with pytest.raises(ValidationError) as e:
        edit_page(page, actor=web(user), base_revision=1, change_reason="", fields={"a": "b"})
    assert "fields" in e.value.message_dict


def test_free_page_title_can_be_edited_but_not_emptied(project, user):
    page = make_free_page(project)
    saved = edit_page(page, actor=web(user), base_revision=1, change_reason="", title=" New ")
    assert saved.title == "New"
    with pytest.raises(ValidationError) as e:
        edit_page(page, actor=web(user), base_revision=2, change_reason="", title="")
    assert "title" in e.value.message_dict


def test_create_free_page_records_its_creation(project, user):
    page = create_free_page(
        project, actor=web(user), slug="glossary", title="Glossary", body="**AUC**: ..."
    )
    assert (page.category, page.revision, page.fields) == ("", 1, {})
    row = HistoricalPage.objects.get(id=page.id)
    assert (row.history_type, row.history_source, row.history_change_reason) == (
        "+",
        "web",
        "Created page",
    )


@pytest.mark.parametrize("slug", ["overview", "model", "pages", "records", "settings"])
def test_reserved_slugs_are_refused_for_free_pages(project, user, slug):
    with pytest.raises(ValidationError) as e:
        create_free_page(project, actor=web(user), slug=slug, title="T")
    assert "reserved" in e.value.message_dict["slug"][0]


def test_a_free_page_made_before_its_slug_was_reserved_stays_editable(project, user):
    # "exports" became reserved when its route was listed; such a page may exist already.
    old = Page.objects.create(project=project, slug="exports", title="Exports", body="Old.")
    with pytest.raises(ValidationError) as refused:  # a new page may not take such a slug
        create_free_page(project, actor=web(user), slug="notifications", title="Notes")
    assert "reserved" in refused.value.message_dict["slug"][0]
    edited = edit_page(
        old, actor=web(user), base_revision=old.revision, change_reason="", body="New."
    )
    assert edited.body == "New."


@pytest.mark.parametrize(
    ("slug", "title"), [("Bad Slug", "T"), ("ok", ""), ("x" * 61, "T"), ("ok", "t" * 201)]
)
def test_invalid_free_page_is_refused(project, user, slug, title):
    with pytest.raises(ValidationError):
        create_free_page(project, actor=web(user), slug=slug, title=title)
    assert not project.pages.free().exists()


def test_duplicate_free_page_slug_is_refused_but_other_projects_may_use_it(project, user):
    make_free_page(project, slug="runbook")
    with pytest.raises(ValidationError) as e:
        create_free_page(project, actor=web(user), slug="runbook", title="Again")
    assert "already has" in e.value.message_dict["slug"][0]
    other = ProjectFactory()
    assert create_free_page(other, actor=web(user), slug="runbook", title="R")
    assert Page.objects.filter(slug="runbook").count() == 2


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"body": "a\x00b"}, "body"),
        ({"fields": {"purpose": "a\x00"}}, "fields"),
        ({"fields": {"owners": [{"key": "k\x00", "value": "v"}]}}, "fields"),
    ],
)
def test_nul_characters_are_refused(overview, user, changes, field):
    with pytest.raises(ValidationError) as e:
        edit_page(overview, actor=web(user), base_revision=1, change_reason="", **changes)
    assert field in e.value.message_dict
    overview.refresh_from_db()
    assert overview.revision == 1


@pytest.mark.parametrize("reason", [None, 5, "r" * 1001, "a\x00b"])
def test_a_bad_change_reason_stops_the_write(overview, user, reason):
    with pytest.raises(ValidationError) as e:
        edit_page(overview, actor=web(user), base_revision=1, change_reason=reason, body="x")
    assert "change_reason" in e.value.message_dict
    overview.refresh_from_db()
    assert overview.revision == 1


@pytest.mark.parametrize(("title", "body"), [(5, ""), ("T", 5), (None, "")])
def test_free_page_of_the_wrong_types_is_refused(project, user, title, body):
    with pytest.raises(ValidationError):
        create_free_page(project, actor=web(user), slug="x", title=title, body=body)
    assert not project.pages.free().exists()


def test_line_ends_are_stored_as_lf(overview, user):
    saved = edit_page(
        overview,
        actor=web(user),
        base_revision=1,
        change_reason="",
        fields={"purpose": "a\r\nb\rc"},
        body="x\r\ny",
    )
    assert (saved.fields["purpose"], saved.body) == ("a\nb\nc", "x\ny")


def test_all_errors_of_an_edit_are_reported_together(overview, user):
    with pytest.raises(ValidationError) as e:
        edit_page(
            overview,
            actor=web(user),
            base_revision=1,
            change_reason="",
            fields={"status": "nope"},
            body=5,
        )
    assert set(e.value.message_dict) == {"status", "body"}


def test_a_revision_is_the_row_that_created_it_not_a_later_review_of_it(overview, user):
    bob = UserFactory(username="bob")
    Membership.objects.create(project=overview.project, user=bob, role=Membership.Role.MAINTAINER)
    edit_page(overview, actor=web(user), base_revision=1, change_reason="why", body="new")
    submit_for_review(overview, actor=web(bob))
    approve_page(overview, actor=web(bob), revision=2)
    assert overview.history.filter(revision=2).count() == 3
    row = revision_of(overview, 2)
    assert (row.history_username, row.history_change_reason, row.review_state) == (
        "alice", "why", "draft",
    )  # fmt: skip


def test_the_approval_refusal_says_what_the_page_says(overview, user):
    carol = UserFactory(username="carol")
    Membership.objects.create(project=overview.project, user=carol, role=Membership.Role.EDITOR)
    overview = edit_page(overview, actor=web(user), base_revision=1, change_reason="", body="new")
    for person in (user, carol):
        with pytest.raises(PermissionDenied) as refused:
            approve_page(overview, actor=web(person), revision=2)
        rule = approval_for(overview, person)
        assert not rule.allowed and str(refused.value) == rule.why_not
    assert "you wrote revision 2 and no other maintainer" in approval_for(overview, user).why_not
    assert approval_for(overview, carol).why_not.startswith("Only maintainers approve, and no")
    assert Page.objects.get(pk=overview.pk).review_state == Page.ReviewState.DRAFT


def test_who_may_approve_a_revision(overview, user, admin_user):
    bob, erik = UserFactory(username="bob"), UserFactory(username="erik")
    for person in (bob, erik):
        Membership.objects.create(
            project=overview.project, user=person, role=Membership.Role.MAINTAINER
        )
    # Written by the system (a command, a migration): any maintainer may approve it.
    assert approval_for(overview, user).allowed and approval_for(overview, bob).allowed
    overview = edit_page(overview, actor=web(bob), base_revision=1, change_reason="", body="bob's")
    assert approval_for(overview, user).allowed
    assert approval_for(overview, admin_user).allowed  # a superuser, not a member
    own = approval_for(overview, bob)
    assert (own.allowed, own.approvers) == (False, ("alice", "erik"))
    assert own.why_not.endswith("another maintainer approves it: ask alice or erik.")
    approve_page(overview, actor=web(admin_user), revision=2)
    assert Page.objects.get(pk=overview.pk).approved_by_name == "root"
