"""Background work run by Celery workers (or in-process when no broker is configured)."""

from datetime import timedelta
from importlib import import_module

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from wiki.models import IdempotencyKey
from wiki.services import exports, notifications


@shared_task
def clear_expired_sessions():
    """Delete expired login sessions; scheduled daily by Celery beat (CELERY_BEAT_SCHEDULE)."""
    import_module(settings.SESSION_ENGINE).SessionStore.clear_expired()


@shared_task
def purge_idempotency_keys():
    """Forget Idempotency-Keys older than IDEMPOTENCY_KEYS_KEPT_DAYS (scheduled daily).

    A retry comes within minutes or hours; a month later the same key is a new request.
    Deleting what is already deleted is harmless, so two runs at once need no claim.
    """
    cutoff = timezone.now() - timedelta(days=settings.IDEMPOTENCY_KEYS_KEPT_DAYS)
    IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()


@shared_task(bind=True, max_retries=3, acks_late=True)
def build_export(self, job_id):
    """Build one audit report (wiki.services.exports.build). A database hiccup is retried
    with a growing delay; after the last try, or on any other error, the job is failed."""
    try:
        exports.build(job_id)
    except exports.TRANSIENT as error:
        if self.request.retries >= self.max_retries:
            exports.fail(job_id, f"Gave up after {self.max_retries + 1} tries: {error}")
            return
        raise self.retry(exc=error, countdown=10 * 2**self.request.retries) from error


@shared_task
def fail_stale_exports():
    """Fail exports whose worker died mid-job (scheduled every few minutes)."""
    return exports.fail_stale()


@shared_task
def send_daily_digest():
    """Queue each project's digest of stale and incomplete pages (scheduled daily at
    DIGEST_TIME). Two runs the same day queue it once (wiki.services.notifications)."""
    return len(notifications.queue_digests())


@shared_task(bind=True, max_retries=settings.NOTIFY_RETRIES, acks_late=True)
def deliver_notification(self, delivery_id):
    """Send one notification; a failure is retried with a growing delay (NOTIFY_RETRY_DELAY,
    doubled each time), then the delivery is failed. Run in-process (no broker), it is tried once:
    a retry there would hold up the request that caused it."""
    final = self.request.is_eager or self.request.retries >= self.max_retries
    error = notifications.deliver(delivery_id, final=final)
    if error and not final:
        raise self.retry(countdown=settings.NOTIFY_RETRY_DELAY * 2**self.request.retries)


@shared_task
def fail_stuck_deliveries():
    """Fail notifications whose worker died mid-send (scheduled every few minutes)."""
    return notifications.fail_stuck()
