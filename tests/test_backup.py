"""deploy/backup.sh, proven: a populated database and its files are backed up, restored into
a fresh database (deploy/backup.md), and the restored copy has every row and passes
verify_audit."""

import os
import subprocess
import sys
import tarfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest
from django.conf import settings
from django.db import connection

from tests.factories import ProjectFactory, cli_actor, make_deployment, make_training_run
from wiki.models import AuditEntry, Deployment, ExportJob, Page, Project, TrainingRun
from wiki.services.exports import build, request_export
from wiki.services.pages import edit_page

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the backup is pg_dump and pg_restore of PostgreSQL, mlwiki's production "
    "database (the .ci/run PostgreSQL pass); SQLite is a file, copied as one",
)
ROOT = Path(__file__).resolve().parent.parent
COUNTED = [Project, Page, Page.history.model, TrainingRun, Deployment, ExportJob, AuditEntry]


def database_url(name):
    return urlunsplit(urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{name}"))


def populate():
    """Two projects with page edits, records and an export, all through the services."""
    for slug in ("churn", "fraud"):
        project = ProjectFactory(slug=slug, name=slug.title())
        for number in range(3):
            page = Page.objects.get(project=project, category="model")
            edit_page(
                page,
                actor=cli_actor(),
                base_revision=page.revision,
                change_reason=f"Edit {number}",
                body=f"Architecture, take {number}.",
            )
            make_training_run(project, f"1.{number}.0")
        make_deployment(project, "1.2.0")
    job = request_export(project, actor=cli_actor(), format="markdown", enqueue=False)
    build(job.pk)
    job.refresh_from_db()
    assert job.status == ExportJob.Status.DONE
    return job


def counts(cursor):
    found = {}
    for model in COUNTED:
        cursor.execute(f'SELECT count(*) FROM "{model._meta.db_table}"')  # noqa: S608
        found[model._meta.db_table] = cursor.fetchone()[0]
    return found


def manage(*args, **env):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=os.environ | env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def fresh_database(transactional_db):
    """The name of a new, empty database beside the test database, dropped afterwards."""
    name = f"{connection.settings_dict['NAME']}_restored"
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}"')
    yield name
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_restored_backup_has_every_row_and_file_and_passes_verify_audit(fresh_database, tmp_path):
    job = populate()
    with connection.cursor() as cursor:
        before = counts(cursor)
    assert before["wiki_project"] == 2 and before["wiki_trainingrun"] == 6

    backup = subprocess.run(
        ["sh", "deploy/backup.sh", str(tmp_path / "backups")],
        cwd=ROOT,
        env=os.environ
        | {
            "DATABASE_URL": database_url(connection.settings_dict["NAME"]),
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert backup.returncode == 0, backup.stderr
    directory = Path(backup.stdout.strip().splitlines()[-1])
    assert sorted(p.name for p in directory.iterdir()) == [
        "SHA256SUMS",
        "database.dump",
        "files.tar.gz",
    ]
    assert (
        subprocess.run(["sha256sum", "--check", "--quiet", "SHA256SUMS"], cwd=directory).returncode
        == 0
    )

    # Restore as deploy/backup.md says: the dump into an empty database, the files into
    # an empty directory.
    restored_url = database_url(fresh_database)
    restore = subprocess.run(
        ["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={restored_url}",
         str(directory / "database.dump")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert restore.returncode == 0, restore.stderr
    files = tmp_path / "restored-media"
    files.mkdir()
    with tarfile.open(directory / "files.tar.gz") as archive:
        archive.extractall(files, filter="data")
    assert (files / job.file.name).read_bytes() == Path(job.file.path).read_bytes()

    with psycopg2.connect(restored_url) as restored, restored.cursor() as cursor:
        assert counts(cursor) == before
    restored.close()

    verified = manage(
        "verify_audit", DATABASE_URL=restored_url, AUDIT_HMAC_KEY=settings.AUDIT_HMAC_KEY
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "churn: intact" in verified.stdout and "fraud: intact" in verified.stdout
    # The key is not in the backup: with another one, the restored seals do not verify.
    other_key = manage("verify_audit", DATABASE_URL=restored_url, AUDIT_HMAC_KEY="another key")
    assert other_key.returncode == 1 and "NOT INTACT" in other_key.stdout
