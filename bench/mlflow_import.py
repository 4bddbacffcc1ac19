#!/usr/bin/env python3
"""Importing 10,000 MLflow runs (issue 14, item 1): a real MLflow tracking server
(.venv-mlflow, `make test-deps`) with an SQLite store, filled with N runs in one
experiment (5 parameters, 4 final metrics, a loss history of 10 steps, 3 tags, a dataset
input each) through MLflow's own client writing to the store directly (over HTTP the fill
alone would take most of an hour), then served over HTTP as a team runs it. Timed:

1. the first import (every run new: searched, each history fetched, written in pages);
2. a second import (nothing changed: searched and compared, nothing written);
3. an import after 100 runs logged one more step (100 revisions, 100 histories).

The wiki's database is DATABASE_URL when set (PostgreSQL: test_<name>, created and
dropped here), else a new SQLite file.

  DATABASE_URL=postgres://mlwiki@127.0.0.1:5432/mlwiki_bench .venv/bin/python bench/mlflow_import.py
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FILL = """
import json, sys
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.data.http_dataset_source import HTTPDatasetSource
from mlflow.data.meta_dataset import MetaDataset
from mlflow.entities import DatasetInput, InputTag

count, start, first = int(sys.argv[1]), 1780000000000, sys.argv[2] == "new"
client = MlflowClient()
if first:
    experiment = client.create_experiment("bench")
    source = HTTPDatasetSource("https://data.example.com/c.csv")
    dataset = MetaDataset(source, name="c", digest="d1")
    ids = []
    for i in range(count):
        t = start + i * 60_000
        run = client.create_run(experiment, start_time=t, tags={"team": "risk"}, run_name=f"r{i}")
        rid = run.info.run_id
        metrics = [Metric(k, 0.5 + i / 1e5, t, 0) for k in ("auc", "f1", "precision", "recall")]
        metrics += [Metric("loss", 1 / (s + 1), t + s, s) for s in range(10)]
        values = {"lr": 0.01, "depth": i % 9, "trees": 400, "booster": "gbtree", "seed": i}
        params = [Param(k, str(v)) for k, v in values.items()]
        client.log_batch(rid, metrics=metrics, params=params,
                         tags=[RunTag("mlflow.source.git.commit", f"{i:040x}")])
        client.log_inputs(rid, [DatasetInput(dataset._to_mlflow_entity(),
                                             [InputTag("mlflow.data.context", "training")])])
        client.set_terminated(rid, "FINISHED", end_time=t + 30_000)
        ids.append(rid)
    json.dump(ids, open(sys.argv[3], "w"))
else:
    for rid in json.load(open(sys.argv[3]))[:count]:
        client.log_batch(rid, metrics=[Metric("loss", 0.01, start, 10)])
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=10_000, help="runs (default 10,000)")
    args = parser.parse_args()

    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wiki.settings")
    import django

    django.setup()
    from django.test.utils import setup_databases, setup_test_environment, teardown_databases

    from tests.mlflow_server import PYTHON, Server

    setup_test_environment()
    databases = setup_databases(verbosity=0, interactive=False)
    folder = Path(tempfile.mkdtemp())
    store = f"sqlite:///{folder / 'mlflow.db'}"
    ids = folder / "ids.json"

    def fill(*arguments):
        began = time.monotonic()
        subprocess.run(  # noqa: S603 - our own venv's Python
            [str(PYTHON), "-c", FILL, *arguments, str(ids)], check=True,
            env=os.environ | {"MLFLOW_TRACKING_URI": store}, cwd=folder,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        return time.monotonic() - began

    print(f"filling MLflow with {args.n:,} runs …", flush=True)
    print(f"fill: {fill(str(args.n), 'new'):.0f} s (MLflow's client, straight to its store)")
    server = Server(folder)
    try:
        from django.contrib.auth.models import User
        from django.db import connection

        from wiki.history import Actor, Source
        from wiki.models import TrainingRun
        from wiki.services.mlflow import import_runs
        from wiki.services.projects import create_project

        actor = Actor(User.objects.create_user("bench"), Source.CLI)
        project = create_project(actor=actor, slug="bench", name="Benchmark", owner_team="b")

        def timed(name):
            began = time.monotonic()
            report = import_runs(
                project, actor=actor, tracking_uri=server.url, experiments=["bench"],
                images=False,
            )  # fmt: skip
            seconds = time.monotonic() - began
            print(
                f"{name}: {seconds:.1f} s, {report.runs / seconds:,.0f} runs/s "
                f"({report.created:,} new, {report.updated:,} changed, "
                f"{report.unchanged:,} unchanged)",
                flush=True,
            )
            return report

        print(f"database: {connection.vendor}; MLflow at {server.url}")
        first = timed("first import")
        assert first.created == args.n and not first.problems, first.problems[:5]
        assert TrainingRun.objects.filter(project=project).count() == args.n
        again = timed("second import (nothing changed)")
        assert again.unchanged == args.n
        fill("100", "more")
        changed = timed("third import (100 runs logged one more step)")
        assert changed.updated == 100
    finally:
        server.stop()
        teardown_databases(databases, verbosity=0)


if __name__ == "__main__":
    main()
