#!/usr/bin/env python3
"""Audit-chain verification benchmark: history rows verified per second, and peak memory.

Builds (once) one project per size whose chain holds that many history rows, written
through the services as the application writes them (mostly training runs, with page
edits in between), then times wiki.audit.verify on each chain and measures its peak
Python memory (tracemalloc, in a separate pass).

  DATABASE_URL=postgres://mlwiki@127.0.0.1:5432/mlwiki_bench python bench/verify.py
  python bench/verify.py --rows 10000 100000        # the default sizes

bench/README.md records the figures; bench/run.sh does not run this one.
"""

import argparse
import os
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wiki.settings")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from wiki.audit import head_for, verify  # noqa: E402
from wiki.history import Actor, Source  # noqa: E402
from wiki.models import Project  # noqa: E402
from wiki.services.pages import edit_page  # noqa: E402
from wiki.services.projects import create_project  # noqa: E402
from wiki.services.records import record_training_run  # noqa: E402

ACTOR = Actor(None, Source.CLI)
BATCH = 500


def chain_of(rows):
    """A project whose chain holds at least ``rows`` entries (made on the first run)."""
    slug = f"verify-{rows}"
    project = Project.objects.filter(slug=slug).first()
    if project is None:
        project = create_project(actor=ACTOR, slug=slug, name=slug, owner_team="bench")
    head = head_for(project)
    page = project.pages.get(category="model")
    started = time.perf_counter()
    while head.seq < rows:
        with transaction.atomic():
            for number in range(min(BATCH, rows - head.seq)):
                if number % 50 == 0:
                    page = edit_page(
                        page, actor=ACTOR, base_revision=None, change_reason="bench",
                        body=f"Revision with run {head.seq + number}.",
                    )  # fmt: skip
                else:
                    record_training_run(
                        project, actor=ACTOR, model_version=f"1.{number % 7}",
                        status="succeeded", started_at=timezone.now(),
                        metrics={"auc": 0.8, "loss": 0.3}, hyperparameters={"depth": 6},
                        notes="A benchmark run.",
                    )  # fmt: skip
        head.refresh_from_db()
        print(f"  {slug}: {head.seq} rows ({time.perf_counter() - started:.0f} s)", end="\r")
    return head


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per size (best kept)")
    args = parser.parse_args()
    print(f"database: {connection.vendor}")
    for rows in args.rows:
        head = chain_of(rows)
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            verdict = verify(head)
            times.append(time.perf_counter() - started)
            assert verdict.ok, verdict
        tracemalloc.start()
        verify(head)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        best = min(times)
        print(
            f"{verdict.entries:>8} rows  best {best:6.2f} s  {verdict.entries / best:>9,.0f} rows/s"
            f"  (runs: {', '.join(f'{t:.2f}' for t in times)} s)"
            f"  peak Python memory {peak / 2**20:.1f} MiB"
        )


if __name__ == "__main__":
    main()
