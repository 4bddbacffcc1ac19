"""The committed OpenAPI schema matches the code; the docs work with no network."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders

from tests.factories import make_token

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "api" / "openapi.yaml"


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
