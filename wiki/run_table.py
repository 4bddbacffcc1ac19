"""The runs table's query: a project's training runs filtered by status, model version,
dataset version, a tag and metric conditions, sorted by start time or by a metric or
parameter, a page at a time through keyset cursors.

Metric and parameter filters and sort keys are read from RunValue rows through their
(project, kind, name, number | text, training_run) indexes, so a page costs a few index
walks whether the project has a hundred runs or a hundred thousand: no OFFSET. Runs that
lack the sort key come after those that have it, newest first; the table is then two
segments read in turn, each in a keyset order that ends with the run's id.
"""

import math
import re
from dataclasses import dataclass, field
from datetime import datetime

from django.core import signing
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import (
    Count,
    Exists,
    F,
    FilteredRelation,
    OuterRef,
    Q,
    Subquery,
    TextField,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

from wiki.models import RunValue, TrainingRun
from wiki.models.records import MAX_NAME_LENGTH

PAGE_SIZE = 50
MAX_CONDITIONS = 10
MAX_COLUMNS = 20
# The runs whose metrics and parameters name the columns one may choose (and the default
# ones): the latest, which say what the pipelines post now; reading every run's names
# would cost a scan of all the values.
NAMES_SAMPLE = 200

OPERATORS = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte", "=": "exact"}
# Longest operators first, so that "auc >= 1" is not read as "auc >" and "= 1".
_CONDITION = re.compile(r"^(?P<name>[^<>=]+?)\s*(?P<op>==|>=|<=|>|<|=)\s*(?P<value>.*?)\s*$")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_SEPARATOR = re.compile(r",|;|\n|\s+and\s+", re.IGNORECASE)
_SORT = re.compile(r"^(?:started_at|(?P<kind>metric|param):(?P<name>.+))$", re.DOTALL)
_KINDS = {"metric": RunValue.Kind.METRIC, "param": RunValue.Kind.PARAM}


@dataclass(frozen=True)
class Condition:
    """``name op value`` on a run's final metric, as in ``auc > 0.8``."""

    name: str
    op: str
    value: float

    def __str__(self):
        return f"{self.name} {self.op} {self.value:g}"


def parse_conditions(text):
    """The metric conditions in ``text`` ("auc > 0.8, loss <= 0.3"; also separated by
    ";", new lines or "and"); ValidationError naming the one that is wrong."""
    conditions = []
    parts = [part.strip() for part in _SEPARATOR.split(text or "")]
    for part in filter(None, parts):
        match = _CONDITION.match(part)
        if match is None:
            raise ValidationError(
                f"“{part}” is not a condition: write a metric name, an operator "
                f"({' '.join(OPERATORS)}) and a number, as in “auc > 0.8”."
            )
        name, op, value = match["name"].strip(), match["op"], match["value"]
        op = "=" if op == "==" else op  # as a programmer would write it
        if len(name) > MAX_NAME_LENGTH:
            raise ValidationError(f"Metric names have at most {MAX_NAME_LENGTH} characters.")
        if not _NUMBER.match(value) or not math.isfinite(float(value)):
            raise ValidationError(
                f"In “{part}”, “{value}” is not a number: compare with a number such as 0.8."
            )
        conditions.append(Condition(name, op, float(value)))
    if len(conditions) > MAX_CONDITIONS:
        raise ValidationError(f"At most {MAX_CONDITIONS} conditions, please.")
    return conditions


def parse_tag(text):
    """(name, value) of a "name=value" tag filter, or None for no filter."""
    text = (text or "").strip()
    if not text:
        return None
    name, equals, value = text.partition("=")
    if not equals or not name.strip():
        raise ValidationError("Write the tag as name=value, as in team=risk.")
    return name.strip(), value.strip()


@dataclass(frozen=True)
class Sort:
    """What the table is sorted by: start time (kind None), or a metric ("m") or
    parameter ("p") called ``name``."""

    kind: str | None = None
    name: str = ""
    descending: bool = True

    @classmethod
    def parse(cls, text, order):
        """The sort "started_at", "metric:NAME" or "param:NAME", in ``order`` ("asc" or
        "desc", the default)."""
        match = _SORT.match(text or "started_at")
        if match is None or len(match["name"] or "") > MAX_NAME_LENGTH:
            raise ValidationError(
                "Sort by started_at, metric:NAME or param:NAME (names of at most "
                f"{MAX_NAME_LENGTH} characters)."
            )
        kind = _KINDS[match["kind"]] if match["kind"] else None
        return cls(kind, match["name"] or "", order != "asc")

    def __str__(self):
        what = {None: "started_at", "m": "metric:", "p": "param:"}[self.kind] + self.name
        return f"{what} {'desc' if self.descending else 'asc'}"


@dataclass
class Filters:
    """What the runs shown must match; empty values match every run."""

    status: str = ""
    model_version: str = ""
    dataset_version: str = ""
    tag: tuple | None = None
    conditions: list = field(default_factory=list)


def filtered_runs(project, filters):
    """(The project's runs that match ``filters``, unordered, but for its selective metric
    conditions; the ids of the runs that meet those, or None when none is selective)."""
    runs = TrainingRun.objects.filter(project=project).select_related("model_version")
    if filters.status:
        runs = runs.filter(status=filters.status)
    if filters.model_version:
        runs = runs.filter(model_version__version=filters.model_version)
    if filters.dataset_version:
        runs = runs.filter(dataset_version=filters.dataset_version)
    if filters.tag:
        name, value = filters.tag
        # As text: compared as it is, where a JSON key lookup would read the value as JSON.
        tag = Cast(KeyTextTransform(name, "tags"), TextField())
        runs = runs.alias(tag_value=tag).filter(tag_value=value)
    candidates = None
    for number, condition in enumerate(filters.conditions):
        runs, ids = _with_condition(project, runs, number, condition)
        if ids is not None:
            candidates = ids if candidates is None else candidates & ids
    return runs, candidates


def _selective():
    """Fewer runs than this meeting a metric condition make it selective: those runs are
    listed first (their ids go into the queries, twice), and only they are sorted.
    Otherwise each run is checked in the sort order until the page is full. PostgreSQL,
    left to choose, misjudges how many runs a condition selects (a value's kind, name and
    number are correlated) and may read every value of two metrics, or probe every run."""
    limit = connection.features.max_query_params  # SQLite's, as Django knows it
    return 20_000 if limit is None else (limit - 100) // 2


def _with_condition(project, runs, number, condition):
    """(``runs`` that meet the metric ``condition``, or ``runs`` as they are when the
    ids of all the runs that meet it are returned instead; those ids or None)."""
    lookup = {f"number__{OPERATORS[condition.op]}": condition.value}
    metric = {"kind": RunValue.Kind.METRIC, "name": condition.name}
    meeting = RunValue.objects.filter(project=project, **metric, **lookup)
    selective = _selective()
    ids = list(meeting.values_list("training_run", flat=True)[:selective])
    if len(ids) < selective:
        return runs, set(ids)
    # The run's value as a subquery per run, which the database cannot turn into a join.
    value = RunValue.objects.filter(training_run=OuterRef("pk"), **metric).values("number")
    alias = f"condition_{number}"
    runs = runs.alias(**{alias: Subquery(value[:1])}).filter(
        **{f"{alias}__{OPERATORS[condition.op]}": condition.value}
    )
    return runs, None


@dataclass(frozen=True)
class _Segment:
    """Runs read in the keyset order (key, id), both descending or both ascending."""

    index: int
    runs: object
    key: str
    descending: bool
    # When it returns True, the segment is empty and not read.
    skip: object = None

    def read(self, position, backward):
        """The runs after ``position`` ((key, id); None: from the start), or before it
        read backwards."""
        down = self.descending != backward
        runs = self.runs
        if position is not None:
            value, pk = position
            before, strictly = ("lte", "lt") if down else ("gte", "gt")
            # key <= v AND (key < v OR id < pk): the first half is an index range, so the
            # database walks the index from the cursor on rather than filtering it all.
            runs = runs.filter(
                Q(**{f"{self.key}__{before}": value})
                & (Q(**{f"{self.key}__{strictly}": value}) | Q(**{f"pk__{strictly}": pk}))
            )
        order = [F(self.key).desc(), F("pk").desc()] if down else [F(self.key).asc(), "pk"]
        return runs.order_by(*order)

    def cursor(self, sort, run, backward):
        """An opaque cursor at ``run``, for reading on (or back, if ``backward``)."""
        value = getattr(run, self.key)
        if isinstance(value, datetime):
            value = value.isoformat()
        data = {"s": str(sort), "g": self.index, "v": value, "i": run.pk, "b": backward}
        return signing.dumps(data, salt=_SALT)

    def position(self, data):
        """(key, id) of a cursor's data."""
        value = data["v"]
        if self.key == "started_at":
            value = datetime.fromisoformat(value)
        return value, int(data["i"])


_SALT = "wiki.run_table.cursor"


def _segments(project, runs, candidates, sort):
    # The runs a selective condition listed: picked by id from the runs when they are
    # read in start order; when sorted by a value, its index rows are filtered by them,
    # before any run is read.
    among = runs if candidates is None else runs.filter(pk__in=sorted(candidates))
    if sort.kind is None:
        return [_Segment(0, among, "started_at", sort.descending)]
    column = "number"
    if sort.kind == RunValue.Kind.PARAM and not _has_numbers(project, sort.name):
        column = "text"  # a parameter that is never a number sorts as text
    values = {"project": project, "kind": sort.kind, "name": sort.name, f"{column}__isnull": False}
    keyed = runs.annotate(
        sort_row=FilteredRelation(
            "values", condition=Q(**{f"values__{k}": v for k, v in values.items()})
        ),
        sort_key=F(f"sort_row__{column}"),
    ).filter(sort_key__isnull=False)
    if candidates is not None:
        keyed = keyed.annotate(sort_run=F("sort_row__training_run")).filter(
            sort_run__in=sorted(candidates)
        )
    with_key = RunValue.objects.filter(**values)
    lacking = among.filter(~Exists(with_key.filter(training_run=OuterRef("pk"))))
    return [
        _Segment(0, keyed, "sort_key", sort.descending),
        _Segment(1, lacking, "started_at", True, skip=lambda: _all_have(project, with_key)),
    ]


def _all_have(project, with_key):
    """Whether every run of the project has the sort key: then the runs lacking it need no
    search, which would probe every run for its value when none is found (a run has at
    most one value of each name, so counting both compares them)."""
    return with_key.count() == TrainingRun.objects.filter(project=project).count()


def _has_numbers(project, name):
    return RunValue.objects.filter(
        project=project, kind=RunValue.Kind.PARAM, name=name, number__isnull=False
    ).exists()


@dataclass
class Page:
    """One page of runs and the cursors of its neighbours (None where there is none)."""

    runs: list
    next_cursor: str | None
    previous_cursor: str | None


def _start(segments, cursor, sort):
    """(segment, (key, id), backward) where ``cursor`` points."""
    try:
        data = signing.loads(cursor, salt=_SALT)
        if data["s"] != str(sort) or data["g"] not in range(len(segments)):
            raise ValueError("made for another table")
        segment = segments[data["g"]]
        return segment.index, segment.position(data), bool(data["b"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise ValidationError(
            "This page link (cursor) is not valid for this table; start from the first page."
        ) from None


def page(project, filters, sort, cursor=None):
    """The page of runs that ``cursor`` points to (the first page without one)."""
    segments = _segments(project, *filtered_runs(project, filters), sort)
    start, position, backward = _start(segments, cursor, sort) if cursor else (0, None, False)
    # One more than a page says whether there is another page beyond.
    wanted, found = PAGE_SIZE + 1, []
    for index in range(start, -1, -1) if backward else range(start, len(segments)):
        if segments[index].skip and segments[index].skip():
            position = None
            continue
        found += [
            (segments[index], run)
            for run in segments[index].read(position, backward)[: wanted - len(found)]
        ]
        if len(found) == wanted:
            break
        position = None  # the next segment is read from its start
    more = len(found) > PAGE_SIZE
    found = found[:PAGE_SIZE]
    if backward:
        found.reverse()
    # Runs are never deleted: the page one came from is still there.
    has_next = more if not backward else True
    has_previous = more if backward else bool(cursor)
    first, last = (found[0], found[-1]) if found else (None, None)
    return Page(
        runs=[run for _, run in found],
        next_cursor=last[0].cursor(sort, last[1], False) if last and has_next else None,
        previous_cursor=first[0].cursor(sort, first[1], True) if first and has_previous else None,
    )


def known_names(project):
    """{kind: [(name, share of the latest runs that have it), ...]} of the metrics ("m")
    and parameters ("p") the latest runs have, most common first."""
    latest = TrainingRun.objects.filter(project=project).order_by("-started_at", "-id")
    sample = latest.values("pk")[:NAMES_SAMPLE]
    counts = (
        RunValue.objects.filter(training_run__in=sample)
        .values_list("kind", "name")
        .annotate(runs=Count("id"))
        .order_by("-runs", "name")
    )
    total = sample.count()
    names = {RunValue.Kind.METRIC: [], RunValue.Kind.PARAM: []}
    for kind, name, runs in counts:
        names[kind].append((name, runs / total))
    return names


def default_metrics(names, limit=6):
    """The metric columns shown when none are chosen: those most of the latest runs have."""
    return [name for name, share in names[RunValue.Kind.METRIC] if share >= 0.5][:limit]
