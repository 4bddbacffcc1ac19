"""Audit report exports: asking for one, building it (in a Celery task), downloading it.

A job's history shows who asked, when it started, how it ended and every download. The
progress ticks in between are not revisions: they are written with a plain UPDATE (no
history row, no audit-chain entry), since they say nothing an auditor needs and a report
of ten thousand records would otherwise add hundreds of entries to the chain it reports on.

The job row is the outbox (wiki.outbox): asked for while the broker is down, it waits
queued and the sweep sends it once the broker is back; one whose worker died midway is
queued again (EXPORT_ATTEMPTS times in all). A download is a POST: it is recorded in the
job's history, and nothing a page can make a browser fetch may write history.
"""

import hashlib
import logging
import os
import tempfile
from contextlib import contextmanager
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from wiki import as_of as moments
from wiki import metrics, outbox, report_formats, reports, storage
from wiki.history import SYSTEM, recording
from wiki.models import ExportJob

logger = logging.getLogger(__name__)
TEMP_SUFFIX = ".part"
# What a retry may cure (the database restarting, a dropped connection, the file storage
# not answering); anything else is a bug or bad data, and the job fails with the reason.
TRANSIENT = (OperationalError, InterfaceError, storage.Unavailable)
UNFINISHED = (ExportJob.Status.QUEUED, ExportJob.Status.RUNNING)


class TooManyExports(Exception):
    """The user already has EXPORTS_IN_FLIGHT exports queued or running."""


def request_export(
    project, *, actor, format, since=None, until=None, include_diffs=False, as_of=None,
    enqueue=True,
):  # fmt: skip
    """Queue an export of ``project``: the job is saved (a revision), and its task is sent
    once the transaction commits, so a worker never looks for a job that is not there.
    With ``enqueue`` false the caller builds it at once (the export_audit_report command):
    the job is marked due now, so that the sweep leaves it to the caller (unless the
    caller dies, for REQUEUE_AFTER_MINUTES).

    A report costs up to a minute of a worker's CPU: a person may have at most
    EXPORTS_IN_FLIGHT of them waiting or being built (TooManyExports).

    ``as_of`` (wiki.as_of: a time, deployment:<id>, model-version:<version>) makes it a
    report of the project as it stood then; a value that names no moment of the project
    is a ValidationError naming ``as_of``."""
    if as_of not in (None, ""):
        as_of = moments.parse(project, as_of).value
    job = ExportJob(
        project=project,
        requested_by=actor.user,
        requested_by_name=actor.username,
        format=format,
        since=since,
        until=until,
        include_diffs=bool(include_diffs),
        as_of=as_of or None,
    )
    job.full_clean()
    reason = f"Requested a {job.get_format_display()} audit report"
    if job.as_of:
        reason += f" as of {job.as_of}"
    with recording(actor, reason), transaction.atomic():
        if actor.user is not None:
            # Locking the user's row makes the count and the insert one step.
            get_user_model().objects.select_for_update().filter(pk=actor.user.pk).first()
            waiting = ExportJob.objects.filter(requested_by=actor.user, status__in=UNFINISHED)
            if waiting.count() >= settings.EXPORTS_IN_FLIGHT:
                raise TooManyExports(
                    f"You have {settings.EXPORTS_IN_FLIGHT} exports waiting or being built; "
                    "ask for another once one of them is done."
                )
        if not enqueue:
            job.due_at = timezone.now()
        job.save()
        if enqueue:
            outbox.send(build_export, ExportJob, [job.pk])
    return job


def _set_progress(job_id, percent):
    ExportJob.objects.filter(pk=job_id).update(progress=percent, heartbeat_at=timezone.now())


def _claim(job_id):
    """Move a queued job to running; None if it is not queued (done, failed, or taken by
    another delivery of the same message)."""
    now = timezone.now()
    with recording(SYSTEM, "Started building the report"), transaction.atomic():
        job = ExportJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status != ExportJob.Status.QUEUED:
            return None
        job.status, job.started_at, job.heartbeat_at, job.progress = (
            ExportJob.Status.RUNNING, now, now, 1,
        )  # fmt: skip
        job.attempts += 1
        job.save()
    return job


class _TemporaryFile(File):
    """A finished file on disk: FileSystemStorage moves it into place instead of copying;
    S3Storage uploads it, and the object appears only once the upload is complete."""

    def temporary_file_path(self):
        return self.file.name


def build(job_id):
    """Build job ``job_id`` into storage: the report is read in one consistent snapshot,
    written to a temporary file, then moved into place; the job ends done or failed.

    Returns the job, or None when it was not queued. Database errors and a storage that
    does not answer propagate, the job queued again (the task retries them); any other
    error fails the job with a readable ``last_error``.
    """
    job = _claim(job_id)
    if job is None:
        return None
    # Progress is told between steps: inside the snapshot nothing it writes would show.
    # The JSON bundle (alone or in the ZIP) reads the history while it writes it, so it
    # is written inside the snapshot; the other formats are rendered after it ends.
    inside = job.format in (ExportJob.Format.JSON, ExportJob.Format.ZIP)
    temporary = None
    try:
        # On the local disk, next to where it goes (a rename, not a copy); for a bucket, in
        # the system's temporary directory (TMPDIR).
        directory = None
        if storage.is_local():
            directory = os.path.join(settings.MEDIA_ROOT, "exports")
            os.makedirs(directory, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, suffix=TEMP_SUFFIX, delete=False) as out:
            temporary = out.name
            with snapshot():
                report = reports.build(
                    job.project,
                    report_id=job.filename.rsplit(".", 1)[0],  # the file name's stem
                    since=job.since,
                    until=job.until,
                    include_diffs=job.include_diffs,
                    generated_by=job.requested_by_name or "mlwiki",
                    generated_at=job.started_at,
                    with_history=inside,
                    as_of_value=job.as_of,
                )
                if inside:
                    report_formats.write(job.format, report, out, lambda percent: None)
            _set_progress(job.pk, 55)
            if not inside:
                report_formats.write(job.format, report, out, lambda p: _set_progress(job.pk, p))
        digest, size = _checksum(temporary)
        with open(temporary, "rb") as finished, storage.answering():
            name = default_storage.save(f"exports/{job.filename}", _TemporaryFile(finished))
    except TRANSIENT:
        _requeue(job.pk)
        raise
    except Exception as error:  # noqa: BLE001  any bug or bad data: the job says what
        logger.exception("Export %s failed", job.pk)
        return fail(job.pk, f"The report could not be built: {type(error).__name__}: {error}")
    finally:
        if temporary and os.path.exists(temporary):  # moved into place, or abandoned
            os.unlink(temporary)
    with recording(SYSTEM, "Built the report"), transaction.atomic():
        job = ExportJob.objects.select_for_update().get(pk=job.pk)
        if job.status != ExportJob.Status.RUNNING:  # failed meanwhile by the stale sweep
            # robust: a storage that does not answer now leaves an orphan file, logged.
            transaction.on_commit(lambda: default_storage.delete(name), robust=True)
            return job
        job.file.name = name
        job.size, job.sha256 = size, digest
        job.status, job.progress, job.finished_at = ExportJob.Status.DONE, 100, timezone.now()
        job.save()
        transaction.on_commit(lambda: _count_built(job))
    return job


def _count_built(job):
    metrics.EXPORTS.labels(job.format).inc()
    duration = (job.finished_at - job.started_at).total_seconds()
    metrics.EXPORT_DURATION.labels(job.format).observe(duration)


def _checksum(path):
    sha, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            sha.update(chunk)
            size += len(chunk)
    return sha.hexdigest(), size


@contextmanager
def snapshot():
    """One transaction that sees one state of the database throughout: REPEATABLE READ
    on PostgreSQL; SQLite's transactions are snapshots already. Also what a model card is
    read in (wiki.modelcards)."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield


def _requeue(job_id):
    """Give a job that met a transient error back to the queue, for the task's retry."""
    try:
        with recording(SYSTEM, "Will try again"), transaction.atomic():
            job = ExportJob.objects.select_for_update().get(pk=job_id)
            if job.status == ExportJob.Status.RUNNING:
                # The task's retry is its message; the sweep sends another if it is lost.
                job.status, job.progress, job.due_at = ExportJob.Status.QUEUED, 0, timezone.now()
                job.save()
    except TRANSIENT:  # the database is away: the stale-job sweep will fail it later
        logger.warning("Export %s could not be put back in the queue", job_id)


def fail(job_id, error):
    """End a job as failed with ``error`` (what a person reads)."""
    with recording(SYSTEM, "The report could not be built"), transaction.atomic():
        job = ExportJob.objects.select_for_update().get(pk=job_id)
        if job.status in (ExportJob.Status.DONE, ExportJob.Status.FAILED):
            return job
        job.status, job.last_error, job.finished_at = (
            ExportJob.Status.FAILED, error[:2000], timezone.now(),
        )  # fmt: skip
        job.save()
        transaction.on_commit(lambda: metrics.EXPORT_FAILURES.labels(job.format).inc())
    return job


def sweep(now=None):
    """The outbox's sweep (every minute): send again every queued job whose message the
    broker never got or lost, and queue again every running job whose worker stopped
    telling its progress (a crash, a kill) — or fail it after EXPORT_ATTEMPTS starts.
    Returns (queued, failed)."""
    now = now or timezone.now()
    minutes = settings.EXPORT_STALE_MINUTES
    stopped = ExportJob.objects.filter(
        status=ExportJob.Status.RUNNING, heartbeat_at__lt=now - timedelta(minutes=minutes)
    ).values_list("pk", flat=True)
    failed = 0
    for job_id in stopped:
        with recording(SYSTEM, "The worker building it stopped"), transaction.atomic():
            job = ExportJob.objects.select_for_update().get(pk=job_id)
            if job.status != ExportJob.Status.RUNNING:
                continue
            if job.attempts >= settings.EXPORT_ATTEMPTS:
                job.status, job.finished_at = ExportJob.Status.FAILED, now
                job.last_error = (
                    f"The worker building this report stopped {job.attempts} times (no "
                    f"progress for {minutes} minutes each time). Ask for the export again."
                )
                failed += 1
                transaction.on_commit(lambda f=job.format: metrics.EXPORT_FAILURES.labels(f).inc())
            else:
                job.status, job.progress, job.due_at = ExportJob.Status.QUEUED, 0, None
            job.save()
    waiting = outbox.lost(ExportJob.objects.filter(status=ExportJob.Status.QUEUED), now)
    return outbox.send_now(build_export, ExportJob, waiting), failed


def open_for_download(job, *, actor):
    """The finished report's file, opened; the download is noted in the job's history
    (who, when, from where) once the file is known to be there (storage.Unavailable when
    the storage does not answer, FileNotFoundError when it lost the file). Call it for a
    POST only: no request a page can make a browser send (an image, a prefetch) may write
    history."""
    if job.status != ExportJob.Status.DONE:
        raise ValidationError("The report is not ready: it can be downloaded once it is done.")
    with storage.answering():
        handle = job.file.open("rb")  # FileNotFoundError if the storage lost it
        # The first read fetches an object from a bucket (into a spooled temporary file):
        # the download is recorded once its bytes are here, not before.
        handle.seek(0)
    with recording(actor, "Downloaded the report"), transaction.atomic():
        locked = ExportJob.objects.select_for_update().get(pk=job.pk)
        locked.downloads += 1
        locked.save()
    return handle


@shared_task(name="wiki.tasks.build_export", bind=True, max_retries=3, acks_late=True)
def build_export(self, job_id):
    """Build one audit report (``build``). A database hiccup is retried with a growing
    delay; after the last try, or on any other error, the job is failed."""
    try:
        build(job_id)
    except TRANSIENT as error:
        if self.request.retries >= self.max_retries:
            fail(job_id, f"Gave up after {self.max_retries + 1} tries: {error}")
            return
        raise self.retry(exc=error, countdown=10 * 2**self.request.retries) from error
