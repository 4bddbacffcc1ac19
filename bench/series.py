#!/usr/bin/env python3
"""Learning curves: appending 10,000 points in one call, and reading 20 series of 10,000.

1. Append, over HTTP: gunicorn as deployed (deploy/gunicorn.conf.py, two synchronous
   workers) on this benchmark's database; N POSTs of .../training-runs/{id}/series/, each
   one metric of 10,000 points with timestamps (about 600 KB of JSON) and an
   Idempotency-Key, one at a time on a keep-alive connection. The time is the client's:
   parsing, checks, the chunk, its history row and audit link, the key's stored answer.
   Target (issue 12): under 300 ms.
2. Read, in this process: wiki.series.curves() of a run holding 20 series of 10,000 points
   (the first 20 appends), at max_points 1000 (the API's default) and 500: the server's
   share of the run page and of GET .../series/ (one query, decoding, downsampling).
   Target: well under 150 ms. Then GET .../series/ over HTTP, for the whole round trip.

The database is DATABASE_URL when set (PostgreSQL: test_<name>, created and dropped
here), else a new SQLite file.

  DATABASE_URL=postgres://mlwiki@127.0.0.1:5432/mlwiki_bench .venv/bin/python bench/series.py
"""

import argparse
import http.client
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SERIES, POINTS = 20, 10_000


def summary(name, times):
    times = sorted(times)
    p90 = times[min(len(times) - 1, round(0.9 * len(times)) - 1)]
    return (
        f"{name}: median {statistics.median(times):.0f} ms, p90 {p90:.0f} ms, "
        f"slowest {times[-1]:.0f} ms over {len(times)}"
    )


def series_body(number):
    """One metric of POINTS points, a noisy falling curve, a timestamp a second apart."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    points = [
        {
            "step": step,
            "value": 1 / (1 + step / 500) + ((step * 7919 + number) % 97) / 970,
            "timestamp": (start + timedelta(seconds=step)).isoformat().replace("+00:00", "Z"),
        }
        for step in range(POINTS)
    ]
    return json.dumps({f"metric_{number % SERIES:02}": points}).encode()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=40, help="appends timed (at least 20)")
    parser.add_argument("--reads", type=int, default=20, help="reads timed")
    args = parser.parse_args()

    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wiki.settings")
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_databases, setup_test_environment, teardown_databases

    setup_test_environment()
    databases = setup_databases(verbosity=0, interactive=False)
    server = None
    try:
        from django.contrib.auth.models import User

        from tests import workers
        from wiki import series
        from wiki.history import Actor, Source
        from wiki.models import TrainingRun
        from wiki.services.projects import create_project
        from wiki.services.records import record_training_run
        from wiki.services.tokens import create_token

        user = User.objects.create_user("bench")
        actor = Actor(user, Source.CLI)
        project = create_project(actor=actor, slug="bench", name="Benchmark", owner_team="b")
        runs = [
            record_training_run(
                project, actor=actor, model_version="1.0.0", status="succeeded",
                started_at=datetime(2024, 6, 1, tzinfo=UTC), metrics={"auc": 0.8},
            )
            # One more for the warm-up.
            for _ in range((args.n + SERIES - 1) // SERIES + 1)
        ]  # fmt: skip
        _, key = create_token(
            actor=actor, user=user, name="bench", scopes=["read", "records:write"],
            projects=[project.slug],
        )  # fmt: skip
        server = workers.start_web(
            DEBUG="false", ALLOWED_HOSTS="127.0.0.1", SECURE_SSL_REDIRECT="false",
            SECRET_KEY=secrets.token_urlsafe(50), API_THROTTLE_RATE="100000000/minute",
            WEB_CONCURRENCY="2", LOG_FORMAT="json",
        )  # fmt: skip
        workers.until_serving(server)
        http_connection = http.client.HTTPConnection("127.0.0.1", int(server.url.rsplit(":", 1)[1]))
        headers = {"Authorization": f"Token {key}", "Content-Type": "application/json"}

        def request(method, path, body=None, extra=None):
            http_connection.request(method, path, body, headers | (extra or {}))
            response = http_connection.getresponse()
            return response.status, response.read()

        bodies = [series_body(number) for number in range(args.n)]
        print(f"{connection.vendor}; gunicorn, 2 workers; {os.cpu_count()} cores; "
              f"{POINTS:,} points per call, {len(bodies[0]) // 1024} KiB of JSON")  # fmt: skip
        # Warm-up: both workers' connections and imports (on a run of its own).
        for number in range(4):
            path = f"/api/v1/projects/bench/training-runs/{runs[-1].pk}/series/"
            status, _ = request("POST", path, series_body(number))
            assert status == 201, status
        times = []
        for number, body in enumerate(bodies):
            run = runs[number // SERIES]
            path = f"/api/v1/projects/bench/training-runs/{run.pk}/series/"
            started = time.perf_counter()
            status, answer = request("POST", path, body, {"Idempotency-Key": f"a-{number}"})
            times.append((time.perf_counter() - started) * 1000)
            assert status == 201, (status, answer[:300])
        print(summary("append 10,000 points (HTTP)", times))

        run = TrainingRun.objects.get(pk=runs[0].pk)
        assert series.counts(run) == {f"metric_{i:02}": POINTS for i in range(SERIES)}
        for max_points in (1000, 500):
            series.curves(run, max_points=max_points)  # warm-up
            times = []
            for _ in range(args.reads):
                started = time.perf_counter()
                found = series.curves(run, max_points=max_points)
                times.append((time.perf_counter() - started) * 1000)
            assert len(found) == SERIES and all(c.downsampled for c in found)
            print(summary(f"curves() of {SERIES} x {POINTS:,}, max_points {max_points}", times))
        times = []
        for _ in range(args.reads):
            started = time.perf_counter()
            path = f"/api/v1/projects/bench/training-runs/{run.pk}/series/"
            status, answer = request("GET", path)
            times.append((time.perf_counter() - started) * 1000)
            assert status == 200, status
        print(summary(f"GET .../series/ (HTTP, {len(answer) // 1024} KiB)", times))
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
            server.log.close()  # its log: a line per request (LOG_FORMAT=json)
        teardown_databases(databases, verbosity=0)


if __name__ == "__main__":
    main()
