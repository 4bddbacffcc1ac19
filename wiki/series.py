"""Learning curves: the metric series of a training run.

A pipeline posts ``{"loss": [{"step": 1, "value": 0.9, "timestamp": "…Z"}, …], …}``
(timestamp optional). ``parse`` checks it and gives each metric's points as rows
``[step, value, timestamp or None]``; ``canonical`` is the text a SeriesChunk stores and
``digest`` its hash. ``curves`` reads a run's series back for charts, downsampled on the
server by min and max per bucket of steps, so a spike stays visible and the real count is
told beside the points.
"""

import bisect
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Sum
from django.utils import timezone

from wiki.models import SeriesChunk, max_length
from wiki.models.base import CLOCK_SKEW
from wiki.models.records import MAX_OBJECT_ENTRIES, _is_finite_number

MAX_METRICS = MAX_OBJECT_ENTRIES
MAX_STEP = 2**63 - 1  # first_step and last_step are 64-bit integers
MAX_TIMESTAMP_LENGTH = 64
POINT_KEYS = frozenset({"step", "value", "timestamp"})
FIELD = "series"


def _refuse(message):
    raise ValidationError({FIELD: message})


def _timestamp(value, latest):
    """The canonical form of a posted timestamp (UTC, ``…Z``), or a message saying what is
    wrong with it."""
    if not isinstance(value, str) or len(value) > MAX_TIMESTAMP_LENGTH:
        return None, "the timestamp must be an ISO 8601 string with a time zone"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None, "the timestamp must be an ISO 8601 string with a time zone"
    if moment.tzinfo is None:
        return None, "the timestamp needs a time zone (e.g. 'Z' or '+02:00')"
    if moment > latest:
        return None, "the timestamp is in the future; check the pipeline's clock"
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        return None, "the timestamp is out of range"
    return moment.isoformat().replace("+00:00", "Z"), None


def _point(point, latest):
    """``[step, value, timestamp or None]`` of one posted point, or a message."""
    if not isinstance(point, dict):
        return None, 'must be an object {"step": …, "value": …, "timestamp": …}'
    if not POINT_KEYS.issuperset(point):
        unknown = ", ".join(sorted(map(str, set(point) - POINT_KEYS)))
        return None, f"unknown field(s) {unknown} (allowed: step, value, timestamp)"
    step = point.get("step")
    if type(step) is not int or not 0 <= step <= MAX_STEP:
        return None, "the step must be a non-negative integer"
    value = point.get("value")
    if not _is_finite_number(value):
        return None, "the value must be a finite number"
    stamp = point.get("timestamp")
    if stamp is not None:
        stamp, problem = _timestamp(stamp, latest)
        if problem:
            return None, problem
    return [step, float(value), stamp], None


def pieces(series):
    """``series`` (``{metric: [point, …]}``) cut into pieces ``parse`` takes, each of at
    most SERIES_MAX_POINTS points: an import's histories are as long as the run made them,
    a posted call's limit is not theirs."""
    limit, piece, size = settings.SERIES_MAX_POINTS, {}, 0
    for metric, points in series.items():
        for start in range(0, len(points), limit):
            part = points[start : start + limit]
            if size + len(part) > limit:
                yield piece
                piece, size = {}, 0
            piece.setdefault(metric, []).extend(part)
            size += len(part)
    if piece:
        yield piece


def parse(series):
    """The points of each metric of a posted ``series``, checked:
    ``{metric: [[step, value, timestamp or None], …]}`` in the order posted.

    Raises ValidationError (on ``series``) naming the metric and the point that is wrong.
    """
    if not isinstance(series, dict):
        _refuse('Must be an object: {"metric": [{"step": …, "value": …}, …], …}.')
    if not series:
        _refuse("Send at least one metric with at least one point.")
    if len(series) > MAX_METRICS:
        _refuse(f"At most {MAX_METRICS:,} metrics per call.")
    name_limit = max_length(SeriesChunk, "metric")
    total = 0
    for name, points in series.items():
        if (
            not isinstance(name, str)
            or not name.strip()
            or len(name) > name_limit
            or "\x00" in name
        ):
            _refuse(f"Metric names must be 1 to {name_limit} characters (no NUL): {name!r:.60}.")
        if not isinstance(points, list) or not points:
            _refuse(f"'{name}' must be a non-empty list of points.")
        total += len(points)
    limit = settings.SERIES_MAX_POINTS
    if total > limit:
        _refuse(f"At most {limit:,} points per call (all metrics together), not {total:,}.")
    latest = timezone.now() + CLOCK_SKEW
    rows = {}
    for name, points in series.items():
        rows[name] = checked = []
        for index, point in enumerate(points):
            row, problem = _point(point, latest)
            if problem:
                _refuse(f"'{name}', point {index}: {problem}.")
            checked.append(row)
    return rows


def canonical(rows):
    """The text a SeriesChunk stores: compact JSON, the rows in the order posted."""
    return json.dumps(rows, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def digest(text):
    """SHA-256 (hex) of the stored points text, as the history row and the chain keep it."""
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Curve:
    """One metric of a run, for a chart: ``points`` are (step, value) pairs by step; when
    ``downsampled`` they are a selection of the ``total`` points the run carries."""

    metric: str
    points: list
    total: int
    downsampled: bool


def counts(run):
    """{metric: number of points} of ``run``'s series, in one aggregate query."""
    rows = (
        SeriesChunk.objects.filter(training_run=run)
        .values_list("metric")
        .annotate(total=Sum("count"))
        .order_by("metric")
    )
    return dict(rows)


def _steps_and_values(texts):
    """(steps, values) of the points of several stored texts, in one decode.

    The text is ours, ``[[step,value,timestamp|null],…]``, and no canonical timestamp
    holds a bracket: dropping the inner brackets leaves one flat list, read without
    making a Python list per point (the bulk of the time of reading nested JSON).
    """
    inner = ",".join(text[1:-1] for text in texts)
    flat = orjson.loads(f"[{inner.replace('[', '').replace(']', '')}]")
    return flat[0::3], flat[1::3]


def _by_step(steps, values):
    """The points ordered by step (they are already, unless posted out of order)."""
    ordered = sorted(steps)
    if ordered == steps:
        return steps, values
    order = sorted(range(len(steps)), key=steps.__getitem__)
    return ordered, [values[i] for i in order]


def downsample(steps, values, max_points):
    """At most ``max_points`` of the points (steps sorted): the first and the last, and the
    lowest and the highest value of each of (max_points - 2) // 2 buckets of equal width
    in steps, in step order."""
    n = len(steps)
    if n <= max_points:
        return list(zip(steps, values, strict=True))
    buckets = (max_points - 2) // 2
    first, last = steps[0], steps[-1]
    span = last - first + 1
    kept = [0]
    start = 1
    for bucket in range(1, buckets + 1):
        edge = first + span * bucket // buckets
        end = n - 1 if bucket == buckets else bisect.bisect_left(steps, edge, start, n - 1)
        if end > start:
            chunk = values[start:end]
            low = start + chunk.index(min(chunk))
            high = start + chunk.index(max(chunk))
            kept.extend(sorted({low, high}))
            start = end
    kept.append(n - 1)
    return [(steps[i], values[i]) for i in kept]


def curves(run, metrics=None, max_points=500):
    """Each metric of ``run`` (or only those named in ``metrics``) as a Curve, by name, with
    at most ``max_points`` points. One query."""
    chunks = SeriesChunk.objects.filter(training_run=run)
    if metrics is not None:
        chunks = chunks.filter(metric__in=list(metrics))
    texts = {}
    for metric, text in chunks.order_by("metric", "id").values_list("metric", "points"):
        texts.setdefault(metric, []).append(text)
    result = []
    for metric, stored in texts.items():
        steps, values = _by_step(*_steps_and_values(stored))
        result.append(
            Curve(
                metric=metric,
                points=downsample(steps, values, max_points),
                total=len(steps),
                downsampled=len(steps) > max_points,
            )
        )
    return result


def stored(run, metrics=None):
    """(metric, count, points text) of each of ``run``'s chunks, by metric and in the order
    they were appended: every point as posted, read a few chunks at a time."""
    chunks = SeriesChunk.objects.filter(training_run=run)
    if metrics is not None:
        chunks = chunks.filter(metric__in=list(metrics))
    rows = chunks.order_by("metric", "id").values_list("metric", "count", "points")
    return rows.iterator(chunk_size=20)
