"""Projects (the ML systems being documented) and who works on them."""

from django.conf import settings
from django.db import models
from django.db.models import F, Prefetch

from wiki.models.base import DomainModel, history, validate_project_slug, validate_slug


class ProjectQuerySet(models.QuerySet):
    def with_category_pages(self):
        """Prefetch each project's category pages (what completeness needs) as category_pages."""
        Page = Project._meta.get_field("pages").related_model
        pages = Page.objects.categories().only("project", "category", "fields")
        return self.prefetch_related(Prefetch("pages", queryset=pages, to_attr="category_pages"))


# The counters caches are keyed by: bookkeeping, never saved from a copy (see save).
VERSIONS = ["records_version", "pages_version"]


class Project(DomainModel):
    """An ML system being documented: the root of its pages and records."""

    slug = models.CharField(
        max_length=50, unique=True, validators=[validate_slug, validate_project_slug]
    )
    name = models.CharField(max_length=200)
    summary = models.CharField(max_length=500, blank=True)
    owner_team = models.CharField("owner team", max_length=100)
    tags = models.JSONField(default=list, blank=True)
    # The template version whose categories and fields the documentation follows; moved
    # only by wiki.services.templates.upgrade_project.
    template = models.ForeignKey("wiki.Template", on_delete=models.PROTECT, related_name="projects")
    revision = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Bumped in the transaction of every write of the project's records (training runs,
    # deployments, model versions): what is computed from the records (summaries, charts,
    # tab marks) is cached under it. Bookkeeping, not documentation: kept out of history.
    records_version = models.PositiveBigIntegerField(default=0, editable=False)
    # Bumped in the transaction of every write of the project's pages (an edit, a new
    # page, a review, an approval): what depends on the pages' state (the tab marks, the
    # wiki links of a rendering) is cached under it (wiki.caching). Kept out of history too.
    pages_version = models.PositiveBigIntegerField(default=0, editable=False)

    history = history(excluded_fields=VERSIONS)
    objects = ProjectQuerySet.as_manager()

    class Meta:
        ordering = ["name", "slug"]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        # A project saved from a copy loaded earlier must not put back an older records or
        # pages version (a cached summary or rendering would then be served for newer ones).
        if not self._state.adding and kwargs.get("update_fields") is None:
            kwargs["update_fields"] = [
                field.attname
                for field in self._meta.concrete_fields
                if not field.primary_key and field.name not in VERSIONS
            ]
        super().save(*args, **kwargs)

    @staticmethod
    def records_changed(project_id):
        """Bump the project's records version, in the caller's transaction. Call it last
        in the write's transaction: the row stays locked until the commit."""
        Project.objects.filter(pk=project_id).update(records_version=F("records_version") + 1)

    @staticmethod
    def pages_changed(project_id):
        """Bump the project's pages version, in the caller's transaction (last in it, as
        records_changed)."""
        Project.objects.filter(pk=project_id).update(pages_version=F("pages_version") + 1)

    @property
    def spec(self):
        """The project's template spec (categories, fields, evidence map, review months),
        read without loading the template row (wiki.doc_templates caches specs)."""
        from wiki.doc_templates import spec_of

        return spec_of(self.template_id)

    @property
    def completeness(self):
        """Percentage of required fields filled over all category pages; needs
        ``with_category_pages()``."""
        filled = sum(page.completeness[0] for page in self.category_pages)
        required = sum(page.completeness[1] for page in self.category_pages)
        return round(100 * filled / required) if required else 100


class Membership(DomainModel):
    """A user's role in a project: viewer (reads), editor (writes documentation and
    records), maintainer (also members, tokens, settings and approvals), validator (reads,
    and validates the documentation independently: never writes it)."""

    class Role(models.TextChoices):
        VIEWER = "viewer"
        EDITOR = "editor"
        MAINTAINER = "maintainer"
        VALIDATOR = "validator"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices)
    # Granted by single sign-on's role map (wiki.services.sso): the next login changes or
    # removes it as the user's groups say. A role set by hand is never touched by it.
    managed_by_sso = models.BooleanField("managed by single sign-on", default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    history = history()

    class Meta:
        ordering = ["project_id", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_unique")
        ]

    def __str__(self):
        return f"{self.user} is {self.role} of {self.project}"
