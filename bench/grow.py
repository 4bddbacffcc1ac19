#!/usr/bin/env python3
"""Fill a PostgreSQL database for bench/issue13.py, fast: training runs and page revisions
made in bulk with SQL (INSERT ... SELECT over generate_series), as consistent as the app
makes them.

  DATABASE_URL=postgres://mlwiki@127.0.0.1:5432/mlwiki_bench_i13 \
    .venv/bin/python bench/grow.py base --runs 10000 --revisions 1000
  ... bench/grow.py grow --runs-total 1000000 --revisions-total 100000

``base`` makes the user ``bench``, the project ``ingest`` (records are posted there) and the
project ``pages`` (its model page and the model page's history are read), fills ``pages``
with RUNS training runs and REVISIONS page revisions (all but the six first revisions on its
model page), and prints, as its last line, JSON with a ``records:write`` token for
``ingest`` and a logged-in session cookie. ``grow`` adds projects ``filler-N`` of 10,000
runs and 1,000 revisions each until the database holds RUNS-TOTAL runs and REVISIONS-TOTAL
page revisions. Both then run ``VACUUM ANALYZE``, as autovacuum would after such a load.

How: in each project a few records are written through the services (``record_training_run``
and ``edit_page``: the run, its model version, its history row, its ``RunValue`` rows, its
search entry, its audit-chain entry, the page's history row). Those rows are the templates:
one SQL statement per chunk copies each template's rows N times, in data-modifying CTEs
chained by ``RETURNING`` so that every copy of a run has its own history row, run values
(metrics varied per run, and the run values follow them), search entry (tsvector computed
by PostgreSQL, as the app does) and audit entry (numbered on in the project's chain). Column
lists are read from the database, so a column added later is copied from the template.

What is not as the app makes it: the audit entries' digests and seals are placeholders
(hashing each row in Python would take minutes per million rows), so the chains of these
projects do not verify. The measured guarantees (a record post, a page view) never read
them, and each bench run writes its own records through the app.
"""

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wiki.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from ingest import record  # noqa: E402

from wiki.history import Actor, Source  # noqa: E402
from wiki.models import Page, Project, TrainingRun  # noqa: E402
from wiki.search import CONFIG, VECTOR_SQL  # noqa: E402
from wiki.services.pages import edit_page  # noqa: E402
from wiki.services.projects import create_project  # noqa: E402
from wiki.services.records import record_training_run  # noqa: E402
from wiki.services.tokens import create_token  # noqa: E402

TEMPLATES = 5  # model versions 1.0 … 1.4, one template run each
CHUNK = 20_000  # rows per statement
PER_PROJECT_RUNS, PER_PROJECT_REVISIONS = 10_000, 1_000


def log(message):
    print(message, file=sys.stderr, flush=True)


def columns(table):
    """The table's columns a copy sets (identity columns are numbered by the database)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
            "AND is_identity = 'NO' AND is_generated = 'NEVER' ORDER BY ordinal_position",
            [table],
        )
        return [row[0] for row in cursor.fetchall()]


def select_list(cols, alias, overrides):
    return ", ".join(overrides.get(c, f'{alias}."{c}"') for c in cols)


def insert_list(cols):
    return ", ".join(f'"{c}"' for c in cols)


def audit_cte(source):
    """An INSERT of one audit entry per row of the CTE ``source`` (history_id, id,
    history_date), copied from the template entry %(audit)s, numbered on from %(seq)s."""
    cols = columns("wiki_auditentry")
    placeholder = "encode(sha256(convert_to('{0}:' || {1}.history_id, 'UTF8')), 'hex')"
    overrides = {
        "seq": f"%(seq)s + row_number() OVER (ORDER BY {source}.history_id)",
        "history_id": f"{source}.history_id",
        "object_id": f"{source}.id",
        "at": f"{source}.history_date",
        "digest": placeholder.format("bulk", source),
        "seal": placeholder.format("bulk-seal", source),
    }
    return (
        f"INSERT INTO wiki_auditentry ({insert_list(cols)}) "  # noqa: S608 - names, not data
        f"SELECT {select_list(cols, 'a', overrides)} FROM {source}, wiki_auditentry a "
        f"WHERE a.id = %(audit)s RETURNING 1"
    )


def runs_sql():
    run_cols = columns("wiki_trainingrun")
    run = {
        "started_at": "t.started_at + g.n * interval '1 minute'",
        "finished_at": "t.finished_at + g.n * interval '1 minute'",
        "created_at": "now() - (%(last)s - g.n) * interval '50 ms'",
        "git_commit": "lpad(to_hex(g.n), 40, '0')",
        "pipeline_url": "'https://ci.example.com/runs/' || g.n",
        "dataset_version": "'2024-05-' || lpad((g.n %% 28 + 1)::text, 2, '0')",
        # Each metric varies per run (deterministically), so summaries and charts have
        # something to do; the run values below follow them.
        "metrics": (
            "(SELECT jsonb_object_agg(e.k, round((e.v::text::numeric) * "
            "(0.8 + ((g.n * 7919 + length(e.k)) %% 1000) / 2500.0), 6)) "
            "FROM jsonb_each(t.metrics) AS e(k, v))"
        ),
    }
    hist_cols = columns("wiki_historicaltrainingrun")
    hist = {c: f'runs."{c}"' for c in hist_cols if c in run_cols} | {
        "id": "runs.id",
        "history_date": "runs.created_at",
    }
    value_cols = columns("wiki_runvalue")
    value = {
        "training_run_id": "runs.id",
        "number": "CASE WHEN v.kind = 'm' THEN (runs.metrics ->> v.name)::float8 ELSE v.number END",
    }
    search_cols = columns("wiki_searchentry")
    title = "replace(s.title, '#' || %(run)s, '#' || runs.id)"
    search = {
        "object_id": "runs.id",
        "title": title,
        "vector": VECTOR_SQL.replace("%s", "{}").format(
            f"'{CONFIG}'", title, f"'{CONFIG}'", "s.text"
        ),
    }
    return (
        "WITH g AS (SELECT n FROM generate_series(%(first)s, %(last)s) AS n), "  # noqa: S608
        f"runs AS (INSERT INTO wiki_trainingrun ({insert_list(run_cols)}) "
        f"SELECT {select_list(run_cols, 't', run)} FROM wiki_trainingrun t, g "
        "WHERE t.id = %(run)s ORDER BY g.n RETURNING *), "
        f"hist AS (INSERT INTO wiki_historicaltrainingrun ({insert_list(hist_cols)}) "
        f"SELECT {select_list(hist_cols, 'h', hist)} FROM runs, wiki_historicaltrainingrun h "
        "WHERE h.history_id = %(history)s ORDER BY runs.id "
        "RETURNING history_id, id, history_date), "
        f"vals AS (INSERT INTO wiki_runvalue ({insert_list(value_cols)}) "
        f"SELECT {select_list(value_cols, 'v', value)} FROM runs, wiki_runvalue v "
        "WHERE v.training_run_id = %(run)s RETURNING 1), "
        f"search AS (INSERT INTO wiki_searchentry ({insert_list(search_cols)}) "
        f"SELECT {select_list(search_cols, 's', search)} FROM runs, wiki_searchentry s "
        "WHERE s.kind = 'run' AND s.object_id = %(run)s RETURNING 1), "
        f"audit AS ({audit_cte('hist')}) "
        "SELECT (SELECT count(*) FROM audit), (SELECT count(*) FROM vals), "
        "(SELECT count(*) FROM search)"
    )


def revisions_sql():
    cols = columns("wiki_historicalpage")
    overrides = {
        "revision": "h.revision + g.n",
        "body": "h.body || E'\\n\\nNote ' || g.n || ': the threshold was tuned again.'",
        "history_date": "h.history_date + g.n * interval '1 ms'",
        "updated_at": "h.updated_at + g.n * interval '1 ms'",
        "history_change_reason": "'Edit ' || g.n",
    }
    if "edited_at" in cols:
        overrides["edited_at"] = "h.edited_at + g.n * interval '1 ms'"
    return (
        "WITH g AS (SELECT n FROM generate_series(%(first)s, %(last)s) AS n), "  # noqa: S608
        f"hist AS (INSERT INTO wiki_historicalpage ({insert_list(cols)}) "
        f"SELECT {select_list(cols, 'h', overrides)} FROM wiki_historicalpage h, g "
        "WHERE h.history_id = %(history)s ORDER BY g.n "
        "RETURNING history_id, id, history_date), "
        f"audit AS ({audit_cte('hist')}) SELECT count(*) FROM audit"
    )


def chain(project):
    """(chain head id, its seq)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, seq FROM wiki_chainhead WHERE project_id = %s", [project.pk])
        return cursor.fetchone()


def last_audit(project, table, history_id):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.id FROM wiki_auditentry a JOIN wiki_chainhead c ON c.id = a.chain_id "
            'WHERE c.project_id = %s AND a."table" = %s AND a.history_id = %s',
            [project.pk, table, history_id],
        )
        return cursor.fetchone()[0]


def add_runs(project, actor, count):
    """``count`` training runs in ``project``: TEMPLATES through the service, the rest
    copied from them."""
    if count <= 0:
        return
    templates = []
    for number in range(min(TEMPLATES, count)):
        fields = record(f"1.{number}", number)
        dataset = fields.pop("dataset")
        fields.pop("model_version")
        run = record_training_run(
            project, actor=actor, model_version=f"1.{number}",
            dataset_name=dataset["name"], dataset_version=dataset["version"],
            dataset_uri=dataset["uri"], notes=f"Nightly retrain {number}: gradient boosting.",
            **fields,
        )  # fmt: skip
        templates.append(run)
    remaining = count - len(templates)
    sql = runs_sql()
    for index, run in enumerate(templates):
        share = remaining // len(templates) + (1 if index < remaining % len(templates) else 0)
        history = run.history.latest("history_id").history_id
        audit = last_audit(project, "wiki.HistoricalTrainingRun", history)
        for first in range(1, share + 1, CHUNK):
            last = min(share, first + CHUNK - 1)
            with transaction.atomic(), connection.cursor() as cursor:
                head, seq = chain(project)
                params = {"first": first, "last": last, "run": run.pk, "history": history,
                          "audit": audit, "seq": seq}  # fmt: skip
                cursor.execute(sql, params)
                made = cursor.fetchone()[0]
                cursor.execute(
                    "UPDATE wiki_chainhead SET seq = seq + %s WHERE id = %s", [made, head]
                )
    with connection.cursor() as cursor:  # what a records write does once per transaction
        cursor.execute(
            "UPDATE wiki_project SET records_version = records_version + 1 WHERE id = %s",
            [project.pk],
        )


def add_revisions(project, actor, count):
    """``count`` more revisions of the project's model page: one through ``edit_page``,
    the rest copied from it (each its own revision number, body, date, audit entry)."""
    if count <= 0:
        return
    page = Page.objects.get(project=project, category="model")
    page = edit_page(
        page, actor=actor, base_revision=page.revision,
        body=f"{page.body}\n\nThe model is retrained nightly.", change_reason="Edit 0",
    )  # fmt: skip
    if count == 1:
        return
    history = page.history.latest("history_id").history_id
    audit = last_audit(project, "wiki.HistoricalPage", history)
    sql = revisions_sql()
    for first in range(1, count, CHUNK):
        last = min(count - 1, first + CHUNK - 1)
        with transaction.atomic(), connection.cursor() as cursor:
            head, seq = chain(project)
            cursor.execute(sql, {"first": first, "last": last, "history": history,
                                 "audit": audit, "seq": seq})  # fmt: skip
            made = cursor.fetchone()[0]
            cursor.execute("UPDATE wiki_chainhead SET seq = seq + %s WHERE id = %s", [made, head])
    with connection.cursor() as cursor:  # the page as its last revision left it
        cursor.execute(
            "UPDATE wiki_page p SET revision = h.revision, body = h.body, "
            "updated_at = h.updated_at FROM (SELECT revision, body, updated_at "
            "FROM wiki_historicalpage WHERE id = %s ORDER BY history_id DESC LIMIT 1) h "
            "WHERE p.id = %s",
            [page.pk, page.pk],
        )
        cursor.execute(
            "UPDATE wiki_page SET edited_at = updated_at WHERE id = %s "
            "AND EXISTS (SELECT 1 FROM information_schema.columns "
            "WHERE table_name = 'wiki_page' AND column_name = 'edited_at')",
            [page.pk],
        )


def revisions_of(project=None):
    rows = Page.history.all()
    return (rows.filter(project_id=project.pk) if project else rows).count()


def fill(project, actor, runs, revisions):
    started = time.monotonic()
    add_runs(project, actor, runs - TrainingRun.objects.filter(project=project).count())
    add_revisions(project, actor, revisions - revisions_of(project))
    log(f"  {project.slug}: {TrainingRun.objects.filter(project=project).count()} runs, "
        f"{revisions_of(project)} revisions ({time.monotonic() - started:.1f} s)")  # fmt: skip


def analyse():
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    log(f"  VACUUM ANALYZE: {time.monotonic() - started:.1f} s")


def base(args):
    user = User.objects.filter(username="bench").first() or User.objects.create_user("bench")
    actor = Actor(user, Source.CLI)
    for slug, name in [("ingest", "Ingest benchmark"), ("pages", "Pages benchmark")]:
        if not Project.objects.filter(slug=slug).exists():
            create_project(actor=actor, slug=slug, name=name, owner_team="bench",
                           summary="Predicts churn for the benchmark.")  # fmt: skip
    fill(Project.objects.get(slug="pages"), actor, args.runs, args.revisions)
    analyse()
    _, key = create_token(
        actor=actor, user=user, name=f"bench {datetime.now(UTC):%H%M%S%f}",
        scopes=["records:write", "read"], projects=["ingest"],
    )  # fmt: skip
    client = Client()
    client.force_login(user)
    cookie = settings.SESSION_COOKIE_NAME
    print(json.dumps({"token": key, "cookie": f"{cookie}={client.cookies[cookie].value}"}))


def grow(args):
    user = User.objects.get(username="bench")
    actor = Actor(user, Source.CLI)
    started = time.monotonic()
    number = Project.objects.filter(slug__startswith="filler-").count()
    while True:
        runs = TrainingRun.objects.count()
        revisions = revisions_of()
        if runs >= args.runs_total and revisions >= args.revisions_total:
            break
        slug = f"filler-{number}"
        project = create_project(actor=actor, slug=slug, name=f"Filler {number}",
                                 owner_team=f"team-{number % 12}")  # fmt: skip
        fill(project, actor,
             min(args.per_project_runs, max(0, args.runs_total - runs)),
             revisions_of(project) + min(args.per_project_revisions,
                                         max(0, args.revisions_total - revisions)))  # fmt: skip
        number += 1
    analyse()
    log(f"grown to {TrainingRun.objects.count()} runs, {revisions_of()} revisions "
        f"in {time.monotonic() - started:.0f} s")  # fmt: skip


def main():
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    made = commands.add_parser("base", help="the measured projects, a token and a session")
    made.add_argument("--runs", type=int, default=10_000)
    made.add_argument("--revisions", type=int, default=1_000)
    grown = commands.add_parser("grow", help="filler projects up to the totals")
    grown.add_argument("--runs-total", type=int, default=1_000_000)
    grown.add_argument("--revisions-total", type=int, default=100_000)
    grown.add_argument("--per-project-runs", type=int, default=PER_PROJECT_RUNS)
    grown.add_argument("--per-project-revisions", type=int, default=PER_PROJECT_REVISIONS)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("grow.py fills PostgreSQL only (DATABASE_URL=postgres://...).")
    {"base": base, "grow": grow}[args.command](args)


if __name__ == "__main__":
    main()
