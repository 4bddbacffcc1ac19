"""The Celery application; configuration comes from Django settings (CELERY_*)."""

import os

from celery import Celery, signals

from wiki import logs

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wiki.settings")

app = Celery("wiki")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
logs.connect_task_logging()


@signals.worker_ready.connect
def serve_metrics(**kwargs):
    """A worker has no web server: it answers /metrics itself on WORKER_METRICS_PORT."""
    from django.conf import settings

    from wiki import metrics

    if settings.WORKER_METRICS_PORT:
        metrics.serve(settings.WORKER_METRICS_PORT)
