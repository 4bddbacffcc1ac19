"""API tokens, the answers kept for retried writes, and the history of accounts."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from simple_history import register

from wiki.history import RevisionInfo, RevisionManager
from wiki.models.base import DomainModel, history
from wiki.models.projects import Project


class ApiToken(DomainModel):
    """A key pipelines use on the REST API: acts as ``user``, limited to scopes and projects.

    Only a hash of the key is stored; ``prefix`` (its first characters) identifies it.
    """

    class Scope(models.TextChoices):
        READ = "read", "Read"
        PAGES_WRITE = "pages:write", "Write pages"
        RECORDS_WRITE = "records:write", "Write records"
        VALIDATIONS_WRITE = "validations:write", "Validate (validations, findings, comments)"
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


# Accounts have history too (in the global audit chain); never their password hash.
register(
    get_user_model(),
    app="wiki",
    bases=[RevisionInfo],
    history_manager=RevisionManager,
    excluded_fields=["password", "last_login"],
)
