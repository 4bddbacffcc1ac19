"""Recording what pipelines did: model versions, training runs and deployments."""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from wiki import ingest, statements
from wiki.history import recording
from wiki.models import Deployment, ModelVersion, Project, RunValue, SeriesChunk, TrainingRun
from wiki.services import notifications
from wiki.services import series as series_service


def record_training_run(project, *, actor, model_version, change_reason="", series=None, **attrs):
    """Store a training run posted by a pipeline (creating its model version if new), with
    its metric series if given (wiki.series; checked first, written in the run's
    transaction: a bad series refuses the whole run). The write is wiki.ingest's."""
    run = ingest.prepare_run(project, model_version=model_version, series=series, **attrs)
    reason = change_reason or "Recorded training run"
    return ingest.write(project, [run], actor=actor, change_reason=reason)[0]


def record_deployment(project, *, actor, model_version, change_reason="", **attrs):
    """Store a deployment posted by a pipeline (creating its model version if new).

    It may be recorded as it starts (pending, in_progress) or once it ended (succeeded,
    failed); a rollback is a change of a deployment that succeeded, never a new record.
    One posted once it ended without its finished_at keeps none: when it finished is not
    known (the post may come long after), and "now" would be a false time.
    """
    deployment = ingest.prepare_deployment(project, model_version=model_version, **attrs)
    reason = change_reason or "Recorded deployment"
    return ingest.write(project, [deployment], actor=actor, change_reason=reason)[0]


def record_many(project, kind, records, *, actor, change_reason=""):
    """Store ``records`` (from wiki.ingest.prepare_run or prepare_deployment; ``kind`` is
    "training_run" or "deployment") together, in the caller's transaction: the batch
    endpoint's write."""
    default = "Recorded training run" if kind == "training_run" else "Recorded deployment"
    reason = change_reason or default
    return ingest.write(project, records, actor=actor, change_reason=reason)


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


def reimport_training_run(
    run, *, actor, model_version, change_reason, origin, series_rows=(), **attrs
):
    """A new revision of an imported training run whose source changed (an MLflow run
    that finished, or logged more): its fields replaced by ``attrs``, its model version
    by ``model_version``, the points of ``series_rows`` (pieces parsed by wiki.series)
    past those stored appended. Runs are otherwise append-only: only an import, which
    knows the source, changes one."""
    ingest._check_keys(attrs, ingest.RUN_FIELDS)
    name = ingest.version_name(model_version)
    with transaction.atomic(), recording(actor, change_reason, origin):
        current = TrainingRun.objects.select_for_update().get(pk=run.pk)
        for field, value in attrs.items():
            setattr(current, field, value)
        current.model_version = ingest.model_versions(current.project, {name})[name]
        current.full_clean(exclude=["project", "model_version"])
        current.save()
        RunValue.objects.filter(training_run=current).delete()
        statements.copy(RunValue, RunValue.COLUMNS, list(RunValue.rows(current)))
        stored = dict(
            SeriesChunk.objects.filter(training_run=current)
            .values("metric")
            .annotate(last=models.Max("last_step"))
            .values_list("metric", "last")
        )
        pairs = []
        for rows in series_rows:
            new = {
                metric: [point for point in points if point[0] > stored.get(metric, -1)]
                for metric, points in rows.items()
            }
            new = {metric: points for metric, points in new.items() if points}
            if new:
                pairs.append((current, new))
        series_service.store(pairs)
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
