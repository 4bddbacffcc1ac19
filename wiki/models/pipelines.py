"""The pipeline a project's workflow page draws."""

from django.db import models

from wiki.models.base import DomainModel, history
from wiki.models.projects import Project


class Pipeline(DomainModel):
    """The project's pipeline as last posted: its normalized DAG (wiki.pipelines). Each
    post that changed it is a revision, in the history and the audit chain."""

    class Source(models.TextChoices):
        KFP = "kfp", "Kubeflow Pipelines"
        GENERIC = "generic", "Generic DAG"

    project = models.OneToOneField(Project, on_delete=models.PROTECT, related_name="pipeline")
    name = models.CharField(max_length=200)
    source = models.CharField(max_length=10, choices=Source.choices)
    dag = models.JSONField()
    # SHA-256 of the DAG's canonical JSON: a post of the same DAG writes nothing.
    digest = models.CharField(max_length=64)
    revision = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    # Saved only when the DAG changes: the workflow page is stale when this is later
    # than its last edit (wiki.health).
    updated_at = models.DateTimeField(auto_now=True)

    history = history()

    def __str__(self):
        return f"pipeline {self.name}"
