"""The committed OpenAPI schema matches the code and tells the truth: every operation is
fuzzed against it (schemathesis), and answers the schema once got wrong are checked one by
one. The docs work with no network."""

import base64
import io
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import hypothesis
import pytest
import schemathesis
import yaml
from django.contrib.auth import get_user_model
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import make_token
from wiki.history import Actor, Source
from wiki.models import Deployment, Project, TrainingRun
from wiki.services.exports import build, request_export

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "api" / "openapi.yaml"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Examples per operation and mode (valid and invalid input): ~1,300 requests in all.
EXAMPLES = 20
APP = get_wsgi_application()


def test_the_committed_schema_matches_the_code_and_has_no_warnings(tmp_path):
    generated = tmp_path / "openapi.yaml"
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "spectacular",
            "--validate",
            "--fail-on-warn",
            "--file",
            str(generated),
        ],  # fmt: skip
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert generated.read_text() == COMMITTED.read_text(), (
        "api/openapi.yaml is out of date: run `make schema` and commit it."
    )


def test_the_schema_documents_every_endpoint_and_token_auth():
    schema = COMMITTED.read_text()
    for path in [
        "/api/v1/projects/",
        "/api/v1/projects/{project}/pages/{page}/",
        "/api/v1/projects/{project}/training-runs/",
        "/api/v1/projects/{project}/deployments/{id}/",
        "/api/v1/projects/{project}/model-versions/",
    ]:
        assert f"  {path}:" in schema, path
    assert "tokenAuth:" in schema and "name: Idempotency-Key" in schema


@pytest.mark.django_db
def test_the_docs_page_loads_everything_from_the_app_itself(client_logged_in):
    response = client_logged_in.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert any("swagger-ui" in asset for asset in assets), html
    for asset in assets:
        assert finders.find(asset.removeprefix("/static/")), asset
    assert "https://" not in html.split("<body>")[0]
    script = client_logged_in.get("/api/docs/?script=")
    assert script.status_code == 200 and b"SwaggerUIBundle" in script.content


@pytest.mark.django_db
def test_the_schema_is_served_to_tokens_and_refused_without_one(api, client, user):
    _, key = make_token(user)
    assert api(key).get("/api/schema/").status_code == 200
    assert client.get("/api/schema/").status_code == 401
    assert client.get("/api/docs/").status_code == 302


@pytest.fixture
def demo(db, settings):
    """The demo projects (pages, records, reviews), a finished Markdown export of churn,
    and ``key``, a token of the demo admin with every scope."""
    settings.DEBUG = True  # the demo's users get the demo password
    call_command("seed_demo", stdout=io.StringIO())
    churn = Project.objects.get(slug="churn-prediction")
    admin = get_user_model().objects.get(username="demo")
    job = request_export(churn, actor=Actor(admin, Source.WEB), format="markdown", enqueue=False)
    _, key = make_token(admin, scopes=["read", "pages:write", "records:write", "admin"])
    return SimpleNamespace(churn=churn, export=build(job.pk), key=key)


@pytest.fixture
def in_process(demo):
    """``demo``, for requests to the app in this process (APP) inside the test's
    transaction: as Django's test client does, the end of a request must not close the
    connection that holds it."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield demo
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def committed_schema(demo, **config):
    """api/openapi.yaml as schemathesis reads it; the requests it draws carry demo.key."""
    config["headers"] = {"Authorization": f"Token {demo.key}"}
    return schemathesis.openapi.from_path(COMMITTED, config=SchemathesisConfig.from_dict(config))


def answer(demo, method, path, headers=(), **request):
    """The app's answer to one request, checked against the committed schema (CHECKS)."""
    # A request made by hand gets no headers from the configuration.
    headers = {"Authorization": f"Token {demo.key}", **dict(headers)}
    case = committed_schema(demo)[path][method].Case(headers=headers, **request)
    return case.call_and_validate(app=APP, checks=CHECKS)


def test_every_operation_answers_as_the_committed_schema_says(in_process, settings):
    """Schemathesis draws valid and invalid requests for each operation of the committed
    schema, mostly naming the demo's projects, pages, records and export; every answer
    must be one the schema declares: its status, content type and shape, and no 5xx."""
    demo = in_process
    settings.API_THROTTLE_RATE = "100000/minute"  # a fuzzer is faster than any pipeline
    # One record of each kind and the export: each id names something often enough.
    ids = [TrainingRun.objects.first().pk, Deployment.objects.first().pk, demo.export.pk]
    schema = committed_schema(
        demo,
        dictionaries={
            "projects": {"values": ["churn-prediction", "fraud-detection"]},
            "pages": {"values": [page.slug for page in demo.churn.pages.all()]},
            "ids": {"values": ids},
            "revisions": {"values": [1, 2, 3]},
        },
        parameters={
            name: {"dictionary": dictionary, "probability": 0.9}
            for name, dictionary in [
                ("path.project", "projects"),
                ("path.page", "pages"),
                ("path.id", "ids"),
                ("path.number", "revisions"),
                ("query.from", "revisions"),
                ("query.to", "revisions"),
            ]
        },
    )
    failures, operations = [], 0
    started = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
            @hypothesis.settings(
                max_examples=EXAMPLES,
                derandomize=True,
                database=None,
                deadline=None,
                suppress_health_check=list(hypothesis.HealthCheck),
            )
            def check(case):
                # Each request starts from the demo as it was: the same draw gets the
                # same answer, and a database error ends its own request only.
                savepoint = transaction.savepoint()
                try:
                    case.call_and_validate(app=APP, checks=CHECKS)
                finally:
                    transaction.savepoint_rollback(savepoint)

            try:
                check()
            except Unsatisfiable:
                pass  # no invalid request to make: only path parameters, drawn from the demo
            except (AssertionError, BaseExceptionGroup) as failure:
                failures.append(f"{operation.label} ({mode.value}): {failure}")
    print(f"schemathesis: {operations} operations in {time.monotonic() - started:.1f} s")
    assert operations == len(
        re.findall(r"^    (?:get|post|put|patch|delete):", COMMITTED.read_text(), re.M)
    )
    assert not failures, "\n\n".join(failures)


def declared():
    return yaml.safe_load(COMMITTED.read_text())


PAGE = "/api/v1/projects/{project}/pages/{page}/"


def test_records_summary_is_declared_null_on_pages_the_records_do_not_concern(in_process):
    assert declared()["components"]["schemas"]["Page"]["properties"]["records_summary"]["nullable"]
    data = answer(
        in_process, "GET", PAGE, path_parameters={"project": "churn-prediction", "page": "data"}
    )
    assert data.json()["records_summary"] is None
    model = answer(
        in_process, "GET", PAGE, path_parameters={"project": "churn-prediction", "page": "model"}
    )
    assert model.json()["records_summary"]["latest_run"]["model_version"]


def test_errors_of_list_and_object_fields_nest_as_declared(in_process):
    deployment = {"model_version": "9.0.0", "environment": "staging", "status": "pending"}
    checks = [{"name": "smoke", "passed": True}, {"name": "load", "passed": True, "zzz": 1}]
    response = answer(
        in_process,
        "POST",
        "/api/v1/projects/{project}/deployments/",
        path_parameters={"project": "churn-prediction"},
        body=deployment | {"checks": checks},
    )
    assert response.status_code == 400
    assert response.json()["errors"] == {"checks": {"1": {"zzz": ["Unknown field."]}}}
    response = answer(
        in_process,
        "PATCH",
        PAGE,
        path_parameters={"project": "churn-prediction", "page": "overview"},
        headers={"If-Match": "*"},
        body={"fields": {"status": 5}},
    )
    assert response.status_code == 400
    assert set(response.json()["errors"]["fields"]) == {"status"}, response.json()


def test_an_export_downloads_in_a_content_type_the_schema_declares(in_process):
    path = "/api/v1/exports/{id}/download/"
    content = declared()["paths"][path]["post"]["responses"]["200"]["content"]
    assert set(content) == {
        "application/pdf", "text/html", "text/markdown", "application/json", "application/zip",
    }  # fmt: skip
    response = answer(in_process, "POST", path, path_parameters={"id": in_process.export.pk})
    assert response.headers["content-type"] == ["text/markdown; charset=utf-8"]
    assert response.content.startswith(b"# Audit report")


def test_every_list_declares_its_paging_limits_and_its_400_and_404():
    lists = {
        path: operation
        for path, item in declared()["paths"].items()
        for method, operation in item.items()
        if any(p["name"] == "page_size" for p in operation.get("parameters", []))
    }
    assert len(lists) == 21, sorted(lists)
    for path, operation in lists.items():
        parameters = {p["name"]: p for p in operation["parameters"]}
        assert parameters["page_size"]["schema"] == {
            "type": "integer",
            "minimum": 1,
            "maximum": 200,
        }
        if "page" in parameters:
            assert parameters["page"]["schema"]["minimum"] == 1
            assert "404" in parameters["page"]["description"], path
        assert {"400", "404"} <= set(operation["responses"]), path
        assert "does not take" in operation["responses"]["400"]["description"], path


@pytest.mark.parametrize(
    ("query", "status"), [({"page": 999}, 404), ({"page_size": 0}, 400), ({"page_size": 201}, 400)]
)
def test_paging_past_the_end_or_out_of_bounds_answers_as_declared(in_process, query, status):
    for path, filters in [("/api/v1/projects/", {}), ("/api/v1/search/", {"q": "churn"})]:
        response = answer(in_process, "GET", path, query=filters | query)
        assert response.status_code == status


LISTS = {
    "/api/v1/projects/": "numbered",
    "/api/v1/search/?q=churn": "numbered",
    "/api/v1/projects/churn-prediction/pages/": "numbered",
    "/api/v1/projects/churn-prediction/pages/model/revisions/": "numbered",
    "/api/v1/projects/churn-prediction/model-versions/": "numbered",
    "/api/v1/projects/churn-prediction/exports/": "numbered",
    "/api/v1/projects/churn-prediction/training-runs/": "cursor",
    "/api/v1/projects/churn-prediction/deployments/": "cursor",
    "/api/v1/projects/churn-prediction/activity/": "cursor",
    "/api/v1/projects/churn-prediction/validations/": "numbered",
    "/api/v1/projects/churn-prediction/findings/": "numbered",
}


@pytest.mark.parametrize(("url", "paging"), LISTS.items())
def test_every_list_refuses_parameters_it_does_not_take_or_takes_twice(demo, api, url, paging):
    client = api(demo.key)
    join = "&" if "?" in url else "?"
    assert client.get(url).status_code == 200
    other_paging = "cursor=x" if paging == "numbered" else "page=2"
    for query in ["zzz=1", "page_size=1&page_size=2", other_paging]:
        response = client.get(f"{url}{join}{query}")
        assert response.status_code == 400, (url, query)
        assert set(response.json()["errors"]) == {query.split("=")[0]}


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/projects/?owner_team=",
        "/api/v1/projects/churn-prediction/pages/?kind=",
        "/api/v1/projects/churn-prediction/model-versions/?version=",
        "/api/v1/projects/churn-prediction/training-runs/?model_version=",
        "/api/v1/projects/churn-prediction/deployments/?status=",
        "/api/v1/projects/churn-prediction/activity/?since=",
        "/api/v1/projects/churn-prediction/activity/export/?user=",
    ],
)
def test_an_empty_filter_is_refused_not_ignored(demo, api, url):
    response = api(demo.key).get(url)
    assert response.status_code == 400
    (name,) = response.json()["errors"]
    assert url.endswith(f"?{name}=")


def test_times_with_offsets_postgresql_cannot_store_are_taken_in_utc(demo, api):
    """ISO 8601 allows offsets to ±23:59, PostgreSQL to ±15:59: the fuzzer's +16:17 was a
    500 there, in a record, a filter and a cursor."""
    client = api(demo.key)
    runs = "/api/v1/projects/churn-prediction/training-runs/"
    at = "2024-06-01T10:00:00+16:30"
    created = client.post(runs, {"model_version": "9.9.9", "status": "succeeded", "started_at": at})
    assert created.status_code == 201, created.json()
    assert created.json()["started_at"] == "2024-05-31T17:30:00Z"
    found = client.get(runs, {"since": at, "until": "2024-06-01T10:00:01+16:30"}).json()
    assert [run["id"] for run in found["results"]] == [created.json()["id"]]
    raw = json.dumps(["-started_at", "2024-06-01T10:00:01+16:30", 1, False]).encode()
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    after = client.get(runs, {"cursor": cursor}).json()
    assert created.json()["id"] in [run["id"] for run in after["results"]]
    late = client.post(runs, {"status": "succeeded", "started_at": "9999-12-31T23:00:00-05:00"})
    assert late.json()["errors"]["started_at"] == ["Is after the year 9999."]
