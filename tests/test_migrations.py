"""Migrations are self-contained: a database from before the audit chain and search
existed is upgraded by the migrations alone (their models, not today's code), and what
they write is what today's code reads."""

import ast
import importlib
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from wiki.audit import head_for, verify
from wiki.doc_templates import PACKS, SHIPPED, parse, read_pack
from wiki.models import AuditEntry, Project, RunValue, SearchEntry, TrainingRun

MIGRATIONS = Path(__file__).resolve().parent.parent / "wiki" / "migrations"
BEFORE_THE_CHAIN = ("wiki", "0002_api_tokens_idempotency")


@pytest.fixture
def old_database(transactional_db):
    """The database as migration 0002 left it; migrated to the latest afterwards."""
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes("wiki")
    executor.migrate([BEFORE_THE_CHAIN])
    yield MigrationExecutor(connection).loader.project_state([BEFORE_THE_CHAIN]).apps
    MigrationExecutor(connection).migrate(latest)


def _with_history(apps, model, **values):
    """A row and its first history row, as the app of that time wrote them."""
    obj = apps.get_model("wiki", model).objects.create(**values)
    history = apps.get_model("wiki", f"Historical{model}")
    columns = {f.attname for f in history._meta.concrete_fields} - {"history_id"}
    row = {c: getattr(obj, c) for c in columns if hasattr(obj, c)}
    history.objects.create(
        **row, history_date=timezone.now(), history_type="+", history_source="cli",
        history_username="ana", history_change_reason="Created",
    )  # fmt: skip
    return obj


def test_an_old_database_gets_a_sealed_chain_and_a_search_index_from_the_migrations(
    old_database,
):
    apps = old_database
    project = _with_history(
        apps, "Project", slug="legacy", name="Legacy model", owner_team="Risk",
        summary="Scores loans", tags=["credit"],
    )  # fmt: skip
    _with_history(
        apps, "Page", project=project, category="model", slug="model", title="Model",
        fields={"architecture": "Gradient boosting", "hyperparameters": [
            {"key": "depth", "value": "6"}]}, body="Trained monthly.",
    )  # fmt: skip
    version = _with_history(apps, "ModelVersion", project=project, version="1.0")
    _with_history(
        apps, "TrainingRun", project=project, model_version=version, status="succeeded",
        started_at=timezone.now(), notes="Nightly retrain", tags={"team": "risk"},
    )  # fmt: skip

    MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    legacy = Project.objects.get(slug="legacy")
    verdict = verify(head_for(legacy))
    assert verdict.ok, verdict.first_bad
    assert verdict.entries == 4
    kinds = list(AuditEntry.objects.filter(chain__project=legacy).order_by("seq"))
    assert [e.kind for e in kinds] == ["project", "page", "modelversion", "trainingrun"]
    assert kinds[0].object_repr == "Legacy model"
    texts = dict(SearchEntry.objects.values_list("kind", "text"))
    assert "Scores loans" in texts["project"]
    assert "Gradient boosting" in texts["page"] and "depth: 6" in texts["page"]
    assert "Nightly retrain" in texts["run"]
    # Migration 0018: the packs are templates, sealed in the global chain, and the old
    # project follows the default one.
    assert (legacy.template.slug, legacy.template.version) == ("default", 1)
    assert legacy.pages.get().spec.get_field("architecture").label == "Architecture"
    global_verdict = verify(head_for(None))
    assert global_verdict.ok, global_verdict.first_bad
    assert AuditEntry.objects.filter(chain__key="global", kind="template").count() == 3


def test_no_migration_runs_today_s_code():
    """A migration that imports the app's code breaks once that code moves on (a history
    column added, a category renamed). Field validators are the exception Django makes:
    it names them by their import path."""
    imported = {}
    for path in MIGRATIONS.glob("0*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                if name.split(".")[0] in ("wiki", "api", "frontend"):
                    imported.setdefault(path.name, set()).add(name)
    assert imported == {"0001_initial.py": {"wiki.models"}}


def test_migration_0018_loads_the_packs_as_version_1_was():
    """Migration 0018 reads a frozen copy of the packs, so every database gets the same
    version 1. A pack file still at version 1 must be that copy: once edited, it is
    another template, which needs a new version (loaded by load_template)."""
    migration = importlib.import_module("wiki.migrations.0018_templates")
    assert migration.PACKS != PACKS  # not the files of today
    assert list(SHIPPED) == migration.PACK_SLUGS
    for slug in SHIPPED:
        today = read_pack(slug)
        if parse(today)["version"] == 1:
            assert today == migration.pack_text(slug), (
                f"wiki/packs/{slug}.yaml was edited but still says version 1: give it "
                "version 2 (a loaded version never changes; new databases get version 1 "
                "from migration 0018's frozen copy)."
            )


@pytest.fixture
def before_the_outbox(transactional_db):
    """The database as migration 0007 left it; migrated to the latest afterwards."""
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes("wiki")
    executor.migrate([("wiki", "0007_notifications")])
    yield MigrationExecutor(connection).loader.project_state([("wiki", "0007_notifications")]).apps
    MigrationExecutor(connection).migrate(latest)


def test_notifications_the_broker_lost_before_the_outbox_are_sent_again(before_the_outbox):
    apps = before_the_outbox
    project = apps.get_model("wiki", "Project").objects.create(slug="p", name="P", owner_team="t")
    Delivery = apps.get_model("wiki", "Delivery")

    def delivery(key, **values):
        return Delivery.objects.create(
            project=project, key=key, kind="deployment_failed", channel="webhook",
            target="http://127.0.0.1:9/", subject="s", text="t", **values,
        ).pk  # fmt: skip

    lost = delivery("lost", status="failed", last_error="Could not be queued: refused")
    tried = delivery("tried", status="failed", attempts=6, last_error="HTTP 500")
    old = delivery("old", status="failed", last_error="Could not be queued: refused")
    Delivery.objects.filter(pk=old).update(created_at=timezone.now() - timedelta(days=8))

    MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    statuses = dict(Delivery.objects.values_list("pk", "status"))
    assert statuses == {lost: "pending", tried: "failed", old: "failed"}


@pytest.fixture
def before_run_values(transactional_db):
    """The database as migration 0009 left it, before RunValue; migrated to the latest
    afterwards."""
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes("wiki")
    executor.migrate([("wiki", "0009_sso")])
    yield MigrationExecutor(connection).loader.project_state([("wiki", "0009_sso")]).apps
    MigrationExecutor(connection).migrate(latest)


def test_runs_recorded_before_the_runs_table_get_their_values_from_the_migration(
    before_run_values,
):
    apps = before_run_values
    project = apps.get_model("wiki", "Project").objects.create(slug="p", name="P", owner_team="t")
    version = apps.get_model("wiki", "ModelVersion").objects.create(project=project, version="1")
    OldRun = apps.get_model("wiki", "TrainingRun")
    params = {"lr": 0.01, "depth": 6, "opt": "adam", "early": True, "seed": None}
    run = OldRun.objects.create(
        project=project, model_version=version, status="succeeded", started_at=timezone.now(),
        metrics={"auc": 0.91, "loss": 0.2}, hyperparameters=params,
    ).pk  # fmt: skip
    bare = OldRun.objects.create(
        project=project, model_version=version, status="failed", started_at=timezone.now()
    ).pk

    MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    rows = RunValue.objects.filter(training_run=run).values_list("kind", "name", "number", "text")
    assert sorted(rows) == [
        ("m", "auc", 0.91, ""), ("m", "loss", 0.2, ""),
        ("p", "depth", 6.0, "6"), ("p", "early", None, "true"), ("p", "lr", 0.01, "0.01"),
        ("p", "opt", None, "adam"), ("p", "seed", None, "null"),
    ]  # fmt: skip
    # The same rows today's code writes with a new run.
    today = RunValue.rows(TrainingRun.objects.get(pk=run))
    fresh = sorted(row[2:] for row in today)
    assert sorted(rows) == fresh
    assert not RunValue.objects.filter(training_run=bare).exists()
