"""Creating and changing projects."""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from wiki import audit
from wiki.history import recording
from wiki.models import Membership, Page, Project
from wiki.services import EditConflict
from wiki.services.templates import default_template, template_named

TAG_MAX_LENGTH = 50
MAX_TAGS = 20


def clean_tags(tags):
    """Lowercase, strip and de-duplicate tags, keeping their order."""
    if not isinstance(tags, (list, tuple)) or not all(isinstance(t, str) for t in tags):
        raise ValidationError("Tags must be a list of strings.")
    cleaned = list(dict.fromkeys(t.strip().lower() for t in tags if t.strip()))
    if len(cleaned) > MAX_TAGS:
        raise ValidationError(f"At most {MAX_TAGS} tags.")
    too_long = [t for t in cleaned if len(t) > TAG_MAX_LENGTH]
    if too_long:
        raise ValidationError(f"Tags must be at most {TAG_MAX_LENGTH} characters: “{too_long[0]}”.")
    return cleaned


def _tags(tags):
    try:
        return clean_tags(tags)
    except ValidationError as e:
        raise ValidationError({"tags": e.messages}) from None


def create_project(
    *, actor, slug, name, owner_team, summary="", tags=(), change_reason="", template=None
):  # fmt: skip
    """Create a project together with a page for each category of its template (the
    latest version of ``template``, a slug, or of the default template); its creator
    maintains it."""
    pinned = template_named(template) if template else default_template()
    project = Project(
        slug=slug, name=name, owner_team=owner_team, summary=summary, tags=_tags(tags),
        template=pinned,
    )  # fmt: skip
    project.full_clean()
    try:
        with transaction.atomic(), recording(actor, change_reason or "Created project"):
            project.save()
            for category in pinned.spec.categories:
                Page.objects.create(
                    project=project,
                    category=category.name,
                    slug=category.name,
                    title=category.label,
                )
            Project.pages_changed(project.pk)
            if actor.user is not None:
                Membership.objects.create(
                    project=project, user=actor.user, role=Membership.Role.MAINTAINER
                )
    except IntegrityError:
        # Another request created the same slug between our check and our insert.
        raise ValidationError({"slug": "A project with this slug already exists."}) from None
    return project


def update_project(project, *, actor, base_revision, change_reason, **changes):
    """Change a project's name, summary, owner team or tags (its slug is permanent)."""
    allowed = {"name", "summary", "owner_team", "tags"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationError({name: "This field cannot be changed." for name in unknown})
    if "tags" in changes:
        changes["tags"] = _tags(changes["tags"])
    with transaction.atomic(), recording(actor, change_reason):
        # The chain's head before the project's row, as every records and page write
        # takes them (the other order could deadlock with those).
        audit.lock_chain(project)
        current = Project.objects.select_for_update().get(pk=project.pk)
        if base_revision is not None and current.revision != base_revision:
            raise EditConflict(current)
        if all(getattr(current, name) == value for name, value in changes.items()):
            return current
        for name, value in changes.items():
            setattr(current, name, value)
        current.full_clean()
        current.revision += 1
        current.save()
    return current
