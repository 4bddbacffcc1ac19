"""The activity page: every change in words a person reads, each linked to what it is
about, and a filter that cannot be read says what is wrong with it."""

import re

import pytest
from django.test import Client

from frontend.views.projects import RECORDS_SHOWN
from tests.factories import UserFactory, cli_actor, make_deployment, make_training_run
from wiki.history import Actor, Source
from wiki.models import ExportJob, Membership
from wiki.services.exports import request_export
from wiki.services.members import set_member
from wiki.services.notifications import configure
from wiki.services.pages import edit_page

pytestmark = pytest.mark.django_db

ACTIVITY = "/projects/churn/activity/"


def rows(html):
    """(source, what, link or None) of each entry, newest first."""
    found = []
    for row in re.findall(r"<tr>\s*<td>\d+</td>(.*?)</tr>", html, re.S):
        source = re.search(r'<span class="source">(.*?)</span>', row).group(1)
        what = re.search(r'<td data-label="What">(.*?)</td>', row, re.S).group(1)
        link = re.search(r'href="([^"]+)"', what)
        found.append((source, re.sub(r"<[^>]+>", "", what), link and link.group(1)))
    return found


@pytest.fixture
def changes(project, user):
    """One change of each kind the log holds, by the web, the API and the command line."""
    page = project.pages.get(category="model")
    edit_page(page, actor=Actor(user, Source.WEB), base_revision=1, change_reason="why",
              body="Gradient boosting.")  # fmt: skip
    run = make_training_run(project, "2.0")
    deployment = make_deployment(project, "2.0")
    export = request_export(project, actor=Actor(user, Source.API), format="json", enqueue=False)
    set_member(project, actor=cli_actor(), username=UserFactory(username="dana").username,
               role="viewer")  # fmt: skip
    configure(project, actor=Actor(user, Source.WEB), daily_digest=True)
    return {"run": run, "deployment": deployment, "export": export}


def test_entries_are_named_in_words_and_link_to_what_they_are_about(changes, client_logged_in):
    html = client_logged_in.get(ACTIVITY).content.decode()
    entries = rows(html)
    run, deployment, export = changes["run"], changes["deployment"], changes["export"]
    by_what = {what.split(":")[0]: (source, link) for source, what, link in entries}
    assert by_what["Page changed"] == ("Web", "/projects/churn/model/revisions/2/")
    assert by_what["Training run created"] == ("Command line", f"/projects/churn/runs/{run.pk}/")
    assert by_what["Deployment created"][1] == f"/projects/churn/deployments/{deployment.pk}/"
    assert by_what["Model version created"][1] == (
        f"/projects/churn/model-versions/{run.model_version.version}/"
    )
    assert by_what["Export created"] == ("API", f"/projects/churn/exports/#export-{export.pk}")
    assert by_what["Membership created"][1] == "/projects/churn/members/"
    assert by_what["Notification settings created"][1] == "/projects/churn/notifications/"
    assert by_what["Project created"][1] == "/projects/churn/"
    table = html.split("<tbody>")[1]
    assert ">cli<" not in table and "trainingrun" not in table
    # The pages are there to land on.
    for _, link in by_what.values():
        assert client_logged_in.get(link.split("#")[0]).status_code == 200, link
    assert (
        f'id="export-{export.pk}"'
        in client_logged_in.get("/projects/churn/exports/").content.decode()
    )
    # A page's entries open the revision each made.
    revisions = [link for _, what, link in entries if what.startswith("Page changed")]
    assert revisions == ["/projects/churn/model/revisions/2/"]


def test_what_is_gone_or_may_not_be_seen_is_not_linked(changes, project):
    ExportJob.objects.filter(pk=changes["export"].pk).delete()
    viewer = UserFactory(username="vera")
    Membership.objects.create(project=project, user=viewer, role=Membership.Role.VIEWER)
    client = Client()
    client.force_login(viewer)
    by_what = {
        what.split(":")[0]: link for _, what, link in rows(client.get(ACTIVITY).content.decode())
    }
    assert by_what["Export created"] is None
    # Members and notification settings are the maintainers' pages.
    assert (
        by_what["Membership created"] is None and by_what["Notification settings created"] is None
    )
    assert by_what["Training run created"] is not None


def test_every_record_links_to_its_own_page_however_old(project, client_logged_in):
    runs = [make_training_run(project, "1.0") for _ in range(RECORDS_SHOWN + 1)]
    html = client_logged_in.get(f"{ACTIVITY}?kind=trainingrun").content.decode()
    links = {link for _, _, link in rows(html)}
    assert {f"/projects/churn/runs/{run.pk}/" for run in runs[-20:]} <= links


def test_links_cost_a_bounded_number_of_queries(
    project, client_logged_in, django_assert_max_num_queries
):
    for number in range(30):
        make_training_run(project, f"1.{number}")
    with django_assert_max_num_queries(12):
        response = client_logged_in.get(ACTIVITY)
    assert len(rows(response.content.decode())) > 60


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("source=nowhere", "source", "Select a valid choice"),
        ("kind=spaceship", "kind", "Select a valid choice"),
        ("since=yesterday", "since", "Enter a valid date"),
        ("since=2024-06-02&until=2024-06-01", "until", "on or after 2024-06-02"),
    ],
)
def test_a_bad_filter_says_what_is_wrong_with_it(project, client_logged_in, query, field, message):
    response = client_logged_in.get(f"{ACTIVITY}?{query}")
    assert response.status_code == 400
    html = response.content.decode()
    assert "Nothing was saved" not in html
    assert "This filter cannot be applied" in html
    error = re.search(rf'<div id="id_{field}_error">(.*?)</div>', html, re.S).group(1)
    assert message in error
    assert "No change matches" not in html
