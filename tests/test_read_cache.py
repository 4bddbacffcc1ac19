"""Reading as fast as the best wikis (issue 13): what a page shows is cached under what it
is computed from (wiki.caching), so a change shows at once, the cached page is the page
computed afresh, and the cache is never needed; long lists are keyset-paginated."""

import re

import pytest
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.template import engines

from frontend.views import pages
from tests.factories import (
    ProjectFactory,
    UserFactory,
    cli_actor,
    history_lines,
    make_deployment,
    make_free_page,
    make_training_run,
)
from tests.test_attachments import png
from wiki import breaker, caching
from wiki.history import Actor, Source
from wiki.models import Membership, Project
from wiki.services import attachments
from wiki.services.pages import approve_page, edit_page, submit_for_review

pytestmark = pytest.mark.django_db

MODEL = "/projects/churn/model/"
CSRF_TOKEN = re.compile(r"[A-Za-z0-9]{64}")
TIME_AGO = re.compile(r"(<time [^>]*>)(?:[^<]* ago|now)</time>")


def html(response):
    """The page's HTML but for its CSRF token (masked anew for every response) and the
    words of a time said as an age ("a second ago"), which the clock moves."""
    assert response.status_code == 200, response.status_code
    return TIME_AGO.sub(r"\1</time>", CSRF_TOKEN.sub("", response.content.decode()))


def edit(project, category, **changes):
    page = project.pages.get(slug=category)
    return edit_page(page, actor=cli_actor(), base_revision=None, change_reason="c", **changes)


def test_a_new_revision_shows_at_once(client_logged_in, project):
    edit(project, "overview", body="The **first** words.")
    assert "The <strong>first</strong> words." in html(client_logged_in.get("/projects/churn/"))
    edit(project, "overview", body="The **second** words.")
    page = html(client_logged_in.get("/projects/churn/"))
    assert "The <strong>second</strong> words." in page and "first" not in page


def test_a_page_a_wiki_link_names_changes_the_rendering_at_once(client_logged_in, project):
    edit(project, "overview", body="See [[runbook]], [[fraud/model]] and [[model]].")
    before = html(client_logged_in.get("/projects/churn/"))
    assert '<a class="wikilink missing" href="/projects/churn/pages/new/?slug=runbook"' in before
    assert 'title="There is no such project">fraud/model</span>' in before
    make_free_page(project, slug="runbook", title="Retraining runbook")
    ProjectFactory(slug="fraud", name="Fraud")
    after = html(client_logged_in.get("/projects/churn/"))
    link = '<a class="wikilink" href="/projects/{}/" rel="noopener noreferrer">{}</a>'
    assert link.format("churn/runbook", "Retraining runbook") in after
    assert link.format("fraud/model", "Model") in after
    # Another project's page retitled: a new rendering too.
    other = Project.objects.get(slug="fraud").pages.create(slug="notes", title="Notes")
    edit(project, "overview", body="See [[fraud/notes]].")
    assert ">Notes</a>" in html(client_logged_in.get("/projects/churn/"))
    edit_page(other, actor=cli_actor(), base_revision=None, change_reason="", title="Field notes")
    assert ">Field notes</a>" in html(client_logged_in.get("/projects/churn/"))


def test_a_new_training_run_changes_the_summary_and_the_chart_at_once(client_logged_in, project):
    make_training_run(project, "1.0", metrics={"auc": 0.71, "recall": 0.5})
    first = html(client_logged_in.get(MODEL))
    assert "1.0" in first and "0.71" in first and "7.7" not in first
    make_training_run(project, "7.7", metrics={"auc": 0.93, "recall": 0.6})
    second = html(client_logged_in.get(MODEL))
    assert "7.7" in second and "0.93" in second
    assert second.count('<svg class="chart"') == 1 and second != first
    # Another metric of the chart, then a run: the chart of that metric moves on too.
    recall = html(client_logged_in.get(f"{MODEL}?metric=recall"))
    make_training_run(project, "8.8", metrics={"auc": 0.95, "recall": 0.77})
    moved = html(client_logged_in.get(f"{MODEL}?metric=recall"))
    assert "0.77" in moved and "0.77" not in recall
    # A deployment: the model page's production marks, the deployment page's timeline.
    make_deployment(project, "8.8", environment="production")
    assert "8.8" in html(client_logged_in.get("/projects/churn/deployment/"))


def test_a_review_event_shows_in_the_cached_history_at_once(client_logged_in, project, user):
    edit(project, "overview", body="Words.")
    url = "/projects/churn/overview/history/"
    assert [line.events for line in history_lines(client_logged_in.get(url))][0] == []
    overview = project.pages.get(slug="overview")
    submit_for_review(overview, actor=Actor(user, Source.WEB))
    (submitted,) = history_lines(client_logged_in.get(url))[0].events
    assert submitted.startswith("Submitted for review by")


def test_a_page_named_in_the_maintenance_log_changes_its_link_at_once(client_logged_in, project):
    fraud = ProjectFactory(slug="fraud", name="Fraud")
    make_deployment(project, "1.0", reason="See [[runbook]] and [[fraud/runbook]].")
    url = "/projects/churn/maintenance/"
    assert html(client_logged_in.get(url)).count('class="wikilink missing"') == 2
    make_free_page(project, slug="runbook", title="Retraining runbook")
    page = html(client_logged_in.get(url))
    assert ">Retraining runbook</a>" in page and page.count('class="wikilink missing"') == 1
    # A page of another project: nothing of this project changed, the link did.
    make_free_page(fraud, slug="runbook", title="Fraud runbook")
    page = html(client_logged_in.get(url))
    assert ">Fraud runbook</a>" in page and 'class="wikilink missing"' not in page


def test_an_attachment_that_ends_an_approval_shows_in_the_cached_history_at_once(
    client_logged_in, project, user
):
    edit(project, "overview", body="Words.")
    overview = project.pages.get(slug="overview")
    submit_for_review(overview, actor=Actor(user, Source.WEB))
    overview = project.pages.get(slug="overview")
    approve_page(overview, actor=Actor(user, Source.WEB), revision=overview.revision)
    url = "/projects/churn/overview/history/"
    before = history_lines(client_logged_in.get(url))[0].events  # cached
    attachments.attach(
        project.pages.get(slug="overview"), ContentFile(png(), name="roc.png"), actor=cli_actor()
    )
    after = history_lines(client_logged_in.get(url))[0].events
    assert after[: len(before)] == before and len(after) == len(before) + 1
    assert after[-1].startswith("Saved without a change of content")


def test_a_changed_fragment_template_is_never_served_from_the_old_ones_cache(
    client_logged_in, project, monkeypatch
):
    """A deploy that changes a cached fragment's template: its digest is in the key."""
    make_training_run(project, "1.0", metrics={"auc": 0.8})
    assert "From the records" in html(client_logged_in.get(MODEL))  # cached now
    changed = caching.Fragment("frontend/_records_summary.html")
    changed.template = engines["django"].from_string(
        "<p>Now {{ summary.latest_run.model_version }}</p>"
    )
    monkeypatch.setattr(pages, "_SUMMARY", changed)
    page = html(client_logged_in.get(MODEL))
    assert "<p>Now 1.0</p>" in page and "From the records" not in page


def test_a_page_edit_changes_the_tab_marks_and_staleness_at_once(client_logged_in, project):
    html(client_logged_in.get(MODEL))  # the marks are cached
    make_training_run(project, "1.0")
    stale = html(client_logged_in.get(MODEL))
    assert "stale-mark" in stale and "Records arrived since this page was last edited" in stale
    edit(project, "model", body="Brought up to date.")
    fresh = html(client_logged_in.get(MODEL))
    assert "stale-mark" not in fresh and "Records arrived since" not in fresh
    # A field filled: the tab's completeness moves at once.
    tabs = client_logged_in.get(MODEL).context["tabs"]
    (data,) = [tab for category, tab in tabs if category.name == "data"]
    edit(project, "data", fields={"sources": "The CRM export."})
    tabs = client_logged_in.get(MODEL).context["tabs"]
    (now,) = [tab for category, tab in tabs if category.name == "data"]
    assert now.completeness[0] == data.completeness[0] + 1


def test_every_page_write_bumps_the_pages_version_in_its_transaction(project, user):
    def version():
        return Project.objects.get(pk=project.pk).pages_version

    created = version()
    assert created > 0  # the project's category pages
    edit(project, "overview", body="Words.")
    assert version() == created + 1
    overview = project.pages.get(slug="overview")
    submit_for_review(overview, actor=Actor(None, Source.CLI))
    assert version() == created + 2
    bob = UserFactory(username="bob")
    Membership.objects.create(project=project, user=bob, role=Membership.Role.MAINTAINER)
    overview.project = project
    approve_page(overview, actor=Actor(bob, Source.WEB), revision=overview.revision)
    assert version() == created + 3
    make_free_page(project)
    assert version() == created + 4
    # An edit that changes nothing saves nothing, and bumps nothing.
    edit(project, "overview", body="Words.")
    assert version() == created + 4
    # Bookkeeping: kept out of history, and a save of an older copy does not put it back.
    assert "pages_version" not in {f.name for f in Project.history.model._meta.fields}
    project.name = "Renamed"
    project.save()
    assert version() == created + 4


@pytest.mark.parametrize(
    "path",
    [
        "/projects/churn/", "/projects/churn/model/", "/projects/churn/model/?metric=recall",
        "/projects/churn/data/", "/projects/churn/deployment/", "/projects/churn/maintenance/",
        "/projects/churn/runbook/", "/projects/churn/model/history/",
        "/projects/churn/overview/revisions/1/", "/projects/churn/activity/",
    ],
)  # fmt: skip
def test_cached_and_uncached_pages_are_identical(client_logged_in, project, settings, path):
    make_free_page(project, slug="runbook", title="Runbook", body="See [[model]] and [[x/y]].")
    edit(project, "overview", body="# Purpose\n\nSee [[runbook]], [[data#h-sources]], [[nope]].")
    edit(project, "data", fields={"sources": "From [[runbook]]."}, body="A *table*.")
    for number in range(3):
        make_training_run(
            project, f"1.{number}", metrics={"auc": 0.7 + number / 100, "recall": 0.5},
            dataset_name="customers", dataset_version=f"v{number}",
        )  # fmt: skip
    make_deployment(project, "1.2", reason="Better [[model]] recall.")
    cache.clear()
    computed = html(client_logged_in.get(path))  # computed, then cached
    cached = html(client_logged_in.get(path))  # from the cache
    assert cached == computed
    # And without any cache at all (nothing cached is ever needed).
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    assert html(client_logged_in.get(path)) == computed


def test_a_page_read_again_takes_fewer_queries(
    client_logged_in, project, django_assert_max_num_queries
):
    make_training_run(project, "1.0", metrics={"auc": 0.8})
    make_deployment(project, "1.0", reason="First.")
    edit(project, "model", body="See [[data]].")
    for category in ("model", "data", "deployment", "maintenance", "overview"):
        client_logged_in.get(f"/projects/churn/{category}/")
    # session, user, project, page, whether the user is an auditor (the menu), attachments
    for category in ("model", "data", "deployment", "maintenance"):
        with django_assert_max_num_queries(6):
            html(client_logged_in.get(f"/projects/churn/{category}/"))
    # and the overview's review states and audit chain
    with django_assert_max_num_queries(8):
        html(client_logged_in.get("/projects/churn/"))
    # The history page: session, user, project, page (its lines are cached).
    client_logged_in.get("/projects/churn/model/history/")
    with django_assert_max_num_queries(4):
        html(client_logged_in.get("/projects/churn/model/history/"))


def test_a_page_renders_while_the_redis_cache_is_down_or_hung(
    client_logged_in, project, own_redis, settings
):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                    "LOCATION": own_redis.url,
                    "OPTIONS": {"socket_timeout": 0.2, "socket_connect_timeout": 0.2}}
    }  # fmt: skip
    settings.REDIS_BREAKER_SECONDS = 60
    make_training_run(project, "1.0", metrics={"auc": 0.8})
    edit(project, "model", body="Cached **words**.")
    warm = html(client_logged_in.get(MODEL))
    assert own_redis.client().dbsize() > 0  # Redis is the cache
    own_redis.pause()  # hung: it accepts connections and never answers
    try:
        assert html(client_logged_in.get(MODEL)) == warm
        assert not breaker.of(own_redis.url).closed  # skipped from now on, not waited for
        edit(project, "model", body="Newer **words**.")
        assert "Newer <strong>words</strong>." in html(client_logged_in.get(MODEL))
    finally:
        own_redis.resume()
    own_redis.stop()  # down
    breaker.reset_all()
    make_training_run(project, "2.5", metrics={"auc": 0.9})
    down = html(client_logged_in.get(MODEL))
    assert "2.5" in down and "Newer <strong>words</strong>." in down


def _walk(client, url, collect, between=None):
    """Follow the Older links from ``url`` to the end; returns what ``collect(response)``
    says of the rows of each page. ``between()`` runs after each page (new rows arrive)."""
    seen, link = [], ""
    for _ in range(100):
        response = client.get(url.split("?")[0] + link if link else url)
        seen += collect(response)
        if between:
            between()
        link = response.context["pager"].older
        if not link:
            return seen
    raise AssertionError("the Older links never ended")


def test_the_history_walks_every_revision_once_while_new_ones_arrive(
    client_logged_in, project, monkeypatch
):
    monkeypatch.setattr("frontend.views.pages.REVISIONS_PER_PAGE", 2)
    for number in range(6):
        edit(project, "overview", body=f"Words {number}.")
    numbers = iter(range(100, 200))
    seen = _walk(
        client_logged_in, "/projects/churn/overview/history/",
        lambda response: [line.revision for line in history_lines(response)],
        between=lambda: edit(project, "overview", body=f"Words {next(numbers)}."),
    )  # fmt: skip
    assert seen == [7, 6, 5, 4, 3, 2, 1]
    # And back up by the Newer links, to the newest (the ones that arrived meanwhile).
    response = client_logged_in.get("/projects/churn/overview/history/?before=2")
    back = []
    while True:
        back = [line.revision for line in history_lines(response)] + back
        newer = response.context["pager"].newer
        if not newer:
            break
        response = client_logged_in.get(f"/projects/churn/overview/history/{newer}")
    newest = project.pages.get(slug="overview").revision
    assert back == list(range(newest, 0, -1))


def test_the_activity_log_walks_every_entry_once_while_new_ones_arrive(
    client_logged_in, project, monkeypatch
):
    monkeypatch.setattr("frontend.views.projects.ACTIVITY_PER_PAGE", 3)
    for number in range(4):
        edit(project, "overview", body=f"Words {number}.")
    before = list(project.chain.entries.order_by("-seq").values_list("seq", flat=True))
    assert len(before) > 3 * 3
    counter = iter(range(100))
    seen = _walk(
        client_logged_in, "/projects/churn/activity/",
        lambda response: [entry.seq for entry in response.context["entries"]],
        between=lambda: make_training_run(project, f"9.{next(counter)}"),
    )  # fmt: skip
    assert seen == before  # each once, newest first, none that arrived meanwhile
    # A filter is kept on the links.
    filtered = _walk(
        client_logged_in, "/projects/churn/activity/?kind=page",
        lambda response: [(entry.kind, entry.seq) for entry in response.context["entries"]],
    )  # fmt: skip
    assert {kind for kind, _ in filtered} == {"page"} and len(filtered) == 6 + 4


def test_a_history_link_from_an_old_bookmark_still_answers(client_logged_in, project):
    for query in ("?page=2", "?before=abc", "?after=-4", "?before=99999999999999999999"):
        assert client_logged_in.get(f"/projects/churn/activity/{query}").status_code == 200
        response = client_logged_in.get(f"/projects/churn/overview/history/{query}")
        assert response.status_code == 200
