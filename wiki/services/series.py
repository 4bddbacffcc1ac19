"""Appending metric series (learning curves) to training runs."""

from django.db import transaction
from django.utils import timezone
from simple_history.signals import post_create_historical_record, pre_create_historical_record

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
        return store(run, rows)


def store(run, rows):
    """Write ``rows`` (checked by wiki.series.parse) as chunks of ``run``, in the caller's
    transaction and recording block (record_training_run's, or append's)."""
    chunks = []
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
    signals; the signals are sent here as a save sends them, so every row is stamped and
    sealed into the audit chain by the same receivers (wiki.signals).
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
        rows.append(row)
    History.objects.bulk_create(rows)
    for chunk, row in zip(chunks, rows, strict=True):
        post_create_historical_record.send(
            sender=History, instance=chunk, history_instance=row, history_date=now,
            history_user=row.history_user, history_change_reason=row.history_change_reason,
            using=None,
        )  # fmt: skip
