"""Audit report exports: a job per report someone asked for."""

from datetime import date

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from wiki.models.base import DomainModel, history
from wiki.models.projects import Project

EARLIEST_REPORT_DAY = date(1970, 1, 1)


class ExportJob(DomainModel):
    """An audit report someone asked for: built by a Celery task (wiki.tasks.build_export)
    into Django's storage. Its history shows who asked, when it was built and each download
    (``downloads``); progress ticks are not revisions (wiki.services.exports)."""

    class Format(models.TextChoices):
        PDF = "pdf", "PDF"
        HTML = "html", "HTML"
        MARKDOWN = "markdown", "Markdown"
        JSON = "json", "JSON bundle"
        ZIP = "zip", "ZIP bundle (JSON bundle and files)"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="exports")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_name = models.CharField(max_length=150, blank=True)
    format = models.CharField(max_length=10, choices=Format.choices)
    since = models.DateField(null=True, blank=True)
    until = models.DateField(null=True, blank=True)
    include_diffs = models.BooleanField(default=False)
    # The moment the report describes (an ``as_of`` of wiki.as_of: deployment:12, a time),
    # null for the documentation as it stands when the report is built. Null is not
    # hashed into the audit chain (wiki.audit.LATER_COLUMNS): the rows sealed before the
    # column existed verify as they were sealed.
    as_of = models.CharField("as of", max_length=200, null=True, blank=True)  # noqa: DJ001
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    file = models.FileField(upload_to="exports/", blank=True)
    size = models.PositiveBigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    downloads = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Moved with every progress tick: a running job whose heartbeat stops lost its worker.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # The outbox (wiki.outbox): when its message is due (null while none is queued), and
    # how many times a worker started it. Bookkeeping, and kept out of the history rows:
    # a new column there would change the digest of every row the audit chain has sealed.
    due_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    history = history(excluded_fields=["progress", "heartbeat_at", "due_at", "attempts"])

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "started_at"])]

    def __str__(self):
        return f"{self.get_format_display()} report #{self.pk} of {self.project}"

    def clean(self):
        for name in ("since", "until"):
            day = getattr(self, name)
            # A report's period is whole UTC days: one past date.max cannot be computed.
            if isinstance(day, date) and not (EARLIEST_REPORT_DAY <= day < date.max):
                raise ValidationError(
                    {name: f"Give a day from {EARLIEST_REPORT_DAY} to 9999-12-30."}
                )
        if self.since and self.until and self.since > self.until:
            raise ValidationError({"until": "The period ends before it starts."})

    @property
    def extension(self):
        return {"markdown": "md"}.get(self.format, self.format)

    @property
    def filename(self):
        return f"{self.project.slug}-audit-report-{self.pk}.{self.extension}"

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None
