"""Configuration from the environment, checked in fresh processes (settings load once)."""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SETTING_NAMES = [
    "DEBUG", "SECRET_KEY", "SECRET_KEY_FILE", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS",
    "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "SECURE_SSL_REDIRECT", "API_THROTTLE_RATE",
    "AUDIT_HMAC_KEY", "AUDIT_CHAIN_ENABLED", "DIGEST_TIME", "TIME_ZONE",
]  # fmt: skip


def manage(*args, **env):
    clean = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "AUDIT_HMAC_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "wiki.example.com",
    "DATABASE_URL": "postgres://mlwiki@db.example.com:5432/mlwiki",
    "REDIS_URL": "redis://redis.example.com:6379/0",
}


def test_check_deploy_is_clean_with_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_on_the_development_secret_key():
    env = dict(PRODUCTION)
    del env["SECRET_KEY"]
    result = manage("check", **env)
    assert result.returncode != 0
    assert "refuses to start with DEBUG off and the development SECRET_KEY" in result.stderr


def test_secret_key_can_come_from_a_file(tmp_path):
    env = dict(PRODUCTION)
    (tmp_path / "key").write_text(env.pop("SECRET_KEY"))
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", SECRET_KEY_FILE=str(tmp_path / "key"), **env
    )
    assert result.returncode == 0, result.stderr


def test_production_refuses_to_start_without_an_audit_key():
    env = dict(PRODUCTION)
    del env["AUDIT_HMAC_KEY"]
    result = manage("check", **env)
    assert result.returncode != 0
    assert "no AUDIT_HMAC_KEY" in result.stderr


def test_a_switched_off_chain_and_the_development_audit_key_are_deploy_warnings():
    env = PRODUCTION | {
        "AUDIT_CHAIN_ENABLED": "false",
        "AUDIT_HMAC_KEY": "mlwiki-development-audit-key",
    }
    result = manage("check", "--deploy", **env)
    assert "wiki.W003" in result.stderr and "wiki.W004" in result.stderr


def test_sqlite_and_eager_celery_are_deploy_warnings():
    env = {
        "DEBUG": "false", "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "x",
        "AUDIT_HMAC_KEY": secrets.token_urlsafe(50),
    }  # fmt: skip
    result = manage("check", "--deploy", **env)
    assert "wiki.W001" in result.stderr and "wiki.W002" in result.stderr


def test_bad_boolean_fails_loudly():
    result = manage("check", DEBUG="maybe")
    assert result.returncode != 0


def test_a_malformed_throttle_rate_fails_loudly():
    result = manage("check", API_THROTTLE_RATE="lots")
    assert result.returncode != 0
    assert "API_THROTTLE_RATE='lots'" in result.stderr


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "django.db.backends.sqlite3 True"),
        (
            {"DATABASE_URL": "postgres://u@h:5432/d", "REDIS_URL": "redis://h:6379/0"},
            "wiki.postgresql False",
        ),
        ({"CELERY_BROKER_URL": "redis://h:6379/1"}, "django.db.backends.sqlite3 False"),
    ],
)
def test_zero_configuration_is_sqlite_with_eager_celery_and_urls_switch(env, expected):
    code = (
        "from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_TASK_ALWAYS_EAGER)"
    )
    result = manage("shell", "--no-imports", "-c", code, **env)
    assert result.stdout.strip() == expected, result.stderr


def test_every_environment_variable_is_documented():
    source = (ROOT / "wiki" / "settings.py").read_text()
    names = set(re.findall(r'env\.\w+\(\s*"([A-Z_]+)"', source))
    assert {"DEBUG", "SECRET_KEY", "DATABASE_URL", "REDIS_URL"} <= names
    example = (ROOT / ".env.example").read_text()
    readme = (ROOT / "README.md").read_text()
    for name in names | {"SECRET_KEY_FILE"}:
        assert re.search(rf"\b{name}=", example), f"{name} missing from .env.example"
        assert f"`{name}`" in readme, f"{name} missing from the README"


def test_the_daily_digest_time_is_configurable_and_a_bad_one_refused():
    show = (
        "shell", "-c",
        "from django.conf import settings; "
        "print(settings.CELERY_BEAT_SCHEDULE['send-daily-digest']['schedule'])",
    )  # fmt: skip
    result = manage(*show, DIGEST_TIME="06:45", TIME_ZONE="Europe/Lisbon")
    assert result.returncode == 0, result.stderr
    assert "<crontab: 45 6 * * *" in result.stdout
    refused = manage(*show, DIGEST_TIME="25:00")
    assert refused.returncode != 0
    assert "DIGEST_TIME must be HH:MM (24 h), not '25:00'" in refused.stderr


# The fastest ingest bench/README.md measured from one token at concurrency 8 (records/s).
BENCH_PEAK_PER_TOKEN = 262.5


def test_the_default_api_throttle_leaves_a_busy_pipeline_room_and_is_documented():
    code = "from django.conf import settings; print(settings.API_THROTTLE_RATE)"
    rate = manage("shell", "--no-imports", "-c", code).stdout.strip()
    allowed, period = rate.split("/")
    per_second = int(allowed) / {"s": 1, "m": 60, "h": 3600, "d": 86400}[period[0]]
    # Room for a server with a few times this machine's two cores.
    assert per_second >= 3 * BENCH_PEAK_PER_TOKEN, rate
    assert f"| `API_THROTTLE_RATE` | `{rate}` |" in (ROOT / "README.md").read_text()
    assert f"# API_THROTTLE_RATE={rate}\n" in (ROOT / ".env.example").read_text()


def test_the_readme_names_every_make_variable():
    # `make run PORT=8080`: the variables the Makefile lets a command line set.
    makefile = (ROOT / "Makefile").read_text()
    names = set(re.findall(r"^([A-Z_]+) \?=", makefile, re.MULTILINE))
    assert {"HOST", "PORT"} <= names
    readme = (ROOT / "README.md").read_text()
    for name in names:
        assert re.search(rf"make \w+ [^`\n]*\b{name}=", readme), f"{name} missing from the README"


def test_check_deploy_is_clean_with_metrics_json_logs_and_a_session_lifetime():
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING",
        METRICS_TOKEN=secrets.token_urlsafe(32), LOG_FORMAT="json", SESSION_HOURS="8",
        SESSION_EXPIRE_AT_BROWSER_CLOSE="true", **PRODUCTION,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_the_session_lifetime_is_configurable_and_a_bad_one_refused():
    show = (
        "shell", "--no-imports", "-c",
        "from django.conf import settings as s; "
        "print(s.SESSION_COOKIE_AGE, s.SESSION_EXPIRE_AT_BROWSER_CLOSE)",
    )  # fmt: skip
    assert manage(*show).stdout.strip() == "43200 False"  # 12 hours
    custom = manage(*show, SESSION_HOURS="1.5", SESSION_EXPIRE_AT_BROWSER_CLOSE="true")
    assert custom.stdout.strip() == "5400 True", custom.stderr
    refused = manage(*show, SESSION_HOURS="0")
    assert refused.returncode != 0
    assert "SESSION_HOURS must be a positive number" in refused.stderr
