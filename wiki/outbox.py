"""Work handed to Celery after a write commits, and never lost when the broker is away.

The row a write creates in its own transaction (a Delivery to send, an ExportJob to
build) is the truth; a Celery message only says "look at row N". ``send`` hands the ids
to the broker once the transaction commits and notes when (``due_at``). With the broker
down, hung, or skipped by its circuit breaker (wiki.breaker), it leaves them unqueued and
returns at once: the request that wrote them never waits on Redis.

The sweep (Celery beat, every minute: wiki.tasks.sweep) sends again every row never
queued (``due_at`` empty) and every row whose message should have run long ago
(REQUEUE_AFTER_MINUTES past ``due_at``: lost with a broker that restarted empty, or taken
by a worker that died). A row may so get two messages; whatever does the work claims the
row first (a conditional UPDATE or a row lock), so the second finds nothing to do.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from wiki import breaker

logger = logging.getLogger(__name__)
# Rows one sweep sends at most: a long outage is caught up over a few minutes.
SWEPT_AT_ONCE = 1000


def send(task, model, ids):
    """Queue ``task`` for each of ``ids`` (rows of ``model``) once the current
    transaction commits; what cannot be queued now is left to the sweep."""
    ids = list(ids)
    if ids:
        transaction.on_commit(lambda: send_now(task, model, ids))


def send_now(task, model, ids):
    """Hand ``ids`` to the broker now; returns how many were queued."""
    if task.app.conf.task_always_eager:  # run in-process: an error is a bug, not an outage
        for pk in ids:
            try:
                task.delay(pk)
            except Exception:  # the write it follows has committed: log, don't undo
                logger.exception("%s(%s) failed", task.name, pk)
        return len(ids)
    server = breaker.of(task.app.conf.broker_url)
    if not server.closed:
        return 0
    # Marked due before it is sent: a worker that takes it at once and fails it sets the
    # retry's time, which must not be overwritten afterwards.
    due = timezone.now()
    model.objects.filter(pk__in=ids).update(due_at=due)
    for number, pk in enumerate(ids):
        try:
            task.delay(pk)
        except breaker.OUTAGE as error:
            server.failed(error)
        except Exception:  # a bug (a message that cannot be encoded): say so, keep the row
            logger.exception("%s(%s) could not be queued", task.name, pk)
        else:
            server.succeeded()
            continue
        # Not sent: back to never queued, for the sweep (unless a worker moved it since).
        model.objects.filter(pk__in=ids[number:], due_at=due).update(due_at=None)
        return number
    return len(ids)


def lost(queryset, now=None):
    """The ids of the rows of ``queryset`` (those waiting for a message) that have none:
    never queued, or queued so long ago that the message was lost; SWEPT_AT_ONCE at most."""
    cutoff = (now or timezone.now()) - timedelta(minutes=settings.REQUEUE_AFTER_MINUTES)
    waiting = queryset.filter(due_at__isnull=True) | queryset.filter(due_at__lt=cutoff)
    return list(waiting.order_by("pk").values_list("pk", flat=True)[:SWEPT_AT_ONCE])
