"""Periodic work run by Celery beat (CELERY_BEAT_SCHEDULE), or in-process without a broker.

The tasks a write queues live beside the service that queues them
(wiki.services.notifications.deliver_notification, wiki.services.exports.build_export,
wiki.services.mlflow.run_sync);
importing them here registers them with a worker, which imports this module.
"""

from datetime import timedelta
from importlib import import_module

from axes.models import AccessAttempt
from celery import shared_task
from django.conf import settings
from django.utils import timezone

from wiki.models import IdempotencyKey
from wiki.services import exports, mlflow, notifications
from wiki.services.exports import build_export
from wiki.services.mlflow import run_sync
from wiki.services.notifications import deliver_notification

__all__ = ["build_export", "deliver_notification", "run_sync"]


@shared_task
def clear_expired_sessions():
    """Delete expired login sessions (daily)."""
    import_module(settings.SESSION_ENGINE).SessionStore.clear_expired()


@shared_task
def forget_failed_logins():
    """Delete the failed-login counts (django-axes) whose cool-off has ended (daily): they
    pause nobody any more, and a run of guesses at many user names would otherwise leave
    a row per name for ever."""
    cutoff = timezone.now() - timedelta(hours=settings.AXES_COOLOFF_TIME)
    AccessAttempt.objects.filter(attempt_time__lt=cutoff).delete()


@shared_task
def purge_idempotency_keys():
    """Forget Idempotency-Keys older than IDEMPOTENCY_KEYS_KEPT_DAYS (daily).

    A retry comes within minutes or hours; a month later the same key is a new request.
    Deleting what is already deleted is harmless, so two runs at once need no claim.
    """
    cutoff = timezone.now() - timedelta(days=settings.IDEMPOTENCY_KEYS_KEPT_DAYS)
    IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()


@shared_task
def send_daily_digest():
    """Queue each project's digest of stale and incomplete pages (daily at DIGEST_TIME).
    Two runs the same day queue it once (wiki.services.notifications)."""
    return len(notifications.queue_digests())


@shared_task
def sweep():
    """The outbox's sweep (every minute): queue again the notifications and exports the
    broker never got or lost, and deal with those a dead worker left midway."""
    queued_exports, failed_exports = exports.sweep()
    return {
        "deliveries_queued": notifications.sweep(),
        "exports_queued": queued_exports,
        "exports_failed": failed_exports,
    }


@shared_task
def queue_mlflow_syncs():
    """Queue the MLflow syncs that are due, and those that lost their worker (every
    minute)."""
    return mlflow.queue_due_syncs()
