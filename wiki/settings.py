"""Settings for mlwiki, read from the environment.

With no environment at all the wiki runs for local use: SQLite file, Celery tasks run
eagerly in-process, in-memory cache, DEBUG on. Every variable is listed in
`.env.example` and in the README's configuration table.
"""

import re
import tomllib
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
# The version reports and the API name: pyproject.toml's, the one place it is written.
APP_VERSION = tomllib.loads((BASE_DIR / "pyproject.toml").read_text())["project"]["version"]

# FileAwareEnv also reads NAME_FILE (e.g. SECRET_KEY_FILE), for container secrets.
env = environ.FileAwareEnv()

# The key used when none is given; only acceptable while DEBUG is on.
DEVELOPMENT_SECRET_KEY = "mlwiki-development-key-do-not-use-in-production"  # noqa: S105

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str("SECRET_KEY", default=DEVELOPMENT_SECRET_KEY)
if not DEBUG and SECRET_KEY == DEVELOPMENT_SECRET_KEY:
    raise ImproperlyConfigured(
        "mlwiki refuses to start with DEBUG off and the development SECRET_KEY. "
        "Set SECRET_KEY to a long random value (for example the output of "
        "`python3 -c 'import secrets; print(secrets.token_urlsafe(50))'`), "
        "or set DEBUG=true for local development."
    )

# Seals the audit chain (HMAC-SHA-256). Never stored in the database; keep it safe and
# stable: with another key, every seal fails verification.
DEVELOPMENT_AUDIT_KEY = "mlwiki-development-audit-key"  # noqa: S105
AUDIT_HMAC_KEY = env.str("AUDIT_HMAC_KEY", default=DEVELOPMENT_AUDIT_KEY if DEBUG else "")
if not AUDIT_HMAC_KEY:
    raise ImproperlyConfigured(
        "mlwiki refuses to start with DEBUG off and no AUDIT_HMAC_KEY: the audit chain's "
        "seals need a secret key kept outside the database. Set AUDIT_HMAC_KEY to a long "
        "random value (and keep it: verification needs the same key)."
    )
# Only for measuring what the chain costs (bench/): a deploy check warns when it is off.
AUDIT_CHAIN_ENABLED = env.bool("AUDIT_CHAIN_ENABLED", default=True)

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "wiki.apps.WikiAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "mozilla_django_oidc",
    "axes",
    "wiki",
    "api",
    "frontend",
]

MIDDLEWARE = [
    "wiki.middleware.PermissionsPolicyMiddleware",
    # /healthz/ and /readyz/ (wiki.readiness): answered before host validation and the
    # HTTPS redirect, as the kubelet asks the pod's own address over plain HTTP.
    "wiki.middleware.HealthCheckMiddleware",
    "wiki.readiness.ReadinessMiddleware",
    "wiki.metrics.MetricsMiddleware",
    "wiki.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # Django's AuthenticationMiddleware, with the user cached under the access stamp.
    "wiki.middleware.CachedAuthenticationMiddleware",
    # Every view needs a logged-in user unless it opts out with @login_not_required.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "wiki.middleware.ContentSecurityPolicyMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the "locked out" page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "wiki.urls"
WSGI_APPLICATION = "wiki.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: an SQLite file by default, PostgreSQL (or anything Django supports) with DATABASE_URL.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock when a transaction starts, so two writers queue up
    # instead of failing with "database is locked" when one upgrades its lock.
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}
    # Tests use a file too: threads racing to write (tests/test_concurrency.py) need real
    # separate connections, which the in-memory test database cannot give.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "test-db.sqlite3")}
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # A server that does not answer a new connection fails it in seconds, not after the
        # kernel's two minutes of retries (/readyz/ turns 200 soon after it is back).
        DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
            "connect_timeout", env.int("DB_CONNECT_TIMEOUT", default=5)
        )
    # No JIT: the dashboard's EXISTS subqueries look costly to the planner (they stop at the
    # first row in fact), and compiling them took 0.5 s of a 0.6 s query (bench/speed.py).
    # Set as a connection parameter, which some poolers (PgBouncer) refuse: then set
    # DB_DISABLE_JIT=false and turn JIT off in PostgreSQL's own configuration.
    if env.bool("DB_DISABLE_JIT", default=True):
        options = DATABASES["default"].setdefault("OPTIONS", {})
        options["options"] = f"{options.get('options', '')} -c jit=off".strip()
    # A persistent connection is checked before each request's first query, and replaced
    # if the server dropped it; on PostgreSQL by wiki.postgresql, which looks at the
    # connection's state instead of sending a SELECT 1 on every request.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["default"]["ENGINE"] = "wiki.postgresql"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis serves as Celery broker and as the shared cache when it is configured. A request
# never waits long on it: short timeouts, and after a failure a circuit breaker skips it
# for REDIS_BREAKER_SECONDS (wiki.breaker); everything it does can wait or be redone.
REDIS_URL = env.str("REDIS_URL", default="")
REDIS_BREAKER_SECONDS = env.float("REDIS_BREAKER_SECONDS", default=5.0)
# Seconds the API throttle waits for its counter: it lets the request through otherwise.
REDIS_THROTTLE_TIMEOUT = env.float("REDIS_THROTTLE_TIMEOUT", default=0.05)
# Seconds the Markdown cache and the broker get to answer before a request goes on without.
REDIS_TIMEOUT = env.float("REDIS_TIMEOUT", default=0.25)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "mlwiki",
            "OPTIONS": {"socket_timeout": REDIS_TIMEOUT, "socket_connect_timeout": REDIS_TIMEOUT},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

TIME_ZONE = env.str("TIME_ZONE", default="UTC")

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
# Without a broker, tasks run in-process so the wiki works with no services at all.
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing is not retried in the request: a message the broker did not take is sent
# again by the outbox's sweep (wiki.outbox), so a request never waits on a broker that is
# down or hung for longer than REDIS_TIMEOUT.
CELERY_TASK_PUBLISH_RETRY = False
CELERY_BROKER_CONNECTION_TIMEOUT = REDIS_TIMEOUT
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_timeout": REDIS_TIMEOUT,
    "socket_connect_timeout": REDIS_TIMEOUT,
    # A publisher does not retry connecting either (the worker's own reconnection loop,
    # CELERY_BROKER_CONNECTION_*, is not affected).
    "max_retries": 0,
}
CELERY_TIMEZONE = TIME_ZONE
# The daily digest of stale and incomplete pages goes out at this time (HH:MM, TIME_ZONE).
DIGEST_TIME = env.str("DIGEST_TIME", default="08:00")
try:
    DIGEST_HOUR, DIGEST_MINUTE = (int(part) for part in DIGEST_TIME.split(":"))
    if not (0 <= DIGEST_HOUR < 24 and 0 <= DIGEST_MINUTE < 60):
        raise ValueError
except ValueError:
    raise ImproperlyConfigured(f"DIGEST_TIME must be HH:MM (24 h), not {DIGEST_TIME!r}.") from None
CELERY_BEAT_SCHEDULE = {
    "clear-expired-sessions": {
        "task": "wiki.tasks.clear_expired_sessions",
        "schedule": crontab(hour=3, minute=17),
    },
    "forget-failed-logins": {
        "task": "wiki.tasks.forget_failed_logins",
        "schedule": crontab(hour=3, minute=22),
    },
    "purge-idempotency-keys": {
        "task": "wiki.tasks.purge_idempotency_keys",
        "schedule": crontab(hour=3, minute=27),
    },
    "send-daily-digest": {
        "task": "wiki.tasks.send_daily_digest",
        "schedule": crontab(hour=DIGEST_HOUR, minute=DIGEST_MINUTE),
    },
    "sweep-outbox": {"task": "wiki.tasks.sweep", "schedule": crontab(minute="*")},
    "queue-mlflow-syncs": {
        "task": "wiki.tasks.queue_mlflow_syncs",
        "schedule": crontab(minute="*"),
    },
}
# The outbox (wiki.outbox): a notification or export whose message has not run this long
# after it was due was lost (a broker restarted empty, a worker died): it is queued again.
REQUEUE_AFTER_MINUTES = env.int("REQUEUE_AFTER_MINUTES", default=10)
# The hosts an MLflow tracking URI may name (wiki.mlflow): the web and worker processes
# fetch from whatever address a maintainer types. Empty: any host but link-local ones
# (169.254.0.0/16, fe80::/10: a cloud's metadata service).
MLFLOW_TRACKING_HOSTS = env.list("MLFLOW_TRACKING_HOSTS", default=[])

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "frontend:project-list"
LOGOUT_REDIRECT_URL = "login"

# Single sign-on with the company's OpenID Connect provider (wiki.oidc, mozilla-django-oidc),
# on when OIDC_ISSUER is set. The endpoints come from the issuer's discovery document
# (/.well-known/openid-configuration), read at the first sign-in and kept. The role map's
# syntax is in wiki/rolemap.py and the README; a typo stops the start (check wiki.E010).
OIDC_ISSUER = env.str("OIDC_ISSUER", default="")
OIDC_CLIENT_ID = env.str("OIDC_CLIENT_ID", default="")
OIDC_CLIENT_SECRET = env.str("OIDC_CLIENT_SECRET", default="")
OIDC_SCOPES = env.str("OIDC_SCOPES", default="openid email profile")
OIDC_USERNAME_CLAIM = env.str("OIDC_USERNAME_CLAIM", default="preferred_username")
OIDC_GROUPS_CLAIM = env.str("OIDC_GROUPS_CLAIM", default="groups")
OIDC_ROLE_MAP = env.str("OIDC_ROLE_MAP", default="")
OIDC_PROVIDER_NAME = env.str("OIDC_PROVIDER_NAME", default="single sign-on")
# Seconds the provider gets to answer (discovery, keys, token, user info).
OIDC_TIMEOUT = env.float("OIDC_TIMEOUT", default=5.0)
# Seconds of clock difference with the provider tolerated on the ID token's times.
OIDC_LEEWAY = env.int("OIDC_LEEWAY", default=30)
# false: no password form on the login page; superusers still log in with their password
# at /accounts/login/local/ (break-glass, for when the provider is down).
LOCAL_LOGIN = env.bool("LOCAL_LOGIN", default=True)
# true: a first sign-in uses a local account of the same name (not a superuser's), when the
# provider's names are known to be the same people's (moving from passwords to SSO).
OIDC_LINK_LOCAL_ACCOUNTS = env.bool("OIDC_LINK_LOCAL_ACCOUNTS", default=False)
# mozilla-django-oidc's own settings (wiki.oidc gives it the client, the scopes and the
# endpoints from discovery under its names).
OIDC_RP_SIGN_ALGO = "RS256"
OIDC_USE_PKCE = True
OIDC_USE_NONCE = True
OIDC_STORE_ID_TOKEN = True  # the hint of RP-initiated logout
OIDC_AUTHENTICATION_CALLBACK_URL = "oidc-callback"

# Failed password logins (form, break-glass page, admin) are throttled by django-axes: after
# AXES_FAILURE_LIMIT failures for one user name, or from one address, further tries get the
# "locked out" page (429) for AXES_COOLOFF_MINUTES. The address is the connection's, or
# behind TRUSTED_PROXY_COUNT proxies that each append to X-Forwarded-For, the one the
# outermost of them saw (frontend.views.accounts.client_address): never one a client wrote.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first, so a locked-out login stops here
    "django.contrib.auth.backends.ModelBackend",
    *(["wiki.oidc.Backend"] if OIDC_ISSUER else []),
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_MINUTES", default=15) / 60  # axes counts hours
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # each on its own
AXES_RESET_ON_SUCCESS = True
# No row per successful login (a table that would only grow): logins are in the log, and
# the account keeps its last login time.
AXES_DISABLE_ACCESS_LOG = True
# Not its start-up banner either: a log line in every process and every manage.py command.
AXES_VERBOSE = False
AXES_LOCKOUT_TEMPLATE = "frontend/locked_out.html"
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
if TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured("TRUSTED_PROXY_COUNT is a number of proxies, 0 or more.")
AXES_CLIENT_IP_CALLABLE = "frontend.views.accounts.client_address"

LANGUAGE_CODE = "en-us"
USE_I18N = True
USE_TZ = True

# Uploaded and generated files (audit report exports): never served as static files; the
# app streams them to whoever may read them.
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")
# Attachments (figures, diagrams, reports of pages and records): at most this many bytes each.
ATTACHMENT_MAX_BYTES = env.int("ATTACHMENT_MAX_BYTES", default=25 * 1024 * 1024)
# Learning curves: at most this many points (all metrics together) in one post.
SERIES_MAX_POINTS = env.int("SERIES_MAX_POINTS", default=10_000)
# An export with no progress for this long is failed by the stale-job sweep.
EXPORT_STALE_MINUTES = env.int("EXPORT_STALE_MINUTES", default=15)
# Times a worker may start an export whose worker then stopped, before it is failed.
EXPORT_ATTEMPTS = env.int("EXPORT_ATTEMPTS", default=3)
# Exports one person may have waiting or being built at once (each costs a worker minutes).
EXPORTS_IN_FLIGHT = env.int("EXPORTS_IN_FLIGHT", default=3)

# Notifications (wiki.services.notifications): links in them start with SITE_URL; a
# webhook gets NOTIFY_TIMEOUT seconds to answer, and a failed delivery NOTIFY_RETRIES more
# tries. E-mail goes through EMAIL_URL (smtp://user:password@host:587/?tls=True); without
# it, messages are written to the log (console).
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000")
NOTIFY_TIMEOUT = env.int("NOTIFY_TIMEOUT", default=10)
NOTIFY_RETRIES = env.int("NOTIFY_RETRIES", default=5)
NOTIFY_RETRY_DELAY = env.int("NOTIFY_RETRY_DELAY", default=30)  # doubled at each retry
# A delivery still "sending" after this long lost its worker: it is failed, not resent.
NOTIFY_STUCK_MINUTES = env.int("NOTIFY_STUCK_MINUTES", default=10)
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)  # EMAIL_BACKEND, EMAIL_HOST, … (django-environ's way)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="mlwiki <mlwiki@localhost>")

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        # Hashed, compressed files in production; plain files while developing and testing.
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Object storage: files the app stores (audit report exports) go through Django's default
# storage, MEDIA_ROOT on the local disk unless AWS_STORAGE_BUCKET_NAME names an
# S3-compatible bucket (django-storages). Without keys, boto3 finds credentials itself (an
# IAM role, AWS_PROFILE). Short timeouts: a storage that does not answer makes a download
# a 503 and an export retry within seconds, instead of holding a web process or worker.
AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME", default="")
if AWS_STORAGE_BUCKET_NAME:
    from botocore.config import Config

    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default=None),
            "access_key": env.str("AWS_ACCESS_KEY_ID", default=None),
            "secret_key": env.str("AWS_SECRET_ACCESS_KEY", default=None),
            "region_name": env.str("AWS_S3_REGION_NAME", default=None),
            "location": env.str("AWS_LOCATION", default=""),  # a key prefix in the bucket
            "default_acl": None,  # objects stay private: mlwiki streams them after its checks
            "file_overwrite": False,  # a name already taken gets a suffix, as on disk
            # A download is read into a temporary file: in memory up to 2.5 MB, then on disk.
            "max_memory_size": 2_621_440,
            "client_config": Config(
                connect_timeout=env.float("AWS_S3_CONNECT_TIMEOUT", default=2),
                read_timeout=env.float("AWS_S3_READ_TIMEOUT", default=10),
                retries={
                    "mode": "standard",
                    "total_max_attempts": env.int("AWS_S3_MAX_ATTEMPTS", default=2),
                },
                s3={"addressing_style": env.str("AWS_S3_ADDRESSING_STYLE", default="auto")},
            ),
        },
    }

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["api.auth.HasScope"],
    "DEFAULT_THROTTLE_CLASSES": ["api.auth.TokenRateThrottle"],
    "DEFAULT_PAGINATION_CLASS": "api.pagination.NumberedPages",
    "DEFAULT_PARSER_CLASSES": ["api.parsers.LimitedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    # OPTIONS would describe forms for a browsable API we do not serve; the schema does that.
    "DEFAULT_METADATA_CLASS": None,
    "PAGE_SIZE": 50,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
# How long a record write's Idempotency-Key (and its stored answer) is remembered.
IDEMPOTENCY_KEYS_KEPT_DAYS = env.int("IDEMPOTENCY_KEYS_KEPT_DAYS", default=30)
# Requests per token (or per browser user) and period: "<n>/<second|minute|hour|day>".
# A safeguard against a runaway client, not a quota: one CI token posting at concurrency 8
# made 160-262 records/s on 2 cores (bench/README.md), 10,000-16,000 a minute, and a
# server with more cores takes more. 60,000/minute (1,000/s) stays above what one token
# can post to a server of about 8 cores, so a busy pipeline never meets it.
API_THROTTLE_RATE = env.str("API_THROTTLE_RATE", default="60000/minute")
if not re.fullmatch(r"[1-9][0-9]*/(s|m|h|d|second|minute|hour|day)", API_THROTTLE_RATE):
    raise ImproperlyConfigured(
        f"API_THROTTLE_RATE={API_THROTTLE_RATE!r}: write <number>/<second|minute|hour|day>, "
        "e.g. 60000/minute."
    )

SPECTACULAR_SETTINGS = {
    "TITLE": "mlwiki API",
    "DESCRIPTION": "Record training runs and deployments, and read and edit the "
    "documentation of ML systems. Authenticate with `Authorization: Token <key>` (a key "
    "from `manage.py create_token` or the API tokens page). Errors are JSON: `status`, "
    "`detail` (what is wrong) and, for invalid input, `errors` by field.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # Swagger UI from the app's own static files (drf-spectacular-sidecar): no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "TrainingRunStatusEnum": "wiki.models.TrainingRun.Status",
        "DeploymentStatusEnum": "wiki.models.Deployment.Status",
        "FindingStatusEnum": "wiki.models.Finding.Status",
        "ValidationOutcomeEnum": "wiki.models.Validation.Outcome",
        "PeriodicReviewStateEnum": "wiki.inventory.REVIEW_STATES",
        "PageReviewStateEnum": "wiki.models.Page.ReviewState",
    },
}

# History is never rewritten from the admin: a restore is a new revision (see wiki/services).
SIMPLE_HISTORY_REVERT_DISABLED = True
SIMPLE_HISTORY_HISTORY_CHANGE_REASON_USE_TEXT_FIELD = True

# Security. Production defaults follow DEBUG; each can be overridden from the environment.
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_TLS_PROXY", default=False) else None
)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SESSION_COOKIE_HTTPONLY = True
SECURE_REFERRER_POLICY = "same-origin"
# JSON for the API, Django's page for browsers.
CSRF_FAILURE_VIEW = "api.errors.csrf_failure"
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # WeasyPrint's font subsetting logs every table of every font at INFO, and WeasyPrint
    # warns on every PDF that it subsets fonts with fontTools.
    "loggers": {"fontTools": {"level": "WARNING"}, "weasyprint": {"level": "ERROR"}},
}

# Metrics and logs (wiki.metrics, wiki.logs). /metrics answers only with
# "Authorization: Bearer <METRICS_TOKEN>", and not at all (404) without a token set.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# The port a Celery worker answers /metrics on (the same token); 0: it does not.
WORKER_METRICS_PORT = env.int("WORKER_METRICS_PORT", default=0)
# text (the default) or json: one JSON object per line on stdout, a line per request and
# per task among them.
LOG_FORMAT = env.str("LOG_FORMAT", default="text")
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be text or json, not {LOG_FORMAT!r}.")
if LOG_FORMAT == "json":
    LOGGING["formatters"] = {"json": {"()": "wiki.logs.JsonFormatter"}}
    LOGGING["handlers"]["console"] |= {"formatter": "json", "stream": "ext://sys.stdout"}
    # Django's own text handler (stderr, while DEBUG is on): its records go to the root's.
    LOGGING["loggers"]["django"] = {"level": "INFO"}
    # A Celery worker would put its own text handler in their place.
    CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# How long a login lasts (the session cookie's age), and whether it ends with the browser.
SESSION_HOURS = env.float("SESSION_HOURS", default=12)
if not SESSION_HOURS > 0:
    raise ImproperlyConfigured(f"SESSION_HOURS must be a positive number, not {SESSION_HOURS}.")
SESSION_COOKIE_AGE = round(SESSION_HOURS * 3600)
SESSION_EXPIRE_AT_BROWSER_CLOSE = env.bool("SESSION_EXPIRE_AT_BROWSER_CLOSE", default=False)

# --- Kubernetes: readiness and the single beat ---------------------------------------------
# /readyz/ (wiki.readiness) asks the database, the broker and the storage, each given this
# many seconds; it sits beside /healthz/, before host validation and the HTTPS redirect.
READYZ_TIMEOUT = env.float("READYZ_TIMEOUT", default=0.5)
# Beat sends the schedule only while it holds a lease in Redis (wiki.beat), so a second beat
# started by a rollout or by mistake stands by; it takes over this many seconds at most
# after the first one dies.
CELERY_BEAT_SCHEDULER = "wiki.beat:LeaseScheduler"
BEAT_LOCK_SECONDS = env.float("BEAT_LOCK_SECONDS", default=30.0)
CELERY_BEAT_LOCK_SECONDS = BEAT_LOCK_SECONDS  # as the scheduler reads it (app.conf)
if READYZ_TIMEOUT <= 0 or BEAT_LOCK_SECONDS <= 0:
    raise ImproperlyConfigured("READYZ_TIMEOUT and BEAT_LOCK_SECONDS are seconds, above 0.")
