import pytest

from tests.factories import ProjectFactory, make_free_page
from wiki.rendering import parse_wikilink, render_markdown

pytestmark = pytest.mark.django_db


def test_tables_fenced_code_toc_and_sane_lists_are_rendered(project):
    html = render_markdown(
        "[TOC]\n\n## Data split\n\n"
        "| set | rows |\n|:---|---:|\n| train | 10 |\n\n"
        "```python\nprint('<b>')\n```\n\n"
        "1. one\n2. two\n\n* star\n",
        "churn",
    )
    assert '<div class="toc">' in html
    assert '<h2 id="data-split">Data split</h2>' in html
    assert '<td align="right">10</td>' in html
    assert "<code class=\"language-python\">print('&lt;b&gt;')" in html
    assert "<ol>" in html and "<ul>" in html


def test_wikilink_to_an_existing_page_uses_its_title(project):
    html = render_markdown("See [[model]].", "churn")
    assert (
        '<a class="wikilink" href="/projects/churn/model/" rel="noopener noreferrer">Model</a>'
        in html
    )


def test_wikilink_label_and_case_are_honoured(project):
    html = render_markdown("[[Model|the model page]]", "churn")
    link = '<a class="wikilink" href="/projects/churn/model/" rel="noopener noreferrer">'
    assert f"{link}the model page</a>" in html


def test_wikilink_to_another_project(project):
    ProjectFactory(slug="fraud")
    html = render_markdown("[[fraud/data]]", "churn")
    assert 'href="/projects/fraud/data/"' in html


def test_missing_page_renders_as_a_create_this_page_link(project):
    html = render_markdown("[[runbook]]", "churn")
    assert 'class="wikilink missing"' in html
    assert 'href="/projects/churn/pages/new/?slug=runbook"' in html
    assert "create it" in html


def test_missing_project_renders_as_marked_text_not_a_link(project):
    html = render_markdown("[[nowhere/page]]", "churn")
    assert "<a" not in html
    assert '<span class="wikilink missing" title="There is no project' in html


def test_relative_wikilink_needs_a_project():
    assert "<a" not in render_markdown("[[model]]")
    assert parse_wikilink("model", None) is None


def test_text_that_is_not_a_slug_stays_as_written(project):
    html = render_markdown("[[not a page!]]", "churn")
    assert "[[not a page!]]" in html
    assert "<a" not in html


def test_wikilinks_in_code_are_not_links(project):
    html = render_markdown("`[[model]]`\n\n    [[model]]\n", "churn")
    assert "<a" not in html
    assert html.count("[[model]]") == 2


def test_rendering_is_cached_by_content(project, django_assert_num_queries):
    text = "Cached [[model]] text"
    first = render_markdown(text, "churn")
    # Only the link lookup (pages, projects) runs again; the HTML comes from the cache.
    with django_assert_num_queries(2):
        assert render_markdown(text, "churn") == first
    with django_assert_num_queries(0):
        render_markdown("No links, no queries", "churn")


def test_creating_a_linked_page_changes_the_cached_rendering(project):
    assert "missing" in render_markdown("[[runbook]]", "churn")
    make_free_page(project, slug="runbook", title="Retraining runbook")
    html = render_markdown("[[runbook]]", "churn")
    link = '<a class="wikilink" href="/projects/churn/runbook/" rel="noopener noreferrer">'
    assert f"{link}Retraining runbook</a>" in html


def test_same_text_renders_relative_to_its_project(project):
    ProjectFactory(slug="fraud")
    assert "/projects/churn/model/" in render_markdown("[[model]]", "churn")
    assert "/projects/fraud/model/" in render_markdown("[[model]]", "fraud")


def test_empty_text_renders_empty():
    assert render_markdown("") == ""
