"""Appending metric series (learning curves) to training runs."""

from django.db import transaction
from django.utils import timezone
from simple_history.signals import pre_create_historical_record

from wiki import audit, search
from wiki import series as curves
from wiki.history import recording
from wiki.models import SeriesChunk


def append(run, series, *, actor, change_reason=""):
    """Add the posted ``series`` (``{metric: [{"step", "value", "timestamp"}, …]}``) to
    ``run``: one SeriesChunk per metric, all in one transaction. Returns the chunks.

    ValidationError (on ``series``) names the metric and point that is wrong; nothing is
    written then.
    """
    rows = curves.parse(series)
    points = sum(map(len, rows.values()))
    reason = change_reason or f"Appended {points:,} points of {', '.join(rows)}"[:200]
    with recording(actor, reason), transaction.atomic(savepoint=False):
        return store([(run, rows)])


def store(pairs):
    """Write the series of runs, ``pairs`` of (run, rows checked by wiki.series.parse), as
    chunks, in the caller's transaction and recording block (wiki.ingest's, append's):
    one insert of the chunks and one of their history rows, whatever their number."""
    chunks = []
    for run, rows in pairs:
        for metric, points in rows.items():
            text = curves.canonical(points)
            steps = [point[0] for point in points]
            chunks.append(
                SeriesChunk(
                    project_id=run.project_id, training_run=run, metric=metric, points=text,
                    count=len(points), first_step=min(steps), last_step=max(steps),
                    sha256=curves.digest(text),
                )
            )  # fmt: skip
    SeriesChunk.objects.bulk_create(chunks)
    _history(chunks)
    return chunks


def _history(chunks):
    """The history row of each new chunk, inserted in one statement.

    bulk_create writes no history, and simple-history's bulk_history_create sends no
    signals: each row is stamped by the receivers of pre_create_historical_record, as a
    save does, and all are sealed into the audit chain and indexed at once.
    """
    History = SeriesChunk.history.model
    now = timezone.now()
    rows = []
    for chunk in chunks:
        row = History(
            history_date=now, history_type="+", history_user=None, history_change_reason=None,
            **{field.attname: getattr(chunk, field.attname) for field in History.tracked_fields},
        )  # fmt: skip
        pre_create_historical_record.send(
            sender=History, instance=chunk, history_instance=row, history_date=now,
            history_user=None, history_change_reason=None, using=None,
        )  # fmt: skip
        # A new record's series come from where it does (wiki.ingest, wiki.history).
        row.history_origin = getattr(chunk.training_run, "_origin", row.history_origin)
        rows.append(row)
    History.objects.bulk_create(rows)
    # What the receivers of post_create_historical_record do row by row (wiki.signals),
    # for all the rows at once.
    audit.append_many(rows, chunks)
    search.index_new(chunks)
