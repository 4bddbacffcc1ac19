"""The tamper-evident audit chain over every history row.

Each history row, as it is written, is appended to its chain (its project's, or the
global one for users and tokens) in the same transaction:

    digest = SHA-256(previous digest + canonical JSON of the row)
    seal   = HMAC-SHA-256(AUDIT_HMAC_KEY, digest)

The key lives in the environment, never in the database: someone who rewrites history
rows and recomputes the digests still cannot make the seals. ``verify`` walks a chain in
order, streaming, and names the first entry that was altered, deleted, inserted or
reordered behind the application's back, then (``check_files``) re-hashes the stored bytes
of every attachment version and the points of every metric series the chain's rows seal.
"""

import csv
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from itertools import islice

from django.apps import apps
from django.conf import settings
from django.db import connection, transaction
from django.db.models.fields.files import FieldFile
from django.http import StreamingHttpResponse
from django.utils import timezone

from wiki import attachments as files
from wiki import metrics, series, statements
from wiki.models import Attachment, AuditEntry, ChainHead, Project, SeriesChunk
from wiki.storage import Unavailable, answering

GENESIS = "0" * 64
GLOBAL = "global"
VERIFY_BATCH = 5000  # rows read per query: fewer round trips, memory still bounded


def _plain(value):
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, Decimal)):
        return str(value)
    if isinstance(value, FieldFile):  # a row read with .values() holds the name
        return value.name or ""
    raise TypeError(f"{type(value).__name__} in a history row")


def _as_stored(value):
    """A JSON value as the database gives it back. PostgreSQL's jsonb keeps numbers as
    ``numeric``: 3.2e18 comes back as the integer 3200000000000000000 and -0.0 as 0.0.
    Hashing that form, on every database, makes a digest the same whether its row was
    just written or read back later."""
    if isinstance(value, float):
        if value == 0:
            return 0.0
        text = repr(value)
        return int(Decimal(text)) if "e+" in text else value
    if isinstance(value, dict):
        return {key: _as_stored(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_stored(item) for item in value]
    return value


# Columns added to history rows after chains existed, each with the value the rows sealed
# before it were given: hashed only when they hold another, so those rows still verify
# (a project's template: migration 0018; an SSO account's validator flag: 0021). A row
# altered to or from that value still fails: its digest covered what it held.
LATER_COLUMNS = {
    "history_origin": None, "template_id": None, "as_of": None, "validator": False,
}  # fmt: skip


def _as_sealed_before(value, held):
    # A boolean may come back from SQLite as 0: equal to False, not the same object.
    return held is None if value is None else held == value


def canonical(row):
    """The bytes a row's digest covers: its columns as JSON, keys sorted, no spaces."""
    if isinstance(row, dict):  # JSON columns (fields, metrics, config, …) as stored
        row = {
            k: _as_stored(v) if isinstance(v, (dict, list)) else v
            for k, v in row.items()
            if not (k in LATER_COLUMNS and _as_sealed_before(LATER_COLUMNS[k], v))
        }
    return json.dumps(
        row, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_plain
    ).encode()


def _columns(model):
    return [field.attname for field in model._meta.concrete_fields]


def _row(history_instance):
    return {name: getattr(history_instance, name) for name in _columns(type(history_instance))}


def seal(digest, key=None):
    """HMAC-SHA-256 of ``digest`` under ``key`` (bytes; default: AUDIT_HMAC_KEY)."""
    key = settings.AUDIT_HMAC_KEY.encode() if key is None else key
    return hmac.digest(key, digest.encode(), "sha256").hex()


def chain_of(history_instance):
    """(chain key, project id or None) a history row belongs to."""
    if history_instance.instance_type is Project:
        project_id = history_instance.id
    else:
        project_id = getattr(history_instance, "project_id", None)
    return (f"project:{project_id}", project_id) if project_id else (GLOBAL, None)


def lock_chain(project):
    """Lock ``project``'s chain head until the transaction ends, for a write that takes
    another lock before it appends to the chain (a new model version's unique row, the
    project's row): every writer then takes the head first, so two never wait on each
    other in opposite orders (a deadlock, which PostgreSQL ends by failing one of them)."""
    list(ChainHead.objects.select_for_update().filter(key=f"project:{project.pk}").values("pk"))


def _advance_head(key, project_id, count=1):
    """Lock the chain's head and take the next ``count`` numbers: (head id, first seq,
    previous digest).

    One UPDATE … RETURNING both locks the row (concurrent appends wait here, so the chain
    never forks) and reserves the numbers.
    """
    table = connection.ops.quote_name(ChainHead._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET seq = seq + %s WHERE key = %s RETURNING id, seq, digest",  # noqa: S608
            [count, key],
        )
        row = cursor.fetchone()
    if row is not None:
        head_id, last, digest = row
        return head_id, last - count + 1, digest
    head = ChainHead.objects.create(key=key, project_id=project_id, seq=count, digest=GENESIS)
    return head.pk, 1, GENESIS


def _link(head_id, entries, digest, together):
    """Insert the chain's next entries (one multi-row INSERT) and move its head to
    ``digest``, the last one's: two statements added to ``together`` (one round trip on
    PostgreSQL).

    Raw SQL: this runs for every write, and the ORM took longer to compile these
    statements than the database took to run them."""
    together.insert(AuditEntry, list(entries[0]), entries)
    heads = connection.ops.quote_name(ChainHead._meta.db_table)
    together.add(f"UPDATE {heads} SET digest = %s WHERE id = %s", [digest, head_id])  # noqa: S608


def _entry(history_instance, instance):
    """The columns of a history row's entry, but its place in the chain."""
    return {
        "table": history_instance._meta.label,
        "history_id": history_instance.history_id,
        "object_id": history_instance.id,
        "kind": history_instance.instance_type._meta.model_name,
        "action": history_instance.history_type,
        "at": history_instance.history_date,
        "username": history_instance.history_username,
        "source": history_instance.history_source,
        "reason": history_instance.history_change_reason or "",
        "request_id": history_instance.history_request_id,
        "object_repr": str(instance if instance is not None else history_instance.instance)[:200],
    }


def append(history_instance, instance=None):
    """Link a new history row into its chain (wiki.signals calls it after every history
    row is written, in the write's transaction).

    ``instance``, the object as saved, names it in the activity log (cheaper than the
    history row's, which would load its related objects again)."""
    append_many([history_instance], [instance])


def append_many(history_instances, instances, together=None):
    """Link new history rows, in order, into their chains: per chain, one statement
    takes the numbers, one inserts the entries and one moves the head, however many
    rows. ``instances`` are the objects as saved (or None each).

    The last two are sent now, in one round trip on PostgreSQL, or added to
    ``together`` (wiki.statements) for the caller to send with its own, before anything
    else appends to the chain (whose head they move)."""
    if not settings.AUDIT_CHAIN_ENABLED or not history_instances:
        return
    own = together is None
    together = statements.Statements() if own else together
    chains = {}
    for history_instance, instance in zip(history_instances, instances, strict=True):
        key, project_id = chain_of(history_instance)
        chains.setdefault((key, project_id), []).append((history_instance, instance))
    with transaction.atomic(savepoint=False):
        for (key, project_id), pairs in chains.items():
            head_id, seq, digest = _advance_head(key, project_id, len(pairs))
            entries = []
            for number, (history_instance, instance) in enumerate(pairs, start=seq):
                data = canonical(_row(history_instance))
                digest = hashlib.sha256(digest.encode() + data).hexdigest()
                entry = _entry(history_instance, instance)
                entries.append(
                    entry
                    | {"chain": head_id, "seq": number, "digest": digest, "seal": seal(digest)}
                )
            _link(head_id, entries, digest, together)
        if own:
            together.send()


@dataclass
class Verdict:
    ok: bool
    entries: int
    head: str
    first_bad: dict | None = None
    # Set when the chain was checked but the stored files could not be (the storage did
    # not answer): ``ok`` then says nothing of the files, and nothing is recorded.
    unchecked: str | None = None


def _bad(kind, seq, detail, table="", history_id=None):
    return {"kind": kind, "seq": seq, "table": table, "history_id": history_id, "detail": detail}


def _batches(iterable, size):
    iterator = iter(iterable)
    while batch := list(islice(iterator, size)):
        yield batch


def _rows(batch):
    """The history rows a batch of entries names, fetched with one query per table."""
    wanted = {}
    for _, table, history_id, _, _ in batch:
        wanted.setdefault(table, []).append(history_id)
    rows = {}
    for table, ids in wanted.items():
        model = apps.get_model(table)
        for row in model.objects.filter(history_id__in=ids).values(*_columns(model)):
            rows[(table, row["history_id"])] = row
    return rows


def _walk(head, batch_size):
    """Check the entries up to the head, in order; (entries checked, last digest, first
    problem or None)."""
    previous, expected = GENESIS, 1
    key = settings.AUDIT_HMAC_KEY.encode()
    entries = (
        AuditEntry.objects.filter(chain=head, seq__lte=head.seq)
        .order_by("seq")
        .values_list("seq", "table", "history_id", "digest", "seal")
        .iterator(chunk_size=batch_size)
    )
    for batch in _batches(entries, batch_size):
        rows = _rows(batch)
        for seq, table, history_id, digest, entry_seal in batch:
            if seq != expected:
                return (
                    expected - 1,
                    previous,
                    _bad("deleted", expected, f"entries {expected} to {seq - 1} are missing"),
                )
            row = rows.get((table, history_id))
            if row is None:
                return (
                    seq - 1,
                    previous,
                    _bad("deleted", seq, "the history row it links was deleted", table, history_id),
                )
            computed = hashlib.sha256(previous.encode() + canonical(row)).hexdigest()
            if not hmac.compare_digest(seal(digest, key), entry_seal):
                detail = "its digest was rewritten: the seal does not match (no key)"
                return seq - 1, previous, _bad("altered", seq, detail, table, history_id)
            if computed != digest:
                kind, detail = _mismatch(head, seq, row, table)
                return seq - 1, previous, _bad(kind, seq, detail, table, history_id)
            previous, expected = digest, expected + 1
    return expected - 1, previous, None


# How far from an entry to look for the place its row belongs (a reordering is local).
REORDER_WINDOW = 100


def _mismatch(head, seq, row, table):
    """Why a sealed entry's digest does not cover its row: the row changed, or the row is
    intact but its entry was moved (its digest follows another entry's, nearby)."""
    data = canonical(row)
    target = AuditEntry.objects.get(chain=head, seq=seq).digest
    nearby = AuditEntry.objects.filter(
        chain=head, seq__gte=max(seq - REORDER_WINDOW, 1), seq__lte=seq + REORDER_WINDOW
    ).values_list("seq", "digest")
    for other_seq, digest in nearby:
        if hashlib.sha256(digest.encode() + data).hexdigest() == target:
            return "reordered", f"the entry was moved: it follows entry {other_seq}"
    if seq > 1 and hashlib.sha256(GENESIS.encode() + data).hexdigest() == target:
        return "reordered", "the entry was moved: it is the chain's first"
    return "altered", "the history row no longer matches its digest"


def _unlinked(head):
    """A history row of the chain that no entry links (inserted behind the app's back)."""
    for model in _history_models():
        linked = AuditEntry.objects.filter(chain_id=head.pk, table=model._meta.label)
        linked = linked.values("history_id")
        rows = model.objects.exclude(history_id__in=linked)
        if head.project_id is None:
            rows = rows.filter(**_global_filter(model))
        else:
            rows = rows.filter(**_project_filter(model, head.project_id))
        first = rows.order_by("history_id").values_list("history_id", flat=True).first()
        if first is not None:
            return _bad(
                "inserted", None, "a history row that no entry links", model._meta.label, first
            )
    return None


def _history_models():
    return [m for m in apps.get_app_config("wiki").get_models() if hasattr(m, "instance_type")]


def _project_filter(model, project_id):
    if model.instance_type is Project:
        return {"id": project_id}
    if "project_id" in _columns(model):
        return {"project_id": project_id}
    return {"pk__in": []}


def _global_filter(model):
    if model.instance_type is Project or "project_id" in _columns(model):
        return {"pk__in": []}
    return {}


def verify(head, batch_size=VERIFY_BATCH, record=True):
    """Walk ``head``'s chain and (if ``record``) keep the verdict on it; memory stays flat
    however long the history (entries and rows are read a batch at a time). A head never
    saved (a chain with no entry yet) is checked for history rows it should link."""
    if head.pk is None:
        problem = _unlinked(head)
        return _counted(Verdict(ok=problem is None, entries=0, head=head.digest, first_bad=problem))
    head.refresh_from_db()
    checked, last, problem = _walk(head, batch_size)
    if problem is None and (head.seq != checked or head.digest != last):
        problem = _bad(
            "deleted", checked + 1, f"the chain ends at entry {checked}, its head says {head.seq}"
        )
    if problem is None:
        # An append moves the head in the entry's own transaction, so an entry past the
        # head, read after it, was put there behind the application's back.
        last_seq = (
            AuditEntry.objects.filter(chain=head)
            .order_by("-seq")
            .values_list("seq", flat=True)
            .first()
        )
        if last_seq and last_seq > ChainHead.objects.get(pk=head.pk).seq:
            problem = _bad("inserted", last_seq, "an entry past the chain's head")
    if problem is None:
        problem = _unlinked(head)
    unchecked = None
    if problem is None and head.project_id is not None:
        try:
            problem = check_files(head.project_id, batch_size)
        except Unavailable:
            unchecked = UNCHECKED
    verdict = _counted(
        Verdict(
            ok=problem is None,
            entries=checked,
            head=head.digest,
            first_bad=problem,
            unchecked=unchecked,
        )
    )
    if not record or unchecked:
        return verdict
    ChainHead.objects.filter(pk=head.pk).update(
        verified_at=timezone.now(),
        verified_ok=verdict.ok,
        verified_entries=checked,
        first_bad=problem,
    )
    return verdict


UNCHECKED = "could not check files: storage unavailable"
SERIES_BATCH = 100  # chunks read per query: each holds up to 10,000 points as text


def check_files(project_id, batch_size=VERIFY_BATCH):
    """The first stored file, attachment or metric series of the project that no longer
    matches what its sealed history row holds, as a problem like the chain's (kinds
    "file-altered", "file-missing", "attachment-altered", "series-altered"); None when
    all match.

    Every SHA-256 any version of any attachment named (deleted ones too) is re-hashed
    from the storage, once; every attachment and series chunk row must hold what its
    latest history row sealed (a row re-pointed at other bytes, another run or metric, or
    deleted, is caught), and every chunk's points must hash to its sha256. Rows are
    streamed and files read in chunks, so memory stays flat. wiki.storage.Unavailable
    when the storage does not answer: the files are then unchecked, which is not
    tampering."""
    return (
        _check_rows(Attachment, project_id, ATTACHMENT_SEALED, "attachment-altered", batch_size)
        or _check_rows(SeriesChunk, project_id, SERIES_SEALED, "series-altered", SERIES_BATCH)
        or _check_stored_files(project_id, batch_size)
    )


# What a live row must still hold of its latest history row. Series chunks' points are
# not in the history; their sha256 is, and the points must hash to it.
ATTACHMENT_SEALED = (
    "name", "sha256", "size", "content_type", "revision", "deleted", "page_id",
    "training_run_id", "deployment_id", "model_version_id",
)  # fmt: skip
SERIES_SEALED = ("training_run_id", "metric", "count", "first_step", "last_step", "sha256")


def _what(model, row):
    if model is SeriesChunk:
        return f"training run #{row['training_run_id']}, metric {row['metric']} (chunk {row['id']})"
    return f"attachment {row['name']} (sha256 {row['sha256']})"


def _check_rows(model, project_id, sealed_fields, kind, batch_size):
    history = model.history.model
    label = history._meta.label
    extra = ("points",) if model is SeriesChunk else ()
    live = (
        model.objects.filter(project_id=project_id)
        .order_by("id")
        .values("id", *sealed_fields, *extra)
        .iterator(chunk_size=batch_size)
    )
    for batch in _batches(live, batch_size):
        latest = {}  # object id -> its latest history row
        rows = history.objects.filter(id__in=[row["id"] for row in batch])
        for row in rows.order_by("id", "history_id").values("id", "history_id", *sealed_fields):
            latest[row["id"]] = row
        for row in batch:
            seal = latest.get(row["id"])
            if seal is None:
                return _bad(kind, None, f"{_what(model, row)}: no history row seals it", label)
            if any(row[name] != seal[name] for name in sealed_fields):
                detail = f"{_what(model, seal)}: its row no longer holds what its history sealed"
                return _bad(kind, None, detail, label, seal["history_id"])
            if extra and series.digest(row["points"]) != row["sha256"]:
                detail = f"{_what(model, row)}: its points no longer hash to {row['sha256']}"
                return _bad(kind, None, detail, label, seal["history_id"])
    gone = (
        history.objects.filter(project_id=project_id)
        .exclude(id__in=model.objects.filter(project_id=project_id).values("id"))
        .order_by("history_id")
        .values("id", "history_id", *sealed_fields)
        .first()
    )
    if gone is not None:
        detail = f"{_what(model, gone)}: its row was deleted"
        return _bad(kind, None, detail, label, gone["history_id"])
    return None


def _check_stored_files(project_id, batch_size):
    versions = (
        Attachment.history.filter(project_id=project_id)
        .order_by("sha256", "history_id")
        .values_list("sha256", "name", "history_id")
        .iterator(chunk_size=batch_size)
    )
    previous = None
    for sha256, name, history_id in versions:
        if sha256 == previous:  # the same bytes under another version or name
            continue
        previous = sha256
        with answering():  # reading a bucket's object can fail after it was opened
            wrong = files.check_stored(sha256)
        if wrong is not None:
            kind = "file-missing" if wrong == files.MISSING else "file-altered"
            detail = f"attachment {name} (sha256 {sha256}): {wrong}"
            return _bad(kind, None, detail, Attachment.history.model._meta.label, history_id)
    return None


FILE_KINDS = ("file-altered", "file-missing", "attachment-altered", "series-altered")


def describe(bad):
    """A verdict's first problem in words: the entry (or, for a file or series, what it
    is), what happened to it and why."""
    if bad["kind"] in FILE_KINDS:
        return f"{bad['kind']}: {bad['detail']}"
    row = f" ({bad['table']} history row {bad['history_id']})" if bad["table"] else ""
    return f"entry {bad['seq']} {bad['kind']}{row}: {bad['detail']}"


def _counted(verdict):
    """A verdict, counted among the failures if it is one (the alert's metric)."""
    if not verdict.ok:
        metrics.AUDIT_VERIFICATION_FAILURES.inc()
    return verdict


def head_for(project=None):
    """The chain head of ``project`` (None: the global chain). Reading writes nothing: a
    chain with no entry yet gets an unsaved, empty head (the first append saves one)."""
    key = f"project:{project.pk}" if project else GLOBAL
    found = ChainHead.objects.filter(key=key).first()
    return found or ChainHead(key=key, project=project, seq=0, digest=GENESIS)


ACTIONS = {"+": "created", "~": "changed", "-": "deleted"}
# What a project's activity log holds: the kinds (model names) of its history rows.
ACTIVITY_KINDS = {
    "project": "project", "page": "page", "modelversion": "model version",
    "trainingrun": "training run", "deployment": "deployment", "membership": "membership",
    "exportjob": "export", "notificationsettings": "notification settings",
    "attachment": "attachment", "serieschunk": "metric series", "pipeline": "pipeline",
    "mlflowsync": "MLflow sync", "validation": "validation", "finding": "finding",
    "findingcomment": "finding comment",
}  # fmt: skip
CSV_HEADER = [
    "seq", "at", "user", "source", "kind", "action", "object", "object id", "reason",
    "request id", "digest",
]  # fmt: skip


def activity(project, *, user=None, source=None, kind=None, since=None, until=None):
    """Every change of ``project``, newest first: its chain's entries, filtered."""
    entries = AuditEntry.objects.filter(chain__project=project).order_by("-seq")
    if user:
        entries = entries.filter(username=user)
    if source:
        entries = entries.filter(source=source)
    if kind:
        entries = entries.filter(kind=kind)
    if since:
        entries = entries.filter(at__gte=since)
    if until:
        entries = entries.filter(at__lt=until)
    return entries


class _Echo:
    """A file-like object that hands back what is written to it (csv into a stream)."""

    def write(self, value):
        return value


def csv_cell(value):
    # A spreadsheet would run a text cell starting with = + - @ as a formula; the
    # apostrophe keeps a change reason such as "=HYPERLINK(...)" plain text.
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def activity_csv_response(project, entries):
    """A download of ``entries`` as ``<project>-activity.csv``, streamed."""
    response = StreamingHttpResponse(activity_csv(entries), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{project.slug}-activity.csv"'
    return response


def activity_csv(entries):
    """``entries`` as CSV lines (header first), read from the database a batch at a time."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    for e in entries.iterator(chunk_size=VERIFY_BATCH):
        row = [
            e.seq, e.at.isoformat(), e.username, e.source, e.kind, ACTIONS[e.action],
            e.object_repr, e.object_id, e.reason, e.request_id or "", e.digest,
        ]  # fmt: skip
        yield writer.writerow([csv_cell(value) for value in row])
