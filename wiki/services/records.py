"""Recording what pipelines did: model versions, training runs and deployments."""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from wiki import metrics
from wiki import series as curves
from wiki.history import recording
from wiki.models import (
    Deployment,
    ModelVersion,
    Project,
    RunValue,
    TrainingRun,
    validate_version,
)
from wiki.services import notifications
from wiki.services import series as series_service

RUN_FIELDS = {
    "status", "started_at", "finished_at", "git_commit", "pipeline_url", "dataset_name",
    "dataset_version", "dataset_uri", "hyperparameters", "metrics", "tags", "environment",
    "notes",
}  # fmt: skip
DEPLOYMENT_FIELDS = {
    "environment", "target", "status", "config", "git_commit", "pipeline_url", "reason",
    "started_at", "finished_at", "checks",
}  # fmt: skip


def _version_name(version):
    """The model version string, checked."""
    if not isinstance(version, str) or not version.strip():
        raise ValidationError(
            {"model_version": "A model version (a non-empty string) is required."}
        )
    version = version.strip()
    if len(version) > ModelVersion._meta.get_field("version").max_length:
        raise ValidationError({"model_version": "The model version is too long."})
    try:
        validate_version(version)
    except ValidationError as error:
        raise ValidationError({"model_version": error.messages}) from None
    return version


def _check_keys(attrs, allowed):
    unknown = sorted(set(attrs) - allowed)
    if unknown:
        raise ValidationError({name: "Unknown field." for name in unknown})


def _record(model, allowed, project, actor, model_version, change_reason, attrs, then=None):
    """Validate and store a record; ``then(record)`` runs in its transaction, once saved."""
    _check_keys(attrs, allowed)
    version = _version_name(model_version)
    record = model(project=project, **attrs)
    # Everything is checked before the transaction: the project is in hand and the model
    # version is found or made below, so neither foreign key needs a query here.
    record.full_clean(exclude=["project", "model_version"])
    # No savepoint: nothing in the block can fail but the database itself, and a caller's
    # transaction (the API's exactly-once write) rolls back whole anyway. Two round trips
    # fewer per record.
    with recording(actor, change_reason), transaction.atomic(savepoint=False):
        # get_or_create copes with a concurrent insert of the same version (its own
        # savepoint and the unique constraint).
        record.model_version = ModelVersion.objects.get_or_create(project=project, version=version)[
            0
        ]
        record.save()
        if then is not None:
            then(record)
        Project.records_changed(project.pk)
        kind = model._meta.verbose_name.replace(" ", "_")
        transaction.on_commit(lambda: metrics.RECORDS_INGESTED.labels(kind, project.slug).inc())
    return record


def record_training_run(project, *, actor, model_version, change_reason="", series=None, **attrs):
    """Store a training run posted by a pipeline (creating its model version if new), with
    its metric series if given (wiki.series; checked first, written in the run's
    transaction: a bad series refuses the whole run)."""
    reason = change_reason or "Recorded training run"
    rows = curves.parse(series) if series is not None else {}

    def then(run):
        _index_values(run)
        if rows:
            series_service.store(run, rows)

    return _record(
        TrainingRun, RUN_FIELDS, project, actor, model_version, reason, attrs, then=then
    )  # fmt: skip


def _index_values(run):
    """The run's metrics and parameters as rows the runs table filters and sorts on."""
    RunValue.objects.bulk_create(RunValue.of(run))


def record_deployment(project, *, actor, model_version, change_reason="", **attrs):
    """Store a deployment posted by a pipeline (creating its model version if new).

    It may be recorded as it starts (pending, in_progress) or once it ended (succeeded,
    failed); a rollback is a change of a deployment that succeeded, never a new record.
    One posted once it ended without its finished_at keeps none: when it finished is not
    known (the post may come long after), and "now" would be a false time.
    """
    if attrs.get("status") == Deployment.Status.ROLLED_BACK:
        raise ValidationError(
            {"status": "Record the deployment, then PATCH it to rolled_back when rolled back."}
        )
    reason = change_reason or "Recorded deployment"
    return _record(
        Deployment, DEPLOYMENT_FIELDS, project, actor, model_version, reason, attrs,
        then=notifications.deployment_changed,
    )  # fmt: skip


class RecordConflict(Exception):
    """A change a record's life cycle does not allow (the message says why)."""


# Where a deployment may go from each status: pending → in_progress → succeeded | failed;
# succeeded → rolled_back.
NEXT_STATUSES = {
    Deployment.Status.PENDING: {Deployment.Status.IN_PROGRESS},
    Deployment.Status.IN_PROGRESS: {Deployment.Status.SUCCEEDED, Deployment.Status.FAILED},
    Deployment.Status.SUCCEEDED: {Deployment.Status.ROLLED_BACK},
    Deployment.Status.FAILED: set(),
    Deployment.Status.ROLLED_BACK: set(),
}
DEPLOYMENT_UPDATE_FIELDS = {"status", "finished_at", "checks"}


def _new_checks(recorded, sent):
    """The checks of ``sent`` to add: a client that sends back the recorded ones (what it
    read) followed by new ones adds only the new ones."""
    return sent[len(recorded) :] if sent[: len(recorded)] == recorded else sent


def update_deployment(deployment, *, actor, change_reason="", **changes):
    """Move a deployment forward: a later status, its finished_at (once), more checks.

    Checks are appended to those already recorded. Finishing (pending or in progress to
    succeeded or failed) without a finished_at stamps it now, when the wiki hears of it;
    a rollback does not (the deployment had finished before). finished_at goes only with
    a final status. Anything else raises RecordConflict; invalid values raise
    ValidationError. Returns the deployment.
    """
    other = sorted(set(changes) - DEPLOYMENT_UPDATE_FIELDS)
    if other:
        raise RecordConflict(
            f"A deployment's {', '.join(other)} cannot change after it is recorded; only "
            "status (forward), finished_at (once) and checks (added) can."
        )
    with transaction.atomic(), recording(actor, change_reason or "Updated deployment"):
        current = (
            Deployment.objects.select_for_update(of=("self",))
            .select_related("project", "model_version")
            .get(pk=deployment.pk)
        )
        status = changes.get("status", current.status)
        if status not in Deployment.Status.values:
            choices = ", ".join(Deployment.Status.values)
            raise ValidationError({"status": f"Must be one of: {choices}."})
        if status != current.status and status not in NEXT_STATUSES.get(current.status, ()):
            allowed = ", ".join(sorted(NEXT_STATUSES.get(current.status, ()))) or "none"
            raise RecordConflict(
                f"A deployment cannot go from {current.status} to {status} "
                f"(allowed next: {allowed})."
            )
        finished_at = changes.get("finished_at")
        if finished_at is not None and current.finished_at not in (None, finished_at):
            raise RecordConflict("finished_at is already recorded and cannot change.")
        checks = changes.get("checks") or []
        if not isinstance(checks, list):
            raise ValidationError({"checks": "Must be a list of check results."})
        checks = _new_checks(current.checks, checks)
        if status == current.status and not checks and finished_at in (None, current.finished_at):
            return current  # nothing new: no revision
        finishing = status in Deployment.FINISHED and current.status not in Deployment.FINISHED
        if finishing and finished_at is None and current.finished_at is None:
            finished_at = timezone.now()
        current.status = status
        current.finished_at = finished_at or current.finished_at
        current.checks = current.checks + checks
        current.full_clean(exclude=["project", "model_version"])
        current.save()
        notifications.deployment_changed(current)
        Project.records_changed(current.project_id)
    return current


def create_model_version(project, *, actor, version, description="", change_reason=""):
    """Register a model version by hand (before any record names it)."""
    reason = change_reason or f"Registered model version {version}"
    with transaction.atomic(), recording(actor, reason):
        existing = ModelVersion.objects.filter(project=project, version=version).first()
        if existing:
            raise RecordConflict(f"Model version {version} already exists.")
        model_version = ModelVersion(project=project, version=version, description=description)
        model_version.full_clean(exclude=["project"], validate_constraints=False)
        try:
            with transaction.atomic():
                model_version.save()
        except IntegrityError:
            raise RecordConflict(f"Model version {version} already exists.") from None
        Project.records_changed(project.pk)
    return model_version
