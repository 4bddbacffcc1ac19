"""Real Celery workers for the tests that need one: another process, on the test's
database and a Redis broker."""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from django.conf import settings
from django.db import connection

from wiki.celery import app as celery_app

ROOT = Path(__file__).resolve().parent.parent

# A worker is another process: it needs the broker and a database it can reach.
needs_real_worker = pytest.mark.skipif(
    not settings.CELERY_BROKER_URL or connection.vendor == "sqlite",
    reason="needs REDIS_URL and a server database (the .ci/run PostgreSQL + Redis pass)",
)


def start_worker(queue, **env):
    """A celery worker process on ``queue`` and the default queue, using the test database."""
    url = urlsplit(os.environ["DATABASE_URL"])
    test_db_url = urlunsplit(url._replace(path="/" + connection.settings_dict["NAME"]))
    # Its log goes to a file: a pipe nobody reads while it runs would fill up and stop it.
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115  closed by stop()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "wiki",
            "worker",
            "--pool=solo",
            "--queues",
            # Its own queue, and the default one that tasks sent by the code go to.
            f"{queue},{celery_app.conf.task_default_queue}",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=INFO",
        ],  # fmt: skip
        cwd=ROOT,
        # The worker writes exports where the test reads them.
        env=os.environ
        | {"DATABASE_URL": test_db_url, "MEDIA_ROOT": str(settings.MEDIA_ROOT)}
        | env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    process.log = log
    return process


def stop(processes):
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(timeout=30)
        process.log.seek(0)
        print(process.log.read())
        process.log.close()


def until(condition, what, seconds=60):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {seconds} s"
        time.sleep(0.2)


def drained(queue, broker_url=None):
    """Whether the broker holds no task for ``queue`` or the default queue, waiting or
    taken but not yet acknowledged (acks_late: acknowledged once run)."""
    broker = redis.Redis.from_url(broker_url or settings.CELERY_BROKER_URL)
    waiting = broker.llen(queue) + broker.llen(celery_app.conf.task_default_queue)
    return waiting == 0 and broker.hlen("unacked") == 0
