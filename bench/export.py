#!/usr/bin/env python3
"""Audit report export benchmark: time and peak memory per format, at 1x and 4x size.

1x is a project with 1,000 page revisions, 10,000 training runs and 500 deployments,
written through the services as the application writes them; 4x has four times each.
Each export runs in a fresh process (the path a worker takes: wiki.services.exports.build,
snapshot, render, checksum, move into storage), which reports its wall time and its peak
resident memory (ru_maxrss: WeasyPrint's memory is mostly outside Python's allocator).

  DATABASE_URL=postgres://mlwiki@127.0.0.1:5432/mlwiki_export python bench/export.py
  python bench/export.py --scales 1 --formats json markdown

bench/README.md records the figures.
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wiki.settings")
os.environ.setdefault("MEDIA_ROOT", str(Path(tempfile.gettempdir()) / "mlwiki-bench-media"))

import django  # noqa: E402

django.setup()

from django.db import transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from wiki.categories import MARKDOWN, TABLE  # noqa: E402
from wiki.history import Actor, Source  # noqa: E402
from wiki.models import Project  # noqa: E402
from wiki.services.exports import build, request_export  # noqa: E402
from wiki.services.pages import edit_page  # noqa: E402
from wiki.services.projects import create_project  # noqa: E402
from wiki.services.records import record_deployment, record_training_run  # noqa: E402

ACTOR = Actor(None, Source.CLI)
SIZE = {"revisions": 1_000, "runs": 10_000, "deployments": 500}
FORMATS = ["json", "markdown", "html", "pdf"]
PARAGRAPH = (
    "The model scores every active subscriber each night. Features come from the billing "
    "and support systems; the label is a cancellation within 30 days. "
)


def _fields(category, n):
    values = {}
    for field in category.fields:
        if field.kind == TABLE:
            values[field.name] = [{"key": f"item {i}", "value": f"value {n}.{i}"} for i in range(4)]
        elif field.kind == MARKDOWN:
            values[field.name] = f"Revision {n}. " + PARAGRAPH * 3
        elif field.choices:
            values[field.name] = field.choices[n % len(field.choices)]
        else:
            values[field.name] = f"Value {n}"
    return values


def project_of(scale):
    """The benchmark project at ``scale`` (made on the first run)."""
    slug = f"export-{scale}x"
    project = Project.objects.filter(slug=slug).first()
    if project is not None:
        return project
    started = time.perf_counter()
    project = create_project(actor=ACTOR, slug=slug, name=f"Export {scale}x", owner_team="bench")
    pages = {p.category: p for p in project.pages.exclude(category="")}
    start = timezone.now() - timedelta(days=365)
    for n in range(SIZE["revisions"] * scale):
        categories = project.spec.categories
        category = categories[n % len(categories)]
        page = pages[category.name]
        pages[category.name] = edit_page(
            page, actor=ACTOR, base_revision=None, change_reason=f"Edit {n}",
            fields=_fields(category, n), body=f"## Notes {n}\n\n" + PARAGRAPH * 4,
        )  # fmt: skip
    for batch in range(0, SIZE["runs"] * scale, 500):
        with transaction.atomic():
            for n in range(batch, min(batch + 500, SIZE["runs"] * scale)):
                record_training_run(
                    project, actor=ACTOR, model_version=f"1.{n // 500}.0", status="succeeded",
                    started_at=start + timedelta(minutes=n), git_commit=f"{n:08x}",
                    dataset_name="customers", dataset_version=f"2024-{n % 12 + 1:02d}",
                    hyperparameters={"learning_rate": 0.05, "max_depth": 6, "n_estimators": 300},
                    metrics={"auc": 0.8 + (n % 100) / 1000, "logloss": 0.3, "recall": 0.61},
                    notes="Nightly retraining.",
                )  # fmt: skip
    for n in range(SIZE["deployments"] * scale):
        record_deployment(
            project, actor=ACTOR, model_version=f"1.{n % 20}.0",
            environment="production" if n % 2 else "staging", target="k8s/churn",
            status="succeeded", started_at=start + timedelta(hours=n),
            reason="Monthly retraining with the latest month of data.",
            checks=[{"name": "smoke", "passed": True, "value": 1.0, "details": "ok"}],
        )  # fmt: skip
    print(f"  made {slug} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return project


def measure(slug, format):
    """One export in this process: prints seconds, peak RSS (MiB) and file size."""
    project = Project.objects.get(slug=slug)
    job = request_export(project, actor=ACTOR, format=format, enqueue=False)
    started = time.perf_counter()
    job = build(job.pk)
    seconds = time.perf_counter() - started
    assert job.status == "done", job.last_error
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{seconds:.2f} {peak:.0f} {job.size}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--formats", nargs="+", choices=FORMATS, default=FORMATS)
    parser.add_argument("--measure", nargs=2, metavar=("SLUG", "FORMAT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        return measure(*args.measure)
    print(f"{'size':>4} {'format':>9} {'seconds':>8} {'peak MiB':>9} {'file':>10}")
    for scale in args.scales:
        project = project_of(scale)
        for format in args.formats:
            out = subprocess.run(  # noqa: S603  this script, measuring in a fresh process
                [sys.executable, __file__, "--measure", project.slug, format],
                capture_output=True, text=True, check=True,
            ).stdout.split()  # fmt: skip
            seconds, peak, size = float(out[0]), int(out[1]), int(out[2])
            print(f"{scale:>3}x {format:>9} {seconds:>8.2f} {peak:>9} {size / 2**20:>8.1f} MiB")
    return None


if __name__ == "__main__":
    main()
