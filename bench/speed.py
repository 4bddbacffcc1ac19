"""Server time of the screens people open every day, on a large wiki.

Builds (once) a wiki of 200 projects, 10,000 page revisions and 100,000 training runs in
the database DATABASE_URL names, then asks for the dashboard, a project page, a page's
history and a search, each as a user who sees every project, and prints the median and
p95 server time (the Django test client, in-process: the request's whole server side,
no network) and the queries of each. Run through bench/speed.sh, which makes the database.

Projects and page edits go through the services, as people make them (history, audit
chain, search entries); the training runs, which only need to be there, are inserted in
bulk, with their search entries, to keep building the data under ten minutes.
"""

import os
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wiki.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from wiki.history import Actor, Source  # noqa: E402
from wiki.models import ModelVersion, Page, Project, SearchEntry, TrainingRun  # noqa: E402
from wiki.search import reindex  # noqa: E402
from wiki.services.pages import edit_page  # noqa: E402
from wiki.services.projects import create_project  # noqa: E402

PROJECTS, REVISIONS, RUNS = 200, 10_000, 100_000
VERSIONS_PER_PROJECT = 5
REPEAT = 30
# Notes and bodies draw words with Zipf's law from a vocabulary of 3,000, like prose: the
# top words are in most texts (like "model"), "term20" in about 1 in 14, and "quokka" is
# planted in 1 run in 500 (a word someone looks for).
VOCABULARY = [f"term{n}" for n in range(3000)]
ZIPF = [1 / (n + 1) for n in range(len(VOCABULARY))]


def words(rng, count):
    return " ".join(rng.choices(VOCABULARY, weights=ZIPF, k=count))


def build_documentation(rng):
    user = User.objects.create_superuser("bench", password="bench")  # noqa: S106
    actor = Actor(user, Source.CLI)
    projects = [
        create_project(
            actor=actor,
            slug=f"project-{n}",
            name=f"Project {n}",
            owner_team=f"team-{n % 12}",
            summary=f"Predicts {words(rng, 3)} for team {n % 12}.",
        )  # fmt: skip
        for n in range(PROJECTS)
    ]
    print(f"  {PROJECTS} projects", flush=True)
    pages = list(Page.objects.categories())
    for n in range(REVISIONS - len(pages)):  # each project made one revision per page
        page = Page.objects.get(pk=rng.choice(pages).pk)
        edit_page(
            page, actor=actor, base_revision=page.revision,
            body=f"{page.body}\n\nNote {n}: {words(rng, 12)}.",
            change_reason=f"Edit {n}",
        )  # fmt: skip
        if n % 2000 == 0:
            print(f"  {n} edits", flush=True)
    return projects


def build_runs(rng, projects):
    versions = [
        ModelVersion.objects.create(project=project, version=f"1.{v}")
        for project in projects
        for v in range(VERSIONS_PER_PROJECT)
    ]
    now = timezone.now()
    batch = []
    for n in range(RUNS):
        version = versions[n % len(versions)]
        batch.append(
            TrainingRun(
                project_id=version.project_id, model_version=version, status="succeeded",
                started_at=now - timedelta(minutes=RUNS - n),
                metrics={"auc": rng.random(), "recall": rng.random()},
                hyperparameters={"depth": rng.randint(2, 12)},
                dataset_name="customers", dataset_version=str(n % 40),
                notes=f"Run {n}: {words(rng, 12)}" + (" quokka ledger" if n % 500 == 0 else ""),
            )
        )  # fmt: skip
        if len(batch) == 5000:
            TrainingRun.objects.bulk_create(batch)
            batch = []
    print(f"  {RUNS} training runs", flush=True)
    reindex()
    print(f"  {SearchEntry.objects.count()} search entries", flush=True)


def measure(client, url):
    client.get(url)  # warm: rendering caches, connection
    times = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1], len(queries)


def main():
    name = connection.settings_dict["NAME"]
    if not name.endswith("_speed"):  # it makes a superuser bench/bench: never elsewhere
        sys.exit(f"Refusing to fill {name!r}: use a database whose name ends in _speed.")
    rng = random.Random(6)  # noqa: S311 - the same made-up wiki every time
    started = time.monotonic()
    if not Project.objects.exists():
        print("Building the wiki:", flush=True)
        build_documentation(rng)
    if not TrainingRun.objects.exists():
        build_runs(rng, list(Project.objects.order_by("pk")))
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # as autovacuum would have, after such a load
        print(f"  built in {time.monotonic() - started:.0f} s", flush=True)
    client = Client()
    client.force_login(User.objects.get(username="bench"))
    project = Project.objects.order_by("slug")[PROJECTS // 2].slug
    print(
        f"{Project.objects.count()} projects, {Page.history.count()} page revisions, "
        f"{TrainingRun.objects.count()} training runs; {REPEAT} requests each"
    )
    for name, url in [
        ("dashboard", "/"),
        ("project page (overview)", f"/projects/{project}/"),
        ("model page (records, chart)", f"/projects/{project}/model/"),
        ("page history", f"/projects/{project}/model/history/"),
        ("search, a rare word", "/search/?q=quokka"),
        ("search, a common word", "/search/?q=term20"),
    ]:
        median, p95, queries = measure(client, url)
        print(f"{name:30} median {median:6.1f} ms   p95 {p95:6.1f} ms   {queries:3} queries")


if __name__ == "__main__":
    main()
