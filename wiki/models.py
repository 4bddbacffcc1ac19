"""The domain: projects, their documentation pages, and the records pipelines post.

Every model keeps its full history (django-simple-history, stamped by wiki.history).
Nothing outside wiki/services writes these models.
"""

import math
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.postgres.search import SearchVectorField
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator, URLValidator
from django.db import models
from django.db.models import Prefetch, Q
from django.utils import timezone
from simple_history import register
from simple_history.models import HistoricalRecords

from wiki.categories import CATEGORY_NAMES, RESERVED_SLUGS, get_category, missing_required
from wiki.history import RevisionInfo, RevisionManager

SLUG_PATTERN = r"[a-z0-9]+(?:-[a-z0-9]+)*"
validate_slug = RegexValidator(
    rf"^{SLUG_PATTERN}\Z",
    "Use lowercase letters, digits and single hyphens (e.g. churn-model).",
)
# What a model version may be called: letters, digits and . _ + - : @ (no spaces, control
# or invisible characters, which would make look-alike versions).
validate_version = RegexValidator(
    r"^[\w.+\-:@]+\Z",
    "Use letters, digits and . _ + - : @ only (e.g. 1.4.0, 2024-06-rc1).",
)
validate_commit = RegexValidator(
    r"^[0-9a-fA-F]{4,64}\Z", "A commit hash: 4 to 64 hexadecimal digits."
)
# Future times beyond this are a clock or a pipeline bug, not a record.
CLOCK_SKEW = timedelta(hours=1)

# /projects/new/ is the form that creates a project.
RESERVED_PROJECT_SLUGS = {"new"}


def validate_project_slug(value):
    if value in RESERVED_PROJECT_SLUGS:
        raise ValidationError(f"'{value}' is reserved; choose another slug.")


def history(excluded_fields=()):
    return HistoricalRecords(
        bases=[RevisionInfo], history_manager=RevisionManager, excluded_fields=list(excluded_fields)
    )


# Deeper JSON than this is not documentation; refusing it also keeps every walk over it
# (validation, rendering, hashing) far from Python's recursion limit.
MAX_JSON_DEPTH = 20


def _storage_problem(value, depth=0):
    """Why PostgreSQL could not store ``value`` as given, or None.

    PostgreSQL refuses NUL characters in text and NaN or infinity in JSON: caught here,
    they are a validation error naming the field instead of a 500.
    """
    if isinstance(value, str):
        return "Must not contain NUL (\\x00) characters." if "\x00" in value else None
    if isinstance(value, float) and not math.isfinite(value):
        return "Numbers must be finite (no NaN or infinity)."
    if isinstance(value, (dict, list)):
        if depth >= MAX_JSON_DEPTH:
            return f"Nested more than {MAX_JSON_DEPTH} levels deep."
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            problem = _storage_problem(key, depth) or _storage_problem(item, depth + 1)
            if problem:
                return problem
    return None


class DomainModel(models.Model):
    """Base of the domain models: full_clean() also refuses what PostgreSQL cannot store
    (NUL characters, non-finite numbers) and over-deep JSON, anywhere in any field."""

    class Meta:
        abstract = True

    def clean_fields(self, exclude=None):
        try:
            super().clean_fields(exclude)
            errors = {}
        except ValidationError as e:
            errors = e.error_dict
        for field in self._meta.concrete_fields:
            if field.name in (exclude or ()) or field.name in errors:
                continue
            problem = _storage_problem(getattr(self, field.attname))
            if problem:
                errors[field.name] = [ValidationError(problem)]
        if errors:
            raise ValidationError(errors)


class ProjectQuerySet(models.QuerySet):
    def with_category_pages(self):
        """Prefetch each project's category pages (what completeness needs) as category_pages."""
        pages = Page.objects.categories().only("project", "category", "fields")
        return self.prefetch_related(Prefetch("pages", queryset=pages, to_attr="category_pages"))


class Project(DomainModel):
    """An ML system being documented: the root of its pages and records."""

    slug = models.CharField(
        max_length=50, unique=True, validators=[validate_slug, validate_project_slug]
    )
    name = models.CharField(max_length=200)
    summary = models.CharField(max_length=500, blank=True)
    owner_team = models.CharField("owner team", max_length=100)
    tags = models.JSONField(default=list, blank=True)
    revision = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = history()
    objects = ProjectQuerySet.as_manager()

    class Meta:
        ordering = ["name", "slug"]

    def __str__(self):
        return self.name

    @property
    def completeness(self):
        """Percentage of required fields filled over all category pages; needs
        ``with_category_pages()``."""
        filled = sum(page.completeness[0] for page in self.category_pages)
        required = sum(page.completeness[1] for page in self.category_pages)
        return round(100 * filled / required) if required else 100


class PageQuerySet(models.QuerySet):
    def categories(self):
        return self.exclude(category="")

    def free(self):
        return self.filter(category="")


class Page(DomainModel):
    """A documentation page: one per category per project, or a free page (no category)."""

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="pages")
    # Empty for free pages (runbooks, glossaries, decision records).
    category = models.CharField(
        max_length=20, blank=True, choices=[(name, name) for name in CATEGORY_NAMES]
    )
    slug = models.CharField(max_length=60, validators=[validate_slug])
    title = models.CharField(max_length=200)
    fields = models.JSONField(default=dict, blank=True)
    body = models.TextField(blank=True)
    # Incremented by every edit; forms and API clients send back the revision they
    # started from, so a stale write is refused instead of silently overwriting.
    revision = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # When its content last changed (a review or an approval moves updated_at, not this):
    # records that arrived since make the page stale (wiki.health). Not in the history
    # rows: a new column there would change the digest of every sealed row (wiki.audit),
    # and the history already says when each revision was made.
    edited_at = models.DateTimeField(default=timezone.now)

    class ReviewState(models.TextChoices):
        DRAFT = "draft"
        IN_REVIEW = "in_review", "In review"
        APPROVED = "approved"

    # Four eyes: a maintainer other than its last editor approves a revision. The latest
    # approval stays on record after further edits ("approved revision N; current differs").
    review_state = models.CharField(
        max_length=20, choices=ReviewState.choices, default=ReviewState.DRAFT
    )
    approved_revision = models.PositiveIntegerField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip
    approved_by_name = models.CharField(max_length=150, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    approval_comment = models.TextField(blank=True)

    history = history(excluded_fields=["edited_at"])
    objects = PageQuerySet.as_manager()

    class Meta:
        ordering = ["project_id", "title"]
        constraints = [
            models.UniqueConstraint(fields=["project", "slug"], name="page_unique_slug"),
            models.UniqueConstraint(
                fields=["project", "category"],
                condition=~Q(category=""),
                name="page_unique_category",
            ),
        ]

    def __str__(self):
        return f"{self.project.slug}/{self.slug}"

    def clean(self):
        if not self.category and self.slug in RESERVED_SLUGS:
            raise ValidationError({"slug": f"'{self.slug}' is reserved; choose another slug."})

    @property
    def spec(self):
        """The registry category of a category page, None for a free page."""
        return get_category(self.category) if self.category else None

    @property
    def missing_fields(self):
        return missing_required(self.spec, self.fields) if self.spec else []

    @property
    def completeness(self):
        """(required fields filled, required fields) of a category page."""
        if not self.spec:
            return (0, 0)
        required = len(self.spec.required_fields)
        return (required - len(self.missing_fields), required)


class ModelVersion(DomainModel):
    """A version of the project's model, created from records or by hand."""

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="model_versions")
    version = models.CharField(max_length=100, validators=[validate_version])
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    history = history()

    class Meta:
        ordering = ["project_id", "-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "version"], name="model_version_unique"),
        ]
        indexes = [models.Index(fields=["project", "created_at"])]

    def __str__(self):
        return self.version


# More entries than this in one hyperparameters, metrics, tags or environment object is a
# pipeline bug (a whole dataset logged as "metrics"), not documentation.
MAX_OBJECT_ENTRIES = 1000


# Names of parameters, metrics and tags, and their text values, past these lengths are
# data, not documentation.
MAX_NAME_LENGTH = 200
MAX_TEXT_VALUE_LENGTH = 10_000


def _require_object(value, name, check, what):
    if not isinstance(value, dict):
        raise ValidationError({name: "Must be an object."})
    if len(value) > MAX_OBJECT_ENTRIES:
        raise ValidationError({name: f"At most {MAX_OBJECT_ENTRIES} entries."})
    for key, item in value.items():
        if len(key) > MAX_NAME_LENGTH:
            raise ValidationError({name: f"Names must be at most {MAX_NAME_LENGTH} characters."})
        if not check(item):
            raise ValidationError({name: f"'{key}' must be {what}."})


def _is_scalar(value):
    if isinstance(value, str):
        return len(value) <= MAX_TEXT_VALUE_LENGTH
    return value is None or isinstance(value, (bool, int, float))


def _is_finite_number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def _is_short_text(value):
    return isinstance(value, str) and len(value) <= MAX_TEXT_VALUE_LENGTH


class Record(DomainModel):
    """What training runs and deployments share: where and when the pipeline ran."""

    git_commit = models.CharField(max_length=64, blank=True, validators=[validate_commit])
    pipeline_url = models.URLField(
        max_length=500, blank=True, validators=[URLValidator(schemes=["http", "https"])]
    )
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True

    def clean(self):
        # Compare only valid datetimes (clean_fields reports the others), naive ones as UTC.
        times = {
            name: t if timezone.is_aware(t) else t.replace(tzinfo=UTC)
            for name, t in (("started_at", self.started_at), ("finished_at", self.finished_at))
            if isinstance(t, datetime)
        }
        latest = timezone.now() + CLOCK_SKEW
        for name, t in times.items():
            if t > latest:
                raise ValidationError({name: "Is in the future; check the pipeline's clock."})
        if len(times) == 2 and times["finished_at"] < times["started_at"]:
            raise ValidationError({"finished_at": "Must not be before started_at."})


class TrainingRun(Record):
    """One training run as posted by a pipeline: inputs, parameters, results."""

    class Status(models.TextChoices):
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="training_runs")
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="training_runs"
    )
    status = models.CharField(max_length=20, choices=Status.choices)
    dataset_name = models.CharField(max_length=200, blank=True)
    dataset_version = models.CharField(max_length=200, blank=True)
    dataset_uri = models.CharField(max_length=500, blank=True)
    hyperparameters = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=dict, blank=True)
    environment = models.JSONField(default=dict, blank=True)
    notes = models.TextField(blank=True)

    history = history()

    class Meta:
        ordering = ["project_id", "-started_at", "-id"]
        # The API pages through a project's runs by (started_at, id); staleness asks what
        # arrived after a page's last edit (created_at).
        indexes = [
            models.Index(fields=["project", "started_at", "id"]),
            models.Index(fields=["project", "created_at"]),
            # Was this dataset version used before? (a data page's staleness)
            models.Index(fields=["project", "dataset_name", "dataset_version", "created_at"]),
        ]

    def __str__(self):
        return f"training run {self.pk} ({self.model_version})"

    @property
    def metric_items(self):
        """(name, value) pairs sorted by name, for display."""
        return sorted(self.metrics.items())

    def clean(self):
        super().clean()
        _require_object(
            self.hyperparameters, "hyperparameters", _is_scalar,
            "a scalar (string, number, boolean or null)",
        )  # fmt: skip
        _require_object(self.metrics, "metrics", _is_finite_number, "a finite number")
        _require_object(
            self.tags, "tags", _is_short_text, "a string (of at most 10,000 characters)"
        )
        _require_object(self.environment, "environment", lambda v: True, "")


class Deployment(Record):
    """One deployment of a model version to an environment, with its checks."""

    class Status(models.TextChoices):
        PENDING = "pending"
        IN_PROGRESS = "in_progress"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        ROLLED_BACK = "rolled_back"

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="deployments")
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="deployments"
    )
    environment = models.CharField(max_length=50)
    target = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices)
    config = models.JSONField(default=dict, blank=True)
    reason = models.TextField(blank=True)
    checks = models.JSONField(default=list, blank=True)
    # Moved by every change (a deployment moves forward after it is posted): pages that
    # describe deployments are stale when one changed since their last edit. Kept out of
    # the history rows, whose every column the audit chain has sealed.
    updated_at = models.DateTimeField(auto_now=True)

    history = history(excluded_fields=["updated_at"])

    class Meta:
        ordering = ["project_id", "-started_at", "-id"]
        indexes = [
            models.Index(fields=["project", "started_at", "id"]),
            models.Index(fields=["project", "updated_at"]),
        ]

    def __str__(self):
        return f"{self.model_version} to {self.environment}"

    FINISHED = {Status.SUCCEEDED, Status.FAILED, Status.ROLLED_BACK}
    MAX_CHECKS = 1000

    def clean(self):
        super().clean()
        _require_object(self.config, "config", lambda v: True, "")
        if self.finished_at and self.status not in self.FINISHED:
            raise ValidationError(
                {"finished_at": f"A deployment that is {self.status} has not finished."}
            )
        if not isinstance(self.checks, list):
            raise ValidationError({"checks": "Must be a list of check results."})
        if len(self.checks) > self.MAX_CHECKS:
            raise ValidationError({"checks": f"At most {self.MAX_CHECKS} checks."})
        for number, check in enumerate(self.checks):
            if (
                not isinstance(check, dict)
                or not isinstance(check.get("name"), str)
                or not 0 < len(check["name"].strip()) <= MAX_NAME_LENGTH
                or not isinstance(check.get("passed"), bool)
                or not set(check) <= {"name", "passed", "value", "details"}
                or not _is_short_text(check.get("details", ""))
            ):
                raise ValidationError(
                    {
                        "checks": f"Check {number} (counting from 0) needs a 'name' (1 to "
                        f"{MAX_NAME_LENGTH} characters) and a boolean 'passed', and may have a "
                        "'value' and 'details' (text)."
                    }
                )


class ApiToken(DomainModel):
    """A key pipelines use on the REST API: acts as ``user``, limited to scopes and projects.

    Only a hash of the key is stored; ``prefix`` (its first characters) identifies it.
    """

    class Scope(models.TextChoices):
        READ = "read", "Read"
        PAGES_WRITE = "pages:write", "Write pages"
        RECORDS_WRITE = "records:write", "Write records"
        ADMIN = "admin", "Administer (create projects; implies every scope)"

    name = models.CharField(max_length=100)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    prefix = models.CharField(max_length=16)
    key_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    all_projects = models.BooleanField(default=False)
    # Slugs of the projects the token may use (slugs never change), when not all_projects.
    projects = models.JSONField(default=list, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    history = history(excluded_fields=["key_hash", "last_used_at"])

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    def clean(self):
        known = set(self.Scope.values)
        if not isinstance(self.scopes, list) or not self.scopes:
            raise ValidationError({"scopes": "Give at least one scope."})
        unknown = [s for s in self.scopes if s not in known]
        if unknown:
            raise ValidationError(
                {"scopes": f"Unknown scope {unknown[0]!s}; use {', '.join(sorted(known))}."}
            )
        if self.all_projects == bool(self.projects):
            raise ValidationError(
                {"projects": "Name the projects the token may use, or allow all projects."}
            )

    @property
    def state(self):
        """'active', 'revoked' or 'expired'."""
        if self.revoked_at:
            return "revoked"
        if self.expires_at and self.expires_at <= timezone.now():
            return "expired"
        return "active"

    def has_scope(self, scope):
        """Admin implies every scope; any write scope implies read."""
        granted = set(self.scopes)
        if self.Scope.ADMIN in granted or scope in granted:
            return True
        return scope == self.Scope.READ and bool(granted)

    def allows_project(self, slug):
        return self.all_projects or slug in self.projects


class IdempotencyKey(models.Model):
    """The first answer to a record write sent with an Idempotency-Key header.

    The unique (project, key) constraint, inserted in the same transaction as the record,
    is what makes concurrent retries create exactly one record.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    # SHA-256 of the request (method, path and canonical JSON body).
    fingerprint = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "key"], name="idempotency_key_unique")
        ]

    def __str__(self):
        return f"{self.project_id}:{self.key}"


class Membership(DomainModel):
    """A user's role in a project: viewer (reads), editor (writes documentation and
    records), maintainer (also members, tokens, settings and approvals)."""

    class Role(models.TextChoices):
        VIEWER = "viewer"
        EDITOR = "editor"
        MAINTAINER = "maintainer"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    history = history()

    class Meta:
        ordering = ["project_id", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_unique")
        ]

    def __str__(self):
        return f"{self.user} is {self.role} of {self.project}"


EARLIEST_REPORT_DAY = date(1970, 1, 1)


class ExportJob(DomainModel):
    """An audit report someone asked for: built by a Celery task (wiki.tasks.build_export)
    into Django's storage. Its history shows who asked, when it was built and each download
    (``downloads``); progress ticks are not revisions (wiki.services.exports)."""

    class Format(models.TextChoices):
        PDF = "pdf", "PDF"
        HTML = "html", "HTML"
        MARKDOWN = "markdown", "Markdown"
        JSON = "json", "JSON bundle"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="exports")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_name = models.CharField(max_length=150, blank=True)
    format = models.CharField(max_length=10, choices=Format.choices)
    since = models.DateField(null=True, blank=True)
    until = models.DateField(null=True, blank=True)
    include_diffs = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    file = models.FileField(upload_to="exports/", blank=True)
    size = models.PositiveBigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    downloads = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Moved with every progress tick: a running job whose heartbeat stops lost its worker.
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    history = history(excluded_fields=["progress", "heartbeat_at"])

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "started_at"])]

    def __str__(self):
        return f"{self.get_format_display()} report #{self.pk} of {self.project}"

    def clean(self):
        for name in ("since", "until"):
            day = getattr(self, name)
            # A report's period is whole UTC days: one past date.max cannot be computed.
            if isinstance(day, date) and not (EARLIEST_REPORT_DAY <= day < date.max):
                raise ValidationError(
                    {name: f"Give a day from {EARLIEST_REPORT_DAY} to 9999-12-30."}
                )
        if self.since and self.until and self.since > self.until:
            raise ValidationError({"until": "The period ends before it starts."})

    @property
    def extension(self):
        return {"markdown": "md"}.get(self.format, self.format)

    @property
    def filename(self):
        return f"{self.project.slug}-audit-report-{self.pk}.{self.extension}"

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


class NotificationSettings(DomainModel):
    """Where a project's notifications go: a webhook (Slack-compatible JSON) and/or e-mail
    to its maintainers. What goes: a daily digest of stale and incomplete pages, and events
    as they happen (a deployment failed or was rolled back, a page was approved)."""

    project = models.OneToOneField(
        Project, on_delete=models.CASCADE, related_name="notification_settings"
    )
    # Slack's incoming-webhook URLs are secrets: kept out of the history rows (which audit
    # reports copy); a revision still says who changed the settings, and when.
    webhook_url = models.URLField(
        max_length=500, blank=True, validators=[URLValidator(schemes=["http", "https"])]
    )
    email_maintainers = models.BooleanField(default=False)
    daily_digest = models.BooleanField(default=True)
    events = models.BooleanField(default=True)

    history = history(excluded_fields=["webhook_url"])

    def __str__(self):
        return f"Notifications of {self.project}"

    @property
    def channels(self):
        return [
            channel
            for channel, wanted in (
                (Delivery.Channel.WEBHOOK, bool(self.webhook_url)),
                (Delivery.Channel.EMAIL, self.email_maintainers),
            )
            if wanted
        ]


class Delivery(models.Model):
    """One notification to one channel, and how sending it went: the delivery log.

    ``key`` names what it announces (the digest of a day, an event) once per channel; its
    unique constraint is the claim that keeps two beat or worker processes from sending
    the same thing twice."""

    class Channel(models.TextChoices):
        WEBHOOK = "webhook"
        EMAIL = "email", "E-mail"

    class Status(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"
        SENT = "sent"
        FAILED = "failed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="deliveries")
    key = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=30)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    # The webhook URL or the e-mail addresses, as they were when it was queued.
    target = models.TextField()
    subject = models.CharField(max_length=300)
    text = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # When a task took it to send (a delivery "sending" long after lost its worker).
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["project", "created_at"]),
            models.Index(fields=["status", "claimed_at"]),
        ]
        verbose_name_plural = "deliveries"

    def __str__(self):
        return f"{self.kind} to {self.channel} ({self.status})"

    @property
    def shown_target(self):
        """The target without a webhook URL's secrets (its path, any user:password@): its
        host and port only."""
        if self.channel == self.Channel.WEBHOOK:
            url = urlsplit(self.target)
            return f"{url.hostname}:{url.port}" if url.port else url.hostname
        return self.target


class SearchEntry(models.Model):
    """What search finds of a project, a page or a training run: its title and text, and
    on PostgreSQL their stored, GIN-indexed tsvector. Kept up to date in the transaction
    of every write (wiki.search.index, on each new history row)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=12)
    object_id = models.BigIntegerField()
    title = models.CharField(max_length=300)
    category = models.CharField(max_length=20, blank=True)
    slug = models.CharField(max_length=60, blank=True)
    text = models.TextField(blank=True)
    vector = SearchVectorField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "object_id"], name="search_entry_unique")
        ]

    def __str__(self):
        return f"{self.kind} {self.object_id}: {self.title}"


class ChainHead(models.Model):
    """The end of an audit chain (one per project, one global): the last entry's number and
    digest, locked by every append so concurrent writers never fork the chain; and what
    the latest verification found."""

    key = models.CharField(max_length=40, unique=True)
    project = models.OneToOneField(
        Project, null=True, blank=True, on_delete=models.PROTECT, related_name="chain"
    )
    seq = models.PositiveBigIntegerField(default=0)
    digest = models.CharField(max_length=64)
    verified_at = models.DateTimeField(null=True, blank=True)
    verified_ok = models.BooleanField(null=True)
    verified_entries = models.PositiveBigIntegerField(default=0)
    first_bad = models.JSONField(null=True, blank=True)

    def __str__(self):
        return self.key


class AuditEntry(models.Model):
    """One history row's link in its chain: digest = SHA-256(previous digest + canonical
    JSON of the row); seal = HMAC-SHA-256(AUDIT_HMAC_KEY, digest). The other columns copy
    what the activity log filters and shows."""

    chain = models.ForeignKey(ChainHead, on_delete=models.PROTECT, related_name="entries")
    seq = models.PositiveBigIntegerField()
    table = models.CharField(max_length=100)
    history_id = models.BigIntegerField()
    object_id = models.BigIntegerField()
    kind = models.CharField(max_length=40)
    action = models.CharField(max_length=1)
    at = models.DateTimeField()
    username = models.CharField(max_length=150, blank=True)
    source = models.CharField(max_length=10)
    reason = models.TextField(blank=True)
    request_id = models.UUIDField(null=True, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    digest = models.CharField(max_length=64)
    seal = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["chain", "seq"], name="audit_entry_unique_seq")
        ]
        indexes = [
            models.Index(fields=["chain", "table", "history_id"]),
            models.Index(fields=["chain", "at"]),
        ]

    def __str__(self):
        return f"{self.chain.key}#{self.seq}"


# Accounts have history too (in the global audit chain); never their password hash.
register(
    get_user_model(),
    app="wiki",
    bases=[RevisionInfo],
    history_manager=RevisionManager,
    excluded_fields=["password", "last_login"],
)

HistoricalProject = Project.history.model
HistoricalPage = Page.history.model
