"""Pages over the API: ETags, If-Match, the same write path as the browser."""

import pytest

from tests.factories import make_free_page, make_token, make_training_run
from wiki.history import Actor, Source
from wiki.services.pages import edit_page

pytestmark = pytest.mark.django_db

OVERVIEW = "/api/v1/projects/churn/pages/overview/"


@pytest.fixture
def writer(api, user, project):
    token, key = make_token(user, scopes=["pages:write"], projects=["churn"], name="docs bot")
    client = api(key)
    client.token = token
    return client


def test_a_page_is_read_with_its_revision_as_etag(writer, project):
    page = project.pages.get(category="overview")
    edit_page(
        page,
        actor=Actor(None, Source.CLI),
        base_revision=1,
        change_reason="",
        fields={"purpose": "Predict churn.", "status": "production"},
        body="See [[model]] <script>x</script>",
    )
    response = writer.get(OVERVIEW)
    assert response.status_code == 200
    assert response["ETag"] == '"2"'
    data = response.json()
    assert (data["category"], data["slug"], data["title"], data["revision"]) == (
        "overview",
        "overview",
        "Overview",
        2,
    )
    assert data["fields"] == {"purpose": "Predict churn.", "status": "production"}
    assert 'href="/projects/churn/model/"' in data["body_html"]
    assert "<script>" not in data["body_html"]
    assert data["completeness"] == pytest.approx(2 / 5)
    assert [f["name"] for f in data["missing_fields"]] == ["owners", "stakeholders", "risk_level"]
    assert data["missing_fields"][0]["help_text"].startswith("Who is accountable")
    assert data["updated_by"] == ""
    assert data["records_summary"] is None


def test_pages_are_listed_categories_first(writer, project):
    make_free_page(project, slug="a-runbook")
    slugs = [p["slug"] for p in writer.get("/api/v1/projects/churn/pages/").json()["results"]]
    assert slugs == [
        "overview", "data", "model", "deployment", "workflow", "maintenance", "a-runbook",
    ]  # fmt: skip


def test_a_write_without_if_match_is_428(writer, project):
    response = writer.patch(OVERVIEW, {"body": "x"})
    assert response.status_code == 428
    assert "If-Match" in response.json()["detail"]
    assert project.pages.get(category="overview").revision == 1


def test_a_stale_if_match_is_412_and_the_page_is_unchanged(writer, project):
    first = writer.patch(OVERVIEW, {"body": "first"}, HTTP_IF_MATCH='"1"')
    assert first.status_code == 200
    assert first["ETag"] == '"2"'
    stale = writer.patch(OVERVIEW, {"body": "second"}, HTTP_IF_MATCH='"1"')
    assert stale.status_code == 412
    assert stale["ETag"] == '"2"'
    assert "Revision 2 is current" in stale.json()["detail"]
    page = project.pages.get(category="overview")
    assert (page.body, page.revision) == ("first", 2)


@pytest.mark.parametrize("header", ['"abc"', "1,2", '"1", "2"', "", 'W/"1"'])
def test_a_garbled_if_match_is_400(writer, project, header):
    response = writer.patch(OVERVIEW, {"body": "x"}, HTTP_IF_MATCH=header)
    assert response.status_code == 400
    assert "If-Match" in response.json()["errors"]


def test_an_api_edit_is_recorded_with_source_token_and_reason(writer, user, project):
    response = writer.patch(
        OVERVIEW,
        {"fields": {"purpose": "P"}, "change_reason": "Sync from repo"},
        HTTP_IF_MATCH='"1"',
    )
    assert response.status_code == 200
    row = project.pages.get(category="overview").history.first()
    assert (row.history_source, row.history_user, row.history_change_reason) == (
        "api",
        user,
        "Sync from repo",
    )
    assert (row.history_token_id, row.history_token_name) == (writer.token.pk, "docs bot")
    assert response.json()["updated_by"] == "alice"


def test_an_api_edit_without_a_reason_says_what_changed_and_who_changed_it(writer, project):
    writer.patch(OVERVIEW, {"fields": {"purpose": "P", "status": "production"}}, HTTP_IF_MATCH="1")
    # Status is sent again unchanged: only what differs is named.
    owners = [{"key": "ML lead", "value": "Ana"}]
    body = {"fields": {"purpose": "Q", "status": "production", "owners": owners}, "body": "N."}
    assert writer.patch(OVERVIEW, body, HTTP_IF_MATCH="2").status_code == 200
    reasons = project.pages.get(category="overview").history.values_list(
        "history_change_reason", flat=True
    )
    assert list(reasons[:2]) == [
        "Changed purpose and intended use, owners and the body through the API (token 'docs bot')",
        "Changed purpose and intended use and status through the API (token 'docs bot')",
    ]


def test_patch_merges_fields_and_null_removes_one(writer, project):
    writer.patch(OVERVIEW, {"fields": {"purpose": "P", "status": "production"}}, HTTP_IF_MATCH="1")
    response = writer.patch(
        OVERVIEW, {"fields": {"status": None, "risk_level": "low"}}, HTTP_IF_MATCH="2"
    )
    assert response.json()["fields"] == {"purpose": "P", "risk_level": "low"}


def test_put_replaces_fields_and_body_and_needs_both(writer, project):
    writer.patch(OVERVIEW, {"fields": {"purpose": "P"}, "body": "B"}, HTTP_IF_MATCH="1")
    incomplete = writer.put(OVERVIEW, {"fields": {"status": "production"}}, HTTP_IF_MATCH="2")
    assert incomplete.status_code == 400
    assert "body" in incomplete.json()["errors"]
    response = writer.put(
        OVERVIEW, {"fields": {"status": "production"}, "body": ""}, HTTP_IF_MATCH="2"
    )
    assert response.status_code == 200
    assert (response.json()["fields"], response.json()["body"]) == ({"status": "production"}, "")


def test_what_was_read_can_be_sent_back_with_a_change(writer, project):
    data = writer.get(OVERVIEW).json()
    data["fields"]["purpose"] = "Round trip"
    response = writer.put(OVERVIEW, data, HTTP_IF_MATCH=f'"{data["revision"]}"')
    assert response.status_code == 200, response.json()
    assert response.json()["fields"] == {"purpose": "Round trip"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"fields": {"status": "shipped"}}, "fields.status"),
        ({"fields": {"colour": "blue"}}, "fields.colour"),
        ({"fields": {"owners": "Ana"}}, "fields.owners"),
        ({"fields": ["purpose"]}, "fields"),
        ({"slug": "other"}, "slug"),
        ({"category": "data"}, "category"),
        ({"body": 5}, "body"),
        ({"title": "Renamed"}, "title"),
        ({"revisoin": 3}, "revisoin"),
        ({"change_reason": "r" * 1001}, "change_reason"),
    ],
)
def test_bad_page_writes_are_400_naming_the_field(writer, project, body, field):
    response = writer.patch(OVERVIEW, body, HTTP_IF_MATCH="1")
    assert response.status_code == 400, response.json()
    errors = response.json()["errors"]
    for part in field.split("."):
        errors = errors[part]
    assert errors
    assert project.pages.get(category="overview").revision == 1


def test_free_pages_can_be_renamed(writer, project):
    make_free_page(project, slug="runbook", title="Runbook")
    response = writer.patch(
        "/api/v1/projects/churn/pages/runbook/", {"title": "Retraining runbook"}, HTTP_IF_MATCH="1"
    )
    assert response.json()["title"] == "Retraining runbook"


def test_unknown_pages_and_projects_are_404(writer, project):
    assert writer.get("/api/v1/projects/churn/pages/nope/").status_code == 404
    assert writer.get("/api/v1/projects/nope/pages/").status_code == 404


def test_model_page_carries_a_records_summary(writer, project):
    make_training_run(project, model_version="1.0", metrics={"auc": 0.8}, hyperparameters={"lr": 1})
    summary = writer.get("/api/v1/projects/churn/pages/model/").json()["records_summary"]
    assert summary["latest_run"]["metrics"] == {"auc": 0.8}
    assert summary["latest_run"]["hyperparameters"] == {"lr": 1}
    assert [v["version"] for v in summary["model_versions"]] == ["1.0"]


def test_reading_a_page_takes_a_fixed_number_of_queries(
    writer, project, django_assert_max_num_queries
):
    writer.get(OVERVIEW)
    # the access version with the project (the token is cached, wiki.access), page, last
    # revision's author
    with django_assert_max_num_queries(3):
        assert writer.get(OVERVIEW).status_code == 200
