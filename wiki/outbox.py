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


def send(task, model, ids):
    """Queue ``task`` for each of ``ids`` (rows of ``model``) once the current
    transaction commits; what cannot be queued now is left to the sweep."""
    ids = list(ids)
    if ids:
        transaction.on_commit(lambda: send_now(task, model, ids))


def send_now(task, model, ids):
    """Hand ``ids`` to the broker now; returns how many were queued."""
    eager = task.app.conf.task_always_eager
    server = breaker.of(task.app.conf.broker_url)
    queued = []
    for pk in ids:
        if not eager and not server.closed:
            break
        try:
            task.delay(pk)
        except Exception as error:  # noqa: BLE001  the work is kept: the sweep sends it
            if eager:  # run in-process: a bug, not an outage
                logger.exception("%s(%s) failed", task.name, pk)
                continue
            server.failed(error)
            break
        server.succeeded()
        queued.append(pk)
    if queued:
        model.objects.filter(pk__in=queued).update(due_at=timezone.now())
    return len(queued)


def lost(queryset, now=None):
    """The rows of ``queryset`` (those waiting for a message) that have none: never
    queued, or queued so long ago that the message was lost."""
    cutoff = (now or timezone.now()) - timedelta(minutes=settings.REQUEUE_AFTER_MINUTES)
    return queryset.filter(due_at__isnull=True) | queryset.filter(due_at__lt=cutoff)
