"""The Celery application; configuration comes from Django settings (CELERY_*)."""

import os

from celery import Celery

from wiki import logs

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wiki.settings")

app = Celery("wiki")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
logs.connect_task_logging()
