"""Search: pages, fields, training-run notes, projects; ranked; permission-bound."""

import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client

from tests.factories import (
    ProjectFactory,
    UserFactory,
    cli_actor,
    make_free_page,
    make_token,
    make_training_run,
)
from wiki.models import Membership, SearchEntry
from wiki.services.pages import edit_page

pytestmark = pytest.mark.django_db
postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="stemming and ranking are PostgreSQL's"
)


def edit(project, category, **changes):
    page = project.pages.get(category=category)
    return edit_page(
        page, actor=cli_actor(), base_revision=page.revision, change_reason="", **changes
    )


def found(client, q):
    response = client.get("/search/", {"q": q})
    assert response.status_code == 200
    return [(e.kind, e.project.slug, e.title) for e in response.context["page_obj"]]


@pytest.fixture
def documented(project):
    edit(project, "model", fields={"architecture": "A gradient-boosted forest of zebrafish"})
    edit(project, "data", body="Customer tables are joined nightly with the quokka ledger.")
    make_training_run(project, "2.0", notes="Retrained after the narwhal incident.")
    return project


def test_finds_a_field_a_body_and_a_training_run_note(documented, client_logged_in):
    assert found(client_logged_in, "zebrafish") == [("page", "churn", "Model")]
    assert found(client_logged_in, "quokka") == [("page", "churn", "Data")]
    (run,) = found(client_logged_in, "narwhal")
    assert run[0] == "run" and run[2].startswith("Training run #")
    assert found(client_logged_in, "Churn model")[0] == ("project", "churn", "Churn model")


def test_results_show_project_category_and_a_highlighted_snippet(documented, client_logged_in):
    html = client_logged_in.get("/search/", {"q": "quokka"}).content.decode()
    assert "<mark>quokka</mark>" in html
    assert "Churn model · Data" in html
    assert 'href="/projects/churn/data/"' in html


def test_the_index_follows_every_edit(documented, client_logged_in):
    edit(documented, "data", body="Now about the wombat ledger.")
    assert found(client_logged_in, "quokka") == []
    assert found(client_logged_in, "wombat") == [("page", "churn", "Data")]
    make_free_page(documented, slug="glossary", title="Glossary", body="Axolotl: a term.")
    assert found(client_logged_in, "axolotl") == [("page", "churn", "Glossary")]


def test_snippets_are_escaped(project, client_logged_in):
    edit(project, "overview", body='<img src=x onerror="alert(1)"> platypus <script>x</script>')
    html = client_logged_in.get("/search/", {"q": "platypus"}).content.decode()
    assert "<mark>platypus</mark>" in html
    # Whatever the snippet keeps of the markup (PostgreSQL's headline drops tags), it is
    # text: the page's own markup never reaches the result page as markup.
    assert "<script>x" not in html and "<img src=x" not in html


def test_snippets_are_the_text_a_reader_sees_not_the_markdown(project, client_logged_in):
    table = "| Metric | Value |\n|---|---|\n| pangolin recall | 0.91 |\n\n"
    edit(
        project, "model",
        fields={"architecture": "A **gradient-boosted** forest; see [[data|the dataset page]]."},
        body=table + "After [[model]] _retraining_.",
    )  # fmt: skip
    entry = client_logged_in.get("/search/", {"q": "pangolin"}).context["page_obj"][0]
    text = str(entry.snippet)
    assert "<mark>pangolin</mark> recall" in text
    for markup in ("|", "---", "[[", "]]", "**", "_retraining_"):
        assert markup not in text, (markup, text)
    assert "model" in text or "retraining" in text
    (forest,) = client_logged_in.get("/search/", {"q": "forest"}).context["page_obj"]
    assert "gradient-boosted" in str(forest.snippet) and "the dataset page" in str(forest.snippet)
    assert "**" not in str(forest.snippet) and "[[" not in str(forest.snippet)


def test_nobody_finds_what_they_may_not_read(documented, api):
    outsider = UserFactory(username="outsider")
    other = ProjectFactory(slug="other", name="Other system")
    Membership.objects.create(project=other, user=outsider, role="editor")
    edit(other, "data", body="Their own quokka notes.")
    client = Client()
    client.force_login(outsider)
    assert found(client, "quokka") == [("page", "other", "Data")]
    assert found(client, "zebrafish") == []
    assert found(client, "narwhal") == []
    auditor = UserFactory(username="auditor")
    auditor.groups.create(name="auditor")
    client.force_login(auditor)
    assert {slug for _, slug, _ in found(client, "quokka")} == {"churn", "other"}
    # A token sees only its projects, even when its user sees more.
    _, key = make_token(auditor, projects=["other"])
    data = api(key).get("/api/v1/search/", {"q": "quokka"}).json()
    assert [r["project"] for r in data["results"]] == ["other"]
    assert Client().get("/search/", {"q": "quokka"}).status_code == 302  # log in first


def test_the_api_answers_with_urls_and_snippets(documented, api, user):
    _, key = make_token(user, projects=["churn"])
    data = api(key).get("/api/v1/search/", {"q": "zebrafish"}).json()
    (result,) = data["results"]
    assert result["kind"] == "page" and result["category"] == "model"
    assert result["url"].endswith("/api/v1/projects/churn/pages/model/")
    assert "<mark>zebrafish</mark>" in result["snippet"]
    assert api(key).get("/api/v1/search/", {"q": ""}).json()["results"] == []
    assert api(key).get("/api/v1/search/", {"q": "x", "qq": "y"}).status_code == 400


def test_results_are_paginated_with_a_bounded_number_of_queries(
    project, client_logged_in, django_assert_max_num_queries
):
    for number in range(25):
        make_training_run(project, f"1.{number}", notes=f"Pelican run {number}.")
    # session, user, auditor?, count, page of results (with their projects)
    with django_assert_max_num_queries(6):
        response = client_logged_in.get("/search/", {"q": "pelican"})
    assert response.context["page_obj"].paginator.count == 25
    assert len(response.context["page_obj"]) == 20
    assert 'href="?q=pelican&amp;page=2"' in response.content.decode()
    for number in range(21):
        make_training_run(project, f"2.{number}", notes=f"Cats & dogs {number}.")
    html = client_logged_in.get("/search/", {"q": "cats & dogs"}).content.decode()
    assert 'href="?q=cats+%26+dogs&amp;page=2"' in html  # the query survives paging


def test_odd_queries_are_no_error(documented, client_logged_in):
    for q in ["\x00", "'; drop table", "a & | ! ( :*", "x" * 5000, "  "]:
        assert client_logged_in.get("/search/", {"q": q}).status_code == 200


def test_reindex_rebuilds_the_same_entries(documented):
    def entries():
        return sorted(SearchEntry.objects.values_list("kind", "object_id", "title", "text"))

    before = entries()
    SearchEntry.objects.all().delete()
    out = io.StringIO()
    call_command("reindex_search", stdout=out)
    assert entries() == before and before
    assert f"Indexed {len(before)} projects" in out.getvalue()


@postgres_only
def test_postgresql_stems_and_ranks_title_matches_first(project, client_logged_in):
    edit(project, "workflow", body="The monitoring of drift.")
    make_free_page(project, slug="monitoring", title="Monitoring", body="Dashboards.")
    results = found(client_logged_in, "monitored")  # stemmed to 'monitor'
    assert results[0] == ("page", "churn", "Monitoring")
    assert ("page", "churn", "Workflow") in results
