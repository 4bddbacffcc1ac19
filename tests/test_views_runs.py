"""The training run page and the page comparing runs: what they show, to whom."""

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import (
    ProjectFactory,
    UserFactory,
    cli_actor,
    make_deployment,
    make_token,
    make_training_run,
)
from tests.test_attachments import png, upload
from wiki.comparison import lower_is_better
from wiki.history import Actor, Source
from wiki.models import Membership
from wiki.services import series
from wiki.services.attachments import attach
from wiki.services.records import record_training_run

pytestmark = pytest.mark.django_db
START = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
SVG = re.compile(r"<svg .*?</svg>", re.S)


def run_url(run):
    return reverse("frontend:run", args=[run.project.slug, run.pk])


def compare_url(project, *runs, **query):
    url = reverse("frontend:runs-compare", args=[project.slug])
    params = [f"run={r if isinstance(r, (int, str)) else r.pk}" for r in runs]
    params += [f"{name}={value}" for name, value in query.items()]
    return f"{url}?{'&'.join(params)}"


def charts(response):
    """The SVG charts of a page, parsed (each must be well-formed XML)."""
    return [ET.fromstring(svg) for svg in SVG.findall(response.content.decode())]  # noqa: S314  our own output


@pytest.fixture
def run(project, user):
    token, _ = make_token(user, scopes=["records:write"], projects=[project.slug], name="ci-bot")
    pipeline = Actor(user=user, source=Source.API, token=token)
    return record_training_run(
        project, actor=pipeline, model_version="2.1.0", status="succeeded",
        started_at=START, finished_at=START + timedelta(hours=1, minutes=2, seconds=3),
        dataset_name="customers", dataset_version="2024-02", dataset_uri="s3://data/customers",
        git_commit="abc1234def", pipeline_url="https://ci.example.com/jobs/7",
        hyperparameters={"learning_rate": 0.05, "optimizer": "adam"},
        metrics={"auc": 0.84, "val_loss": 0.31}, tags={"team": "growth"},
        environment={"repository_url": "https://git.example.com/ml/churn"},
        notes="Retrained on **February** data.",
    )  # fmt: skip


def test_the_run_page_shows_what_the_pipeline_posted(client_logged_in, project, run):
    make_deployment(project, "2.1.0", environment="staging")
    series.append(run, {"val_loss": [{"step": s, "value": 1 / s} for s in range(1, 6)]},
                  actor=cli_actor())  # fmt: skip
    response = client_logged_in.get(run_url(run))
    assert response.status_code == 200
    html = response.content.decode()
    assert f"Training run #{run.pk}" in html and "Succeeded" in html
    assert "2024-03-01 09:00:00" in html and "1 h 2 min 3 s" in html
    # Who posted it: the user, the token, the channel and the request id of its history row.
    posted = run.history.earliest("history_id")
    assert "alice" in html and "ci-bot" in html and "API" in html
    assert str(posted.history_request_id) in html
    assert "customers" in html and "2024-02" in html and "s3://data/customers" in html
    assert 'href="https://git.example.com/ml/churn/commit/abc1234def"' in html
    assert 'href="https://ci.example.com/jobs/7"' in html
    assert 'href="/projects/churn/model-versions/2.1.0/"' in html
    assert "learning_rate" in html and "0.05" in html and "val_loss" in html and "0.31" in html
    assert "growth" in html and "<strong>February</strong>" in html
    assert re.search(r"#\d+ staging", html)  # lineage: the model version's deployment
    [chart] = charts(response)
    assert chart.find("{http://www.w3.org/2000/svg}title").text == "val_loss"
    assert "No metric series posted" not in html


def test_a_commit_is_linked_only_to_a_web_repository(client_logged_in, project):
    plain = make_training_run(project, git_commit="abc1234")
    sneaky = make_training_run(project, git_commit="abc1234",
                               environment={"repository_url": "javascript:alert(1)"})  # fmt: skip
    for made in (plain, sneaky):
        html = client_logged_in.get(run_url(made)).content.decode()
        assert "<code>abc1234</code>" in html and "/commit/abc1234" not in html


def test_a_viewer_may_read_a_run_and_compare_runs(project):
    viewer = UserFactory(username="victor")
    Membership.objects.create(project=project, user=viewer, role=Membership.Role.VIEWER)
    client = Client()
    client.force_login(viewer)
    one, two = make_training_run(project), make_training_run(project)
    assert client.get(run_url(one)).status_code == 200
    assert client.get(compare_url(project, one, two)).status_code == 200


def test_runs_of_another_project_are_not_found(client_logged_in, project):
    other = ProjectFactory(slug="fraud")
    theirs = make_training_run(other)
    ours = make_training_run(project)
    wrong = reverse("frontend:run", args=[project.slug, theirs.pk])
    assert client_logged_in.get(wrong).status_code == 404
    assert client_logged_in.get(run_url(theirs)).status_code == 404  # not a member of fraud
    assert client_logged_in.get(compare_url(project, ours, theirs)).status_code == 404


def test_anonymous_readers_are_sent_to_log_in(project):
    made = make_training_run(project)
    for url in (run_url(made), compare_url(project, made, made)):
        response = Client().get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login") + "?next=")


def test_the_run_page_with_twenty_curves_takes_a_bounded_number_of_queries(
    client_logged_in, project, run, django_assert_max_num_queries
):
    for n in range(20):
        series.append(run, {f"metric_{n:02}": [{"step": s, "value": s * n} for s in range(50)]},
                      actor=cli_actor())  # fmt: skip
    make_deployment(project, "2.1.0")
    with django_assert_max_num_queries(11):
        response = client_logged_in.get(run_url(run))
    assert len(charts(response)) == 20


def test_a_downsampled_curve_says_so_and_tables_the_points_it_draws(client_logged_in, run):
    series.append(run, {"loss": [{"step": s, "value": (s * 7919) % 1000} for s in range(5000)]},
                  actor=cli_actor())  # fmt: skip
    html = client_logged_in.get(run_url(run)).content.decode()
    shown = re.search(r"loss: (\d+) of 5000 points shown, min/max per bucket", html)
    assert shown and int(shown.group(1)) <= 500
    table = html[html.index("loss: the points drawn") :]
    rows = table[: table.index("</table>")].count("<tr>") - 1  # less the header
    assert rows == int(shown.group(1))


def make_compared(project):
    one = make_training_run(
        project, "1.0", hyperparameters={"learning_rate": 0.1, "depth": 6, "seed": 1},
        metrics={"auc": 0.81, "val_loss": 0.4, "f1": 0.7},
    )  # fmt: skip
    two = make_training_run(
        project, "1.1", hyperparameters={"learning_rate": 0.05, "depth": 6, "seed": True},
        metrics={"auc": 0.84, "val_loss": 0.45, "f1": 0.7},
    )  # fmt: skip
    for made, scale in ((one, 1.0), (two, 0.8)):
        series.append(made, {"val_loss": [{"step": s, "value": scale / s} for s in range(1, 30)]},
                      actor=cli_actor())  # fmt: skip
    return one, two


def rows(html, marker):
    """The table rows (as text) of ``html`` that hold ``marker``."""
    return [row for row in re.findall(r"<tr[^>]*>.*?</tr>", html, re.S) if marker in row]


def row(html, name):
    """The row of the parameter or metric ``name``."""
    [found] = rows(html, f'<th scope="row">{name}')
    return found


def test_compare_marks_the_parameters_that_differ(client_logged_in, project):
    one, two = make_compared(project)
    html = client_logged_in.get(compare_url(project, one, two)).content.decode()
    differing = rows(html, "≠ differs")
    assert len(differing) == 2
    assert "learning_rate" in differing[0] and "0.1" in differing[0] and "0.05" in differing[0]
    assert "seed" in differing[1] and "true" in differing[1]  # 1 and true are not the same
    depth = row(html, "depth")
    assert 'class="differs"' not in depth and "differs" not in depth


def test_compare_marks_the_best_value_of_each_metric(client_logged_in, project):
    one, two = make_compared(project)
    html = client_logged_in.get(compare_url(project, one, two)).content.decode()
    auc, loss, f1 = row(html, "auc"), row(html, "val_loss"), row(html, "f1")
    assert re.search(r"0\.84 <strong class=\"best-mark\">★ best", auc) and auc.count("★") == 1
    assert re.search(r"0\.4 <strong class=\"best-mark\">★ best", loss) and loss.count("★") == 1
    assert f1.count("★ best") == 2  # a tie: both reached the best
    assert "lower is better" in loss and "higher is better" in auc


def test_compare_overlays_the_runs_curves_and_plots_a_parameter_against_a_metric(
    client_logged_in, project
):
    one, two = make_compared(project)
    response = client_logged_in.get(compare_url(project, one, two, x="learning_rate", y="auc"))
    curve, scatter = charts(response)
    ns = "{http://www.w3.org/2000/svg}"
    lines = curve.findall(f".//{ns}path[@class='series']")
    assert len(lines) == 2
    assert lines[0].get("stroke-dasharray") != lines[1].get("stroke-dasharray")
    names = {f"run #{one.pk} (1.0)", f"run #{two.pk} (1.1)"}
    assert names <= {title.text for title in curve.iter(f"{ns}title")}
    assert names <= {text.text for text in curve.iter(f"{ns}text")}  # the legend
    html = response.content.decode()
    assert '<option value="learning_rate" selected>' in html
    assert '<option value="auc" selected>' in html
    assert f"<td>run #{one.pk} (1.0)</td><td>0.1</td><td>0.81</td>" in html
    assert scatter.find(f"{ns}title").text == "auc against learning_rate"


@pytest.mark.parametrize("count", [1, 11])
def test_compare_needs_two_to_ten_runs(client_logged_in, project, count):
    made = [make_training_run(project) for _ in range(count)]
    response = client_logged_in.get(compare_url(project, *made))
    assert response.status_code == 400
    assert f"Choose 2 to 10 training runs to compare ({count} chosen)" in response.content.decode()


@pytest.mark.parametrize("number", ["x1", "²", "-1", "", "9" * 5000])
def test_compare_refuses_a_run_that_is_not_a_number(client_logged_in, project, number):
    made = make_training_run(project)
    response = client_logged_in.get(compare_url(project, made, number))
    assert response.status_code == 400 and "is not a training run number" in response.text


def test_a_run_number_too_large_for_the_database_is_no_such_run(client_logged_in, project):
    made = make_training_run(project)
    huge = "9" * 30
    assert client_logged_in.get(compare_url(project, made, huge)).status_code == 404
    assert client_logged_in.get(f"/projects/churn/runs/{huge}/").status_code == 404


def test_a_run_is_better_when_lower_for_losses_errors_and_times():
    lower = ["loss", "val_loss", "error_rate", "RMSE", "mae", "perplexity", "p99_latency_ms",
             "train_time", "duration_s"]  # fmt: skip
    assert all(lower_is_better(name) for name in lower)
    assert not any(lower_is_better(name) for name in ["auc", "accuracy", "f1", "recall"])


def test_the_records_page_links_runs_to_their_pages_and_offers_to_compare(
    client_logged_in, project
):
    made = make_training_run(project)
    html = client_logged_in.get(reverse("frontend:records", args=[project.slug])).text
    assert html.count(f'href="{run_url(made)}"') == 2  # the lineage chip and the table row
    assert "/api/v1/projects/churn/training-runs/" not in html
    assert f'name="run" value="{made.pk}"' in html
    assert f'action="{reverse("frontend:runs-compare", args=[project.slug])}"' in html


def test_the_run_page_lists_its_attachments_and_its_notes_show_them(client_logged_in, project):
    made = make_training_run(project, notes="![ROC](attachment:roc.png)")
    attach(made, upload(png(), "roc.png"), actor=cli_actor())
    html = client_logged_in.get(run_url(made)).text
    address = f"{run_url(made)}attachments/roc.png"
    assert f'<img src="{address}' in html  # in the notes
    assert f'<a href="{address}">roc.png</a>' in html  # in the panel


def test_the_lineage_shows_the_newest_deployments_and_counts_them_all(client_logged_in, project):
    made = make_training_run(project, "3.0")
    for number in range(12):
        make_deployment(project, "3.0", environment=f"env-{number}")
    html = client_logged_in.get(run_url(made)).text
    assert "env-11" in html and "env-2" in html and "env-1 " not in html
    assert "and 12 in all" in html


def test_the_scatter_plots_by_default_the_parameter_most_runs_have(client_logged_in, project):
    runs = [
        make_training_run(project, hyperparameters={"C": 1, "lr": 0.1}),
        make_training_run(project, hyperparameters={"lr": 0.2}),
        make_training_run(project, hyperparameters={"lr": 0.3}),
    ]
    html = client_logged_in.get(compare_url(project, *runs)).content.decode()
    assert '<option value="lr" selected>' in html
