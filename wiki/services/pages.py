"""Editing documentation pages and creating free pages."""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from wiki.categories import MARKDOWN_MAX_LENGTH, RESERVED_SLUGS, validate_fields
from wiki.history import recording
from wiki.models import Page
from wiki.services import EditConflict


def _check_body(body):
    if not isinstance(body, str):
        raise ValidationError({"body": "The body must be Markdown text (a string)."})
    if len(body) > MARKDOWN_MAX_LENGTH:
        raise ValidationError(
            {"body": f"The body must be at most {MARKDOWN_MAX_LENGTH} characters."}
        )
    return body.strip()


def edit_page(page, *, actor, base_revision, change_reason, fields=None, body=None, title=None):
    """Save a new revision of ``page`` with the given parts replaced.

    ``base_revision`` is the revision the editor started from; if the page has moved on
    since, EditConflict is raised and nothing is saved (None skips the check, for
    scripted writes). Only what is given (not None) is replaced; an edit that changes
    nothing saves no revision. Returns the page as saved.
    """
    changes = {}
    if body is not None:
        changes["body"] = _check_body(body)
    if title is not None:
        changes["title"] = title.strip() if isinstance(title, str) else title
    with transaction.atomic(), recording(actor, change_reason):
        # The row lock makes concurrent editors of one page queue up here, so only one
        # of two edits from the same base revision can pass the check below.
        current = Page.objects.select_for_update().get(pk=page.pk)
        if base_revision is not None and current.revision != base_revision:
            raise EditConflict(current)
        if fields is not None:
            if current.spec is None:
                if fields:
                    raise ValidationError({"fields": "Free pages have no structured fields."})
                changes["fields"] = {}
            else:
                changes["fields"] = validate_fields(current.spec, fields)
        if all(getattr(current, name) == value for name, value in changes.items()):
            return current
        for name, value in changes.items():
            setattr(current, name, value)
        current.full_clean(exclude=["project"])
        current.revision += 1
        current.save()
    return current


def create_free_page(project, *, actor, slug, title, body="", change_reason=""):
    """Create a page outside the categories (a runbook, a glossary, a decision record)."""
    if slug in RESERVED_SLUGS:
        raise ValidationError({"slug": f"'{slug}' is reserved; choose another slug."})
    page = Page(project=project, slug=slug, title=(title or "").strip(), body=_check_body(body))
    page.full_clean(exclude=["project"], validate_constraints=False)
    if Page.objects.filter(project=project, slug=slug).exists():
        raise ValidationError({"slug": f"{project.name} already has a page '{slug}'."})
    try:
        with transaction.atomic(), recording(actor, change_reason or "Created page"):
            page.save()
    except IntegrityError:
        raise ValidationError({"slug": f"{project.name} already has a page '{slug}'."}) from None
    return page
