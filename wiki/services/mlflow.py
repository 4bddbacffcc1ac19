"""Importing from an MLflow tracking server: runs as training runs, registered model
versions as model versions (wiki.mlflow reads and maps them).

Idempotent and incremental: each run is keyed by its tracking URI and run id
(MlflowRun), with a digest of what it said when imported. An import writes the runs it has
not seen (in bulk, a page at a time, each page one transaction: a crash loses at most
the page it was writing, and the next import goes on from there), a new revision of
those that changed, and nothing for the others. Every record's history names the run it
came from (wiki.history.mlflow_origin). Runs deleted in MLflow are reported, never
deleted here.
"""

import hashlib
import io
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from wiki import audit, ingest
from wiki import mlflow as source
from wiki import series as curves
from wiki.history import SYSTEM, mlflow_origin, recording
from wiki.models import MlflowRun, MlflowSync, ModelVersion, Project
from wiki.services import attachments
from wiki.services.records import reimport_training_run
from wiki.storage import Unavailable

logger = logging.getLogger(__name__)

WRITE_PAGE = 200  # runs written per transaction
HISTORY_THREADS = 8  # metric histories fetched at once
IMAGE_MAX_BYTES = 5 * 1024 * 1024  # an image artifact larger than this is not attached


@dataclass
class Report:
    """What an import found and did (and, with dry_run, would do)."""

    runs: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    versions_created: int = 0
    versions_updated: int = 0
    attachments: int = 0
    deleted: list = field(default_factory=list)  # run ids deleted in MLflow
    problems: list = field(default_factory=list)  # what was left out, and why

    def as_dict(self):
        return asdict(self)

    def lines(self):
        yield (
            f"{self.runs} runs: {self.created} new, {self.updated} changed, "
            f"{self.unchanged} unchanged; model versions: {self.versions_created} new, "
            f"{self.versions_updated} changed; {self.attachments} images attached"
        )
        if self.deleted:
            yield (
                f"{len(self.deleted)} runs deleted in MLflow (kept in the wiki): "
                + ", ".join(self.deleted[:20])
                + (" …" if len(self.deleted) > 20 else "")
            )
        yield from self.problems


def _digest(version, fields):
    text = json.dumps([version, fields], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def import_runs(
    project, *, actor, tracking_uri, experiments=(), registered_models=(), since=None,
    dry_run=False, images=True, progress=None,
):  # fmt: skip
    """Import ``experiments`` (names or ids) and ``registered_models`` (names) from the
    tracking server at ``tracking_uri`` into ``project``; returns a Report.

    ``progress(done, total)`` is called as runs are read and written (a sign of life for
    a long import). wiki.mlflow.MlflowError when the server cannot be read or answers
    what MLflow would not (what was written before stays: run it again);
    ValidationError when neither experiments nor models are named.
    """
    if not experiments and not registered_models:
        raise ValidationError("Name at least one experiment or registered model.")
    tracking = source.Tracking(tracking_uri)
    progress = progress or (lambda done, total: None)
    try:
        return _import(
            project, actor, tracking, experiments, registered_models, since, dry_run, images,
            progress,
        )  # fmt: skip
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        # A field missing or of another type in what the server sent (a proxy's page, an
        # MLflow far older or newer): told as such, the details in the log.
        logger.warning("Unexpected answer from MLflow at %s", tracking.uri, exc_info=True)
        raise source.MlflowError(
            f"MLflow at {tracking.uri} answered in a form this import does not know "
            f"({type(error).__name__}: {error})."
        ) from None


def _import(project, actor, tracking, experiments, models, since, dry_run, images, progress):
    uri, report = tracking.uri, Report()
    registered, versions = {}, []
    for name in models:
        model, found = tracking.model_versions(name)
        for version in sorted(found, key=lambda v: int(v["version"])):
            label = source.version_name(model["name"], version["version"])
            origin = mlflow_origin(
                tracking_uri=tracking.uri, model=model["name"], version=version["version"]
            )
            versions.append((label, source.version_description(model, version), origin))
            if version.get("run_id"):
                registered[version["run_id"]] = label

    chosen = [tracking.experiment(name) for name in experiments]
    names = {experiment.id: experiment.name for experiment in chosen}
    runs = []
    for run in tracking.runs(list(names), since) if names else ():
        runs.append(run)
        if len(runs) % source.PAGE_SIZE == 0:
            progress(0, len(runs))
    # The runs registered versions came from, where the experiments named leave them out.
    seen = {run["info"]["run_id"] for run in runs}
    for run_id in sorted(set(registered) - seen):
        run = tracking.run(run_id)
        if run is None:
            report.problems.append(f"run {run_id} of a registered model version is gone")
            continue
        experiment_id = run["info"]["experiment_id"]
        if experiment_id not in names:
            names[experiment_id] = tracking.experiment(experiment_id).name
        runs.append(run)
    report.runs = len(runs)

    _write_versions(project, actor, uri, versions, report, dry_run)
    links = {
        link.run_id: link for link in MlflowRun.objects.filter(project=project, tracking_uri=uri)
    }
    done = 0
    progress(done, len(runs))
    for start in range(0, len(runs), WRITE_PAGE):
        page = runs[start : start + WRITE_PAGE]
        _write_page(project, actor, tracking, page, names, registered, links, report, dry_run)
        progress(done + len(page) // 2, len(runs))
        if images and not dry_run:
            _attach_images(tracking, page, links, report, actor)
        done += len(page)
        progress(done, len(runs))

    if since is None:  # the whole experiments were read: a run imported and missing was deleted
        listed = {run["info"]["run_id"] for run in runs}
        report.deleted += sorted(
            run_id
            for run_id, link in links.items()
            if link.experiment_id in names and run_id not in listed
        )
    return report


def _written_here(version):
    """Whether ``version``'s description was last written by someone in the wiki (a
    version made by a pipeline's record, or described by hand), not by an import."""
    latest = version.history.order_by("-history_id").values("history_origin").first()
    origin = (latest or {}).get("history_origin") or {}
    return origin.get("tool") != "mlflow" and bool(version.description)


def _write_versions(project, actor, uri, versions, report, dry_run):
    """Create the registered versions not seen before; a new revision of each whose
    description (MLflow's, its stage, aliases, source run) changed, unless someone wrote
    it in the wiki: theirs is kept, and the report says so."""
    with transaction.atomic():
        if versions and not dry_run:
            audit.lock_chain(project)  # as ingest.model_versions: before a version's row
        existing = {
            v.version: v
            for v in ModelVersion.objects.filter(
                project=project, version__in=[name for name, _, _ in versions]
            )
        }
        for name, description, origin in versions:
            version = existing.get(name)
            if version is not None and version.description == description:
                continue
            if version is None:
                report.versions_created += 1
                version = ModelVersion(project=project, version=name)
            elif _written_here(version):
                report.problems.append(
                    f"model version {name}: its description was written in the wiki and "
                    "is kept; MLflow's is not applied"
                )
                continue
            else:
                report.versions_updated += 1
            if dry_run:
                continue
            with recording(actor, f"Imported from MLflow ({uri})", origin):
                version.description = description
                version.full_clean(exclude=["project"], validate_constraints=False)
                version.save()
        if not dry_run and (report.versions_created or report.versions_updated):
            Project.records_changed(project.pk)


def _write_page(project, actor, tracking, page, names, registered, links, report, dry_run):
    """Write one page of runs: the new ones in bulk, a revision of each changed one."""
    uri = tracking.uri
    moved = []  # (run, version, fields, digest) of the new and changed runs
    for run in page:
        info = run["info"]
        run_id = info["run_id"]
        if info.get("lifecycle_stage") == "deleted":
            if run_id in links:  # imported before: kept here, and said so
                report.deleted.append(run_id)
            continue
        experiment = names.get(info["experiment_id"], info["experiment_id"])
        version, fields, problems = source.run_record(tracking, run, experiment, registered)
        report.problems += [f"run {run_id}: {problem}" for problem in problems]
        digest = _digest(version, fields)
        link = links.get(run_id)
        if link is not None and link.digest == digest:
            report.unchanged += 1
        elif dry_run:
            report.created += link is None
            report.updated += link is not None
        else:
            moved.append((run, version, fields, digest))
    histories = _histories(tracking, [run for run, _, _, _ in moved])
    entries = []
    for run, version, fields, digest in moved:
        run_id = run["info"]["run_id"]
        try:
            record = ingest.prepare_run(project, model_version=version, **fields)
        except ValidationError as error:
            report.problems.append(f"run {run_id} left out: {'; '.join(error.messages)}")
            continue
        try:
            record._series_rows = [
                curves.parse(piece) for piece in curves.pieces(histories.get(run_id, {}))
            ]
        except ValidationError as error:  # a point mlwiki refuses: the run without them
            record._series_rows = []
            report.problems.append(
                f"run {run_id}: metric histories not imported: {'; '.join(error.messages)}"
            )
        record._origin = mlflow_origin(tracking_uri=uri, run_id=run_id)
        entries.append((run_id, run["info"]["experiment_id"], digest, version, fields, record))
    if not entries:
        return
    with transaction.atomic():
        # One import of a project writes at a time (another, or a sync overtaken by its
        # re-queue, waits here): the links are read again once it holds the lock, so a run
        # the other wrote meanwhile is neither written twice nor given a second revision.
        audit.lock_chain(project)
        ids = [entry[0] for entry in entries]
        for link in MlflowRun.objects.filter(project=project, tracking_uri=uri, run_id__in=ids):
            links[link.run_id] = link
        new, changed = [], []
        for entry in entries:
            link = links.get(entry[0])
            if link is None:
                new.append(entry)
            elif link.digest == entry[2]:
                report.unchanged += 1
            else:
                changed.append(entry)
        reason = f"Imported from MLflow ({uri})"
        ingest.write(project, [entry[-1] for entry in new], actor=actor, change_reason=reason)
        made = MlflowRun.objects.bulk_create(
            MlflowRun(
                project=project,
                tracking_uri=uri,
                run_id=run_id,
                experiment_id=experiment_id,
                training_run=record,
                digest=digest,
            )  # fmt: skip
            for run_id, experiment_id, digest, _, _, record in new
        )
        for link in made:
            links[link.run_id] = link
        for run_id, _, digest, version, fields, record in changed:
            link = links[run_id]
            reimport_training_run(
                link.training_run, actor=actor, model_version=version,
                series_rows=record._series_rows, change_reason=f"Updated from MLflow ({uri})",
                origin=record._origin, **fields,
            )  # fmt: skip
            link.digest = digest
            link.artifacts_done = False
            link.save(update_fields=["digest", "artifacts_done"])
    report.created += len(new)
    report.updated += len(changed)


def _histories(tracking, runs):
    """{run id: {metric: points}} of the metric histories of ``runs`` (one request per
    run and metric with more than one step), fetched a few at a time."""
    wanted = [
        (run["info"]["run_id"], key)
        for run in runs
        for key in source.with_history(run.get("data") or {})
    ]
    histories = {}
    with ThreadPoolExecutor(max_workers=HISTORY_THREADS) as pool:
        fetched = pool.map(lambda pair: tracking.metric_history(*pair), wanted)
        for (run_id, key), history in zip(wanted, fetched, strict=True):
            points = source.series_of(history)
            if points:
                histories.setdefault(run_id, {})[key] = points
    return histories


def _attach_images(tracking, page, links, report, actor):
    """Attach the image artifacts of the runs of ``page`` that need them (new, changed,
    or left without them by a crash); an image seen before changes nothing. A run whose
    images could not all be read or stored is tried again by the next import."""
    limit = min(IMAGE_MAX_BYTES, settings.ATTACHMENT_MAX_BYTES)
    reason = f"Imported from MLflow ({tracking.uri})"
    for run in page:
        link = links.get(run["info"]["run_id"])
        if link is None or link.artifacts_done:
            continue
        origin = mlflow_origin(tracking_uri=tracking.uri, run_id=link.run_id)
        complete = True
        for path, size in tracking.images(link.run_id):
            if size > limit:  # for good: not tried again
                report.problems.append(
                    f"run {link.run_id}: {path} not attached ({size:,} bytes; at most {limit:,})"
                )
                continue
            try:
                content = io.BytesIO(tracking.artifact(link.run_id, path, limit))
                content.name = path.replace("/", "-")
                attachments.attach(
                    link.training_run, content, actor=actor, origin=origin, change_reason=reason
                )
            except (source.MlflowError, ValidationError, Unavailable) as error:
                why = "; ".join(error.messages) if isinstance(error, ValidationError) else error
                report.problems.append(f"run {link.run_id}: {path} not attached: {why}")
                complete = False
                continue
            report.attachments += 1
        if complete:
            link.artifacts_done = True
            link.save(update_fields=["artifacts_done"])


# What a sync configured in the browser may name: more is a list pasted by mistake.
MAX_NAMES = 50
SYNC_SETTINGS = ("tracking_uri", "experiments", "registered_models", "every_hours", "attach_images")


def configure_sync(project, *, actor, change_reason="", **values):
    """Set the project's sync from MLflow (SYNC_SETTINGS); ValidationError on a bad value,
    nothing saved. A sync on a schedule is due at once."""
    unknown = set(values) - set(SYNC_SETTINGS)
    if unknown:
        raise ValidationError(f"Unknown sync settings: {', '.join(sorted(unknown))}.")
    for name in ("experiments", "registered_models"):
        names = values.get(name, [])
        if not isinstance(names, list) or len(names) > MAX_NAMES:
            raise ValidationError({name: f"A list of at most {MAX_NAMES} names."})
        if any(not isinstance(n, str) or not n.strip() or len(n) > 250 for n in names):
            raise ValidationError({name: "Each name is 1 to 250 characters."})
    if not values.get("experiments") and not values.get("registered_models"):
        raise ValidationError("Name at least one experiment or registered model.")
    if "tracking_uri" in values:
        try:
            values["tracking_uri"] = source.check_uri(values["tracking_uri"])
        except source.MlflowError as error:
            raise ValidationError({"tracking_uri": str(error)}) from None
    with transaction.atomic(), recording(actor, change_reason or "Changed the MLflow sync"):
        sync = MlflowSync.objects.select_for_update().filter(project=project).first()
        sync = sync or MlflowSync(project=project)
        for name, value in values.items():
            setattr(sync, name, value)
        sync.due_at = timezone.now() if sync.every_hours else None
        sync.full_clean(exclude=["project"], validate_unique=False)
        sync.save()
    return sync


def request_sync(sync):
    """Queue ``sync`` now ("Sync now"); False if it is queued or running already."""
    claimed = MlflowSync.objects.filter(pk=sync.pk, status=MlflowSync.Status.IDLE).update(
        status=MlflowSync.Status.QUEUED, queued_at=timezone.now()
    )
    if claimed:
        transaction.on_commit(lambda: run_sync.delay(sync.pk))
    return bool(claimed)


def queue_due_syncs():
    """Queue the syncs that are due (beat, every minute), each claimed by a conditional
    UPDATE so two beats never queue one twice. A sync queued or running for longer than
    REQUEUE_AFTER_MINUTES without a sign of life lost its message or its worker: it is
    queued again (an import resumes where the last one stopped). Returns how many."""
    now = timezone.now()
    lost = now - timedelta(minutes=settings.REQUEUE_AFTER_MINUTES)
    Status = MlflowSync.Status
    due = Q(status=Status.IDLE, every_hours__gt=0, due_at__lte=now)
    stuck = Q(status=Status.QUEUED, queued_at__lt=lost) | Q(
        status=Status.RUNNING, heartbeat_at__lt=lost
    )
    queued = 0
    for pk, status in MlflowSync.objects.filter(due | stuck).values_list("pk", "status"):
        claimed = MlflowSync.objects.filter(pk=pk, status=status).update(
            status=Status.QUEUED, queued_at=now
        )
        if claimed:
            transaction.on_commit(lambda pk=pk: run_sync.delay(pk))
            queued += 1
    return queued


@shared_task(ignore_result=True)
def run_sync(sync_id):
    """Run a queued sync: the import, its progress on the sync's row as it goes, its
    report (or error) at the end; due again a schedule's interval later."""
    Status = MlflowSync.Status
    now = timezone.now()
    claimed = MlflowSync.objects.filter(pk=sync_id, status=Status.QUEUED).update(
        status=Status.RUNNING, started_at=now, heartbeat_at=now, processed=0, total=0
    )
    if not claimed:  # gone, or taken by another worker
        return
    sync = MlflowSync.objects.select_related("project").get(pk=sync_id)

    def progress(done, total):
        MlflowSync.objects.filter(pk=sync_id).update(
            processed=done, total=total, heartbeat_at=timezone.now()
        )

    report, error = None, ""
    try:  # whatever happens, the sync ends idle, saying how it went
        report = import_runs(
            sync.project, actor=SYSTEM, tracking_uri=sync.tracking_uri,
            experiments=sync.experiments, registered_models=sync.registered_models,
            images=sync.attach_images, progress=progress,
        )  # fmt: skip
    except (source.MlflowError, ValidationError) as failure:
        error = (
            "; ".join(failure.messages) if isinstance(failure, ValidationError) else str(failure)
        )
    except Exception as failure:  # the database or the storage, say: logged, and told
        logger.exception("MLflow sync %s failed", sync_id)
        error = f"The sync failed ({type(failure).__name__}); the next one goes on from here."
    finished = timezone.now()
    MlflowSync.objects.filter(pk=sync_id).update(
        status=Status.IDLE, finished_at=finished, last_error=error,
        report=report.as_dict() if report else {},
        due_at=finished + timedelta(hours=sync.every_hours) if sync.every_hours else None,
    )  # fmt: skip
