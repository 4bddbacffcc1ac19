"""What the bridge to MLflow keeps (wiki.services.mlflow): which record each MLflow run
became, and each project's sync."""

from django.core.validators import URLValidator
from django.db import models

from wiki.models.base import DomainModel, history
from wiki.models.projects import Project
from wiki.models.records import TrainingRun


class MlflowRun(models.Model):
    """The training run an MLflow run was imported as, and a digest of what the run said
    then: an import compares it to tell a run that changed (a new revision of the record)
    from one that did not (nothing written). Bookkeeping of the import, like an
    Idempotency-Key: the record's own history says what was imported, from where."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    tracking_uri = models.CharField(max_length=500)
    run_id = models.CharField(max_length=64)
    experiment_id = models.CharField(max_length=64)
    training_run = models.OneToOneField(
        TrainingRun, on_delete=models.CASCADE, related_name="mlflow_run"
    )
    digest = models.CharField(max_length=64)
    # Whether the run's image artifacts are attached: set once they are (a crash between
    # the record and its files leaves it false, and the next import attaches them).
    artifacts_done = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "tracking_uri", "run_id"], name="mlflow_run_unique"
            )
        ]

    def __str__(self):
        return f"MLflow run {self.run_id}"


class MlflowSync(DomainModel):
    """A project's sync from an MLflow tracking server, configured in the browser and run
    by Celery (beat queues it when due; "Sync now" at once). The configuration keeps its
    history; the run's state (status, progress, report) changes too often to."""

    class Status(models.TextChoices):
        IDLE = "idle"
        QUEUED = "queued"
        RUNNING = "running"

    class Every(models.IntegerChoices):
        MANUAL = 0, "Only when asked (Sync now)"
        HOUR = 1, "Every hour"
        SIX_HOURS = 6, "Every 6 hours"
        DAY = 24, "Every day"

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="mlflow_sync")
    tracking_uri = models.CharField(
        max_length=500, validators=[URLValidator(schemes=["http", "https"])]
    )
    experiments = models.JSONField(default=list, blank=True)
    registered_models = models.JSONField(default=list, blank=True)
    every_hours = models.PositiveSmallIntegerField(choices=Every.choices, default=Every.DAY)
    attach_images = models.BooleanField(default=True)
    # State: changed by every sync, so not in the history.
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.IDLE)
    due_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Moved with each page of runs: a sync whose heartbeat stopped lost its worker.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    processed = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    report = models.JSONField(default=dict, blank=True)

    STATE = [
        "status", "due_at", "queued_at", "started_at", "finished_at", "heartbeat_at",
        "processed", "total", "last_error", "report",
    ]  # fmt: skip
    history = history(excluded_fields=STATE)

    class Meta:
        indexes = [models.Index(fields=["status", "due_at"])]

    def __str__(self):
        return f"MLflow sync of {self.project}"

    @property
    def percent(self):
        return round(100 * self.processed / self.total) if self.total else 0
