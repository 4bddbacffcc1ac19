"""Files attached to pages and records, and the metric series of training runs.

Both keep their content outside the history rows and their SHA-256 inside them, so the
audit chain seals the bytes without copying them into every revision.
"""

from django.db import models
from django.db.models import Q

from wiki.models.base import DomainModel, history
from wiki.models.pages import Page
from wiki.models.projects import Project
from wiki.models.records import Deployment, ModelVersion, TrainingRun

# What an attachment can belong to: the name of its foreign key, and the model.
TARGETS = {
    "page": Page,
    "training_run": TrainingRun,
    "deployment": Deployment,
    "model_version": ModelVersion,
}


def _exactly_one_target():
    # One of the four foreign keys is set, the others are null.
    options = [
        Q(
            **{f"{name}__isnull": False},
            **{f"{other}__isnull": True for other in TARGETS if other != name},
        )
        for name in TARGETS
    ]
    condition = options[0]
    for option in options[1:]:
        condition |= option
    return condition


class Attachment(DomainModel):
    """A named file of a page or a record, as it is now; its history rows are its
    versions. The bytes are in Django's storage under their SHA-256 (``storage_name()``),
    never overwritten or deleted: replacing or deleting the attachment is a new revision,
    and every version stays readable."""

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="attachments")
    page = models.ForeignKey(
        Page, null=True, blank=True, on_delete=models.PROTECT, related_name="attachments"
    )
    training_run = models.ForeignKey(
        TrainingRun, null=True, blank=True, on_delete=models.PROTECT, related_name="attachments"
    )
    deployment = models.ForeignKey(
        Deployment, null=True, blank=True, on_delete=models.PROTECT, related_name="attachments"
    )
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="attachments"
    )
    # Cleaned (wiki.attachments.clean_name): what `attachment:<name>` in Markdown names.
    name = models.CharField(max_length=100)
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    # Decided from the content (wiki.attachments.sniff), never from the name or the client.
    content_type = models.CharField(max_length=100)
    # 1 for the first upload under the name, +1 for each replacement, deletion or return.
    revision = models.PositiveIntegerField(default=1)
    # A deleted attachment leaves lists and Markdown; its versions stay in the history.
    deleted = models.BooleanField(default=False)
    uploaded_by_name = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = history()

    class Meta:
        ordering = ["project_id", "name"]
        constraints = [
            models.CheckConstraint(condition=_exactly_one_target(), name="attachment_one_target"),
            *(
                models.UniqueConstraint(
                    fields=[target, "name"],
                    condition=Q(**{f"{target}__isnull": False}),
                    name=f"attachment_unique_{target}_name",
                )
                for target in TARGETS
            ),
        ]
        indexes = [models.Index(fields=["project", "sha256"])]

    def __str__(self):
        return self.name

    @property
    def is_image(self):
        return self.content_type.startswith("image/")


def storage_name(sha256):
    """Where the bytes with this SHA-256 are in Django's storage."""
    return f"attachments/{sha256[:2]}/{sha256}"


class SeriesChunk(DomainModel):
    """The points of one metric a training run posted in one call: ``points`` holds them
    as canonical JSON, ``[[step, value, timestamp or null], …]`` in the order posted, and
    ``sha256`` its hash. The history rows leave the points out and keep the hash (the
    chain seals them without copying a run's curves into the history)."""

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="+")
    training_run = models.ForeignKey(
        TrainingRun, on_delete=models.PROTECT, related_name="series_chunks"
    )
    metric = models.CharField(max_length=200)
    points = models.TextField()
    count = models.PositiveIntegerField()
    first_step = models.BigIntegerField()
    last_step = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    history = history(excluded_fields=["points"])

    class Meta:
        ordering = ["training_run_id", "metric", "id"]
        indexes = [models.Index(fields=["training_run", "metric", "id"])]

    def __str__(self):
        return f"{self.metric} ({self.count} points)"
