"""The hot path of what pipelines post: training runs and deployments, one or a batch.

A record is checked first (``prepare``: no query), then ``write`` stores any number of
them in the caller's transaction with a fixed number of statements, whatever their
number: one look-up of their model versions (a new version is inserted, with its
history, only the first time it is named), one multi-row insert each of the records,
their history rows, their audit chain entries (wiki.audit.append_many) and their search
entries (wiki.search.index_new), the runs' metrics and parameters as rows, and one bump
of the project's records version. Every guarantee of a single save holds: each record
has its history row, stamped with who, why and the request (wiki.history), sealed into
the project's chain and found by search, all committed together or not at all.

wiki.services.records (one record) and the batch endpoint (api.views.batches) call it.
"""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from simple_history.signals import pre_create_historical_record

from wiki import audit, metrics, search, statements
from wiki import series as curves
from wiki.history import recording
from wiki.models import Deployment, ModelVersion, Project, RunValue, TrainingRun, validate_version
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


def version_name(version):
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


def prepare_run(project, *, model_version, series=None, **attrs):
    """A training run checked and ready for ``write`` (unsaved); ValidationError if not.
    Its metric series, if any, are checked too (wiki.series), and written with it."""
    run = _prepare(TrainingRun, RUN_FIELDS, project, model_version, attrs)
    # Pieces of parsed rows (wiki.series.parse): one for a post, more for an import.
    run._series_rows = [curves.parse(series)] if series is not None else []
    return run


def prepare_deployment(project, *, model_version, **attrs):
    """A deployment checked and ready for ``write`` (unsaved); ValidationError if not.

    It may be recorded as it starts (pending, in_progress) or once it ended (succeeded,
    failed); a rollback is a change of a deployment that succeeded, never a new record.
    """
    if attrs.get("status") == Deployment.Status.ROLLED_BACK:
        raise ValidationError(
            {"status": "Record the deployment, then PATCH it to rolled_back when rolled back."}
        )
    return _prepare(Deployment, DEPLOYMENT_FIELDS, project, model_version, attrs)


def _prepare(model, allowed, project, model_version, attrs):
    _check_keys(attrs, allowed)
    version = version_name(model_version)
    record = model(project=project, **attrs)
    # The project is in hand and the model version is found or made by write(): neither
    # foreign key needs a query here.
    record.full_clean(exclude=["project", "model_version"])
    record._version_name = version
    return record


def write(project, records, *, actor, change_reason):
    """Store ``records`` (all of one kind, from prepare_run or prepare_deployment) of
    ``project`` in the caller's transaction (opened here if there is none), with their
    history rows, chain entries and search entries; returns them, saved.

    Nothing here can fail but the database itself: whatever fails, the caller's
    transaction rolls back whole (no savepoint: fewer round trips).
    """
    if not records:
        return records
    model = type(records[0])
    now = timezone.now()
    with recording(actor, change_reason), transaction.atomic(savepoint=False):
        versions = model_versions(project, {record._version_name for record in records})
        for record in records:
            record.project = project
            record.model_version = versions[record._version_name]
        model.objects.bulk_create(records)
        rows = _history(records, now)
        # The rest is written, not read back: in one round trip on PostgreSQL.
        together = statements.Statements()
        audit.append_many(rows, records, together)
        search.index_new(records, together)
        if model is TrainingRun:
            values = [row for run in records for row in RunValue.rows(run)]
            statements.copy(RunValue, RunValue.COLUMNS, values)
        then = _then(records)
        if then:  # they may append to the chain: after its head moved
            together.send()
            for call in then:
                call()
        together.add(RECORDS_CHANGED, [project.pk])  # last: it locks the project's row
        together.send()
        kind = model._meta.verbose_name.replace(" ", "_")
        count = len(records)
        transaction.on_commit(
            lambda: metrics.RECORDS_INGESTED.labels(kind, project.slug).inc(count)
        )
    return records


# Project.records_changed, as a statement to send with the others.
RECORDS_CHANGED = (
    f"UPDATE {Project._meta.db_table} SET records_version = records_version + 1 "  # noqa: S608
    "WHERE id = %s"
)


def _then(records):
    """What else the records need written, in their transaction: a run's metric series,
    a failed deployment's notification (a few calls; most records need none)."""
    calls = []
    series = [(r, rows) for r in records for rows in getattr(r, "_series_rows", ())]
    if series:
        calls.append(lambda: series_service.store(series))
    for record in records:
        if isinstance(record, Deployment) and record.status in (
            Deployment.Status.FAILED, Deployment.Status.ROLLED_BACK
        ):  # fmt: skip
            calls.append(lambda deployment=record: notifications.deployment_changed(deployment))
    return calls


def model_versions(project, names):
    """{name: ModelVersion} of ``names`` in ``project``: one look-up; a version named for
    the first time is made here (with its history row, as any save makes one).

    A concurrent first insert of the same version waits on the unique constraint: the
    loser's insert fails inside its own savepoint and reads the winner's row. The chain's
    head is locked first: each version's history row appends to the chain, and a writer
    holding the head must never wait on another's uncommitted version.
    """
    found = {v.version: v for v in ModelVersion.objects.filter(project=project, version__in=names)}
    missing = sorted(set(names) - set(found))
    if missing:
        audit.lock_chain(project)
    for name in missing:
        try:
            with transaction.atomic():
                found[name] = ModelVersion.objects.create(project=project, version=name)
        except IntegrityError:
            found[name] = ModelVersion.objects.get(project=project, version=name)
    return found


def _history(records, now):
    """The history row of each new record, inserted in one statement.

    bulk_create writes no history and simple-history's bulk_history_create sends no
    signals: the rows are stamped here by the receivers of pre_create_historical_record
    (wiki.history.stamp, who and why) as a save does; what the receivers of
    post_create_historical_record do row by row (seal, index) write() does for all the
    rows at once (audit.append_many, search.index_new).
    """
    History = type(records[0]).history.model
    rows = []
    for record in records:
        row = History(
            history_date=now, history_type="+", history_user=None, history_change_reason=None,
            **{field.attname: getattr(record, field.attname) for field in History.tracked_fields},
        )  # fmt: skip
        pre_create_historical_record.send(
            sender=History, instance=record, history_instance=row, history_date=now,
            history_user=None, history_change_reason=None, using=None,
        )  # fmt: skip
        # A record from another system names it (wiki.history.mlflow_origin): its own.
        row.history_origin = getattr(record, "_origin", row.history_origin)
        rows.append(row)
    return History.objects.bulk_create(rows)
