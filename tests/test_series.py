"""Learning curves: metric series posted with a run or appended later, read downsampled."""

import hashlib
import json
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from tests.factories import cli_actor, make_training_run
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
