"""Server time of the runs table of a project with 100,000 training runs.

Builds (once) the project "runs-bench" in the database DATABASE_URL names (PostgreSQL),
then asks for the runs table filtered by metric conditions and sorted by a metric or a
parameter, and prints the median and p95 server time of REPEAT requests (the Django test
client, in-process: the request's whole server side, no network) and the queries of
each; then the plans PostgreSQL chose (EXPLAIN ANALYZE) for the filtered, metric-sorted
page, to show which indexes they use.

The runs, which only need to be there, are inserted directly and in bulk, not through
record_training_run (no history rows, audit chain or search entries): the runs with
bulk_create, their RunValue rows (about 19 a run: 2 to 10 metrics and 10 parameters, as
record_training_run writes them, through RunValue.of) with COPY. The build takes about a minute.

    DATABASE_URL=postgres://mlwiki@127.0.0.1:5432/mlwiki_table .venv/bin/python bench/runs_table.py
"""

import io
import os
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wiki.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from wiki import run_table  # noqa: E402
from wiki.history import Actor, Source  # noqa: E402
from wiki.models import ModelVersion, Project, RunValue, TrainingRun  # noqa: E402
from wiki.services.projects import create_project  # noqa: E402

SLUG, RUNS, VERSIONS, REPEAT = "runs-bench", 100_000, 50, 30
OPTIMIZERS = ["adam", "sgd", "rmsprop", "adagrad"]


def values(rng, n):
    """(metrics, hyperparameters) of run number ``n``: auc and loss on every run, the
    others on most; numeric and text parameters."""
    auc = rng.betavariate(8, 3)
    metrics = {"auc": auc, "loss": max(0.0, 1 - auc + rng.gauss(0, 0.05))}
    for i in range(8):
        if rng.random() < 0.9:
            metrics[f"metric_{i}"] = rng.random()
    params = {
        "lr": rng.choice([0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03]),
        "depth": rng.randint(2, 16),
        "optimizer": rng.choice(OPTIMIZERS),
        "early_stopping": n % 3 == 0,
    }
    params |= {f"param_{i}": rng.random() for i in range(6)}
    return metrics, params


def build(rng):
    user = User.objects.create_superuser("runs-bench", password="bench")  # noqa: S106
    project = create_project(
        actor=Actor(user, Source.CLI), slug=SLUG, name="Runs bench", owner_team="bench"
    )
    versions = [
        ModelVersion.objects.create(project=project, version=f"1.{v}") for v in range(VERSIONS)
    ]
    now = timezone.now()
    statuses = ["succeeded"] * 18 + ["failed", "running"]
    for start in range(0, RUNS, 5000):
        batch = []
        for n in range(start, start + 5000):
            metrics, params = values(rng, n)
            batch.append(
                TrainingRun(
                    project=project, model_version=versions[n * VERSIONS // RUNS],
                    status=rng.choice(statuses), started_at=now - timedelta(minutes=RUNS - n),
                    metrics=metrics, hyperparameters=params, tags={"team": f"team-{n % 5}"},
                    dataset_name="customers", dataset_version=f"2024-{n % 12 + 1:02}",
                )
            )  # fmt: skip
        runs = TrainingRun.objects.bulk_create(batch)
        # COPY in text format (psycopg2): the bench's names and values need no escaping.
        rows = io.StringIO()
        for run in runs:
            for v in RunValue.of(run):
                number = r"\N" if v.number is None else repr(v.number)
                rows.write(f"{project.pk}\t{run.pk}\t{v.kind}\t{v.name}\t{number}\t{v.text}\n")
        rows.seek(0)
        columns = "project_id, training_run_id, kind, name, number, text"
        with connection.cursor() as cursor:
            cursor.copy_expert(f"COPY wiki_runvalue ({columns}) FROM STDIN", rows)
        print(f"  {start + 5000} runs", flush=True)
    with connection.cursor() as cursor:
        # As autovacuum would have, after such a load: statistics, and the visibility map
        # that lets index-only scans skip the table.
        cursor.execute("VACUUM ANALYZE wiki_trainingrun, wiki_runvalue")


def measure(client, url):
    client.get(url)  # warm: rendering caches, connection
    times = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    times.sort()
    rows = response.content.count(b'<tr id="run-')
    return statistics.median(times), times[int(len(times) * 0.95) - 1], len(queries), rows


def report(client, name, url):
    median, p95, queries, shown = measure(client, url)
    print(
        f"{name:45} median {median:6.1f} ms   p95 {p95:6.1f} ms   "
        f"{queries:2} queries   {shown} rows",
        flush=True,
    )


def explain(project, where, sort, order):
    """The plans of the first page's queries (one per segment read)."""
    filters = run_table.Filters(conditions=run_table.parse_conditions(where))
    runs, candidates = run_table.filtered_runs(project, filters)
    sort = run_table.Sort.parse(sort, order)
    for segment in run_table._segments(project, runs, candidates, sort):
        print(f"-- segment {segment.index} ({segment.key})")
        if segment.skip and segment.skip():
            print("not read: every run has the sort key")
            continue
        plan = segment.read(None, False)[: run_table.PAGE_SIZE + 1].explain(analyze=True)
        print(plan)


def main():
    if connection.vendor != "postgresql":
        sys.exit("Run this on PostgreSQL (DATABASE_URL).")
    if Project.objects.exclude(slug=SLUG).exists():  # it makes a superuser: never in a real wiki
        sys.exit("Refusing to fill a database that holds other projects; use an empty one.")
    rng = random.Random(12)  # noqa: S311 - the same made-up runs every time
    if not Project.objects.exists():
        started = time.monotonic()
        print("Building the runs:", flush=True)
        build(rng)
        print(f"  built in {time.monotonic() - started:.0f} s", flush=True)
    project = Project.objects.get(slug=SLUG)
    client = Client()
    client.force_login(User.objects.get(username="runs-bench"))
    runs, rows = TrainingRun.objects.count(), RunValue.objects.count()
    print(f"{runs} training runs, {rows} run values; {REPEAT} requests each")
    table = f"/projects/{SLUG}/runs/"
    cases = [
        ("newest first (default)", {}),
        ("auc > 0.8, by loss asc", {"where": "auc > 0.8", "sort": "metric:loss", "order": "asc"}),
        ("auc > 0.8, by auc desc", {"where": "auc > 0.8", "sort": "metric:auc"}),
        (
            "auc > 0.8 and loss < 0.25, by metric_3 desc",
            {"where": "auc > 0.8, loss < 0.25", "sort": "metric:metric_3"},
        ),
        (
            "auc > 0.97 (rare), by loss asc",
            {"where": "auc > 0.97", "sort": "metric:loss", "order": "asc"},
        ),  # fmt: skip
        # The runs that meet the condition come last in the sort order.
        ("auc > 0.97 (rare), by loss desc", {"where": "auc > 0.97", "sort": "metric:loss"}),
        ("auc > 0.9, by loss desc", {"where": "auc > 0.9", "sort": "metric:loss"}),
        ("auc > 0.8, by loss desc", {"where": "auc > 0.8", "sort": "metric:loss"}),
        ("failed, by param lr asc", {"status": "failed", "sort": "param:lr", "order": "asc"}),
        ("by param optimizer (text)", {"sort": "param:optimizer"}),
        ("tag team=team-2, auc > 0.8", {"tag": "team=team-2", "where": "auc > 0.8"}),
    ]
    for name, params in cases:
        report(client, name, f"{table}?{urlencode(params)}")
    # Deep in the table: the page after the 1,000th run of the main case, through cursors.
    params = {"where": "auc > 0.8", "sort": "metric:loss", "order": "asc"}
    filters = run_table.Filters(conditions=run_table.parse_conditions(params["where"]))
    sort = run_table.Sort.parse(params["sort"], params["order"])
    cursor = None
    for _ in range(20):
        cursor = run_table.page(project, filters, sort, cursor).next_cursor
    url = f"{table}?{urlencode(params | {'cursor': cursor})}"
    report(client, "auc > 0.8, by loss asc, page 21 (cursor)", url)
    print()
    explain(project, "auc > 0.8", "metric:loss", "asc")
    explain(project, "auc > 0.97", "metric:loss", "desc")


if __name__ == "__main__":
    main()
