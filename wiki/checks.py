"""System checks for configurations that run but should not go to production."""

from django.conf import settings
from django.core.checks import Error, Warning, register


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


@register()
def check_single_sign_on(app_configs, **kwargs):
    """A single sign-on set up wrong stops the start with what to fix (not the first login)."""
    from wiki.rolemap import RoleMapError, parse  # the models are loaded by now

    errors = []
    try:
        parse(settings.OIDC_ROLE_MAP)
    except RoleMapError as error:
        errors.append(
            Error(
                str(error),
                hint="Syntax: <group>=<role>[:<project>] entries separated by ';': viewer, "
                "editor, maintainer or validator with ':<project slug>' or ':*'; auditor or "
                "validator (the groups) alone. E.g. ml-platform=maintainer:*;risk=auditor;"
                "mrm=validator;ds-churn=editor:churn-prediction.",
                id="wiki.E010",
            )
        )
    if settings.OIDC_ISSUER:
        missing = [n for n in ("OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET") if not getattr(settings, n)]
        if missing or not settings.OIDC_ISSUER.startswith(("https://", "http://")):
            errors.append(
                Error(
                    "Single sign-on is on (OIDC_ISSUER) but not complete.",
                    hint=f"Set {' and '.join(missing)}."
                    if missing
                    else "OIDC_ISSUER is the provider's issuer URL, e.g. "
                    "https://login.example.com/realms/company.",
                    id="wiki.E011",
                )
            )
    elif not settings.LOCAL_LOGIN:
        errors.append(
            Error(
                "LOCAL_LOGIN=false turns the password form off, and single sign-on is off: "
                "only superusers could log in (at /accounts/login/local/).",
                hint="Set OIDC_ISSUER (and the client), or LOCAL_LOGIN=true.",
                id="wiki.E012",
            )
        )
    return errors
