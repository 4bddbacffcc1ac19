"""System checks for configurations that run but should not go to production."""

from django.conf import settings
from django.core.checks import Warning, register


@register(deploy=True)
def check_production_services(app_configs, **kwargs):
    """With DEBUG off, SQLite and in-process Celery are warnings (manage.py check --deploy)."""
    if settings.DEBUG:
        return []
    warnings = []
    if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        warnings.append(
            Warning(
                "The database is an SQLite file.",
                hint="Set DATABASE_URL to a PostgreSQL database for production.",
                id="wiki.W001",
            )
        )
    if not settings.AUDIT_CHAIN_ENABLED:
        warnings.append(
            Warning(
                "The audit chain is switched off: new history rows are not sealed.",
                hint="Unset AUDIT_CHAIN_ENABLED (it exists to measure the chain's cost).",
                id="wiki.W003",
            )
        )
    if settings.AUDIT_HMAC_KEY == settings.DEVELOPMENT_AUDIT_KEY:
        warnings.append(
            Warning(
                "AUDIT_HMAC_KEY is the public development key.",
                hint="Set AUDIT_HMAC_KEY to a long random secret kept outside the database.",
                id="wiki.W004",
            )
        )
    if settings.CELERY_TASK_ALWAYS_EAGER:
        warnings.append(
            Warning(
                "Celery tasks run inside the web process (no broker configured).",
                hint="Set REDIS_URL (or CELERY_BROKER_URL) and run Celery workers.",
                id="wiki.W002",
            )
        )
    return warnings
