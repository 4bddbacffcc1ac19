"""Learning curves: metric series posted with a run or appended later, read downsampled."""

import hashlib
import json
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from tests.factories import cli_actor, make_token, make_training_run
from wiki import audit
from wiki import series as curves
from wiki.models import AuditEntry, SeriesChunk, TrainingRun
from wiki.services import series as series_service

pytestmark = pytest.mark.django_db


def points(steps, value=lambda step: step / 10, timestamp=None):
    return [
        {"step": step, "value": value(step)} | ({"timestamp": timestamp} if timestamp else {})
        for step in steps
    ]


# Validation


@pytest.mark.parametrize(
    ("series", "message"),
    [
        ([1, 2], "Must be an object"),
        ({}, "at least one metric"),
        ({"loss": []}, "'loss' must be a non-empty list"),
        ({"loss": {"step": 1}}, "'loss' must be a non-empty list"),
        ({"": points([1])}, "Metric names must be 1 to 200"),
        ({"x" * 201: points([1])}, "Metric names must be 1 to 200"),
        ({"loss": [1.0]}, "'loss', point 0: must be an object"),
        ({"loss": [*points([1]), {"step": -1, "value": 1}]}, "'loss', point 1: the step"),
        ({"loss": [{"step": 1.5, "value": 1}]}, "'loss', point 0: the step"),
        ({"loss": [{"step": True, "value": 1}]}, "'loss', point 0: the step"),
        ({"loss": [{"step": 2**63, "value": 1}]}, "'loss', point 0: the step"),
        ({"loss": [{"value": 1}]}, "'loss', point 0: the step"),
        ({"loss": [{"step": 1}]}, "'loss', point 0: the value must be a finite number"),
        ({"acc": points([1, 2]), "loss": [*points([1, 2]), {"step": 3, "value": float("nan")}]},
         "'loss', point 2: the value must be a finite number"),
        ({"loss": [{"step": 1, "value": float("inf")}]}, "finite number"),
        ({"loss": [{"step": 1, "value": "0.9"}]}, "finite number"),
        ({"loss": [{"step": 1, "value": 10**400}]}, "finite number"),
        ({"loss": [{"step": 1, "value": 1, "epoch": 3}]}, "unknown field(s) epoch"),
        ({"loss": points([1], timestamp="yesterday")}, "ISO 8601"),
        ({"loss": points([1], timestamp=12)}, "ISO 8601"),
        ({"loss": points([1], timestamp="2026-01-01T10:00:00")}, "needs a time zone"),
        ({"loss": points([1], timestamp="2999-01-01T10:00:00Z")}, "in the future"),
        ({"loss": points([1], timestamp="0001-01-01T00:00:00+01:00")}, "out of range"),
    ],
)  # fmt: skip
def test_bad_series_are_refused_naming_the_metric_and_point(series, message):
    with pytest.raises(ValidationError) as raised:
        curves.parse(series)
    assert message in raised.value.message_dict["series"][0]


def test_points_per_call_and_metrics_are_limited(settings):
    settings.SERIES_MAX_POINTS = 10
    curves.parse({"a": points(range(5)), "b": points(range(5))})
    with pytest.raises(ValidationError, match="At most 10 points per call"):
        curves.parse({"a": points(range(5)), "b": points(range(6))})
    with pytest.raises(ValidationError, match="At most 1,000 metrics"):
        curves.parse({f"m{i}": points([1]) for i in range(1001)})


def test_the_default_limit_is_ten_thousand_points_per_call():
    curves.parse({"loss": points(range(10_000))})
    with pytest.raises(ValidationError, match="At most 10,000 points"):
        curves.parse({"loss": points(range(10_001))})


def test_canonical_text_is_compact_with_utc_timestamps_and_float_values():
    rows = curves.parse(
        {"loss": [{"step": 3, "value": 1, "timestamp": "2026-01-01T12:00:00+02:00"},
                  {"step": 1, "value": 0.25}]}
    )  # fmt: skip
    text = curves.canonical(rows["loss"])
    assert text == '[[3,1.0,"2026-01-01T10:00:00Z"],[1,0.25,null]]'
    assert curves.digest(text) == hashlib.sha256(text.encode()).hexdigest()


# Appending


def test_append_writes_one_chunk_per_metric_with_its_hash_and_counts(project):
    run = make_training_run(project)
    stamp = (timezone.now() - timedelta(minutes=1)).isoformat()
    chunks = series_service.append(
        run,
        {"loss": points([5, 1, 3], timestamp=stamp), "acc": points([1, 2])},
        actor=cli_actor(),
    )
    assert [c.metric for c in chunks] == ["loss", "acc"]
    loss = SeriesChunk.objects.get(training_run=run, metric="loss")
    assert (loss.count, loss.first_step, loss.last_step) == (3, 1, 5)
    assert loss.project_id == project.pk
    assert loss.sha256 == hashlib.sha256(loss.points.encode()).hexdigest()
    assert [row[0] for row in json.loads(loss.points)] == [5, 1, 3]  # as posted


def test_appends_in_batches_add_up(project):
    run = make_training_run(project)
    series_service.append(run, {"loss": points(range(0, 100))}, actor=cli_actor())
    series_service.append(run, {"loss": points(range(100, 250)), "lr": points([0])},
                          actor=cli_actor())  # fmt: skip
    assert curves.counts(run) == {"loss": 250, "lr": 1}
    (loss,) = curves.curves(run, metrics=["loss"], max_points=1000)
    assert loss.total == 250 and not loss.downsampled
    assert loss.points == [(step, step / 10) for step in range(250)]


def test_each_chunk_has_a_history_row_sealed_in_the_audit_chain(project):
    run = make_training_run(project)
    chunks = series_service.append(
        run, {"loss": points([1, 2]), "acc": points([1])}, actor=cli_actor(),
        change_reason="Epoch 1",
    )  # fmt: skip
    for chunk in chunks:
        row = chunk.history.get()
        assert (row.history_type, row.history_source, row.history_change_reason) == (
            "+", "cli", "Epoch 1",
        )  # fmt: skip
        assert row.sha256 == chunk.sha256 and row.count == chunk.count
        assert not hasattr(row, "points")
        entry = AuditEntry.objects.get(kind="serieschunk", history_id=row.history_id)
        assert entry.object_id == chunk.pk and entry.reason == "Epoch 1"
    verdict = audit.verify(audit.head_for(project), record=False)
    assert verdict.ok, verdict.first_bad


def test_a_bad_series_writes_nothing(project):
    run = make_training_run(project)
    with pytest.raises(ValidationError):
        series_service.append(
            run, {"acc": points([1]), "loss": [{"step": 1, "value": None}]}, actor=cli_actor()
        )
    assert not SeriesChunk.objects.exists()


def test_a_run_posted_with_series_keeps_them_in_its_transaction(project):
    run = make_training_run(project, series={"loss": points([1, 2, 3])})
    assert curves.counts(run) == {"loss": 3}
    row = SeriesChunk.objects.get().history.get()
    assert row.history_request_id == run.history.get().history_request_id
    assert "series" not in {f.name for f in TrainingRun._meta.fields}


def test_a_bad_series_refuses_the_whole_run(project):
    with pytest.raises(ValidationError) as raised:
        make_training_run(project, series={"loss": [{"step": -1, "value": 1}]})
    assert "'loss', point 0" in raised.value.message_dict["series"][0]
    assert not TrainingRun.objects.exists()
    assert not SeriesChunk.objects.exists()


# Reading


def test_curves_are_sorted_by_step_and_by_metric(project):
    run = make_training_run(project)
    series_service.append(run, {"loss": points([3, 1]), "acc": points([2])}, actor=cli_actor())
    series_service.append(run, {"loss": points([2, 0])}, actor=cli_actor())
    acc, loss = curves.curves(run)
    assert (acc.metric, loss.metric) == ("acc", "loss")
    assert loss.points == [(0, 0.0), (1, 0.1), (2, 0.2), (3, 0.3)]
    assert curves.curves(run, metrics=["acc", "absent"]) == [acc]


def test_downsampling_keeps_the_ends_and_the_extremes_and_tells_the_total(project):
    run = make_training_run(project)
    spikes = {1234: 50.0, 8765: -40.0, 4000: 30.0}
    series = {"loss": points(range(10_000), value=lambda s: spikes.get(s, 1.0 / (s + 1)))}
    series_service.append(run, series, actor=cli_actor())
    (loss,) = curves.curves(run, max_points=100)
    assert loss.downsampled and loss.total == 10_000
    assert len(loss.points) <= 100
    assert loss.points[0] == (0, 1.0) and loss.points[-1] == (9999, 1.0 / 10_000)
    assert [p[0] for p in loss.points] == sorted({p[0] for p in loss.points})
    for step, value in spikes.items():
        assert (step, value) in loss.points


def test_downsampling_in_buckets_keeps_each_buckets_min_and_max():
    steps = list(range(22))
    values = [0, 5, 1, 2, 9, 3, 3, 3, 3, 3, 3, -1, 3, 3, 3, 3, 3, 3, 3, 3, 3, 7]
    kept = curves.downsample(steps, values, max_points=6)  # 2 buckets of 11 steps
    assert kept == [(0, 0), (2, 1), (4, 9), (11, -1), (12, 3), (21, 7)]
    assert curves.downsample(steps[:5], values[:5], max_points=6) == list(
        zip(steps[:5], values[:5], strict=True)
    )


def test_reading_curves_is_one_query(project, django_assert_num_queries):
    run = make_training_run(project)
    for batch in range(3):
        series_service.append(
            run, {f"m{i}": points(range(batch * 1000, (batch + 1) * 1000)) for i in range(5)},
            actor=cli_actor(),
        )  # fmt: skip
    with django_assert_num_queries(1):
        found = curves.curves(run, max_points=200)
    assert [c.total for c in found] == [3000] * 5
    with django_assert_num_queries(1):
        assert curves.counts(run) == {f"m{i}": 3000 for i in range(5)}


# Over the API

RUNS = "/api/v1/projects/churn/training-runs/"


def run_body(**changes):
    return {
        "model_version": "2.0.0",
        "status": "succeeded",
        "started_at": "2024-06-01T10:00:00Z",
        "metrics": {"auc": 0.84},
    } | changes


def series_url(run):
    return f"{RUNS}{run.pk}/series/"


def test_posting_points_answers_201_with_counts_per_metric(api, pipeline_key, project):
    run = make_training_run(project)
    client = api(pipeline_key)
    response = client.post(series_url(run), {"loss": points(range(3)), "acc": points([1])})
    assert response.status_code == 201, response.json()
    assert response.json() == {
        "url": f"http://testserver{series_url(run)}",
        "appended": {"loss": 3, "acc": 1},
        "totals": {"acc": 1, "loss": 3},
    }
    assert response["Location"] == f"http://testserver{series_url(run)}"
    again = client.post(series_url(run), {"loss": points(range(3, 5))}).json()
    assert again["appended"] == {"loss": 2} and again["totals"] == {"acc": 1, "loss": 5}
    row = SeriesChunk.objects.filter(metric="loss").last().history.get()
    assert row.history_source == "api"


def test_ten_thousand_points_with_timestamps_fit_in_one_call(api, pipeline_key, project):
    run = make_training_run(project)
    stamp = "2026-01-01T10:00:00.123456+00:00"
    series = {f"m{i}": points(range(2500), timestamp=stamp) for i in range(4)}
    body = json.dumps(series, indent=2)
    assert len(body) > 1024 * 1024  # over the general limit of the API
    body += " " * (3 * 1024 * 1024 - len(body))  # and over Django's DATA_UPLOAD_MAX_MEMORY_SIZE
    response = api(pipeline_key).post(series_url(run), body, content_type="application/json")
    assert response.status_code == 201, response.json()
    assert sum(response.json()["appended"].values()) == 10_000


def test_bodies_over_four_mib_are_refused_with_413(api, pipeline_key, project):
    run = make_training_run(project)
    body = json.dumps({"loss": points([1]), "pad": "x" * (4 * 1024 * 1024)})
    response = api(pipeline_key).post(series_url(run), body, content_type="application/json")
    assert response.status_code == 413
    assert "4096 KiB" in response.json()["detail"]
    assert not SeriesChunk.objects.exists()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"loss": [{"step": 1, "value": 1}, {"step": 2, "value": "high"}]},
         "'loss', point 1: the value must be a finite number"),
        ([{"step": 1, "value": 1}], "Must be an object"),
        ({}, "at least one metric"),
    ],
)  # fmt: skip
def test_bad_points_answer_400_naming_them(api, pipeline_key, project, body, message):
    run = make_training_run(project)
    response = api(pipeline_key).post(series_url(run), body)
    assert response.status_code == 400
    assert message in response.json()["errors"]["series"][0]
    assert not SeriesChunk.objects.exists()


def test_too_many_points_answer_400(api, pipeline_key, project, settings):
    settings.SERIES_MAX_POINTS = 5
    run = make_training_run(project)
    response = api(pipeline_key).post(series_url(run), {"loss": points(range(6))})
    assert response.status_code == 400
    assert "At most 5 points" in response.json()["errors"]["series"][0]


def test_a_retried_append_is_replayed_and_a_reused_key_is_422(api, pipeline_key, project):
    run = make_training_run(project)
    client = api(pipeline_key)
    body = {"loss": points(range(10))}
    first = client.post(series_url(run), body, HTTP_IDEMPOTENCY_KEY="epoch-1")
    assert first.status_code == 201
    replay = client.post(series_url(run), body, HTTP_IDEMPOTENCY_KEY="epoch-1")
    assert replay.status_code == 200 and replay["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    assert SeriesChunk.objects.count() == 1
    other = client.post(series_url(run), {"loss": points([11])}, HTTP_IDEMPOTENCY_KEY="epoch-1")
    assert other.status_code == 422
    assert curves.counts(run) == {"loss": 10}


def test_appending_needs_records_write_and_the_right_project(api, user, project):
    run = make_training_run(project)
    reader = make_token(user, scopes=["read"], projects=[project.slug])[1]
    assert api(reader).post(series_url(run), {"loss": points([1])}).status_code == 403
    assert api().post(series_url(run), {"loss": points([1])}).status_code == 401
    writer = make_token(user, scopes=["records:write"], projects=[project.slug])[1]
    missing = f"{RUNS}{run.pk + 1}/series/"
    assert api(writer).post(missing, {"loss": points([1])}).status_code == 404
    assert not SeriesChunk.objects.exists()


def test_reading_curves_downsamples_and_filters(api, pipeline_key, project, user):
    run = make_training_run(project)
    series_service.append(
        run, {"loss": points(range(3000)), "acc": points(range(20))}, actor=cli_actor()
    )
    reader = api(make_token(user, scopes=["read"], projects=[project.slug])[1])
    data = reader.get(series_url(run)).json()
    assert data["run"] == run.pk and data["max_points"] == 1000
    acc, loss = data["metrics"]
    assert (acc["metric"], acc["total"], acc["downsampled"]) == ("acc", 20, False)
    assert acc["points"] == [[s, s / 10] for s in range(20)]
    assert (loss["total"], loss["downsampled"]) == (3000, True)
    assert len(loss["points"]) <= 1000 and loss["points"][-1] == [2999, 299.9]
    data = reader.get(series_url(run), {"metric": ["loss"], "max_points": 10}).json()
    assert [c["metric"] for c in data["metrics"]] == ["loss"]
    assert len(data["metrics"][0]["points"]) <= 10
    data = reader.get(f"{series_url(run)}?metric=loss&metric=acc").json()
    assert len(data["metrics"]) == 2


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("max_points=9", "max_points"),
        ("max_points=5001", "max_points"),
        ("max_points=lots", "max_points"),
        ("max_points=%C2%B2%C2%B2", "max_points"),
        ("metric=", "metric"),
        ("raw=yes", "raw"),
        ("raw=1&max_points=100", "max_points"),
        ("colour=red", "colour"),
    ],
)
def test_bad_queries_of_curves_answer_400(api, pipeline_key, project, query, field):
    run = make_training_run(project)
    response = api(pipeline_key).get(f"{series_url(run)}?{query}")
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_raw_curves_stream_every_point_as_appended(api, pipeline_key, project):
    run = make_training_run(project)
    stamp = "2026-01-01T10:00:00Z"
    series_service.append(run, {"loss": points([2, 1], timestamp=stamp)}, actor=cli_actor())
    series_service.append(run, {"loss": points([3]), "acc": points([1])}, actor=cli_actor())
    response = api(pipeline_key).get(series_url(run), {"raw": "1"})
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    data = json.loads(b"".join(response.streaming_content))
    assert data == {
        "run": run.pk,
        "max_points": None,
        "metrics": [
            {"metric": "acc", "points": [[1, 0.1, None]], "total": 1, "downsampled": False},
            {"metric": "loss", "total": 3, "downsampled": False,
             "points": [[2, 0.2, stamp], [1, 0.1, stamp], [3, 0.3, None]]},
        ],
    }  # fmt: skip
    response = api(pipeline_key).get(series_url(run), {"raw": "1", "metric": "nothing"})
    assert json.loads(b"".join(response.streaming_content))["metrics"] == []


def test_a_run_posted_with_series_over_the_api(api, pipeline_key, project):
    client = api(pipeline_key)
    series = {"loss": points(range(5)), "acc": points(range(3))}
    response = client.post(RUNS, run_body(series=series))
    assert response.status_code == 201, response.json()
    data = response.json()
    assert "series" not in data and data["series_points"] == {"acc": 3, "loss": 5}
    run = TrainingRun.objects.get(pk=data["id"])
    assert curves.counts(run) == {"acc": 3, "loss": 5}
    assert client.get(f"{RUNS}{run.pk}/").json()["series_points"] == {"acc": 3, "loss": 5}
    listed = client.get(RUNS).json()["results"]
    assert listed[0]["series_points"] is None


def test_a_run_with_a_bad_series_is_refused_whole(api, pipeline_key, project):
    body = run_body(series={"loss": [{"step": 1, "value": 1, "timestamp": "noon"}]})
    response = api(pipeline_key).post(RUNS, body)
    assert response.status_code == 400
    assert "'loss', point 0" in response.json()["errors"]["series"][0]
    assert not TrainingRun.objects.exists() and not SeriesChunk.objects.exists()
