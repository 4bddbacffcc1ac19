"""Concurrent writers: exactly one winner, the others told, nothing lost or duplicated.

They run on both databases: on PostgreSQL row locks queue writers up; on SQLite (a file,
with IMMEDIATE transactions) the database lock does.
"""

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connections
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from tests.factories import ProjectFactory, UserFactory, cli_actor, make_token
from wiki.audit import head_for, verify
from wiki.models import AuditEntry, Membership, ModelVersion, Page, Project, TrainingRun
from wiki.services import EditConflict
from wiki.services.pages import edit_page
from wiki.services.projects import create_project
from wiki.services.records import record_training_run

pytestmark = pytest.mark.django_db(transaction=True)


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


def editors(project, count):
    """Logged-in browser clients of ``count`` editors of ``project``."""
    clients = []
    for number in range(count):
        person = UserFactory(username=f"editor{number}")
        Membership.objects.create(project=project, user=person, role=Membership.Role.EDITOR)
        client = Client()
        client.force_login(person)
        clients.append(client)
    return clients


def test_two_browser_saves_from_the_same_form_leave_one_winner_and_tell_the_other():
    project = ProjectFactory(slug="churn")

    def save(client, text):
        form = {"body": text, "change_reason": text, "base_revision": "1", "save": ""}
        return lambda: client.post("/projects/churn/overview/edit/", form)

    first, second = editors(project, 2)
    responses = race(save(first, "first text"), save(second, "second text"))
    assert sorted(r.status_code for r in responses) == [200, 302]
    told = next(r for r in responses if r.status_code == 200).content.decode()
    assert "This was changed while you were editing" in told
    page = project.pages.get(category="overview")
    assert page.revision == 2
    assert page.body in told  # the winner's text is shown in the difference
    assert page.history.count() == 2


def test_two_api_writes_with_the_same_if_match_leave_one_winner_and_a_412():
    owner = UserFactory(username="owner")
    ProjectFactory(slug="churn", actor=cli_actor(owner))

    def patch(text):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {make_token(owner, ['pages:write'])[1]}")
        return lambda: client.patch(
            "/api/v1/projects/churn/pages/overview/", {"body": text}, format="json",
            headers={"If-Match": '"1"'},
        )  # fmt: skip

    responses = race(patch("one"), patch("two"), patch("three"))
    assert sorted(r.status_code for r in responses) == [200, 412, 412]
    winner = next(r for r in responses if r.status_code == 200).json()
    assert winner["revision"] == 2
    assert all(r["ETag"] == '"2"' for r in responses)


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
    project = ProjectFactory(slug="churn", actor=cli_actor(user))  # user maintains it
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


postgresql_only = pytest.mark.skipif(
    connections["default"].vendor != "postgresql",
    reason="row locks are PostgreSQL's (SQLite has one lock for the whole database)",
)


def _once_it_waits_for_a_lock(pid):
    """Return once the connection of backend ``pid`` waits for a lock; from then on, this
    transaction's own waits give up after 5 s (a deadlock fails fast, named)."""
    with connections["default"].cursor() as cursor:
        for _ in range(600):
            cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
            if cursor.fetchone()[0] == "Lock":
                break
            threading.Event().wait(0.05)
        cursor.execute("SET LOCAL lock_timeout = '5s'")


def while_holding_the_head(project, second_write, take_row):
    """Run ``second_write`` in another connection while this one, a writer midway,
    holds ``project``'s chain head; once it waits for a lock, ``take_row`` takes the row
    it would hold had it not taken the head first (a deadlock then: PostgreSQL fails one
    of the two after deadlock_timeout). What ``second_write`` returned (or raised), and
    what ``take_row`` did."""
    from django.db import transaction

    from wiki import audit

    holding, waiting, done = threading.Event(), threading.Event(), {}

    def second_writer():
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                done["pid"] = cursor.fetchone()[0]
            holding.wait(timeout=60)
            waiting.set()
            done["got"] = second_write()
        except Exception as error:  # the test inspects it
            done["got"] = error
        finally:
            connections.close_all()

    thread = threading.Thread(target=second_writer)
    thread.start()
    with transaction.atomic():
        audit.lock_chain(project)
        holding.set()
        assert waiting.wait(timeout=60)
        _once_it_waits_for_a_lock(done["pid"])
        took = take_row()
    thread.join(timeout=60)
    return done["got"], took


@postgresql_only
@pytest.mark.parametrize("write", ["new model version", "project settings"])
def test_writers_that_lock_another_row_take_the_chain_head_first(write):
    """A new model version (its unique row) and a project's settings (its row) are
    written after the chain's head is locked, as every other write locks it first. The
    holder of the head (a writer midway) then takes that other row without waiting:
    taken the other way round, each would wait for the other (a deadlock, which
    PostgreSQL ends by failing one)."""
    from django.db import transaction

    from wiki.ingest import model_versions
    from wiki.services.projects import update_project

    project = ProjectFactory()
    if write == "new model version":

        def second():
            with transaction.atomic():
                return model_versions(project, {"9.9"})["9.9"]

        got, first = while_holding_the_head(
            project, second, lambda: ModelVersion.objects.create(project=project, version="9.9")
        )
        assert got == first  # the second writer reads the first's row
    else:
        while_holding_the_head(
            project,
            lambda: update_project(
                project, actor=cli_actor(), base_revision=None, change_reason="", name="B"
            ),
            lambda: Project.objects.select_for_update().get(pk=project.pk),
        )
        assert Project.objects.get(pk=project.pk).name == "B"


@postgresql_only
@pytest.mark.parametrize("write", ["conclusion", "closing a finding"])
def test_validation_writes_take_the_chain_head_before_their_rows(write):
    """Filing a finding takes the head, then its validation's row: a conclusion (the
    validation's row) and a change of a finding (its row) take the head first too, or a
    conclusion racing a new finding, or two changes of findings, deadlock. (A comment
    locks no row before the head: the finding's, by the comment's foreign key, only at
    commit, the constraint being deferred.)"""
    from wiki.models import Finding, Validation
    from wiki.services import validations as service

    maintainer, vera = UserFactory(username="alice"), UserFactory(username="vera")
    project = ProjectFactory(slug="churn")
    Membership.objects.create(project=project, user=maintainer, role=Membership.Role.MAINTAINER)
    Membership.objects.create(project=project, user=vera, role=Membership.Role.VALIDATOR)
    validator, owner = cli_actor(vera), cli_actor(maintainer)
    validation = service.open_validation(project, actor=validator, title="V")
    finding = service.file_finding(
        validation, actor=validator, title="Leak", description="D", severity="high",
        page="data", owner="alice",
    )  # fmt: skip
    finding = service.propose_remediation(
        finding, actor=owner, remediation="Fixed.", base_revision=1
    )
    locked_finding = Finding.objects.select_for_update().filter(pk=finding.pk)
    second, row = {
        "conclusion": (
            lambda: service.conclude_validation(
                validation, actor=validator, outcome="approved_with_conditions", conclusion="OK"
            ),
            Validation.objects.select_for_update().filter(pk=validation.pk),
        ),
        "closing a finding": (
            lambda: service.close_finding(finding, actor=validator, base_revision=2),
            locked_finding,
        ),
    }[write]
    got, _ = while_holding_the_head(project, second, lambda: list(row))
    assert not isinstance(got, Exception), got
    if write == "conclusion":
        assert Validation.objects.get().outcome == "approved_with_conditions"
    else:
        assert Finding.objects.get().status == "closed"


@postgresql_only
def test_a_page_edited_while_a_finding_on_it_is_filed_does_not_deadlock():
    """A finding (or an attachment) filed on a page checks its foreign key to the page at
    commit, while its writer holds the chain head; an edit of that page holds the page's
    row while it waits for the head. The edit's lock leaves the key alone (FOR NO KEY
    UPDATE), so the check, a FOR KEY SHARE, passes at once and both writes end. (An
    attachment takes its page's row first: the next test.)"""
    project = ProjectFactory()
    page = project.pages.get(category="data")

    def edit():
        return edit_page(
            Page.objects.get(pk=page.pk), actor=cli_actor(), base_revision=page.revision,
            change_reason="", body="Edited.",
        )  # fmt: skip

    def key_share():  # what the finding's foreign key to the page takes at commit
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT id FROM wiki_page WHERE id = %s FOR KEY SHARE", [page.pk])
            return cursor.fetchone()[0]

    edited, checked = while_holding_the_head(project, edit, key_share)
    assert checked == page.pk
    assert edited.revision == page.revision + 1 and edited.body == "Edited."


@postgresql_only
def test_attaching_a_figure_takes_its_page_before_the_chain_head():
    """An attachment on a page may end the page's approval, so it writes the page's row;
    it takes that row first, as an edit or an approval of the page does, then the chain
    head. Taken the other way round (the head with the attachment's history row, then
    the page), an edit of the page holding its row and waiting for the head deadlocked."""
    from django.core.files.base import ContentFile
    from django.db import transaction

    from wiki import audit
    from wiki.services.attachments import attach

    project = ProjectFactory()
    page = project.pages.get(category="model")
    ready, holding, done = threading.Event(), threading.Event(), {}

    def attacher():
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                done["pid"] = cursor.fetchone()[0]
            ready.set()
            holding.wait(timeout=60)
            figure = ContentFile(b"step,auc\n1,0.8\n", name="auc.csv")
            done["got"] = attach(Page.objects.get(pk=page.pk), figure, actor=cli_actor())
        except Exception as error:  # the test inspects it
            done["got"] = error
        finally:
            connections.close_all()

    thread = threading.Thread(target=attacher)
    thread.start()
    assert ready.wait(timeout=60)
    with transaction.atomic():  # an editor midway: it holds the page's row
        Page.objects.select_for_update(no_key=True).get(pk=page.pk)
        holding.set()
        _once_it_waits_for_a_lock(done["pid"])  # the attacher
        audit.lock_chain(project)  # the editor's next lock: free, the attacher holds none
    thread.join(timeout=60)
    assert not isinstance(done["got"], Exception), done["got"]
    assert done["got"].name == "auc.csv"
