"""A Celery app for tests/test_beat.py: one entry due every second, sent by the lease
scheduler (wiki.beat) to the Redis in BEAT_TEST_BROKER. Each beat that sends a message
appends its process id to the list "beat-test:sent", so the test sees who sent what."""

import os

import redis
from celery import Celery
from celery.signals import before_task_publish

BROKER = os.environ["BEAT_TEST_BROKER"]
SENT = "beat-test:sent"

app = Celery("beat_app", broker=BROKER)
app.conf.beat_scheduler = "wiki.beat:LeaseScheduler"
app.conf.beat_lock_seconds = float(os.environ["BEAT_LOCK_SECONDS"])
app.conf.beat_schedule = {"every-second": {"task": "beat_app.tick", "schedule": 1.0}}

_sent = redis.Redis.from_url(BROKER)


@before_task_publish.connect
def _record(sender=None, **kwargs):
    _sent.rpush(SENT, os.getpid())
