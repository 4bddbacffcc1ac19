"""Charts on the model and deployment pages (SVG from the records, with a data table),
and the lineage on the records page."""

import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.factories import make_deployment, make_training_run
from wiki.charts import deployment_timeline, metric_trend
from wiki.summaries import lineage

pytestmark = pytest.mark.django_db
START = datetime(2024, 1, 1, tzinfo=UTC)


def runs(project):
    for number, auc in enumerate([0.71, 0.74, 0.8]):
        make_training_run(
            project, f"1.{number}", started_at=START + timedelta(days=number),
            metrics={"auc": auc, "loss": 1 - auc},
        )  # fmt: skip


def test_the_trend_charts_the_chosen_metric_oldest_first(project):
    runs(project)
    chart = metric_trend(project, production_version="1.1")
    assert chart["metric"] == "auc" and chart["metrics"] == ["auc", "loss"]
    assert [p["value"] for p in chart["points"]] == [0.71, 0.74, 0.8]
    assert [p["production"] for p in chart["points"]] == [False, True, False]
    svg = str(chart["svg"])
    assert svg.count("<circle") == 2 and svg.count("<rect") == 1  # the shape says production
    assert "(production version)" in svg and "a run of 1.1, in production" in svg
    loss = metric_trend(project, "loss")
    assert loss["metric"] == "loss" and loss["points"][0]["value"] == pytest.approx(0.29)
    assert metric_trend(project, "nonsense")["metric"] == "auc"


def test_the_trend_spaces_runs_evenly_and_labels_its_axis_with_runs_not_dates(project):
    # Uneven gaps: a day, then a month. The axis is the runs' order, and says so.
    made = [
        make_training_run(project, "1.0", started_at=START + timedelta(days=day),
                          metrics={"auc": 0.7 + day / 1000})
        for day in (0, 1, 31)
    ]  # fmt: skip
    svg = str(metric_trend(project)["svg"])
    xs = [float(x) for x in re.findall(r'<circle cx="([\d.]+)"', svg)]
    assert len(xs) == 3 and xs[1] - xs[0] == pytest.approx(xs[2] - xs[1])
    labels = re.findall(r"<text [^>]*>([^<]*)<", svg)
    assert f"run #{made[0].pk}" in labels and f"run #{made[-1].pk}" in labels
    assert "runs in the order they started, evenly spaced" in labels
    assert not [label for label in labels if re.search(r"\d{4}-\d{2}-\d{2}", label)]
    assert "started 2024-02-01 00:00" in svg  # the date is in each run's tooltip


def test_no_metric_no_chart(project):
    assert metric_trend(project) is None
    make_training_run(project, "1.0", metrics={})
    assert metric_trend(project) is None
    assert deployment_timeline(project) is None


def test_the_timeline_marks_each_outcome_by_shape(project):
    make_deployment(project, "1.0", environment="staging", started_at=START)
    make_deployment(project, "1.0", environment="production", status="failed",
                    started_at=START + timedelta(days=1))  # fmt: skip
    make_deployment(project, "1.1", environment="production",
                    started_at=START + timedelta(days=2))  # fmt: skip
    chart = deployment_timeline(project)
    assert chart["environments"] == ["production", "staging"]
    assert [d["mark"] for d in chart["deployments"]] == ["●", "✗", "●"]
    svg = str(chart["svg"])
    assert ">✗<title>" in svg and "1.0 to production: failed" in svg


def test_record_text_in_a_chart_is_escaped(project):
    make_deployment(project, "1.0", environment="<script>x</script>")
    svg = str(deployment_timeline(project)["svg"])
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_the_pages_show_the_charts_and_their_tables(project, client_logged_in):
    runs(project)
    make_deployment(project, "1.1", environment="production", started_at=START + timedelta(days=5))
    model = client_logged_in.get("/projects/churn/model/").content.decode()
    assert '<svg class="chart"' in model and "auc across training runs" in model
    assert '<option value="loss">' in model and "<td><code>1.1</code> (production)</td>" in model
    loss = client_logged_in.get("/projects/churn/model/?metric=loss").content.decode()
    assert "loss across training runs" in loss
    deployment = client_logged_in.get("/projects/churn/deployment/").content.decode()
    assert "Deployments over time" in deployment and "● succeeded" in deployment
    assert (
        '<svg class="chart"' not in client_logged_in.get("/projects/churn/data/").content.decode()
    )


def test_lineage_links_datasets_runs_versions_and_deployments(
    project, client_logged_in, django_assert_max_num_queries
):
    make_training_run(project, "1.0", dataset_name="orders", dataset_version="v9", started_at=START)
    for number in range(5):
        make_training_run(
            project, "2.0", dataset_name="customers", dataset_version=f"v{number % 2}",
            started_at=START + timedelta(days=number),
        )  # fmt: skip
    production = make_deployment(project, "2.0", environment="production", started_at=START)
    (newest, oldest) = lineage(project)
    assert newest["version"] == "2.0" and oldest["version"] == "1.0"
    assert newest["datasets"] == ["customers@v0", "customers@v1"]
    assert newest["runs_total"] == 5 and len(newest["training_runs"]) == 3
    assert [d.pk for d in newest["deployments"]] == [production.pk]
    assert oldest["datasets"] == ["orders@v9"] and oldest["deployments"] == []
    with django_assert_max_num_queries(14):
        html = client_logged_in.get("/projects/churn/records/").content.decode()
    assert f'href="/api/v1/projects/churn/deployments/{production.pk}/"' in html
    assert "and 5 in all" in html and '<span class="chip">customers@v1</span>' in html
