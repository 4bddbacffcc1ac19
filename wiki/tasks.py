"""Background work run by Celery workers (or in-process when no broker is configured)."""

from importlib import import_module

from celery import shared_task
from django.conf import settings


@shared_task
def clear_expired_sessions():
    """Delete expired login sessions; scheduled daily by Celery beat (CELERY_BEAT_SCHEDULE)."""
    import_module(settings.SESSION_ENGINE).SessionStore.clear_expired()
