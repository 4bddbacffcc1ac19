"""The audit chain: every history row linked and sealed; tampering found and named."""

import hashlib
import tracemalloc
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from tests.factories import ProjectFactory, UserFactory, make_token, make_training_run
from wiki.audit import GENESIS, canonical, head_for, seal, verify
from wiki.history import Actor, Source
from wiki.models import AuditEntry, ChainHead, HistoricalPage
from wiki.services.pages import edit_page

pytestmark = pytest.mark.django_db


def sql(statement, params=()):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def entries(project):
    return list(AuditEntry.objects.filter(chain=head_for(project)).order_by("seq"))


@pytest.fixture
def history(project):
    """A project with a few revisions: creation (7 rows), its maintainer, three edits, a
    run (2 rows)."""
    page = project.pages.get(category="overview")
    for number in range(1, 4):
        edit_page(
            page, actor=Actor(None, Source.CLI), base_revision=number,
            change_reason=f"edit {number}", body=f"v{number}",
        )  # fmt: skip
    make_training_run(project)
    return project


def test_every_history_row_of_a_project_is_linked_in_order(history):
    chain = entries(history)
    assert [e.seq for e in chain] == list(range(1, 14))
    assert [e.kind for e in chain[:2]] == ["project", "page"]
    assert [e.kind for e in chain[-2:]] == ["modelversion", "trainingrun"]
    previous = GENESIS
    for entry in chain:
        row = entry.table and _row(entry)
        assert entry.digest == hashlib.sha256(previous.encode() + canonical(row)).hexdigest()
        assert entry.seal == seal(entry.digest)
        previous = entry.digest
    assert head_for(history).digest == previous


def _row(entry):
    from django.apps import apps

    model = apps.get_model(entry.table)
    columns = [f.attname for f in model._meta.concrete_fields]
    return model.objects.filter(history_id=entry.history_id).values(*columns).get()


def test_users_and_tokens_go_in_the_global_chain(project):
    before = head_for(None).seq
    user = UserFactory(username="ci-bot")
    make_token(user)
    kinds = list(
        AuditEntry.objects.filter(chain=head_for(None), seq__gt=before).values_list(
            "kind", flat=True
        )
    )
    assert kinds == ["user", "apitoken"]
    assert not AuditEntry.objects.filter(chain=head_for(project), kind="apitoken").exists()


def test_an_intact_chain_verifies(history):
    verdict = verify(head_for(history))
    assert (verdict.ok, verdict.entries, verdict.first_bad) == (True, 13, None)
    assert verdict.head == head_for(history).digest
    stored = ChainHead.objects.get(project=history)
    assert (stored.verified_ok, stored.verified_entries) == (True, 13)


def _page_row(project, number):
    """The history_id of the page edit that made revision ``number`` of the overview."""
    return HistoricalPage.objects.get(
        project_id=project.id, category="overview", revision=number
    ).history_id


def test_numbers_the_database_stores_differently_still_verify(project):
    """jsonb gives 3.2e18 back as an integer and -0.0 as 0.0: the chain hashes numbers as
    stored, so such a record verifies on PostgreSQL as on SQLite."""
    metrics = {"flops": 3.2e18, "huge": 1e300, "zero": -0.0, "tiny": 1.5e-7, "auc": 0.91}
    run = make_training_run(project, metrics=metrics, hyperparameters={"tokens": 2e16})
    run.refresh_from_db()
    assert run.metrics["flops"] == 3.2e18
    verdict = verify(head_for(project))
    assert verdict.ok, verdict.first_bad


def test_an_altered_row_is_named(history):
    history_id = _page_row(history, 3)
    sql("UPDATE wiki_historicalpage SET body = 'rewritten' WHERE history_id = %s", [history_id])
    verdict = verify(head_for(history))
    assert not verdict.ok
    bad = verdict.first_bad
    assert (bad["kind"], bad["table"], bad["history_id"]) == (
        "altered",
        "wiki.HistoricalPage",
        history_id,
    )
    assert bad["seq"] == AuditEntry.objects.get(history_id=history_id, table=bad["table"]).seq
    assert verdict.entries == bad["seq"] - 1


def test_a_deleted_row_is_named(history):
    history_id = _page_row(history, 2)
    sql("DELETE FROM wiki_historicalpage WHERE history_id = %s", [history_id])
    bad = verify(head_for(history)).first_bad
    assert (bad["kind"], bad["history_id"]) == ("deleted", history_id)


def test_a_deleted_entry_is_named(history):
    victim = entries(history)[5]
    sql("DELETE FROM wiki_auditentry WHERE id = %s", [victim.id])
    bad = verify(head_for(history)).first_bad
    assert (bad["kind"], bad["seq"]) == ("deleted", victim.seq)


def test_an_inserted_row_is_named(history):
    columns = [f.column for f in HistoricalPage._meta.concrete_fields if f.column != "history_id"]
    listed = ", ".join(columns)
    source = _page_row(history, 2)
    sql(
        f"INSERT INTO wiki_historicalpage ({listed}) SELECT {listed} FROM wiki_historicalpage "  # noqa: S608
        "WHERE history_id = %s",
        [source],
    )
    inserted = HistoricalPage.objects.order_by("-history_id").first().history_id
    bad = verify(head_for(history)).first_bad
    assert (bad["kind"], bad["table"], bad["history_id"]) == (
        "inserted",
        "wiki.HistoricalPage",
        inserted,
    )


def test_an_entry_past_the_head_is_named(history):
    last = entries(history)[-1]
    sql(
        'INSERT INTO wiki_auditentry (chain_id, seq, "table", history_id, object_id, kind, '
        "action, at, username, source, reason, object_repr, digest, seal) SELECT chain_id, "
        'seq + 1, "table", history_id, object_id, kind, action, at, username, source, '
        "reason, object_repr, digest, seal FROM wiki_auditentry WHERE id = %s",
        [last.id],
    )
    bad = verify(head_for(history)).first_bad
    assert (bad["kind"], bad["seq"]) == ("inserted", last.seq + 1)


def test_reordered_entries_are_named(history):
    first, second = entries(history)[7:9]
    # Swap their places (through a free number: the numbers are unique).
    sql("UPDATE wiki_auditentry SET seq = 0 WHERE id = %s", [first.id])
    sql("UPDATE wiki_auditentry SET seq = %s WHERE id = %s", [first.seq, second.id])
    sql("UPDATE wiki_auditentry SET seq = %s WHERE id = %s", [second.seq, first.id])
    bad = verify(head_for(history)).first_bad
    assert (bad["kind"], bad["seq"], bad["history_id"]) == (
        "reordered",
        first.seq,
        second.history_id,
    )


def test_digests_recomputed_without_the_key_are_caught_by_the_seals(history):
    history_id = _page_row(history, 2)
    sql("UPDATE wiki_historicalpage SET body = 'forged' WHERE history_id = %s", [history_id])
    # The forger recomputes every digest from the altered row on, but cannot seal them.
    chain = entries(history)
    start = next(i for i, e in enumerate(chain) if e.history_id == history_id)
    previous = chain[start - 1].digest
    for entry in chain[start:]:
        previous = hashlib.sha256(previous.encode() + canonical(_row(entry))).hexdigest()
        sql("UPDATE wiki_auditentry SET digest = %s WHERE id = %s", [previous, entry.id])
    sql("UPDATE wiki_chainhead SET digest = %s WHERE id = %s", [previous, chain[0].chain_id])
    bad = verify(head_for(history)).first_bad
    assert (bad["kind"], bad["history_id"]) == ("altered", history_id)
    assert "seal" in bad["detail"]


def test_a_different_key_fails_every_seal(history, settings):
    settings.AUDIT_HMAC_KEY = "another key"
    bad = verify(head_for(history)).first_bad
    assert (bad["kind"], bad["seq"]) == ("altered", 1)


def test_verify_audit_exits_0_when_intact_and_1_naming_the_entry(history):
    out = StringIO()
    call_command("verify_audit", "--project", history.slug, stdout=out)
    assert f"{history.slug}: intact, 13 entries" in out.getvalue()
    history_id = _page_row(history, 3)
    sql("UPDATE wiki_historicalpage SET title = 'x' WHERE history_id = %s", [history_id])
    out = StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_audit", stdout=out)
    assert exit_info.value.code == 1
    assert f"altered (wiki.HistoricalPage history row {history_id})" in out.getvalue()
    assert "global: intact" in out.getvalue()


def test_the_api_verifies_a_chain(api, user, history):
    _, key = make_token(user)
    data = api(key).get(f"/api/v1/projects/{history.slug}/audit/verify/").json()
    assert (data["ok"], data["entries"], data["first_bad"]) == (True, 13, None)
    sql("DELETE FROM wiki_auditentry WHERE seq = 4 AND chain_id = %s", [head_for(history).id])
    data = api(key).get(f"/api/v1/projects/{history.slug}/audit/verify/").json()
    assert data["ok"] is False
    assert (data["first_bad"]["kind"], data["first_bad"]["seq"]) == ("deleted", 4)


def test_one_request_shares_one_request_id_and_returns_it(client_logged_in, project):
    response = client_logged_in.post(
        "/projects/new/", {"name": "Fraud", "slug": "fraud", "owner_team": "Risk"}
    )
    request_id = response["X-Request-ID"]
    chain = AuditEntry.objects.filter(chain__project__slug="fraud")
    assert chain.count() == 8  # the project, its six pages, its creator as maintainer
    assert {str(e.request_id) for e in chain} == {request_id}
    other = client_logged_in.get("/")["X-Request-ID"]
    assert other != request_id


def test_writes_outside_requests_share_an_id_per_block(project):
    make_training_run(project, model_version="9.0")
    ids = set(
        AuditEntry.objects.filter(kind__in=["modelversion", "trainingrun"]).values_list(
            "request_id", flat=True
        )
    )
    assert len(ids) == 1 and None not in ids


def test_a_login_is_not_a_revision_of_the_account(client, user):
    before = user.history.count()
    client.post("/accounts/login/", {"username": "alice", "password": "correct-horse-battery"})
    user.refresh_from_db()
    assert user.last_login is not None
    assert user.history.count() == before


def test_account_changes_in_the_admin_are_kept_without_the_password(admin_client_logged_in, user):
    response = admin_client_logged_in.post(
        f"/admin/auth/user/{user.pk}/change/",
        {
            "username": "alice",
            "first_name": "Alice",
            "last_name": "",
            "email": "alice@example.com",
            "is_active": "on",
            "date_joined_0": "2024-01-01",
            "date_joined_1": "00:00:00",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    row = user.history.first()
    assert (row.history_source, row.history_username, row.first_name) == ("admin", "root", "Alice")
    assert not hasattr(row, "password")


def test_verification_memory_does_not_grow_with_history():
    def peak(runs):
        project = ProjectFactory()
        for _ in range(runs):
            make_training_run(project)
        head = head_for(project)
        tracemalloc.start()
        verify(head, batch_size=50)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    small, large = peak(100), peak(1000)
    assert large < 2 * small, (small, large)
