#!/usr/bin/env python3
"""Server time of a training run's page with 20 metric series of 10,000 points each.

mlwiki runs in this process and the page is asked for through Django's test client, so the
time is the server's own (middleware, queries, downsampling, charts, template), without a
network or a browser. The database is DATABASE_URL when set (PostgreSQL: a database of its
own, created and dropped here), else a new SQLite file.

  .venv/bin/python bench/run_page.py [-n 20] [--series 20] [--points 10000]

Prints the median, 90th percentile and slowest of N requests (after one warm-up), and the
queries one request makes. The target (issue 12) is under 150 ms.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20, help="timed requests")
    parser.add_argument("--series", type=int, default=20, help="metric series of the run")
    parser.add_argument("--points", type=int, default=10_000, help="points of each series")
    args = parser.parse_args()

    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wiki.settings")
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import (
        setup_databases,
        setup_test_environment,
        teardown_databases,
    )

    # As the test runner does (DEBUG off, "testserver" allowed), with a fresh database
    # (PostgreSQL: test_<name>) dropped at the end.
    setup_test_environment()
    databases = setup_databases(verbosity=0, interactive=False)
    try:
        from django.contrib.auth.models import User

        from wiki.history import Actor, Source
        from wiki.services import series
        from wiki.services.projects import create_project
        from wiki.services.records import record_training_run

        user = User.objects.create_user("bench")
        actor = Actor(user, Source.CLI)
        project = create_project(actor=actor, slug="bench", name="Benchmark", owner_team="b")
        run = record_training_run(
            project, actor=actor, model_version="1.0.0", status="succeeded",
            started_at=datetime(2024, 6, 1, tzinfo=UTC), metrics={"auc": 0.8},
            hyperparameters={f"param_{i}": i / 100 for i in range(20)},
        )  # fmt: skip
        started = time.perf_counter()
        for number in range(args.series):
            # A noisy, falling curve: downsampling has real minima and maxima to keep.
            points = [
                {"step": step, "value": 1 / (1 + step / 500) + ((step * 7919 + number) % 97) / 970}
                for step in range(args.points)
            ]
            series.append(run, {f"metric_{number:02}": points}, actor=actor)
        print(f"{args.series} series of {args.points} points appended in "
              f"{time.perf_counter() - started:.1f} s ({connection.vendor})")  # fmt: skip

        client = Client()
        client.force_login(user)
        url = f"/projects/{project.slug}/runs/{run.pk}/"
        queries = []

        def count(execute, sql, *rest):
            queries.append(sql)
            return execute(sql, *rest)

        with connection.execute_wrapper(count):
            response = client.get(url)  # warm-up: connections, templates, caches
        assert response.status_code == 200, response.status_code
        assert response.content.count(b'class="series"') == args.series
        times, cpu = [], []
        for _ in range(args.n):
            started, started_cpu = time.perf_counter(), time.process_time()
            response = client.get(url)
            times.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
        times.sort()
        p90 = times[min(len(times) - 1, round(0.9 * len(times)) - 1)]
        # CPU time of this process (all of it on SQLite; without the database's on
        # PostgreSQL): what a request costs when other work shares the cores.
        print(f"run page: median {statistics.median(times):.0f} ms, p90 {p90:.0f} ms, "
              f"slowest {times[-1]:.0f} ms over {args.n} requests (CPU: median "
              f"{statistics.median(cpu):.0f} ms); {len(queries)} queries, "
              f"{len(response.content) // 1024} KiB of HTML")  # fmt: skip
    finally:
        teardown_databases(databases, verbosity=0)


if __name__ == "__main__":
    main()
