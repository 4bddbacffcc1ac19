"""Real Celery workers and gunicorn web servers for the tests that need them: other
processes, on the test's database and a Redis broker."""

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
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


def subprocess_env(**env):
    """The environment of another process of the test's: its database (pytest-django's
    test_…), where it writes exports (where the test reads them) and the chain's key (the
    test verifies what it seals); plus ``env``."""
    name = connection.settings_dict["NAME"]
    if connection.vendor == "sqlite":
        database_url = f"sqlite:///{name}"
    else:
        url = urlsplit(os.environ["DATABASE_URL"])
        database_url = urlunsplit(url._replace(path=f"/{name}"))
    return (
        os.environ
        | {
            "DATABASE_URL": database_url,
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "AUDIT_HMAC_KEY": settings.AUDIT_HMAC_KEY,
        }
        | env
    )


def _start(command, env):
    """``command`` in the checkout, with ``subprocess_env(**env)``; its output goes to
    ``.log`` (printed by ``stop``)."""
    # A file: a pipe nobody reads while it runs would fill up and stop it.
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115  closed by stop()
    process = subprocess.Popen(
        command, cwd=ROOT, env=subprocess_env(**env), stdout=log, stderr=subprocess.STDOUT
    )
    process.log = log
    return process


def start_worker(queue, hostname=None, pool="solo", **env):
    """A celery worker process on ``queue`` and the default queue, using the test database;
    ``hostname`` names it among several (as on several hosts); ``pool="prefork"`` gives it
    two pool processes, as deployed."""
    command = [
        sys.executable, "-m", "celery", "-A", "wiki", "worker", f"--pool={pool}",
        # Its own queue, and the default one that tasks sent by the code go to.
        "--queues", f"{queue},{celery_app.conf.task_default_queue}",
        "--without-gossip", "--without-mingle", "--loglevel=INFO",
    ]  # fmt: skip
    if hostname:
        command.append(f"--hostname={hostname}")
    if pool == "prefork":
        command.append("--concurrency=2")
    return _start(command, env)


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now (others' tests run alongside)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_web(**env):
    """gunicorn as deployed (deploy/gunicorn.conf.py) on a free 127.0.0.1 port, using the
    test database; its address is ``.url``. Wait for it with ``until_serving``."""
    port = free_port()
    config = str(ROOT / "deploy" / "gunicorn.conf.py")
    command = [sys.executable, "-m", "gunicorn", "-c", config, f"--bind=127.0.0.1:{port}"]
    process = _start(command, env)
    process.url = f"http://127.0.0.1:{port}"
    return process


def until_serving(process, seconds=60):
    """Wait until the web server ``process`` answers /healthz/; fail at once if it died."""

    def serving():
        assert process.poll() is None, f"the web server {process.url} exited"
        try:
            url = f"{process.url}/healthz/"
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310  http://127.0.0.1
                return response.status == 200
        except OSError:  # not listening yet (URLError is an OSError)
            return False

    until(serving, f"the web server {process.url} did not serve", seconds)


def stop(processes):
    """Stop ``processes`` (SIGTERM: gunicorn and Celery finish what they do) and print
    their logs, which pytest shows when the test failed."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:  # stuck: it must not outlive the test
            process.kill()
            process.wait()
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
