"""Concurrent writers: exactly one winner, the others told, nothing lost or duplicated.

These need real concurrent transactions, so they run on PostgreSQL (the .ci/run server
pass); the in-memory SQLite test database cannot hold two writers at once.
"""

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections
from django.utils import timezone
from rest_framework.test import APIClient

from tests.factories import ProjectFactory, cli_actor, make_token
from wiki.audit import head_for, verify
from wiki.models import AuditEntry, ModelVersion, Page, Project, TrainingRun
from wiki.services import EditConflict
from wiki.services.pages import edit_page
from wiki.services.projects import create_project
from wiki.services.records import record_training_run

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor == "sqlite", reason="needs a database server for concurrent writers"
    ),
]


def race(*calls):
    """Run ``calls`` in threads released at the same moment; their results or exceptions."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait()
            results[index] = call()
        except Exception as error:  # the test inspects what each call got
            results[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=pair) for pair in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_two_edits_from_the_same_base_revision_leave_one_winner():
    page = ProjectFactory().pages.get(category="overview")

    def edit(text):
        return lambda: edit_page(
            page, actor=cli_actor(), base_revision=1, change_reason=text, body=text
        )

    results = race(edit("alice"), edit("bob"), edit("carol"))
    winners = [r for r in results if isinstance(r, Page)]
    conflicts = [r for r in results if isinstance(r, EditConflict)]
    assert (len(winners), len(conflicts)) == (1, 2), results
    page.refresh_from_db()
    assert (page.revision, page.body) == (2, winners[0].body)
    assert all(c.current.body == winners[0].body for c in conflicts)
    assert page.history.count() == 2


def test_two_creations_of_one_slug_make_one_project():
    def create(name):
        return lambda: create_project(actor=cli_actor(), slug="churn", name=name, owner_team="T")

    results = race(create("A"), create("B"))
    created = [r for r in results if isinstance(r, Project)]
    refused = [r for r in results if isinstance(r, ValidationError)]
    assert (len(created), len(refused)) == (1, 1), results
    assert "slug" in refused[0].message_dict
    assert Project.objects.count() == 1
    assert Page.objects.count() == 6


def test_concurrent_runs_of_a_new_model_version_share_one_version():
    project = ProjectFactory()

    def run():
        return lambda: record_training_run(
            project,
            actor=cli_actor(),
            model_version="2.0.0",
            status="succeeded",
            started_at=timezone.now(),
        )

    results = race(run(), run(), run())
    assert all(isinstance(r, TrainingRun) for r in results), results
    assert ModelVersion.objects.filter(project=project).count() == 1
    assert TrainingRun.objects.filter(model_version__version="2.0.0").count() == 3


def test_fifty_concurrent_posts_with_one_idempotency_key_make_one_record(user):
    project = ProjectFactory(slug="churn")
    _, key = make_token(user, scopes=["records:write"], projects=["churn"])
    body = {"model_version": "1.0", "status": "succeeded", "started_at": "2024-06-01T10:00:00Z"}

    def post():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return lambda: client.post(
            "/api/v1/projects/churn/training-runs/", body, HTTP_IDEMPOTENCY_KEY="run-42"
        )

    responses = race(*(post() for _ in range(50)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 49 + [201], statuses
    assert TrainingRun.objects.filter(project=project).count() == 1
    assert len({r.json()["id"] for r in responses}) == 1


def test_concurrent_writers_never_fork_a_chain():
    project = ProjectFactory()

    def run(number):
        return lambda: record_training_run(
            project, actor=cli_actor(), model_version="1.0", status="succeeded",
            started_at=timezone.now(), notes=f"run {number}",
        )  # fmt: skip

    results = race(*(run(n) for n in range(8)))
    assert all(isinstance(r, TrainingRun) for r in results), results
    seqs = list(
        AuditEntry.objects.filter(chain=head_for(project))
        .order_by("seq")
        .values_list("seq", flat=True)
    )
    assert seqs == list(range(1, len(seqs) + 1))
    assert verify(head_for(project)).ok
