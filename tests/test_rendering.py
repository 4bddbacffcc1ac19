import uuid

import pytest

from tests.factories import ProjectFactory, make_free_page
from wiki import rendering
from wiki.rendering import parse_wikilink, render_markdown, render_markdown_many

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
    assert '<h2 id="h-data-split">Data split</h2>' in html
    assert '<a href="#h-data-split"' in html
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
    assert '<span class="wikilink missing" title="There is no such project">' in html


def test_relative_wikilink_needs_a_project():
    assert "<a" not in render_markdown("[[model]]")
    assert parse_wikilink("model", None) is None


@pytest.mark.parametrize("text", ["[[!!!]]", "[[a/b/c]]", "[[ |label]]"])
def test_text_that_names_no_page_stays_as_written(project, text):
    html = render_markdown(text, "churn")
    assert text in html
    assert "<a" not in html


def test_title_words_link_to_the_slug_they_name(project):
    make_free_page(project, slug="runbook-retraining", title="Retraining")
    html = render_markdown("[[Runbook retraining]] and [[Data_Split!]]", "churn")
    assert 'href="/projects/churn/runbook-retraining/"' in html
    assert 'href="/projects/churn/pages/new/?slug=data-split"' in html


def test_links_may_point_at_a_heading(project):
    html = render_markdown("[[model#Evaluation metrics|how we judge]]", "churn")
    assert 'href="/projects/churn/model/#h-evaluation-metrics"' in html
    assert ">how we judge</a>" in html


@pytest.mark.parametrize("target", ["settings", "records", "x" * 61])
def test_links_to_pages_that_cannot_be_created_are_not_create_links(project, target):
    html = render_markdown(f"[[{target}]]", "churn")
    assert "<a" not in html
    assert 'title="There is no such page"' in html


def test_heading_ids_cannot_take_the_interfaces_ids(project):
    html = render_markdown('## Main\n\n<h3 id="main">raw</h3>', "churn")
    assert 'id="h-main"' in html
    assert 'id="main"' not in html


def test_pathologically_nested_markdown_is_shown_as_written_not_crashed():
    text = "".join("\t" * depth + "- x\n" for depth in range(400))
    html = render_markdown(text)
    assert "nested too deeply" in html
    assert "<pre>" in html


def test_wikilinks_in_code_are_not_links(project):
    html = render_markdown("`[[model]]`\n\n    [[model]]\n", "churn")
    assert "<a" not in html
    assert html.count("[[model]]") == 2


def test_rendering_is_cached_by_content(project, monkeypatch, django_assert_num_queries):
    conversions = []
    convert = rendering._to_html
    monkeypatch.setattr(rendering, "_to_html", lambda *a: conversions.append(a) or convert(*a))
    text = f"Cached [[model]] text {uuid.uuid4()}"
    first = render_markdown(text, "churn")
    # Only the link lookup (pages, projects) runs again; the HTML comes from the cache.
    with django_assert_num_queries(2):
        assert render_markdown(text, "churn") == first
    assert len(conversions) == 1
    with django_assert_num_queries(0):
        render_markdown("No links, no queries", "churn")


def test_many_texts_share_one_link_lookup(project, django_assert_num_queries):
    texts = [f"[[model]] {uuid.uuid4()}", f"[[data]] [[fraud/x]] {uuid.uuid4()}", "", "plain"]
    with django_assert_num_queries(2):
        html = render_markdown_many(texts, "churn")
    assert 'href="/projects/churn/model/"' in html[0]
    assert 'href="/projects/churn/data/"' in html[1]
    assert html[2] == "" and html[3] == "<p>plain</p>"


def test_a_cache_outage_does_not_break_rendering(project, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
        }
    }
    assert "<strong>ok</strong>" in render_markdown("**ok**", "churn")


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


# Attachments: `attachment:<name>` survives sanitizing and the cache, and is resolved after.


def _urls(name):
    return {"roc.png": "/files/roc.png?v=1&x=2", "report.html": "/files/report.html"}.get(name)


def test_attachment_urls_survive_sanitizing_and_are_cached_as_written(project):
    html = render_markdown("![ROC](attachment:roc.png) [report](attachment:report.html)")
    assert '<img alt="ROC" src="attachment:roc.png">' in html
    assert '<a href="attachment:report.html"' in html


def test_other_unknown_url_schemes_are_still_dropped(project):
    html = render_markdown("![x](javascript:alert(1)) [y](data:text/html,hi)")
    assert "javascript" not in html and "data:" not in html


def test_an_attached_image_opens_full_size_on_click(project):
    html = render_markdown("![ROC <curve>](attachment:roc.png)", resolve=_urls)
    url = "/files/roc.png?v=1&amp;x=2"
    assert (
        f'<a class="attachment-image" href="{url}"><img alt="ROC &lt;curve&gt;" src="{url}"></a>'
        in html
    )


def test_an_attached_file_link_points_at_the_file(project):
    html = render_markdown("[the report](attachment:report.html)", resolve=_urls)
    assert '<a href="/files/report.html" rel="noopener noreferrer">the report</a>' in html


def test_an_image_already_in_a_link_keeps_the_writers_link(project):
    html = render_markdown("[![ROC](attachment:roc.png)](https://example.org/)", resolve=_urls)
    assert '<a href="https://example.org/" rel="noopener noreferrer"><img alt="ROC"' in html
    assert "attachment-image" not in html


def test_an_unknown_attachment_is_a_visible_marker_not_a_request(project):
    html = render_markdown("![gone](attachment:gone.png) [old](attachment:old.pdf)", resolve=_urls)
    assert (
        "<img" not in html
        and "<a" not in html
        and "attachment:" not in html.replace("missing attachment:", "")
    )
    assert "missing attachment: gone.png" in html
    assert (
        '<span class="attachment-missing" title="There is no attachment named old.pdf">old' in html
    )


def test_a_data_uri_image_is_not_wrapped_in_a_link(project):
    html = render_markdown(
        "![ROC](attachment:roc.png)", resolve=lambda name: "data:image/png;base64,AA=="
    )
    assert html == '<p><img alt="ROC" src="data:image/png;base64,AA=="></p>'


def test_the_resolver_is_asked_once_per_name(project):
    asked = []
    text = "![a](attachment:roc.png) ![b](attachment:roc.png) [c](attachment:roc.png)"
    render_markdown(text, resolve=lambda name: asked.append(name) or "/roc")
    assert asked == ["roc.png"]


def test_text_and_code_that_mention_attachments_are_left_alone(project):
    text = "Write `![x](attachment:roc.png)` &amp; <b>bold</b>\n\n    attachment:roc.png"
    assert render_markdown(text, resolve=_urls) == render_markdown(text)


def test_page_fields_and_body_resolve_attachments_in_one_pass(project):
    rows, body = rendering.render_page(
        project.spec.get_category("model"),
        {"architecture": "![arch](attachment:roc.png)"},
        "[r](attachment:report.html)",
        "churn",
        resolve=_urls,
    )
    html = {field.name: value for field, _, value in rows}
    assert 'src="/files/roc.png?v=1&amp;x=2"' in html["architecture"]
    assert 'href="/files/report.html"' in body
