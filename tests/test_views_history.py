"""History in the browser: old revisions, comparing, restoring, review and approval, the
activity log, members and the audit chain's state."""

import csv
import io
import re
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

import frontend
from tests.factories import UserFactory, history_lines
from wiki.history import Actor, Source
from wiki.models import Membership
from wiki.services.pages import approve_page, edit_page, submit_for_review

pytestmark = pytest.mark.django_db

PAGE = "/projects/churn/overview/"


def overview(project):
    return project.pages.get(category="overview")


@pytest.fixture
def revisions(project, user):
    """The overview in three revisions: created (1), then edited by alice (2) and bob (3)."""
    edit_page(
        overview(project), actor=Actor(user, Source.WEB), base_revision=1,
        change_reason="first words", fields={"purpose": "Predict churn."},
        body="one\n<b>two</b>\nthree",
    )  # fmt: skip
    return edit_page(
        overview(project), actor=Actor(UserFactory(username="bob"), Source.WEB), base_revision=2,
        change_reason="bob's turn", fields={"purpose": "Predict churn monthly."},
        body="one\n<i>2</i>\nthree",
    )  # fmt: skip


def logged_in(project, username, role):
    person = UserFactory(username=username)
    Membership.objects.create(project=project, user=person, role=role)
    client = Client()
    client.force_login(person)
    return client


def test_history_links_each_revision_and_compares_any_two(client_logged_in, revisions):
    html = client_logged_in.get(f"{PAGE}history/").content.decode()
    assert f'href="{PAGE}revisions/2/"' in html
    assert 'name="from"' in html and 'name="to"' in html


def test_an_old_revision_is_shown_rendered_with_who_and_why(client_logged_in, revisions):
    response = client_logged_in.get(f"{PAGE}revisions/2/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Predict churn." in html and "Predict churn monthly." not in html
    assert "first words" in html
    assert "<b>two</b>" in html  # sanitized HTML keeps harmless tags
    assert client_logged_in.get(f"{PAGE}revisions/9/").status_code == 404


def test_compare_shows_changed_fields_side_by_side_escaped(client_logged_in, revisions):
    response = client_logged_in.get(f"{PAGE}compare/?from=2&to=3")
    assert response.status_code == 200
    html = response.content.decode()
    assert "revision 2 → revision 3" in html
    assert "Predict churn.</td>" in html and "Predict churn<ins> monthly</ins>.</td>" in html
    assert "&lt;<del>b</del>&gt;<del>two</del>&lt;/<del>b</del>&gt;" in html
    assert "&lt;<ins>i</ins>&gt;<ins>2</ins>&lt;/<ins>i</ins>&gt;" in html
    assert "<i>" not in html and "<b>" not in html
    changes = {c.name: c for c in response.context["changes"]}
    assert changes["purpose"].changed and changes["body"].changed
    assert not changes["owners"].changed
    assert "updated_at" not in changes


def test_compare_marks_the_changed_words_of_a_changed_line_escaped(client_logged_in, project):
    page = overview(project)
    actor = Actor(project.memberships.get().user, Source.WEB)
    edit_page(page, actor=actor, base_revision=1, change_reason="",
              body="Retrain every month on <script>x()</script> data.")  # fmt: skip
    edit_page(page, actor=actor, base_revision=2, change_reason="",
              body="Retrain every week on <script>y()</script> data.")  # fmt: skip
    html = client_logged_in.get(f"{PAGE}compare/?from=2&to=3").content.decode()
    assert (
        "Retrain every <del>month</del> on &lt;script&gt;<del>x</del>()&lt;/script&gt; data."
        in html
    )
    assert (
        "Retrain every <ins>week</ins> on &lt;script&gt;<ins>y</ins>()&lt;/script&gt; data." in html
    )
    assert "<script>" not in html.split("<main", 1)[-1]


def test_no_template_shows_its_comments(client_logged_in, revisions):
    # Django's {# #} ends on the line it starts on; a longer comment is {% comment %}.
    html = client_logged_in.get(f"{PAGE}compare/?from=2&to=3").content.decode()
    assert "{#" not in html and "Side by side, field by field" not in html
    templates = Path(frontend.__file__).parent / "templates"
    for template in templates.rglob("*.html"):
        for number, line in enumerate(template.read_text().splitlines(), 1):
            opened = line.rfind("{#")
            assert opened < 0 or "#}" in line[opened:], f"{template.name}:{number}"


@pytest.mark.parametrize(
    ("query", "messages"),
    [
        ("", {"from": "Give a revision number", "to": "Give a revision number"}),
        ("?from=2", {"to": "Give a revision number"}),
        ("?from=2&to=99", {"to": "There is no revision 99. Overview has revisions 1 to 3."}),
        ("?from=two&to=3", {"from": "'two' is not a revision number"}),
        ("?from=0&to=99999999999999999999999", {"from": "There is no revision 0", "to": "no"}),
    ],
)
def test_compare_with_a_missing_or_unknown_revision_is_400_saying_which(
    client_logged_in, revisions, query, messages
):
    response = client_logged_in.get(f"{PAGE}compare/{query}")
    assert response.status_code == 400
    errors = response.context["errors"]
    assert set(errors) == set(messages)
    for name, message in messages.items():
        assert message in errors[name][0]
    html = response.content.decode()
    assert "These revisions cannot be compared" in html and f'href="{PAGE}history/"' in html


def test_compare_of_a_page_that_does_not_exist_is_still_404(client_logged_in, revisions):
    assert client_logged_in.get("/projects/churn/nope/compare/?from=1&to=2").status_code == 404


def test_restore_asks_for_confirmation_and_a_reason_then_adds_a_revision(
    client_logged_in, revisions, project
):
    url = f"{PAGE}revisions/2/restore/"
    confirm = client_logged_in.get(url)
    assert confirm.status_code == 200
    assert "Restore revision 2 of Overview?" in confirm.content.decode()
    assert overview(project).revision == 3  # a GET changes nothing

    missing_reason = client_logged_in.post(url, {"base_revision": "3", "change_reason": ""})
    assert missing_reason.status_code == 200
    assert "change_reason" in missing_reason.context["form"].errors
    assert overview(project).revision == 3

    history_before = set(overview(project).history.values_list("history_id", flat=True))
    response = client_logged_in.post(url, {"base_revision": "3", "change_reason": "bob erred"})
    assert response.status_code == 302
    page = overview(project)
    assert (page.revision, page.fields, page.body) == (
        4, {"purpose": "Predict churn."}, "one\n<b>two</b>\nthree",
    )  # fmt: skip
    latest = page.history.first()
    assert latest.history_change_reason == "Restored revision 2: bob erred"
    assert latest.history_source == "web"
    assert history_before < set(page.history.values_list("history_id", flat=True))


def test_a_restore_reason_too_long_once_the_history_names_the_revision_is_a_form_error(
    client_logged_in, revisions, project
):
    # The form takes the history's 1,000 characters; "Restored revision 2: " is added.
    response = client_logged_in.post(
        f"{PAGE}revisions/2/restore/", {"base_revision": "3", "change_reason": "r" * 1000}
    )
    assert response.status_code == 200
    assert "At most 979 characters here" in response.context["form"].errors["change_reason"][0]
    assert overview(project).revision == 3


def test_restore_from_a_stale_confirmation_is_refused(client_logged_in, revisions, project):
    response = client_logged_in.post(
        f"{PAGE}revisions/1/restore/", {"base_revision": "2", "change_reason": "back"}
    )
    assert response.status_code == 200
    assert "This was changed while you were editing" in response.content.decode()
    assert overview(project).revision == 3


def test_the_edit_conflict_screen_shows_both_texts_and_their_difference(
    client_logged_in, revisions
):
    form = {
        "purpose": "Predict churn yearly.", "owners": "", "stakeholders": "", "status": "",
        "risk_level": "", "out_of_scope": "", "body": "mine", "change_reason": "x",
        "base_revision": "2", "save": "",
    }  # fmt: skip
    response = client_logged_in.post(f"{PAGE}edit/", form)
    html = response.content.decode()
    assert "How your text differs from revision 3" in html
    assert "Predict churn <del>monthly</del>.</td>" in html
    assert "Predict churn <ins>yearly</ins>.</td>" in html
    assert "&lt;i&gt;2&lt;/i&gt;" in html
    assert ">\nmine</textarea>" in html


def test_the_edit_conflict_names_who_wrote_the_revision_not_who_submitted_it(
    client_logged_in, revisions, project, user
):
    submit_for_review(overview(project), actor=Actor(user, Source.WEB))
    form = {"purpose": "x", "body": "mine", "change_reason": "x", "base_revision": "2", "save": ""}
    html = client_logged_in.post(f"{PAGE}edit/", form).content.decode()
    assert "Revision 3 was saved\n  by bob" in html and "(“bob&#x27;s turn”)" in html


def test_review_and_four_eyes_approval_in_the_browser(client_logged_in, revisions, project):
    # bob wrote revision 3; alice (maintainer) may approve it, bob may not.
    assert client_logged_in.post(f"{PAGE}review/").status_code == 302
    assert overview(project).review_state == "in_review"
    html = client_logged_in.get(PAGE).content.decode()
    assert "In review" in html and "Approve revision 3" in html

    response = client_logged_in.post(
        f"{PAGE}approve/", {"revision": "3", "comment": "Checked."}, follow=True
    )
    page = overview(project)
    assert (page.review_state, page.approved_revision, page.approved_by_name) == (
        "approved", 3, "alice",
    )  # fmt: skip
    assert "Approved</strong>: revision 3, by alice" in response.content.decode()

    edit_page(page, actor=Actor(None, Source.CLI), base_revision=3, change_reason="", body="new")
    html = client_logged_in.get(PAGE).content.decode()
    assert "Approved revision 3; current revision 4 differs" in html
    assert f'href="{PAGE}compare/?from=3&amp;to=4"' in html
    overview_table = client_logged_in.get("/projects/churn/").content.decode()
    assert "Approved revision 3; current revision 4 differs" in overview_table


def test_the_writer_of_a_revision_is_told_another_maintainer_must_approve(
    client_logged_in, project, user
):
    edit_page(overview(project), actor=Actor(user, Source.WEB), base_revision=1,
              change_reason="", body="alice wrote this")  # fmt: skip
    response = client_logged_in.post(f"{PAGE}approve/", {"revision": "2"}, follow=True)
    assert "Four eyes" in response.content.decode()
    assert overview(project).review_state == "draft"


def as_member(project, person, role):
    Membership.objects.update_or_create(project=project, user=person, defaults={"role": role})
    client = Client()
    client.force_login(person)
    return client


def test_the_approve_button_is_offered_only_to_who_may_approve(
    client_logged_in, revisions, project
):
    # bob, a maintainer too, wrote revision 3: alice may approve it; bob and carol may not.
    bob = as_member(
        project, get_user_model().objects.get(username="bob"), Membership.Role.MAINTAINER
    )
    carol = logged_in(project, "carol", Membership.Role.EDITOR)
    mine = client_logged_in.get(PAGE).content.decode()
    assert "Approve revision 3" in mine and 'class="approval-why"' not in mine
    own = bob.get(PAGE).content.decode()
    assert "Approve revision 3" not in own
    assert "Four eyes: you wrote revision 3; another maintainer approves it: ask alice." in own
    other = carol.get(PAGE).content.decode()
    assert "Approve revision 3" not in other
    assert "Only maintainers approve: ask alice." in other


def test_with_one_maintainer_who_wrote_the_revision_the_page_says_nobody_can_approve(
    client_logged_in, project, user
):
    edit_page(overview(project), actor=Actor(user, Source.WEB), base_revision=1,
              change_reason="", body="alice wrote this")  # fmt: skip
    mine = client_logged_in.get(PAGE).content.decode()
    assert "Approve revision 2" not in mine
    assert (
        "you wrote revision 2 and no other maintainer can approve it: add a maintainer on "
        "the Members page." in mine
    )
    assert 'href="/projects/churn/members/">Add a maintainer</a>' in mine
    viewer = logged_in(project, "vera", Membership.Role.VIEWER).get(PAGE).content.decode()
    assert "Only maintainers approve, and no maintainer but its author can approve revision 2" in (
        viewer
    )
    assert "Add a maintainer</a>" not in viewer


def test_approving_a_page_that_moved_on_is_refused(client_logged_in, revisions, project):
    response = client_logged_in.post(f"{PAGE}approve/", {"revision": "2"}, follow=True)
    assert "The page changed meanwhile (now revision 3)" in response.content.decode()
    assert overview(project).approved_revision is None


def test_the_history_lists_each_revision_once_with_its_review_and_approval(
    client_logged_in, revisions, project, user
):
    # bob wrote revision 3; alice submits it for review, then approves it.
    submit_for_review(overview(project), actor=Actor(user, Source.WEB))
    approve_page(overview(project), actor=Actor(user, Source.WEB), revision=3, comment="ok")
    response = client_logged_in.get(f"{PAGE}history/")
    lines = history_lines(response)
    assert [line.revision for line in lines] == [3, 2, 1]
    assert [line.reason for line in lines[:2]] == ["bob's turn", "first words"]
    submitted, approved = lines[0].events
    assert submitted.startswith("Submitted for review by alice,") and not submitted.endswith("”")
    assert approved.startswith("Approved by alice,") and approved.endswith(": “ok”")
    assert [line.events for line in lines[1:]] == [[], []]
    html = response.content.decode()
    assert "Submitted for review by alice" in html and "Approved by alice" in html
    # The default comparison: the latest revision against the one before it.
    checked = re.findall(r'name="(from|to)" value="(\d+)" id="[\w-]+" checked', html)
    assert sorted(checked) == [("from", "2"), ("to", "3")]
    compared = client_logged_in.get(f"{PAGE}compare/?from=2&to=3").content.decode()
    assert "revision 2 → revision 3" in compared
    assert "(“bob&#x27;s turn”)" in compared and "Submitted for review" not in compared


def test_the_history_pages_by_revision_and_keeps_events_with_theirs(
    client_logged_in, revisions, project, user, monkeypatch
):
    monkeypatch.setattr("frontend.views.pages.REVISIONS_PER_PAGE", 2)
    submit_for_review(overview(project), actor=Actor(user, Source.WEB))
    first = client_logged_in.get(f"{PAGE}history/")
    assert [(line.revision, len(line.events)) for line in history_lines(first)] == [(3, 1), (2, 0)]
    assert (first.context["pager"].newer, first.context["pager"].older) == ("", "?before=2")
    second = client_logged_in.get(f"{PAGE}history/?before=2")
    assert [line.revision for line in history_lines(second)] == [1]
    assert (second.context["pager"].newer, second.context["pager"].older) == ("?after=1", "")
    back = client_logged_in.get(f"{PAGE}history/?after=1")
    assert [line.revision for line in history_lines(back)] == [3, 2]


def test_a_revision_is_shown_with_who_wrote_it_not_who_reviewed_it(
    client_logged_in, revisions, project, user
):
    submit_for_review(overview(project), actor=Actor(user, Source.WEB))
    approve_page(overview(project), actor=Actor(user, Source.WEB), revision=3)
    old = client_logged_in.get(f"{PAGE}revisions/3/").content.decode()
    assert "by bob (Web): “bob&#x27;s turn”" in old
    current = client_logged_in.get(PAGE).content.decode()
    assert " by bob\n" in current and "by alice\n" not in current


def test_the_activity_log_filters_pages_and_downloads(client_logged_in, revisions, project):
    response = client_logged_in.get("/projects/churn/activity/?kind=page&user=bob")
    assert response.status_code == 200
    entries = response.context["entries"]
    assert [(e.kind, e.username, e.reason) for e in entries] == [("page", "bob", "bob's turn")]
    everything = client_logged_in.get("/projects/churn/activity/").context["entries"]
    assert len(everything) == 10  # project, six pages, maintainer, two edits

    download = client_logged_in.get("/projects/churn/activity/?kind=page&format=csv")
    assert download["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert [row[2] for row in rows[1:3]] == ["bob", "alice"]
    assert len(rows) == 1 + 8


def test_the_activity_log_pages_keep_their_filters(client_logged_in, project, monkeypatch):
    monkeypatch.setattr("frontend.views.projects.ACTIVITY_PER_PAGE", 3)
    response = client_logged_in.get("/projects/churn/activity/?kind=page")
    first = [entry.seq for entry in response.context["entries"]]
    assert len(first) == 3  # of the six category pages
    assert f'href="?kind=page&amp;before={first[-1]}"' in response.content.decode()
    older = client_logged_in.get(f"/projects/churn/activity/?kind=page&before={first[-1]}")
    assert [entry.kind for entry in older.context["entries"]] == ["page"] * 3
    assert older.context["pager"].older == ""  # the first three of the log are pages too
    assert f'href="?kind=page&amp;after={older.context["entries"][0].seq}"' in (
        older.content.decode()
    )


def test_a_bad_activity_filter_is_shown_not_ignored(client_logged_in, revisions):
    response = client_logged_in.get("/projects/churn/activity/?since=yesterday")
    assert response.status_code == 400
    assert "since" in response.context["form"].errors
    assert response.context["entries"] == []  # not the whole log
    csv = client_logged_in.get("/projects/churn/activity/?since=yesterday&format=csv")
    assert csv.status_code == 400 and csv["Content-Type"].startswith("text/html")
    last = client_logged_in.get("/projects/churn/activity/?until=9999-12-31")
    assert last.status_code == 400 and "until" in last.context["form"].errors


def test_maintainers_add_change_and_remove_members(client_logged_in, project, user):
    UserFactory(username="dana")
    url = "/projects/churn/members/"
    assert client_logged_in.post(url, {"username": "dana", "role": "viewer"}).status_code == 302
    dana = project.memberships.get(user__username="dana")
    assert dana.role == "viewer"
    client_logged_in.post(url, {"username": "dana", "role": "editor"})
    dana.refresh_from_db()
    assert dana.role == "editor"
    unknown = client_logged_in.post(url, {"username": "nobody", "role": "viewer"})
    assert "There is no active user" in unknown.content.decode()
    client_logged_in.post(f"{url}{dana.pk}/remove/")
    assert not project.memberships.filter(pk=dana.pk).exists()
    mine = project.memberships.get(user=user)
    response = client_logged_in.post(f"{url}{mine.pk}/remove/", follow=True)
    assert "last maintainer" in response.content.decode()
    assert project.memberships.filter(pk=mine.pk).exists()
    kinds = [e.reason for e in project.chain.entries.filter(kind="membership").order_by("seq")]
    assert kinds[-3:] == ["dana is now viewer", "dana is now editor", "dana left"]


def test_the_overview_shows_the_chain_and_verifies_it_on_request(client_logged_in, revisions):
    html = client_logged_in.get("/projects/churn/").content.decode()
    head = revisions.project.chain.digest
    assert head[:16] in html
    response = client_logged_in.post("/projects/churn/audit/verify/", follow=True)
    assert "The audit chain is intact: 10 entries." in response.content.decode()
