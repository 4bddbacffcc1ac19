"""One beat sends the schedule even when two run: the second stands by until the first
stops holding the lease in Redis, then takes over (wiki.beat)."""

import os
import signal
import subprocess
import sys
import tempfile
from datetime import timedelta

import pytest
from celery import Celery
from django.conf import settings
from django.db import connection

from tests.workers import ROOT, until
from wiki.beat import LEASE_KEY, LeaseScheduler

needs_server_setup = pytest.mark.skipif(
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


@needs_server_setup
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


def test_a_beat_that_shuts_down_gives_the_lease_back_and_a_standing_by_one_lets_time_run(
    own_redis, tmp_path
):
    app = Celery("lease-test", broker=own_redis.url)
    app.conf.beat_lock_seconds = 60
    app.conf.beat_schedule = {"hourly": {"task": "t", "schedule": 3600.0}}

    def scheduler(name):
        return LeaseScheduler(app=app, schedule_filename=str(tmp_path / name))

    first, second = scheduler("first"), scheduler("second")
    open_ones = [first, second]
    try:
        assert first._hold_lease() and not second._hold_lease()
        assert first._hold_lease()  # renewed, still its own
        # An entry the standing-by beat would find overdue, as after an hour standing by…
        entry = second.schedule["hourly"]
        entry.last_run_at = entry.default_now() - timedelta(hours=2)
        assert entry.is_due().is_due
        second.tick()  # …counts as just run (the leader ran it): nothing sent on taking over
        assert not second.schedule["hourly"].is_due().is_due
        open_ones.remove(first)
        first.close()  # a clean shutdown: the lease is free at once, not in 60 s
        assert own_redis.client().get(LEASE_KEY) is None
        assert second._hold_lease()
    finally:
        for beat in open_ones:
            beat.close()
