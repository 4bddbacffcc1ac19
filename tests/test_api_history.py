"""A page's history over the API: revisions, differences, restore, review and approval;
the project's activity log and its CSV."""

import csv
import io
import uuid

import pytest

from tests.factories import UserFactory, make_token, make_training_run
from wiki.history import Actor, Source
from wiki.models import Membership
from wiki.services.pages import edit_page

pytestmark = pytest.mark.django_db

PAGE = "/api/v1/projects/churn/pages/overview/"


@pytest.fixture
def writer(api, user, project):
    """alice (maintainer of churn) with a pages:write token."""
    return api(make_token(user, scopes=["pages:write"], projects=["churn"])[1])


@pytest.fixture
def revisions(project, user):
    """The overview in three revisions: created (1), edited by alice (2, 3)."""
    page = project.pages.get(category="overview")
    edit_page(
        page, actor=Actor(user, Source.WEB), base_revision=1, change_reason="first words",
        fields={"purpose": "Predict churn."}, body="one\ntwo\nthree",
    )  # fmt: skip
    return edit_page(
        page, actor=Actor(user, Source.WEB), base_revision=2, change_reason="second thoughts",
        fields={"purpose": "Predict churn monthly.", "status": "production"},
        body="one\n2\nthree\nfour",
    )  # fmt: skip


def second_maintainer(api, project):
    bob = UserFactory(username="bob")
    Membership.objects.create(project=project, user=bob, role=Membership.Role.MAINTAINER)
    return api(make_token(bob, scopes=["pages:write"], projects=["churn"])[1])


def test_revisions_are_listed_newest_first_with_who_why_and_how(writer, revisions):
    data = writer.get(f"{PAGE}revisions/").json()
    assert data["count"] == 3
    newest = data["results"][0]
    assert (newest["revision"], newest["user"], newest["source"], newest["reason"]) == (
        3, "alice", "web", "second thoughts",
    )  # fmt: skip
    assert uuid.UUID(newest["request_id"])
    assert [r["revision"] for r in data["results"]] == [3, 2, 1]


def test_an_old_revision_is_served_as_it_was_rendered_and_sanitized(writer, project, user):
    page = project.pages.get(category="overview")
    edit_page(
        page, actor=Actor(user, Source.WEB), base_revision=1, change_reason="x",
        body="old <script>alert(1)</script> text",
    )  # fmt: skip
    edit_page(page, actor=Actor(user, Source.WEB), base_revision=2, change_reason="y", body="new")
    data = writer.get(f"{PAGE}revisions/2/").json()
    assert data["revision"] == 2
    assert data["body"] == "old <script>alert(1)</script> text"
    assert "<script>" not in data["body_html"] and "old" in data["body_html"]
    assert writer.get(f"{PAGE}revisions/9/").status_code == 404


def test_diff_lists_each_field_and_a_line_diff_without_timestamps(writer, revisions):
    response = writer.get(f"{PAGE}diff/?from=2&to=3")
    assert response.status_code == 200, response.json()
    data = response.json()
    assert (data["from_revision"], data["to_revision"]) == (2, 3)
    changes = {c["name"]: c for c in data["changes"]}
    assert "updated_at" not in changes and "history_date" not in changes
    assert changes["purpose"]["changed"] is True
    assert (changes["purpose"]["old"], changes["purpose"]["new"]) == (
        "Predict churn.", "Predict churn monthly.",
    )  # fmt: skip
    assert changes["owners"]["changed"] is False
    lines = changes["body"]["lines"]
    assert {"op": "equal", "old": "one", "new": "one"} in lines
    assert {"op": "replace", "old": "two", "new": "2"} in lines
    assert {"op": "insert", "old": None, "new": "four"} in lines


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ("", 400, "from to"),
        ("?from=1", 400, "to"),
        ("?from=1&to=99", 400, "to"),
        ("?from=x&to=2", 400, "from"),
        ("?from=0&to=2", 400, "from"),
        ("?from=1&to=2&color=red", 400, "color"),
    ],
)
def test_a_bad_diff_request_says_what_is_wrong(writer, revisions, query, status, field):
    response = writer.get(f"{PAGE}diff/{query}")
    assert response.status_code == status
    assert list(response.json()["errors"]) == field.split()


def test_a_bad_revision_names_the_revisions_there_are(writer, revisions):
    errors = writer.get(f"{PAGE}diff/?from=1&to=99").json()["errors"]
    assert errors == {"to": ["There is no revision 99. Overview has revisions 1 to 3."]}
    missing_page = writer.get("/api/v1/projects/churn/pages/nope/diff/?from=1&to=2")
    assert missing_page.status_code == 404


def test_a_revision_is_served_with_who_wrote_it_not_who_reviewed_it(
    writer, api, revisions, project
):
    bob = second_maintainer(api, project)
    assert bob.post(f"{PAGE}review/").status_code == 200
    assert bob.post(f"{PAGE}approve/", {"revision": 3}).status_code == 200
    row = writer.get(f"{PAGE}revisions/3/").json()
    assert (row["user"], row["reason"]) == ("alice", "second thoughts")
    assert writer.get(PAGE).json()["updated_by"] == "alice"


def test_restore_adds_a_revision_with_the_old_content_and_deletes_nothing(
    writer, revisions, project
):
    page = project.pages.get(category="overview")
    before = list(page.history.values_list("history_id", flat=True))
    response = writer.post(
        f"{PAGE}restore/", {"revision": 2, "change_reason": "the monthly claim was wrong"}
    )
    assert response.status_code == 200, response.json()
    assert response["ETag"] == '"4"'
    page.refresh_from_db()
    assert page.revision == 4
    assert page.fields == {"purpose": "Predict churn."}
    assert page.body == "one\ntwo\nthree"
    assert set(before) < set(page.history.values_list("history_id", flat=True))
    latest = page.history.first()
    assert latest.history_change_reason == "Restored revision 2: the monthly claim was wrong"
    assert (latest.history_source, latest.history_username) == ("api", "alice")
    assert writer.get(f"{PAGE}diff/?from=2&to=4").json()["changes"][0]["changed"] is False


def test_restore_checks_if_match_and_the_revision(writer, revisions, project):
    stale = writer.post(f"{PAGE}restore/", {"revision": 1}, headers={"If-Match": '"2"'})
    assert stale.status_code == 412 and stale["ETag"] == '"3"'
    assert writer.post(f"{PAGE}restore/", {"revision": 7}).status_code == 404
    assert writer.post(f"{PAGE}restore/", {"revision": 0}).status_code == 400
    assert writer.post(f"{PAGE}restore/", {"change_reason": "x"}).status_code == 400
    too_long = writer.post(f"{PAGE}restore/", {"revision": 2, "change_reason": "r" * 1000})
    assert too_long.status_code == 400
    assert "At most 979 characters" in too_long.json()["errors"]["change_reason"][0]
    assert project.pages.get(category="overview").revision == 3


def test_history_cannot_be_deleted_or_rewritten_over_the_api(writer, revisions):
    for path in (f"{PAGE}revisions/2/", f"{PAGE}revisions/", f"{PAGE}diff/?from=1&to=2"):
        assert writer.delete(path).status_code == 405
        assert writer.put(path, {}).status_code == 405


def test_four_eyes_the_writer_of_a_revision_cannot_approve_it(writer, api, revisions, project):
    submitted = writer.post(f"{PAGE}review/")
    assert submitted.json()["review_state"] == "in_review"
    own = writer.post(f"{PAGE}approve/", {"revision": 3})
    assert own.status_code == 403
    assert "Four eyes" in own.json()["detail"]
    bob = second_maintainer(api, project)
    approved = bob.post(f"{PAGE}approve/", {"revision": 3, "comment": "Reviewed with legal."})
    assert approved.status_code == 200, approved.json()
    data = approved.json()
    assert data["review_state"] == "approved"
    assert data["approval"]["revision"] == 3
    assert data["approval"]["by"] == "bob"
    assert data["approval"]["comment"] == "Reviewed with legal."
    assert data["approval"]["current"] is True
    row = project.pages.get(category="overview").history.first()
    assert (row.history_username, row.history_change_reason) == ("bob", "Approved revision 3")


def test_an_edit_after_approval_keeps_the_approved_revision_on_record(
    writer, api, revisions, project
):
    second_maintainer(api, project).post(f"{PAGE}approve/", {"revision": 3})
    writer.patch(f"{PAGE}", {"body": "changed after approval"}, headers={"If-Match": '"3"'})
    data = writer.get(PAGE).json()
    assert (data["revision"], data["review_state"]) == (4, "draft")
    assert data["approval"]["revision"] == 3
    assert data["approval"]["current"] is False


def test_approving_a_revision_that_is_not_current_is_refused(writer, api, revisions, project):
    bob = second_maintainer(api, project)
    response = bob.post(f"{PAGE}approve/", {"revision": 2})
    assert response.status_code == 412
    assert project.pages.get(category="overview").review_state == "draft"


def test_only_maintainers_approve(api, revisions, project):
    carol = UserFactory(username="carol")
    Membership.objects.create(project=project, user=carol, role=Membership.Role.EDITOR)
    editor = api(make_token(carol, scopes=["pages:write"], projects=["churn"])[1])
    assert editor.post(f"{PAGE}approve/", {"revision": 3}).status_code == 403
    assert editor.post(f"{PAGE}review/").status_code == 200
    assert project.pages.get(category="overview").review_state == "in_review"


def test_every_response_carries_a_request_id_shared_by_what_the_request_wrote(
    writer, revisions, project
):
    response = writer.post(f"{PAGE}restore/", {"revision": 1, "change_reason": "back"})
    request_id = uuid.UUID(response["X-Request-ID"])
    page = project.pages.get(category="overview")
    assert page.history.first().history_request_id == request_id
    other = writer.get(PAGE)
    assert uuid.UUID(other["X-Request-ID"]) != request_id


def test_activity_lists_every_change_newest_first_and_filters(writer, revisions, project):
    make_training_run(project)
    data = writer.get("/api/v1/projects/churn/activity/").json()
    kinds = [e["kind"] for e in data["results"]]
    assert kinds[:2] == ["trainingrun", "modelversion"]
    seqs = [e["seq"] for e in data["results"]]
    assert seqs == sorted(seqs, reverse=True)
    pages = writer.get("/api/v1/projects/churn/activity/?kind=page&user=alice").json()
    assert [(e["kind"], e["user"], e["action"]) for e in pages["results"]] == [
        ("page", "alice", "changed"), ("page", "alice", "changed"),
    ]  # fmt: skip
    assert pages["results"][0]["reason"] == "second thoughts"
    web = writer.get("/api/v1/projects/churn/activity/?source=cli").json()["results"]
    assert web and {e["source"] for e in web} == {"cli"}


def test_activity_pages_with_a_cursor(writer, revisions):
    first = writer.get("/api/v1/projects/churn/activity/?page_size=3").json()
    second = writer.get(first["next"]).json()
    assert len(first["results"]) == 3
    assert first["results"][-1]["seq"] == second["results"][0]["seq"] + 1


@pytest.mark.parametrize(
    "query", ["kind=user", "source=telepathy", "since=yesterday", "colour=red", "user=a&user=b"]
)
def test_bad_activity_filters_are_400(writer, revisions, query):
    response = writer.get(f"/api/v1/projects/churn/activity/?{query}")
    assert response.status_code == 400
    assert writer.get(f"/api/v1/projects/churn/activity/export/?{query}").status_code == 400


def test_activity_exports_as_csv_with_formulas_neutralised(writer, project, user):
    page = project.pages.get(category="overview")
    edit_page(
        page, actor=Actor(user, Source.WEB), base_revision=1,
        change_reason='=HYPERLINK("http://evil")', body="x",
    )  # fmt: skip
    response = writer.get("/api/v1/projects/churn/activity/export/?kind=page")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="churn-activity.csv"' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:3] == ["seq", "at", "user"]
    assert len(rows) == 1 + 7  # header, six pages created, one edit
    assert rows[1][8] == '\'=HYPERLINK("http://evil")'
    assert rows[1][2] == "alice"


def test_a_revision_number_past_what_the_database_holds_is_a_404_not_a_500(writer, revisions):
    huge = "9" * 30  # bigger than any integer column: never sent to the database
    assert writer.get(f"{PAGE}revisions/{huge}/").status_code == 404
    assert writer.get(f"{PAGE}diff/?from=1&to={huge}").status_code == 400
    assert writer.post(f"{PAGE}restore/", {"revision": int(huge)}).status_code in (400, 404)
