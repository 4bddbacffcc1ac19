"""Documentation templates: the versions of the category registry projects are pinned to."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from wiki.models.base import DomainModel, history, validate_slug


class TemplateQuerySet(models.QuerySet):
    def latest_of(self, slug):
        """The highest version of template ``slug``, None when none is loaded."""
        return self.filter(slug=slug).order_by("-version").first()


class Template(DomainModel):
    """One version of a documentation template, as loaded from its YAML: immutable (a
    new version is a new row), so a project pinned to it always reads the same registry."""

    slug = models.CharField(max_length=50, validators=[validate_slug])
    version = models.PositiveIntegerField()
    label = models.CharField(max_length=200)
    # The checked, normalized YAML (wiki.doc_templates.parse); the spec is built from it.
    definition = models.JSONField()
    source = models.TextField()
    digest = models.CharField(max_length=64)  # SHA-256 of source
    loaded_at = models.DateTimeField(default=timezone.now)
    loaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip
    loaded_by_name = models.CharField(max_length=150, blank=True)

    history = history()
    objects = TemplateQuerySet.as_manager()

    class Meta:
        ordering = ["slug", "version"]
        constraints = [
            models.UniqueConstraint(fields=["slug", "version"], name="template_unique_version")
        ]

    def __str__(self):
        return f"{self.slug} v{self.version}"

    @property
    def spec(self):
        """The immutable spec every reader of categories uses (built once per row)."""
        from wiki.doc_templates import spec_of

        return spec_of(self.pk, self.definition)
