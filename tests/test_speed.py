"""The screens people open every day take a fixed number of queries, however much the
wiki holds (their server time on a large wiki is measured in bench/speed.py)."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.factories import (
    ProjectFactory,
    UserFactory,
    cli_actor,
    make_deployment,
    make_training_run,
)
from wiki.models import Page
from wiki.services.pages import edit_page

pytestmark = pytest.mark.django_db

SCREENS = {
    # (url, at most this many queries: what it takes today; a page's attachments are one)
    "dashboard": ("/", 5),
    # session, user, project, page, attachments; the review states and the audit chain
    # (its rendering, tab marks and who wrote it come from wiki.caching)
    "project page": ("/projects/p0/", 7),
    # session, user, project, page, attachments (the summary and chart: wiki.caching)
    "model page": ("/projects/p0/model/", 5),
    # session, user, project, page, and the rows of the revisions shown (keyset-paginated
    # by revision number: no count, no list of numbers first)
    "page history": ("/projects/p0/model/history/", 5),
    "search": ("/search/?q=quokka", 4),
}


def grow(first, count):
    """Projects p<first>…: pages edited twice, runs and deployments, words to find."""
    for n in range(first, first + count):
        project = ProjectFactory(slug=f"p{n}", name=f"Project {n}")
        for page in Page.objects.filter(project=project, category__in=["overview", "model"]):
            for edit in range(2):
                page.refresh_from_db()
                edit_page(
                    page, actor=cli_actor(), base_revision=page.revision,
                    body=f"The quokka ledger, edit {edit}.", change_reason="More",
                )  # fmt: skip
        for run in range(3):
            make_training_run(
                project, f"1.{run}", notes="quokka", dataset_name="d",
                dataset_version=str(run), metrics={"auc": 0.5 + run / 10},
            )  # fmt: skip
        make_deployment(project, "1.2")


def queries(client):
    counts = {}
    for name, (url, _) in SCREENS.items():
        client.get(url)  # the rendering cache is warm in use
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200, url
        counts[name] = len(captured)
    return counts


def test_the_daily_screens_take_the_same_few_queries_for_a_small_and_a_larger_wiki():
    client = Client()
    client.force_login(UserFactory(username="boss", is_superuser=True))
    grow(0, 2)
    small = queries(client)
    grow(2, 6)
    large = queries(client)
    assert large == small
    assert {name: count for name, count in large.items() if count > SCREENS[name][1]} == {}
