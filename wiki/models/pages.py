"""Documentation pages: one per category per project, and free pages."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from wiki.categories import RESERVED_SLUGS, missing_required
from wiki.models.base import DomainModel, history, validate_slug
from wiki.models.projects import Project


class PageQuerySet(models.QuerySet):
    def categories(self):
        return self.exclude(category="")

    def free(self):
        return self.filter(category="")


class Page(DomainModel):
    """A documentation page: one per category per project, or a free page (no category)."""

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="pages")
    # Empty for free pages (runbooks, glossaries, decision records); else the name of a
    # category of the project's template.
    category = models.CharField(max_length=40, blank=True, validators=[validate_slug])
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

    # Four eyes: a maintainer other than its author approves a revision. The latest
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
    approval_comment = models.TextField(blank=True, max_length=2000)

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
        # Checked when a page is made: a free page made before its slug became reserved
        # (a route added since) stays editable, through the API.
        if not self._state.adding:
            return
        own = self.project.spec.category_names if self.project_id else ()
        reserved = RESERVED_SLUGS | set(own)
        if not self.category and self.slug in reserved:
            raise ValidationError({"slug": f"'{self.slug}' is reserved; choose another slug."})

    @property
    def spec(self):
        """The category of a category page in its project's template (one with no fields
        if the template lacks it), None for a free page."""
        return self.project.spec.category_or_unknown(self.category) if self.category else None

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
