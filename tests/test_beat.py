"""One beat sends the schedule even when two run: the second stands by until the first
stops holding the lease in Redis, then takes over (wiki.beat)."""

import os
import signal
import subprocess
import sys
import tempfile

import pytest
from django.conf import settings
from django.db import connection

from tests.workers import ROOT, until

pytestmark = pytest.mark.skipif(
    not settings.CELERY_BROKER_URL or connection.vendor == "sqlite",
    reason="beat runs beside a broker and a server database (the .ci/run PostgreSQL + Redis "
    "pass); on SQLite Celery runs tasks in-process and there is no beat",
)
LEASE_SECONDS = 3
SENT = "beat-test:sent"  # tests/beat_app.py's list


def start_beat(redis_url, directory, name):
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115  closed by the test
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tests.beat_app", "beat", "--loglevel=INFO",
         "--schedule", str(directory / f"{name}-schedule"),
         "--pidfile", str(directory / f"{name}.pid")],
        cwd=ROOT,
        env=os.environ | {"BEAT_TEST_BROKER": redis_url, "BEAT_LOCK_SECONDS": str(LEASE_SECONDS)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    process.log = log
    return process


def logged(process):
    process.log.seek(0)
    return process.log.read()


def test_two_beats_send_each_run_once_and_the_second_takes_over(own_redis, tmp_path):
    sent = own_redis.client()

    def senders():
        return [int(pid) for pid in sent.lrange(SENT, 0, -1)]

    beats = [start_beat(own_redis.url, tmp_path, name) for name in ("a", "b")]
    try:
        until(lambda: len(senders()) >= 4, "four runs sent")
        (leader,) = {beat for beat in beats if beat.pid in senders()}
        (other,) = set(beats) - {leader}
        # Both run; only the lease holder sends, every run once.
        assert other.poll() is None
        assert set(senders()) == {leader.pid}
        until(lambda: "standing by" in logged(other), "the second beat standing by")

        leader.send_signal(signal.SIGKILL)  # no clean shutdown: the lease must run out
        leader.wait(timeout=30)
        before = len(senders())
        until(lambda: senders().count(other.pid) >= 3, "three runs sent by the second beat")
        # The runs go on from the second beat alone, after the last of the first one.
        assert senders()[:before] == [leader.pid] * before
        assert set(senders()[before:]) == {other.pid}
        assert "holds the lease" in logged(other)
    finally:
        for beat in beats:
            if beat.poll() is None:
                beat.terminate()
                beat.wait(timeout=30)
            print(logged(beat))
            beat.log.close()
