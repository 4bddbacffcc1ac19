"""Container and process configuration, validated offline (no Docker engine here)."""

import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def compose():
    return YAML(typ="safe").load((ROOT / "docker-compose.yml").read_text())


def run(*args):
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_compose_file_follows_the_compose_specification():
    result = run(
        "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", "docker-compose.yml"
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_runs_every_service_with_a_health_check(compose):
    services = compose["services"]
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(services)
    for name in ["postgres", "redis", "web", "worker", "beat"]:
        assert services[name]["healthcheck"]["test"], name


def test_compose_keeps_data_in_named_volumes(compose):
    services = compose["services"]
    assert "pgdata:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert "redisdata:/data" in services["redis"]["volumes"]
    assert set(compose["volumes"]) == {"pgdata", "redisdata", "media"}
    # Exports are written by the worker and downloaded through web: one shared volume.
    for name in ["web", "worker"]:
        assert "media:/app/media" in services[name]["volumes"]


def test_app_services_use_postgres_redis_and_production_mode(compose):
    for name in ["web", "worker", "beat", "migrate"]:
        service = compose["services"][name]
        env = service["environment"]
        assert env["DEBUG"] == "false"
        assert env["DATABASE_URL"].startswith("postgres://")
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    web = compose["services"]["web"]
    assert web["command"] == ["gunicorn", "--config", "deploy/gunicorn.conf.py"]
    assert web["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_gunicorn_configuration_loads_the_application():
    result = run("-m", "gunicorn", "--check-config", "--config", "deploy/gunicorn.conf.py")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("example", "schema"),
    [
        ("deploy/ci/github-actions.yml", "vendor.github-workflows"),
        ("deploy/ci/gitlab-ci.yml", "vendor.gitlab-ci"),
    ],
)
def test_ci_examples_follow_their_platforms_schemas(example, schema):
    result = run("-m", "check_jsonschema", "--builtin-schema", schema, example)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "mlwiki_ci.py" in (ROOT / example).read_text()
