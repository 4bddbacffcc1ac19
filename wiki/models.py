"""The domain: projects, their documentation pages, and the records pipelines post.

Every model keeps its full history (django-simple-history, stamped by wiki.history).
Nothing outside wiki/services writes these models.
"""

import math
from datetime import UTC, datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import OuterRef, Prefetch, Q, Subquery
from django.utils import timezone
from simple_history.models import HistoricalRecords

from wiki.categories import CATEGORY_NAMES, RESERVED_SLUGS, get_category, missing_required
from wiki.history import RevisionInfo

SLUG_PATTERN = r"[a-z0-9]+(?:-[a-z0-9]+)*"
validate_slug = RegexValidator(
    rf"^{SLUG_PATTERN}\Z",
    "Use lowercase letters, digits and single hyphens (e.g. churn-model).",
)
# /projects/new/ is the form that creates a project.
RESERVED_PROJECT_SLUGS = {"new"}


def validate_project_slug(value):
    if value in RESERVED_PROJECT_SLUGS:
        raise ValidationError(f"'{value}' is reserved; choose another slug.")


def history():
    return HistoricalRecords(bases=[RevisionInfo])


def _has_nul(value):
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


class DomainModel(models.Model):
    """Base of the domain models: full_clean() also refuses NUL characters anywhere,
    including inside JSON, since PostgreSQL cannot store them (a 500 otherwise)."""

    class Meta:
        abstract = True

    def clean_fields(self, exclude=None):
        try:
            super().clean_fields(exclude)
            errors = {}
        except ValidationError as e:
            errors = e.error_dict
        for field in self._meta.concrete_fields:
            if field.name not in (exclude or ()) and _has_nul(getattr(self, field.attname)):
                errors.setdefault(field.name, []).append(
                    ValidationError("Must not contain NUL (\\x00) characters.")
                )
        if errors:
            raise ValidationError(errors)


class ProjectQuerySet(models.QuerySet):
    def with_last_change(self):
        """Annotate when and by whom the project or any of its pages last changed."""
        latest = ["-history_date", "-history_id"]
        pages = HistoricalPage.objects.filter(project_id=OuterRef("pk")).order_by(*latest)
        own = HistoricalProject.objects.filter(id=OuterRef("pk")).order_by(*latest)
        return self.annotate(
            page_changed_at=Subquery(pages.values("history_date")[:1]),
            page_changed_by=Subquery(pages.values("history_username")[:1]),
            own_changed_at=Subquery(own.values("history_date")[:1]),
            own_changed_by=Subquery(own.values("history_username")[:1]),
        )

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
    def last_change(self):
        """(time, user name) of the latest change; needs ``with_last_change()``."""
        changes = [
            (self.page_changed_at, self.page_changed_by),
            (self.own_changed_at, self.own_changed_by),
        ]
        return max((c for c in changes if c[0] is not None), default=(None, ""))

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

    history = history()
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
    version = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    history = history()

    class Meta:
        ordering = ["project_id", "-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "version"], name="model_version_unique"),
        ]

    def __str__(self):
        return self.version


# More entries than this in one hyperparameters, metrics, tags or environment object is a
# pipeline bug (a whole dataset logged as "metrics"), not documentation.
MAX_OBJECT_ENTRIES = 1000


def _require_object(value, name, check, what):
    if not isinstance(value, dict):
        raise ValidationError({name: "Must be an object."})
    if len(value) > MAX_OBJECT_ENTRIES:
        raise ValidationError({name: f"At most {MAX_OBJECT_ENTRIES} entries."})
    for key, item in value.items():
        if not check(item):
            raise ValidationError({name: f"'{key}' must be {what}."})


def _is_scalar(value):
    return value is None or isinstance(value, (str, bool, int, float))


def _is_finite_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class Record(DomainModel):
    """What training runs and deployments share: where and when the pipeline ran."""

    git_commit = models.CharField(max_length=64, blank=True)
    pipeline_url = models.URLField(max_length=500, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True

    def clean(self):
        start, end = self.started_at, self.finished_at
        # Compare only valid datetimes (clean_fields reports the others), naive ones as UTC.
        if isinstance(start, datetime) and isinstance(end, datetime):
            start, end = (
                t if timezone.is_aware(t) else t.replace(tzinfo=UTC) for t in (start, end)
            )
            if end < start:
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
        # The API pages through a project's runs by (started_at, id).
        indexes = [models.Index(fields=["project", "started_at", "id"])]

    def __str__(self):
        return f"training run {self.pk} ({self.model_version})"

    @property
    def metric_items(self):
        """(name, value) pairs sorted by name, for display."""
        return sorted(self.metrics.items())

    def clean(self):
        super().clean()
        _require_object(self.hyperparameters, "hyperparameters", _is_scalar, "a scalar")
        _require_object(self.metrics, "metrics", _is_finite_number, "a finite number")
        _require_object(self.tags, "tags", lambda v: isinstance(v, str), "a string")
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

    history = history()

    class Meta:
        ordering = ["project_id", "-started_at", "-id"]
        indexes = [models.Index(fields=["project", "started_at", "id"])]

    def __str__(self):
        return f"{self.model_version} to {self.environment}"

    def clean(self):
        super().clean()
        _require_object(self.config, "config", lambda v: True, "")
        if not isinstance(self.checks, list):
            raise ValidationError({"checks": "Must be a list of check results."})
        for number, check in enumerate(self.checks, start=1):
            if (
                not isinstance(check, dict)
                or not isinstance(check.get("name"), str)
                or not check["name"].strip()
                or not isinstance(check.get("passed"), bool)
                or not set(check) <= {"name", "passed", "value", "details"}
            ):
                raise ValidationError(
                    {
                        "checks": f"Check {number} must have a non-empty 'name', a boolean "
                        "'passed', and optionally 'value' and 'details'."
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

    history = HistoricalRecords(bases=[RevisionInfo], excluded_fields=["key_hash", "last_used_at"])

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


HistoricalProject = Project.history.model
HistoricalPage = Page.history.model
