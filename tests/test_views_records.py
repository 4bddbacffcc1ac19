"""The runs table, a deployment's page and a model version's page in the browser."""

import html
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import (
    ProjectFactory,
    UserFactory,
    cli_actor,
    make_deployment,
    make_training_run,
)
from wiki import run_table
from wiki.history import Actor, Source
from wiki.models import Membership
from wiki.services.records import create_model_version, update_deployment

pytestmark = pytest.mark.django_db

RUNS = "/projects/churn/runs/"
START = timezone.now() - timedelta(days=30)


def _run(project, minutes, **attrs):
    """A run started ``minutes`` after START (so the newest is the one added last)."""
    return make_training_run(project, started_at=START + timedelta(minutes=minutes), **attrs)


def _ids(response):
    """The ids of the runs the table shows, in order."""
    return [int(pk) for pk in re.findall(r'<tr id="run-(\d+)"', response.content.decode())]


def _link(response, rel):
    """The query of the page's next / previous link, or None."""
    match = re.search(rf'href="\?([^"]*)" rel="{rel}"', response.content.decode())
    return html.unescape(match[1]) if match else None


def _all_pages(client, query, rel="next", between=None):
    """The run ids of every page from ``query`` on, following ``rel`` links; calls
    ``between()`` before each further page."""
    pages, response = [], client.get(f"{RUNS}?{query}")
    while True:
        assert response.status_code == 200
        pages.append(_ids(response))
        nxt = _link(response, rel)
        if nxt is None:
            return pages, response
        if between:
            between()
        response = client.get(f"{RUNS}?{nxt}")


def test_a_run_s_row_links_to_its_page_and_model_version_and_can_be_picked_for_compare(
    client_logged_in, project
):
    run = _run(project, 1, model_version="2.0.0", dataset_version="2024-06", metrics={"auc": 0.9})
    response = client_logged_in.get(RUNS)
    assert response.status_code == 200
    page = response.content.decode()
    assert f'<a href="/projects/churn/runs/{run.pk}/">#{run.pk}</a>' in page
    assert '<a href="/projects/churn/model-versions/2.0.0/">' in page
    assert f'<input type="checkbox" name="run" value="{run.pk}"' in page
    assert 'action="/projects/churn/runs/compare/"' in page and "Compare selected" in page
    assert "2024-06" in page and "0.9" in page
    assert _ids(response) == [run.pk]


def test_filters_by_status_model_version_dataset_version_and_tag(client_logged_in, project):
    a = _run(project, 1, status="failed", model_version="1.0", dataset_version="d1",
             tags={"team": "risk"})  # fmt: skip
    b = _run(project, 2, model_version="2.0", dataset_version="d2", tags={"team": "growth"})
    c = _run(project, 3, model_version="2.0", dataset_version="d1", tags={"other": "risk"})
    cases = {
        "status=failed": [a.pk],
        "status=succeeded": [c.pk, b.pk],
        "model_version=2.0": [c.pk, b.pk],
        "dataset_version=d1": [c.pk, a.pk],
        "tag=team%3Drisk": [a.pk],
        "tag=team+%3D+growth": [b.pk],
        "model_version=2.0&dataset_version=d1": [c.pk],
        "model_version=9.9": [],
    }
    for query, expected in cases.items():
        response = client_logged_in.get(f"{RUNS}?{query}")
        assert response.status_code == 200, query
        assert _ids(response) == expected, query


@pytest.fixture(params=["listed", "checked per run"])
def condition_plan(request, monkeypatch):
    """Both ways a metric condition is applied: its runs listed first (few meet it), or
    checked per run in the sort order (many do; here: when one run meets it)."""
    if request.param == "checked per run":
        monkeypatch.setattr(run_table, "_selective", lambda: 1)
    return request.param


def test_metric_conditions_select_runs_and_may_be_combined(
    client_logged_in, project, condition_plan
):
    low = _run(project, 1, metrics={"auc": 0.7, "loss": 0.2})
    high = _run(project, 2, metrics={"auc": 0.85, "loss": 0.4})
    top = _run(project, 3, metrics={"auc": 0.95, "loss": 0.1})
    bare = _run(project, 4, metrics={})
    cases = {
        "auc > 0.8": [top.pk, high.pk],
        "auc >= 0.85": [top.pk, high.pk],
        "auc < 0.85": [low.pk],
        "auc <= 0.85": [high.pk, low.pk],
        "auc = 0.7": [low.pk],
        "auc == 0.7": [low.pk],
        "auc > 0.8, loss <= 0.3": [top.pk],
        "auc > .8 and loss < 1e-1": [],
        "auc>0.6; loss>0.15": [high.pk, low.pk],
        "": [bare.pk, top.pk, high.pk, low.pk],
    }
    for where, expected in cases.items():
        response = client_logged_in.get(RUNS, {"where": where})
        assert response.status_code == 200, where
        assert _ids(response) == expected, where


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"where": "auc >> 0.8"}, "is not a number"),
        ({"where": "auc 0.8"}, "is not a condition"),
        ({"where": "> 0.8"}, "is not a condition"),
        ({"where": "auc > high"}, "“high” is not a number"),
        ({"where": "auc > nan"}, "is not a number"),
        ({"where": "auc > 1e999"}, "is not a number"),
        ({"where": "auc > 0.8, loss <"}, "“” is not a number"),
        ({"where": ", ".join(["auc > 0"] * 11)}, "At most 10 conditions"),
        ({"tag": "team"}, "name=value"),
        ({"sort": "loss"}, "Sort by started_at, metric:NAME or param:NAME"),
        ({"order": "sideways"}, "Select a valid choice"),
        ({"status": "exploded"}, "Select a valid choice"),
        ({"cursor": "not-a-cursor"}, "This page link (cursor) is not valid"),
    ],
)
def test_bad_input_is_explained_not_a_server_error(client_logged_in, project, params, message):
    _run(project, 1)
    response = client_logged_in.get(RUNS, params)
    assert response.status_code == 400
    assert message in html.unescape(response.content.decode())
    assert _ids(response) == []


def test_sorting_by_a_metric_both_ways_puts_runs_without_it_last(client_logged_in, project):
    mid = _run(project, 1, metrics={"auc": 0.8})
    none_old = _run(project, 2, metrics={"loss": 1.0})
    top = _run(project, 3, metrics={"auc": 0.9})
    low = _run(project, 4, metrics={"auc": 0.7})
    tie = _run(project, 5, metrics={"auc": 0.8})
    none_new = _run(project, 6, metrics={})
    lacking = [none_new.pk, none_old.pk]  # newest first
    response = client_logged_in.get(RUNS, {"sort": "metric:auc", "order": "desc"})
    assert _ids(response) == [top.pk, tie.pk, mid.pk, low.pk, *lacking]
    response = client_logged_in.get(RUNS, {"sort": "metric:auc", "order": "asc"})
    assert _ids(response) == [low.pk, mid.pk, tie.pk, top.pk, *lacking]
    response = client_logged_in.get(RUNS, {"sort": "started_at", "order": "asc"})
    assert _ids(response) == [mid.pk, none_old.pk, top.pk, low.pk, tie.pk, none_new.pk]


def test_the_values_sorted_by_are_a_column_even_when_not_chosen(client_logged_in, project):
    _run(project, 1, metrics={"auc": 0.8, "precision": 0.25}, hyperparameters={"lr": 0.01})
    chosen = {"columns": "1", "metric": "auc"}
    for sort, header in (("metric:precision", "precision"), ("param:lr", "lr")):
        response = client_logged_in.get(RUNS, chosen | {"sort": sort, "order": "desc"})
        headers = response.content.decode().split("<thead>", 1)[1].split("</thead>", 1)[0]
        assert f">{header}" in headers and ">auc<" in headers, sort


def test_sorting_by_a_parameter_numbers_numerically_text_as_text_missing_last(
    client_logged_in, project
):
    small = _run(project, 1, hyperparameters={"lr": 0.001, "opt": "sgd"})
    big = _run(project, 2, hyperparameters={"lr": 0.1, "opt": "adam"})
    tenth = _run(project, 3, hyperparameters={"lr": 0.01, "opt": "rmsprop"})
    word = _run(project, 4, hyperparameters={"lr": "auto"})  # no number: last for lr
    none = _run(project, 5, hyperparameters={})
    desc = client_logged_in.get(RUNS, {"sort": "param:lr", "order": "desc"})
    assert _ids(desc) == [big.pk, tenth.pk, small.pk, none.pk, word.pk]
    asc = client_logged_in.get(RUNS, {"sort": "param:lr", "order": "asc"})
    assert _ids(asc) == [small.pk, tenth.pk, big.pk, none.pk, word.pk]
    text = client_logged_in.get(RUNS, {"sort": "param:opt", "order": "asc"})
    assert _ids(text) == [big.pk, tenth.pk, small.pk, none.pk, word.pk]
    text = client_logged_in.get(RUNS, {"sort": "param:opt", "order": "desc"})
    assert _ids(text) == [small.pk, tenth.pk, big.pk, none.pk, word.pk]


def test_paging_forward_and_back_while_runs_arrive_skips_and_repeats_nothing(
    client_logged_in, project
):
    runs = [_run(project, n, metrics={"auc": n / 200}) for n in range(120)]
    newest_first = [run.pk for run in reversed(runs)]
    arrived = []

    def a_run_arrives():
        arrived.append(_run(project, 500 + len(arrived)).pk)

    first = client_logged_in.get(RUNS, {"where": "", "sort": "started_at", "cursor": ""})
    assert _link(first, "prev") is None and _link(first, "next") is not None
    pages, last = _all_pages(client_logged_in, "", between=a_run_arrives)
    assert [len(p) for p in pages] == [50, 50, 20]
    assert sum(pages, []) == newest_first
    assert len(arrived) == 2

    # Back to the start: the runs that arrived meanwhile are before the first page seen.
    back, _ = _all_pages(client_logged_in, _link(last, "prev"), rel="prev")
    assert back == [pages[1], pages[0], arrived[::-1]]


def test_paging_a_metric_sort_crosses_from_runs_with_the_key_to_those_without(
    client_logged_in, project, condition_plan
):
    keyed = [_run(project, n, metrics={"auc": (n % 7) / 10, "f1": n}) for n in range(70)]
    bare = [_run(project, 100 + n, metrics={"f1": n}) for n in range(40)]
    dropped = _run(project, 200, metrics={"f1": -1})  # fails the condition
    expected = [r.pk for r in sorted(keyed, key=lambda r: (-r.metrics["auc"], -r.pk))]
    expected += [r.pk for r in reversed(bare)]
    query = "sort=metric%3Aauc&order=desc&where=f1+%3E%3D+0"
    pages, last = _all_pages(client_logged_in, query)
    assert [len(p) for p in pages] == [50, 50, 10]
    assert sum(pages, []) == expected and dropped.pk not in expected
    back, _ = _all_pages(client_logged_in, _link(last, "prev"), rel="prev")
    assert back == pages[1::-1]
    # A cursor is bound to its sort: used with another, it is refused.
    other = _link(last, "prev").replace("order=desc", "order=asc")
    assert client_logged_in.get(f"{RUNS}?{other}").status_code == 400


def test_default_columns_are_the_metrics_most_runs_have_and_columns_can_be_chosen(
    client_logged_in, project
):
    for n in range(3):
        _run(project, n, metrics={"auc": 0.5 + n / 10, "loss": 0.3}, hyperparameters={"lr": 0.1})
    _run(project, 9, metrics={"auc": 0.9, "rare_metric": 42.0}, hyperparameters={"depth": 6})
    default = client_logged_in.get(RUNS).content.decode()
    headers = re.findall(r'<th scope="col" class="number">([^<]*)</th>', default)
    assert headers == ["auc", "loss"]
    assert 'value="rare_metric">' in default  # offered, not shown
    chosen = client_logged_in.get(
        RUNS, {"columns": "chosen", "metric": ["rare_metric"], "param": ["depth", "lr"]}
    ).content.decode()
    assert re.findall(r'<th scope="col" class="number">([^<]*)</th>', chosen) == ["rare_metric"]
    assert ">depth <span" in chosen and ">lr <span" in chosen
    assert '<td class="number" data-label="rare_metric">42.0</td>' in chosen
    assert '<td class="number" data-label="depth">6</td>' in chosen
    # rare_metric and depth lacking in three runs each, lr in one.
    assert chosen.count('title="Not recorded"') == 3 + 3 + 1
    none = client_logged_in.get(RUNS, {"columns": "chosen"}).content.decode()
    assert '<th scope="col" class="number">' not in none


def test_the_number_of_queries_does_not_grow_with_rows_or_columns(client_logged_in, project):
    def queries(sort, metrics=(), params=()):
        query = {"where": "m1 > 0", "sort": sort, "columns": "chosen", "metric": metrics,
                 "param": params}  # fmt: skip
        with CaptureQueriesContext(connection) as captured:
            assert client_logged_in.get(RUNS, query).status_code == 200
        return len(captured)

    metrics = {f"m{i}": i / 10 for i in range(20)}
    params = {f"p{i}": i for i in range(20)}
    for n in range(3):
        _run(project, n, metrics=metrics, hyperparameters=params)
    few = [queries(sort) for sort in ("started_at", "metric:m2", "param:p2")]
    for n in range(3, 60):
        _run(project, n, metrics=metrics, hyperparameters=params)
    for sort, bound in zip(("started_at", "metric:m2", "param:p2"), few, strict=True):
        assert queries(sort) <= bound
        assert queries(sort, list(metrics), list(params)) == queries(sort, ["m1"])
    assert max(few) <= 12


def test_only_members_see_the_pages_and_anonymous_users_log_in(client, project):
    run = _run(project, 1)
    deployment = make_deployment(project)
    urls = [
        RUNS,
        f"/projects/churn/deployments/{deployment.pk}/",
        "/projects/churn/model-versions/1.0.0/",
    ]
    for url in urls:
        assert client.get(url).status_code == 302
    stranger = Client()
    stranger.force_login(UserFactory(username="mallory"))
    for url in urls:
        assert stranger.get(url).status_code == 404
    viewer = UserFactory(username="vera")
    Membership.objects.create(project=project, user=viewer, role=Membership.Role.VIEWER)
    reader = Client()
    reader.force_login(viewer)
    for url in urls:
        assert reader.get(url).status_code == 200
        assert reader.post(url).status_code == 405
    assert _ids(reader.get(RUNS)) == [run.pk]


def test_records_of_another_project_are_not_found_here(client_logged_in, project, user):
    other = ProjectFactory(slug="fraud")
    Membership.objects.create(project=other, user=user, role=Membership.Role.VIEWER)
    theirs = make_deployment(other, model_version="7.0")
    _run(other, 1, model_version="7.0")
    assert client_logged_in.get(f"/projects/churn/deployments/{theirs.pk}/").status_code == 404
    assert client_logged_in.get("/projects/churn/model-versions/7.0/").status_code == 404
    assert _ids(client_logged_in.get(RUNS)) == []


def test_a_deployment_shows_its_status_timeline_checks_config_and_reason(
    client_logged_in, project, user
):
    deployment = make_deployment(
        project, model_version="3.1", status="pending", target="k8s/churn-api",
        config={"replicas": 3}, reason="Fixes **drift** in Q3.", git_commit="abc1234",
        pipeline_url="https://ci.example.com/builds/7",
    )  # fmt: skip
    bob = Actor(user=UserFactory(username="bob"), source=Source.WEB)
    update_deployment(deployment, actor=cli_actor(), status="in_progress")
    update_deployment(
        deployment, actor=cli_actor(),
        checks=[{"name": "smoke", "passed": True, "value": 0.99},
                {"name": "latency p99", "passed": False, "value": 350, "details": "over 300 ms"}],
    )  # fmt: skip
    update_deployment(deployment, actor=cli_actor(), status="succeeded")
    update_deployment(deployment, actor=bob, status="rolled_back", change_reason="Latency alarm")

    response = client_logged_in.get(f"/projects/churn/deployments/{deployment.pk}/")
    assert response.status_code == 200
    page = response.content.decode()
    timeline = re.search(r'<ol class="timeline">(.*?)</ol>', page, re.S)[1]
    steps = [re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", li))).strip()
             for li in re.findall(r"<li>(.*?)</li>", timeline, re.S)]  # fmt: skip
    assert len(steps) == 4  # the checks added made no status change
    assert "recorded as Pending by the system (Command line): “Recorded deployment”" in steps[0]
    assert "pending → In Progress" in steps[1]
    assert "in_progress → Succeeded" in steps[2]
    assert "succeeded → Rolled Back by bob (Web): “Latency alarm”" in steps[3]
    assert "✓ passed" in page and "✗ failed" in page and "over 300 ms" in page
    assert "2 checks, 1 failed." in page
    assert "<strong>drift</strong>" in page
    assert '"replicas": 3' in html.unescape(page)
    assert "k8s/churn-api" in page and "abc1234" in page
    assert 'href="https://ci.example.com/builds/7"' in page
    assert '<a href="/projects/churn/model-versions/3.1/">' in page


def test_a_model_version_shows_its_runs_and_what_is_live_in_each_environment(
    client_logged_in, project
):
    create_model_version(project, actor=cli_actor(), version="1.0", description="Baseline *GBM*.")
    run = _run(project, 1, model_version="1.0")
    _run(project, 2, model_version="2.0")
    now = timezone.now()
    prod_v1 = make_deployment(project, "1.0", started_at=now - timedelta(days=3))
    make_deployment(project, "1.0", environment="staging", started_at=now - timedelta(days=3))
    make_deployment(project, "2.0", environment="staging", started_at=now - timedelta(days=2))
    prod_v2 = make_deployment(project, "2.0", started_at=now - timedelta(days=1))

    def environments(version):
        page = client_logged_in.get(f"/projects/churn/model-versions/{version}/").content.decode()
        rows = re.findall(r'<tr id="environment-([\w-]+)">(.*?)</tr>', page, re.S)
        return page, {name: re.sub(r"<[^>]+>|\s+", " ", row) for name, row in rows}

    page, envs = environments("1.0")
    assert "<em>GBM</em>" in page
    assert f'<a href="/projects/churn/runs/{run.pk}/">#{run.pk}</a>' in page
    assert '<a href="/projects/churn/runs/?model_version=1.0">' in page
    assert f"/projects/churn/deployments/{prod_v1.pk}/" in page
    assert "Not this version:" in envs["production"] and "2.0" in envs["production"]
    assert "Not this version:" in envs["staging"]

    # Rolling 2.0 back puts 1.0 back in production.
    update_deployment(prod_v2, actor=cli_actor(), status="rolled_back")
    _, envs = environments("1.0")
    assert f"This version ( deployment #{prod_v1.pk} )" in re.sub(r"\s+", " ", envs["production"])
    _, envs = environments("2.0")
    assert "Rolled Back" in envs["production"] and "Not this version:" in envs["production"]
    assert "This version" in envs["staging"]
    assert client_logged_in.get("/projects/churn/model-versions/9.9/").status_code == 404


def test_the_records_page_links_to_deployment_and_model_version_pages_and_the_runs_table(
    client_logged_in, project
):
    deployment = make_deployment(project, "4.2")
    _run(project, 1, model_version="4.2")
    page = client_logged_in.get("/projects/churn/records/").content.decode()
    assert f'href="/projects/churn/deployments/{deployment.pk}/"' in page
    assert 'href="/projects/churn/model-versions/4.2/"' in page
    assert 'href="/projects/churn/runs/"' in page
    assert f"/api/v1/projects/churn/deployments/{deployment.pk}/" not in page
