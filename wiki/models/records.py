"""What pipelines post: model versions, training runs and deployments."""

import math
from datetime import UTC, datetime

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import models
from django.utils import timezone

from wiki.models.base import CLOCK_SKEW, DomainModel, history, validate_commit, validate_version
from wiki.models.projects import Project


class ModelVersion(DomainModel):
    """A version of the project's model, created from records or by hand."""

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="model_versions")
    version = models.CharField(max_length=100, validators=[validate_version])
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    history = history()

    class Meta:
        ordering = ["project_id", "-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "version"], name="model_version_unique"),
        ]
        indexes = [models.Index(fields=["project", "created_at"])]

    def __str__(self):
        return self.version


# More entries than this in one hyperparameters, metrics, tags or environment object is a
# pipeline bug (a whole dataset logged as "metrics"), not documentation.
MAX_OBJECT_ENTRIES = 1000


# Names of parameters, metrics and tags, and their text values, past these lengths are
# data, not documentation.
MAX_NAME_LENGTH = 200
MAX_TEXT_VALUE_LENGTH = 10_000


def _require_object(value, name, check, what):
    if not isinstance(value, dict):
        raise ValidationError({name: "Must be an object."})
    if len(value) > MAX_OBJECT_ENTRIES:
        raise ValidationError({name: f"At most {MAX_OBJECT_ENTRIES} entries."})
    for key, item in value.items():
        if len(key) > MAX_NAME_LENGTH:
            raise ValidationError({name: f"Names must be at most {MAX_NAME_LENGTH} characters."})
        if not check(item):
            raise ValidationError({name: f"'{key}' must be {what}."})


def _is_scalar(value):
    if isinstance(value, str):
        return len(value) <= MAX_TEXT_VALUE_LENGTH
    return value is None or isinstance(value, (bool, int, float))


def _is_finite_number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def _is_short_text(value):
    return isinstance(value, str) and len(value) <= MAX_TEXT_VALUE_LENGTH


class Record(DomainModel):
    """What training runs and deployments share: where and when the pipeline ran."""

    git_commit = models.CharField(max_length=64, blank=True, validators=[validate_commit])
    pipeline_url = models.URLField(
        max_length=500, blank=True, validators=[URLValidator(schemes=["http", "https"])]
    )
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True

    def clean(self):
        # Compare only valid datetimes (clean_fields reports the others), naive ones as UTC.
        times = {
            name: t if timezone.is_aware(t) else t.replace(tzinfo=UTC)
            for name, t in (("started_at", self.started_at), ("finished_at", self.finished_at))
            if isinstance(t, datetime)
        }
        latest = timezone.now() + CLOCK_SKEW
        for name, t in times.items():
            if t > latest:
                raise ValidationError({name: "Is in the future; check the pipeline's clock."})
        if len(times) == 2 and times["finished_at"] < times["started_at"]:
            raise ValidationError({"finished_at": "Must not be before started_at."})


class TrainingRun(Record):
    """One training run as posted by a pipeline: inputs, parameters, results."""

    class Status(models.TextChoices):
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="training_runs")
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="training_runs"
    )
    status = models.CharField(max_length=20, choices=Status.choices)
    dataset_name = models.CharField(max_length=200, blank=True)
    dataset_version = models.CharField(max_length=200, blank=True)
    dataset_uri = models.CharField(max_length=500, blank=True)
    hyperparameters = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=dict, blank=True)
    environment = models.JSONField(default=dict, blank=True)
    notes = models.TextField(blank=True)

    history = history()

    class Meta:
        ordering = ["project_id", "-started_at", "-id"]
        # The API pages through a project's runs by (started_at, id); staleness asks what
        # arrived after a page's last edit (created_at).
        indexes = [
            models.Index(fields=["project", "started_at", "id"]),
            models.Index(fields=["project", "created_at"]),
            # Was this dataset version used before? (a data page's staleness)
            models.Index(fields=["project", "dataset_name", "dataset_version", "created_at"]),
        ]

    def __str__(self):
        return f"training run {self.pk} ({self.model_version})"

    @property
    def metric_items(self):
        """(name, value) pairs sorted by name, for display."""
        return sorted(self.metrics.items())

    def clean(self):
        super().clean()
        _require_object(
            self.hyperparameters, "hyperparameters", _is_scalar,
            "a scalar (string, number, boolean or null)",
        )  # fmt: skip
        _require_object(self.metrics, "metrics", _is_finite_number, "a finite number")
        _require_object(
            self.tags, "tags", _is_short_text, "a string (of at most 10,000 characters)"
        )
        _require_object(self.environment, "environment", lambda v: True, "")


class Deployment(Record):
    """One deployment of a model version to an environment, with its checks."""

    class Status(models.TextChoices):
        PENDING = "pending"
        IN_PROGRESS = "in_progress"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        ROLLED_BACK = "rolled_back"

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="deployments")
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="deployments"
    )
    environment = models.CharField(max_length=50)
    target = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices)
    config = models.JSONField(default=dict, blank=True)
    reason = models.TextField(blank=True)
    checks = models.JSONField(default=list, blank=True)
    # Moved by every change (a deployment moves forward after it is posted): pages that
    # describe deployments are stale when one changed since their last edit. Kept out of
    # the history rows, whose every column the audit chain has sealed.
    updated_at = models.DateTimeField(auto_now=True)

    history = history(excluded_fields=["updated_at"])

    class Meta:
        ordering = ["project_id", "-started_at", "-id"]
        indexes = [
            models.Index(fields=["project", "started_at", "id"]),
            models.Index(fields=["project", "updated_at"]),
        ]

    def __str__(self):
        return f"{self.model_version} to {self.environment}"

    FINISHED = {Status.SUCCEEDED, Status.FAILED, Status.ROLLED_BACK}
    MAX_CHECKS = 1000

    def clean(self):
        super().clean()
        _require_object(self.config, "config", lambda v: True, "")
        if self.finished_at and self.status not in self.FINISHED:
            raise ValidationError(
                {"finished_at": f"A deployment that is {self.status} has not finished."}
            )
        if not isinstance(self.checks, list):
            raise ValidationError({"checks": "Must be a list of check results."})
        if len(self.checks) > self.MAX_CHECKS:
            raise ValidationError({"checks": f"At most {self.MAX_CHECKS} checks."})
        for number, check in enumerate(self.checks):
            if (
                not isinstance(check, dict)
                or not isinstance(check.get("name"), str)
                or not 0 < len(check["name"].strip()) <= MAX_NAME_LENGTH
                or not isinstance(check.get("passed"), bool)
                or not set(check) <= {"name", "passed", "value", "details"}
                or not _is_short_text(check.get("details", ""))
            ):
                raise ValidationError(
                    {
                        "checks": f"Check {number} (counting from 0) needs a 'name' (1 to "
                        f"{MAX_NAME_LENGTH} characters) and a boolean 'passed', and may have a "
                        "'value' and 'details' (text)."
                    }
                )


def _as_float(value):
    """A number as a float, or None if it has none (NaN, infinity, an int past 1e308)."""
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


class RunValue(models.Model):
    """A final metric or a hyperparameter of a training run as a row of its own, written
    with the run (runs are append-only): what the runs table filters and sorts on through
    an index, whatever the metric's or parameter's name. Derived, so no history."""

    class Kind(models.TextChoices):
        METRIC = "m", "metric"
        PARAM = "p", "parameter"

    # Written only with their run, in its transaction (wiki.ingest), and never changed: the
    # foreign keys need no constraint in the database, whose checks (two per row, thirty
    # rows a run) cost as much as writing the rows; the project needs no index of its own,
    # every index below starts with it (bench/README.md, issue 13).
    project = models.ForeignKey(
        Project, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    training_run = models.ForeignKey(
        TrainingRun, on_delete=models.CASCADE, related_name="values", db_constraint=False
    )
    kind = models.CharField(max_length=1, choices=Kind.choices)
    name = models.CharField(max_length=MAX_NAME_LENGTH)
    # Metrics always; parameters when they are numbers (booleans are text).
    number = models.FloatField(null=True, blank=True)
    # Parameters as text (cut to TEXT_LENGTH), for equality filters and display order.
    text = models.CharField(max_length=200, blank=True)

    TEXT_LENGTH = 200

    class Meta:
        indexes = [
            models.Index(fields=["project", "kind", "name", "number", "training_run"]),
            models.Index(fields=["project", "kind", "name", "text", "training_run"]),
        ]

    def __str__(self):
        return f"{self.name} of run {self.training_run_id}"

    COLUMNS = ("project_id", "training_run_id", "kind", "name", "number", "text")

    @classmethod
    def rows(cls, run):
        """The rows of ``run``'s metrics and hyperparameters, as tuples of COLUMNS (no
        model instance each: thousands are written at once, wiki.ingest)."""
        key = (run.project_id, run.pk)
        metric, param = cls.Kind.METRIC.value, cls.Kind.PARAM.value
        rows = [(*key, metric, name, float(value), "") for name, value in run.metrics.items()]
        for name, value in run.hyperparameters.items():
            number = None
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                number = _as_float(value)
            if isinstance(value, bool) or value is None:
                text = {True: "true", False: "false", None: "null"}[value]
            else:
                text = str(value)
            rows.append((*key, param, name, number, text[: cls.TEXT_LENGTH]))
        return rows
