"""Charts on the model and deployment pages (SVG from the records, with a data table),
and the lineage on the records page."""

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from tests.factories import make_deployment, make_training_run
from wiki.charts import (
    GLYPHS,
    MARKERS,
    MAX_SERIES,
    deployment_timeline,
    line_chart,
    metric_trend,
    scatter_chart,
)
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
    assert f'href="/projects/churn/deployments/{production.pk}/"' in html
    assert "and 5 in all" in html and '<span class="chip">customers@v1</span>' in html


# Learning curves and runs compared (line_chart, scatter_chart): well-formed SVG, series told
# apart without colour, and a data table holding exactly the points drawn.
SVG_NS = "{http://www.w3.org/2000/svg}"


def parse(markup):
    return ET.fromstring(str(markup))  # noqa: S314  our own output


def table_rows(chart):
    table = parse(chart["table"])
    return [[cell.text or "" for cell in tr] for tr in table.iter("tr")][1:]


def shape(mark):
    """What a marker looks like wherever it is: its element, whether filled, and for a
    path its outline relative to its first point."""
    numbers = [float(n) for n in re.findall(r"-?[\d.]+", mark.get("d", ""))]
    outline = tuple(round(n - numbers[i % 2], 1) for i, n in enumerate(numbers))
    return mark.tag, mark.get("fill") == "none", outline


def curve(name, points, **extra):
    return {"name": name, "points": points} | extra


def test_a_line_chart_tells_every_series_apart_without_colour():
    lines = [curve(f"run #{n}", [(step, n + 1 / step) for step in range(1, 30)])
             for n in range(MAX_SERIES)]  # fmt: skip
    chart = line_chart("loss", lines)
    svg = parse(chart["svg"])
    paths = svg.findall(f".//{SVG_NS}path[@class='series']")
    assert len(paths) == MAX_SERIES
    assert len({p.get("stroke-dasharray") for p in paths}) == MAX_SERIES
    looks = set()
    for line in lines:
        marks = [m for m in svg.iter() if m.get("class") == "mark"
                 and m.find(f"{SVG_NS}title").text.startswith(line["name"] + ":")]  # fmt: skip
        assert marks, line["name"]
        kinds = {shape(m) for m in marks}
        assert len(kinds) == 1  # one shape along a line
        looks |= kinds
    assert len(looks) == MAX_SERIES  # and each line its own
    texts = [t.text for t in svg.iter(f"{SVG_NS}text")]
    assert all(f"{glyph} run #{n}" in texts  # the label at the end of each line
               for n, glyph in enumerate(GLYPHS[m] for m in MARKERS))  # fmt: skip
    assert [entry["name"] for entry in chart["legend"]] == [line["name"] for line in lines]


def test_a_line_chart_tables_the_points_it_draws_and_says_when_it_downsampled():
    shown = [(1, 0.9), (5, 0.5), (9, 0.25)]
    other = [(5, 0.8), (12, 0.1)]
    chart = line_chart("loss", [curve("a", shown, total=3000, downsampled=True),
                                curve("b <&>", other, total=2)])  # fmt: skip
    assert table_rows(chart) == [
        ["1", "0.9", ""], ["5", "0.5", "0.8"], ["9", "0.25", ""], ["12", "", "0.1"],
    ]  # fmt: skip
    assert chart["notes"] == ["a: 3 of 3000 points shown, min/max per bucket"]
    header = [th.text for th in parse(chart["table"]).iter("th")]
    assert header == ["step", "a", "b <&>"]  # escaped in the markup, parsed back
    assert "&lt;&amp;&gt;" in str(chart["svg"])
    path = parse(chart["svg"]).find(f".//{SVG_NS}path[@class='series']")
    assert path.get("d").count("L") == len(shown) - 1


def test_a_line_chart_keeps_a_series_look_by_its_style_and_skips_empty_series():
    chart = line_chart("acc", [curve("none", []), curve("second", [(1, 1.0)], style=1)])
    assert [entry["name"] for entry in chart["legend"]] == ["second"]
    assert chart["legend"][0]["marker"] == MARKERS[1]
    assert line_chart("acc", [curve("none", [])]) is None


def test_a_scatter_labels_each_run_and_lists_text_values_in_order():
    points = [
        {"name": "run #1", "x": "sgd", "y": 0.7, "style": 0},
        {"name": "run #2", "x": "adam", "y": 0.8, "style": 1},
        {"name": "run #3", "x": 0.5, "y": 0.75, "style": 2},
    ]
    chart = scatter_chart("auc against optimizer", points, "optimizer", "auc")
    svg = parse(chart["svg"])
    texts = [t.text for t in svg.iter(f"{SVG_NS}text")]
    assert {"run #1", "run #2", "run #3", "0.5", "adam", "sgd"} <= set(texts)
    marks = [m for m in svg.iter() if m.get("class") == "mark"]
    assert len({shape(m) for m in marks}) == 3
    assert table_rows(chart) == [["run #1", "sgd", "0.7"], ["run #2", "adam", "0.8"],
                                 ["run #3", "0.5", "0.75"]]  # fmt: skip
    assert scatter_chart("nothing", [], "x", "y") is None
