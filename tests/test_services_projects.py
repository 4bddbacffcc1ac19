import pytest
from django.core.exceptions import ValidationError

from tests.factories import ProjectFactory, UserFactory
from wiki.history import Actor, Source
from wiki.models import HistoricalPage, HistoricalProject, Page, Project
from wiki.services import EditConflict
from wiki.services.projects import clean_tags, create_project, update_project

pytestmark = pytest.mark.django_db


def web(user):
    return Actor(user=user, source=Source.WEB)


def test_create_project_creates_its_six_category_pages(user):
    project = create_project(
        actor=web(user), slug="churn", name="Churn", owner_team="Retention", tags=["A", "b"]
    )
    pages = Page.objects.filter(project=project)
    assert (project.template.slug, project.template.version) == ("default", 1)
    names = ["overview", "data", "model", "deployment", "workflow", "maintenance"]
    assert sorted(pages.values_list("category", flat=True)) == sorted(names)
    assert {p.slug for p in pages} == set(names)
    assert pages.get(category="overview").title == "Overview"
    assert all(p.fields == {} and p.revision == 1 for p in pages)
    assert project.tags == ["a", "b"]


def test_create_project_records_who_why_and_from_where(user):
    project = create_project(
        actor=web(user), slug="churn", name="Churn", owner_team="Retention", change_reason="New"
    )
    row = HistoricalProject.objects.get(id=project.id)
    assert (row.history_type, row.history_user, row.history_username) == ("+", user, "alice")
    assert (row.history_source, row.history_change_reason) == ("web", "New")
    page_rows = HistoricalPage.objects.filter(project_id=project.id)
    assert page_rows.count() == 6
    assert {(r.history_source, r.history_username) for r in page_rows} == {("web", "alice")}


def test_create_project_without_reason_says_it_was_created(user):
    project = create_project(actor=web(user), slug="churn", name="Churn", owner_team="T")
    assert project.history.get().history_change_reason == "Created project"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"slug": "Bad Slug"}, "slug"),
        ({"slug": "bad--slug"}, "slug"),
        ({"slug": ""}, "slug"),
        ({"name": ""}, "name"),
        ({"name": "n" * 201}, "name"),
        ({"owner_team": ""}, "owner_team"),
        ({"summary": "s" * 501}, "summary"),
        ({"tags": "one,two"}, "tags"),
        ({"tags": [1, 2]}, "tags"),
        ({"tags": ["t" * 51]}, "tags"),
        ({"tags": [f"t{i}" for i in range(21)]}, "tags"),
    ],
)
def test_invalid_project_is_refused_and_nothing_is_saved(user, changes, field):
    data = {"slug": "churn", "name": "Churn", "owner_team": "T"} | changes
    with pytest.raises(ValidationError) as e:
        create_project(actor=web(user), **data)
    assert field in e.value.message_dict
    assert not Project.objects.exists()
    assert not Page.objects.exists()
    assert not HistoricalProject.objects.exists()


def test_duplicate_slug_is_refused(user):
    ProjectFactory(slug="churn")
    with pytest.raises(ValidationError) as e:
        create_project(actor=web(user), slug="churn", name="Other", owner_team="T")
    assert "slug" in e.value.message_dict
    assert Project.objects.count() == 1


def test_clean_tags_lowercases_strips_and_deduplicates():
    assert clean_tags([" Churn", "churn", "", "Tabular "]) == ["churn", "tabular"]


def test_update_project_saves_a_new_revision_with_its_reason(project):
    editor = UserFactory(username="bob")
    updated = update_project(
        project,
        actor=web(editor),
        base_revision=1,
        change_reason="Renamed",
        name="Churn v2",
        tags=["X"],
    )
    assert (updated.name, updated.tags, updated.revision) == ("Churn v2", ["x"], 2)
    latest = project.history.first()
    assert (latest.history_username, latest.history_change_reason, latest.revision) == (
        "bob",
        "Renamed",
        2,
    )


def test_update_project_from_a_stale_revision_is_a_conflict_and_saves_nothing(project, user):
    update_project(project, actor=web(user), base_revision=1, change_reason="a", name="A")
    with pytest.raises(EditConflict) as e:
        update_project(project, actor=web(user), base_revision=1, change_reason="b", name="B")
    assert e.value.current.revision == 2
    project.refresh_from_db()
    assert project.name == "A"
    assert project.history.count() == 2


def test_update_project_refuses_slug_and_unknown_fields(project, user):
    with pytest.raises(ValidationError) as e:
        update_project(project, actor=web(user), base_revision=1, change_reason="", slug="x")
    assert "slug" in e.value.message_dict


def test_update_project_with_invalid_value_saves_nothing(project, user):
    with pytest.raises(ValidationError):
        update_project(project, actor=web(user), base_revision=1, change_reason="", name="")
    project.refresh_from_db()
    assert (project.name, project.revision, project.history.count()) == ("Churn model", 1, 1)


def test_update_project_without_changes_saves_no_revision(project, user):
    same = update_project(
        project, actor=web(user), base_revision=1, change_reason="", name=project.name
    )
    assert same.revision == 1
    assert project.history.count() == 1


@pytest.mark.parametrize(("field", "value"), [("name", "a\x00"), ("tags", ["t\x00"])])
def test_nul_characters_in_a_project_are_refused(user, field, value):
    data = {"slug": "churn", "name": "Churn", "owner_team": "T", field: value}
    with pytest.raises(ValidationError) as e:
        create_project(actor=web(user), **data)
    assert field in e.value.message_dict
    assert not Project.objects.exists()


@pytest.mark.parametrize("tags", [None, 5, {"a": 1}, "a,b"])
def test_tags_must_be_a_list(project, user, tags):
    with pytest.raises(ValidationError) as e:
        update_project(project, actor=web(user), base_revision=1, change_reason="", tags=tags)
    assert "tags" in e.value.message_dict


def test_new_is_reserved_for_the_create_form(user):
    with pytest.raises(ValidationError) as e:
        create_project(actor=web(user), slug="new", name="New", owner_team="T")
    assert "reserved" in e.value.message_dict["slug"][0]
