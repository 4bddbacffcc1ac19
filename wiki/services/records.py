"""Recording what pipelines did: model versions, training runs and deployments."""

from django.core.exceptions import ValidationError
from django.db import transaction

from wiki.history import recording
from wiki.models import Deployment, ModelVersion, TrainingRun

RUN_FIELDS = {
    "status", "started_at", "finished_at", "git_commit", "pipeline_url", "dataset_name",
    "dataset_version", "dataset_uri", "hyperparameters", "metrics", "tags", "environment",
    "notes",
}  # fmt: skip
DEPLOYMENT_FIELDS = {
    "environment", "target", "status", "config", "git_commit", "pipeline_url", "reason",
    "started_at", "finished_at", "checks",
}  # fmt: skip


def _model_version(project, version):
    """The project's model version called ``version``, created if new (inside a transaction)."""
    if not isinstance(version, str) or not version.strip():
        raise ValidationError(
            {"model_version": "A model version (a non-empty string) is required."}
        )
    version = version.strip()
    if "\x00" in version:
        raise ValidationError({"model_version": "Must not contain NUL (\\x00) characters."})
    if len(version) > ModelVersion._meta.get_field("version").max_length:
        raise ValidationError({"model_version": "The model version is too long."})
    # get_or_create copes with a concurrent insert of the same version (unique constraint).
    return ModelVersion.objects.get_or_create(project=project, version=version)[0]


def _check_keys(attrs, allowed):
    unknown = sorted(set(attrs) - allowed)
    if unknown:
        raise ValidationError({name: "Unknown field." for name in unknown})


def _record(model, allowed, project, actor, model_version, change_reason, attrs):
    _check_keys(attrs, allowed)
    record = model(project=project, **attrs)
    with transaction.atomic(), recording(actor, change_reason):
        record.model_version = _model_version(project, model_version)
        record.full_clean()
        record.save()
    return record


def record_training_run(project, *, actor, model_version, change_reason="", **attrs):
    """Store a training run posted by a pipeline (creating its model version if new)."""
    reason = change_reason or "Recorded training run"
    return _record(TrainingRun, RUN_FIELDS, project, actor, model_version, reason, attrs)


def record_deployment(project, *, actor, model_version, change_reason="", **attrs):
    """Store a deployment posted by a pipeline (creating its model version if new)."""
    reason = change_reason or "Recorded deployment"
    return _record(Deployment, DEPLOYMENT_FIELDS, project, actor, model_version, reason, attrs)
