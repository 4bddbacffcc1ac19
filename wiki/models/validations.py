"""Independent validation: a validator's review of pinned revisions of a project's
documentation, the findings it files, and the comments on them (wiki.services.validations
writes them all)."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from wiki.models.base import DomainModel, history
from wiki.models.pages import Page
from wiki.models.projects import Project


class Validation(DomainModel):
    """One independent validation of a project: what was validated (the pinned page
    revisions), by whom, and its signed conclusion once it has one."""

    class Outcome(models.TextChoices):
        APPROVED = "approved"
        APPROVED_WITH_CONDITIONS = "approved_with_conditions", "Approved with conditions"
        REJECTED = "rejected"

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="validations")
    # 1, 2, … per project: how people and URLs name a validation.
    number = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    scope = models.TextField(blank=True)
    # The revisions validated: [{"page": slug, "revision": n}, …], fixed when it opens.
    pinned = models.JSONField(default=list, blank=True)
    validator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip
    validator_name = models.CharField(max_length=150, blank=True)
    opened_at = models.DateTimeField(default=timezone.now)
    # "" while open.
    outcome = models.CharField(max_length=30, blank=True, choices=Outcome.choices)
    conclusion = models.TextField(blank=True)
    concluded_at = models.DateTimeField(null=True, blank=True)
    # Who signed the conclusion (any validator of the project may, not only who opened it).
    concluded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip
    concluded_by_name = models.CharField(max_length=150, blank=True)

    history = history()

    class Meta:
        ordering = ["project_id", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="validation_unique_number"),
        ]

    def __str__(self):
        return f"validation {self.number} of {self.project.slug}"

    @property
    def is_open(self):
        return not self.outcome


class FindingQuerySet(models.QuerySet):
    def unresolved(self):
        """Findings still waiting on someone: open or with a remediation proposed."""
        return self.filter(status__in=Finding.UNRESOLVED)

    def overdue(self, today=None):
        """Unresolved findings whose due date has passed."""
        return self.unresolved().filter(due_date__lt=today or timezone.localdate())


class Finding(DomainModel):
    """A problem a validator found in a project's documentation or records, and its
    remediation: open → remediation proposed → closed by a validator, or accepted as a
    risk by a maintainer with a justification."""

    class Severity(models.TextChoices):
        HIGH = "high"
        MEDIUM = "medium"
        LOW = "low"

    class Status(models.TextChoices):
        OPEN = "open"
        REMEDIATION_PROPOSED = "remediation_proposed", "Remediation proposed"
        CLOSED = "closed"
        ACCEPTED_RISK = "accepted_risk", "Accepted risk"

    UNRESOLVED = (Status.OPEN, Status.REMEDIATION_PROPOSED)

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="findings")
    validation = models.ForeignKey(Validation, on_delete=models.PROTECT, related_name="findings")
    # 1, 2, … per project (not per validation): "finding 7" is unambiguous in a project.
    number = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    description = models.TextField()
    severity = models.CharField(max_length=10, choices=Severity.choices)
    # What it is about: a page (and a field of it, and a revision of it), or a record
    # ("deployment:12", "training_run:3", "model_version:2.1.0"), or both.
    page = models.ForeignKey(
        Page, null=True, blank=True, on_delete=models.PROTECT, related_name="findings"
    )
    field = models.CharField(max_length=100, blank=True)
    # The page revision it is about ("revision" below is the finding's own).
    page_revision = models.PositiveIntegerField(null=True, blank=True)
    record = models.CharField(max_length=120, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip
    owner_name = models.CharField(max_length=150, blank=True)
    due_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=30, choices=Status.choices, default=Status.OPEN)
    # The owner's proposal, Markdown.
    remediation = models.TextField(blank=True)
    risk_justification = models.TextField(blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip
    accepted_by_name = models.CharField(max_length=150, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip
    closed_by_name = models.CharField(max_length=150, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip
    created_by_name = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # Closed or accepted as a risk.
    closed_at = models.DateTimeField(null=True, blank=True)
    # Incremented by every change: clients send it back (If-Match) so a stale change is
    # refused instead of overwriting another's.
    revision = models.PositiveIntegerField(default=1)

    history = history()
    objects = FindingQuerySet.as_manager()

    class Meta:
        ordering = ["project_id", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="finding_unique_number"),
        ]
        indexes = [
            models.Index(fields=["project", "status"]),
            # Overdue findings over every project (dashboard, digest).
            models.Index(
                fields=["due_date"],
                condition=Q(status__in=["open", "remediation_proposed"]),
                name="finding_unresolved_due",
            ),
        ]

    def __str__(self):
        return f"finding {self.number} of {self.project.slug}: {self.title}"

    @property
    def record_target(self):
        """The record it is about as (kind, key): ("deployment", "12"); ("", "") for none."""
        kind, _, key = self.record.partition(":")
        return kind, key

    @property
    def is_unresolved(self):
        return self.status in self.UNRESOLVED

    @property
    def is_overdue(self):
        return (
            self.is_unresolved
            and self.due_date is not None
            and self.due_date < timezone.localdate()
        )


class FindingComment(DomainModel):
    """A comment on a finding, by anyone of the project who may see it (a validator
    sending a finding back to its owner writes one too)."""

    # The finding's project: the comment's history is sealed in the project's chain.
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="+")
    finding = models.ForeignKey(Finding, on_delete=models.PROTECT, related_name="comments")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip
    author_name = models.CharField(max_length=150, blank=True)
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    history = history()

    class Meta:
        ordering = ["finding_id", "created_at", "id"]

    def __str__(self):
        return f"comment by {self.author_name} on finding {self.finding.number}"
