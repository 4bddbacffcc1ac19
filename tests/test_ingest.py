"""The batch endpoints (api.views.batches) and the write path they share with single
posts (wiki.ingest): every guarantee of a single post holds for each record of a batch."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tests.factories import ProjectFactory, cli_actor, make_token
from tests.test_api_records import deployment_body, run_body
from tests.test_concurrency import race
from wiki import statements
from wiki.audit import head_for, verify
from wiki.models import (
    AuditEntry,
    Deployment,
    IdempotencyKey,
    Project,
    RunValue,
    SearchEntry,
    TrainingRun,
)
from wiki.search import search

RUNS = "/api/v1/projects/churn/training-runs/"
BATCH = RUNS + "batch/"
DEPLOYMENTS_BATCH = "/api/v1/projects/churn/deployments/batch/"


def runs(count, prefix="k", **changes):
    return [
        {"idempotency_key": f"{prefix}-{n}", **run_body(notes=f"Run number {n}.", **changes)}
        for n in range(count)
    ]


def post(client, records, path=BATCH, **headers):
    return client.post(path, {"records": records}, format="json", **headers)


def history_rows(model):
    return model.history.model.objects.count()


@pytest.mark.django_db
def test_a_batch_stores_every_record_with_history_chain_search_and_one_version_bump(
    api, pipeline_key, project
):
    client = api(pipeline_key)
    records = runs(3)
    records[1]["notes"] = "The quokka run."
    response = post(client, records)
    assert response.status_code == 200, response.json()
    answer = response.json()
    assert (answer["created"], answer["replayed"], answer["invalid"]) == (3, 0, 0)
    stored = {run.pk: run for run in TrainingRun.objects.filter(project=project)}
    assert [r["status"] for r in answer["results"]] == ["created"] * 3
    # In order: each result names the record sent at its place.
    notes = [stored[r["id"]].notes for r in answer["results"]]
    assert notes == ["Run number 0.", "The quokka run.", "Run number 2."]
    assert answer["results"][0]["url"].endswith(f"{RUNS}{answer['results'][0]['id']}/")
    assert history_rows(TrainingRun) == 3
    for run in stored.values():
        row = run.history.get()
        assert (row.history_type, row.history_source, row.history_token_name) == (
            "+", "api", "test token",
        )  # fmt: skip
        assert row.history_change_reason == "Recorded training run"
        assert run.values.count() == 5  # 2 metrics, 3 parameters
    # One request id for the whole batch, as for everything one request changes.
    assert len({run.history.get().history_request_id for run in stored.values()}) == 1
    assert verify(head_for(project)).ok
    linked = AuditEntry.objects.filter(chain=head_for(project), kind="trainingrun")
    assert sorted(linked.values_list("object_id", flat=True)) == sorted(stored)
    found = list(search("quokka", Project.objects.all()))
    assert [(e.kind, e.object_id) for e in found] == [("run", answer["results"][1]["id"])]
    project.refresh_from_db()
    version = project.records_version
    assert post(client, runs(2, prefix="more")).status_code == 200
    project.refresh_from_db()
    assert project.records_version == version + 1  # once per batch, not per record


@pytest.mark.django_db
def test_a_bad_record_in_the_middle_is_answered_in_place_and_blocks_nothing(
    api, pipeline_key, project
):
    client = api(pipeline_key)
    records = runs(5)
    records[1]["metrics"] = {"auc": "high"}
    records[2].pop("idempotency_key")
    records[3]["model_version"] = "has spaces"
    answer = post(client, records).json()
    assert [r["status"] for r in answer["results"]] == [
        "created", "invalid", "invalid", "invalid", "created",
    ]  # fmt: skip
    assert (answer["created"], answer["invalid"]) == (2, 3)
    assert "metrics" in answer["results"][1]["errors"]
    assert "idempotency_key" in answer["results"][2]["errors"]
    assert "model_version" in answer["results"][3]["errors"]
    assert answer["results"][3]["detail"].startswith("model_version: ")
    assert TrainingRun.objects.count() == 2
    # Only the written records' keys are kept: the bad ones, fixed, can be sent again.
    assert set(IdempotencyKey.objects.values_list("key", flat=True)) == {"k-0", "k-4"}
    records[1]["metrics"] = {"auc": 0.9}
    again = post(client, records[:2]).json()
    assert [r["status"] for r in again["results"]] == ["replayed", "created"]
    assert TrainingRun.objects.count() == 3


@pytest.mark.django_db
def test_a_batch_sent_again_is_replayed_and_a_key_reused_for_another_record_is_refused(
    api, pipeline_key, project
):
    client = api(pipeline_key)
    single = client.post(RUNS, run_body(notes="Alone."), HTTP_IDEMPOTENCY_KEY="alone")
    first = post(client, runs(3)).json()
    records = runs(3) + [{"idempotency_key": "alone", **run_body(notes="Alone.")}]
    records[2]["notes"] = "Another run under the key of run 2."
    again = post(client, records).json()
    assert [r["status"] for r in again["results"]] == [
        "replayed", "replayed", "invalid", "replayed",
    ]  # fmt: skip
    assert again["results"][:2] == [
        {"status": "replayed", "id": r["id"], "url": r["url"]} for r in first["results"][:2]
    ]
    assert again["results"][3]["id"] == single.json()["id"]  # posted alone, then in a batch
    assert "different record" in again["results"][2]["errors"]["idempotency_key"][0]
    assert TrainingRun.objects.count() == 4
    # ... and a record of a batch retried alone under its key is a replay too.
    body = {k: v for k, v in runs(1)[0].items() if k != "idempotency_key"}
    replay = client.post(RUNS, body, format="json", HTTP_IDEMPOTENCY_KEY="k-0")
    assert replay.status_code == 200
    assert replay.json()["id"] == first["results"][0]["id"]


@pytest.mark.django_db
def test_a_key_twice_in_one_batch_is_written_once(api, pipeline_key, project):
    records = runs(2) + runs(1)
    answer = post(api(pipeline_key), records).json()
    assert [r["status"] for r in answer["results"]] == ["created", "created", "invalid"]
    assert "record 0 of this batch" in answer["results"][2]["errors"]["idempotency_key"][0]
    assert TrainingRun.objects.count() == 2


@pytest.mark.django_db
def test_the_batch_itself_is_refused_whole_when_its_shape_is_wrong(api, pipeline_key, project):
    client = api(pipeline_key)
    header = post(client, runs(1), HTTP_IDEMPOTENCY_KEY="whole")
    assert header.status_code == 400
    assert "idempotency_key" in header.json()["detail"]
    too_many = post(client, runs(1001))
    assert too_many.status_code == 400
    assert "At most 1000 records per batch (1001 sent)" in too_many.json()["detail"]
    assert post(client, []).status_code == 400
    assert client.post(BATCH, runs(1), format="json").status_code == 400  # not {"records"}
    big = json.dumps({"records": [{"notes": "x" * 1024 * 1024}] * 17})
    too_large = client.post(BATCH, big, content_type="application/json")
    assert too_large.status_code == 413
    assert "16384 KiB" in too_large.json()["detail"]
    read_only = api(make_token(project.memberships.get().user, scopes=["read"])[1])
    assert post(read_only, runs(1)).status_code == 403
    assert TrainingRun.objects.count() == 0


@pytest.mark.django_db
def test_a_batch_of_deployments(api, pipeline_key, project):
    records = [
        {"idempotency_key": "d-1", **deployment_body()},
        {"idempotency_key": "d-2", **deployment_body(status="rolled_back")},
        {"idempotency_key": "d-3", **deployment_body(model_version="3.0.0", status="failed",
                                                     finished_at="2024-06-02T09:00:00Z")},
    ]  # fmt: skip
    answer = post(api(pipeline_key), records, path=DEPLOYMENTS_BATCH).json()
    assert [r["status"] for r in answer["results"]] == ["created", "invalid", "created"]
    assert "PATCH" in answer["results"][1]["errors"]["status"][0]
    assert sorted(Deployment.objects.values_list("model_version__version", flat=True)) == [
        "2.0.0", "3.0.0",
    ]  # fmt: skip
    assert history_rows(Deployment) == 2
    assert verify(head_for(project)).ok


@pytest.mark.django_db
def test_a_batch_takes_the_same_statements_for_one_record_and_for_many(api, pipeline_key, project):
    client = api(pipeline_key)
    post(client, runs(1, prefix="warm"))  # the model version exists
    # Django's SQLite backend splits a multi-row insert past 999 parameters (38 history
    # rows of a run); PostgreSQL takes any number in one statement.
    many = 50 if connection.vendor == "postgresql" else 30
    counts = []
    for size, prefix in ((1, "one"), (many, "many")):
        with CaptureQueriesContext(connection) as captured:
            assert post(client, runs(size, prefix=prefix)).json()["created"] == size
        counts.append(len(captured))
    assert counts[0] == counts[1], counts
    # token, project, claim of the keys, model versions, records, history rows, chain
    # head; metrics and parameters (COPY on PostgreSQL); chain entries, head's digest,
    # search entries, records version (one statement on PostgreSQL, wiki.statements);
    # answers; the test's savepoint pair
    assert counts[0] <= (11 if connection.vendor == "postgresql" else 15), counts


def set_trap(table, when):
    """A trigger that makes the database refuse a row of ``table`` that meets ``when``:
    a failure inside the batch's transaction, after its records, their history rows and
    their chain entries were inserted."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION boom() RETURNS trigger AS $$ BEGIN "
                "RAISE EXCEPTION 'boom'; END $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                f"CREATE TRIGGER boom BEFORE INSERT ON {table} FOR EACH ROW "
                f"WHEN ({when}) EXECUTE FUNCTION boom()"
            )
        else:
            cursor.execute(
                f"CREATE TRIGGER boom BEFORE INSERT ON {table} "
                f"WHEN {when} BEGIN SELECT RAISE(ABORT, 'boom'); END"
            )


def remove_trap(table):
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"DROP TRIGGER boom ON {table}")
            cursor.execute("DROP FUNCTION boom()")
        else:
            cursor.execute("DROP TRIGGER boom")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "table, when, change",
    [
        # The search entries, sent with the chain's (wiki.statements.Statements).
        ("wiki_searchentry", "NEW.text LIKE '%boom%'", {"notes": "This one goes boom."}),
        # The run values, sent by COPY on PostgreSQL (wiki.statements.copy).
        ("wiki_runvalue", "NEW.name = 'boom'", {"metrics": {"boom": 1.0}}),
    ],
)
def test_a_batch_the_database_fails_midway_leaves_nothing_and_can_be_sent_again(
    user, table, when, change
):
    project = ProjectFactory(slug="churn", actor=cli_actor(user))
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=f"Token {make_token(user, ['records:write'], ['churn'])[1]}"
    )
    records = runs(5)
    records[3] |= change
    before = {
        "entries": AuditEntry.objects.count(),
        "version": Project.objects.get(pk=project.pk).records_version,
        "head": head_for(project).seq,
    }
    set_trap(table, when)
    try:
        failed = post(client, records)
    finally:
        remove_trap(table)
    assert failed.status_code == 503
    assert failed["Retry-After"]
    assert "nothing of it was saved" in failed.json()["detail"]
    assert TrainingRun.objects.count() == 0
    assert history_rows(TrainingRun) == 0
    assert IdempotencyKey.objects.count() == 0
    after = {
        "entries": AuditEntry.objects.count(),
        "version": Project.objects.get(pk=project.pk).records_version,
        "head": head_for(project).seq,
    }
    assert after == before
    retried = post(client, records).json()
    assert retried["created"] == 5
    assert TrainingRun.objects.count() == 5
    assert verify(head_for(project)).ok


@pytest.mark.django_db(transaction=True)
def test_racing_batches_and_posts_with_the_same_keys_make_each_record_once(user):
    project = ProjectFactory(slug="churn", actor=cli_actor(user))
    key = make_token(user, scopes=["records:write"], projects=["churn"])[1]
    records = runs(12)

    def send(order):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return lambda: post(client, [records[n] for n in order])

    def single(n):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        body = {k: v for k, v in records[n].items() if k != "idempotency_key"}
        return lambda: client.post(
            RUNS, body, format="json", HTTP_IDEMPOTENCY_KEY=records[n]["idempotency_key"]
        )

    forward, backward = list(range(12)), list(range(11, -1, -1))
    responses = race(send(forward), send(backward), send(forward[::2]), single(5), single(0))
    assert all(r.status_code in (200, 201) for r in responses), responses
    assert TrainingRun.objects.filter(project=project).count() == 12
    ids = {}
    for response in responses[:3]:
        for result in response.json()["results"]:
            assert result["status"] in ("created", "replayed"), result
            ids.setdefault(result["url"], set()).add(result["id"])
    for response in responses[3:]:
        ids.setdefault(response.json()["url"], set()).add(response.json()["id"])
    assert len(ids) == 12 and all(len(found) == 1 for found in ids.values())
    assert verify(head_for(project)).ok


@pytest.mark.django_db
def test_writes_past_the_parameter_limit_are_cut_into_statements(
    api, pipeline_key, project, monkeypatch
):
    """A batch whose rows hold more values than one statement may take (SQLite 32,766,
    PostgreSQL 65,535: a batch of runs with many metrics) is written in several."""
    monkeypatch.setattr(statements, "MAX_PARAMS", 40)  # 6 values a row: 6 rows a statement
    answer = post(api(pipeline_key), runs(4)).json()
    assert answer["created"] == 4
    assert RunValue.objects.count() == 4 * 5
    assert AuditEntry.objects.filter(kind="trainingrun").count() == 4
    assert SearchEntry.objects.filter(kind="run").count() == 4
    assert verify(head_for(project)).ok


@pytest.mark.django_db
def test_run_values_keep_any_name_and_text_exactly(api, pipeline_key, project):
    """The run values go by COPY on PostgreSQL (wiki.statements.copy), whose text format
    escapes: names and values with tabs, line breaks, backslashes, its NULL marker and
    non-ASCII text come back as sent, numbers as the same floats."""
    awkward = ["tab\there", "line\nbreak\r\n", "back\\slash", "\\N", "naïve ✓", "", "null"]
    hyperparameters = {f"p{n} {text}": text for n, text in enumerate(awkward)}
    hyperparameters |= {"none": None, "flag": False, "big": 10**400, "tiny": 5e-324, "n": 7}
    metrics = {"m\tone": 0.1 + 0.2, "m\\two": 3, "m three": -1e308}
    records = runs(2, hyperparameters=hyperparameters, metrics=metrics)
    answer = post(api(pipeline_key), records).json()
    assert answer["created"] == 2, answer
    for result in answer["results"]:
        run = TrainingRun.objects.get(pk=result["id"])
        stored = RunValue.objects.filter(training_run=run).values_list(
            "project_id", "training_run_id", "kind", "name", "number", "text"
        )
        assert sorted(stored, key=repr) == sorted(RunValue.rows(run), key=repr)
    rows = dict(
        RunValue.objects.filter(training_run_id=answer["results"][0]["id"]).values_list(
            "name", "text"
        )
    )
    assert [rows[f"p{n} {text}"] for n, text in enumerate(awkward)] == awkward
    numbers = dict(RunValue.objects.values_list("name", "number"))
    assert numbers["m\tone"] == 0.1 + 0.2 and numbers["m\\two"] == 3.0
    assert [numbers[name] for name in ("none", "big", "tiny", "n")] == [None, None, 5e-324, 7.0]
