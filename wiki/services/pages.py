"""Editing documentation pages and creating free pages."""

import copy

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from wiki.categories import MARKDOWN_MAX_LENGTH, normalize_newlines, validate_fields
from wiki.history import recording
from wiki.models import Page
from wiki.services import EditConflict


def _body(body):
    if not isinstance(body, str):
        raise ValidationError("The body must be Markdown text (a string).")
    if len(body) > MARKDOWN_MAX_LENGTH:
        raise ValidationError(f"The body must be at most {MARKDOWN_MAX_LENGTH} characters.")
    return normalize_newlines(body).strip()


def _title(title):
    if not isinstance(title, str):
        raise ValidationError("The title must be text.")
    return title.strip()


def check_page_changes(page, *, fields=None, body=None, title=None):
    """Validate an edit of ``page`` and return the changes as they would be saved.

    Saves nothing: the edit form's preview and edit_page both use it. Only the parts
    given (not None) are checked; every error is reported at once (ValidationError).
    """
    changes, errors = {}, {}
    for name, value, clean in (("body", body, _body), ("title", title, _title)):
        if value is not None:
            try:
                changes[name] = clean(value)
            except ValidationError as e:
                errors[name] = e.messages
    if page.spec is not None and changes.get("title", page.title) != page.title:
        errors["title"] = ["A category page keeps its category's title."]
    if fields is not None:
        try:
            if page.spec is None and fields:
                raise ValidationError({"fields": "Free pages have no structured fields."})
            changes["fields"] = validate_fields(page.spec, fields) if page.spec else {}
        except ValidationError as e:
            errors |= e.message_dict
    if not errors:
        probe = copy.copy(page)
        for name, value in changes.items():
            setattr(probe, name, value)
        try:
            probe.full_clean(exclude=["project"], validate_constraints=False)
        except ValidationError as e:
            errors = e.message_dict
    if errors:
        raise ValidationError(errors)
    return changes


def edit_page(
    page, *, actor, base_revision, change_reason, fields=None, body=None, title=None,
    merge_fields=False,
):  # fmt: skip
    """Save a new revision of ``page`` with the given parts replaced.

    ``base_revision`` is the revision the editor started from; if the page has moved on
    since, EditConflict is raised and nothing is saved (None skips the check, for
    scripted writes). Only what is given (not None) is replaced; an edit that changes
    nothing saves no revision. With ``merge_fields``, ``fields`` changes the fields it
    names (None removes one) and keeps the others as they are at the time of saving.
    Returns the page as saved.
    """
    if not merge_fields:
        changes = check_page_changes(page, fields=fields, body=body, title=title)
    with transaction.atomic(), recording(actor, change_reason):
        # The row lock makes concurrent editors of one page queue up here, so only one
        # of two edits from the same base revision can pass the check below.
        current = Page.objects.select_for_update().get(pk=page.pk)
        if base_revision is not None and current.revision != base_revision:
            raise EditConflict(current)
        if merge_fields:
            if fields is not None and not isinstance(fields, dict):
                raise ValidationError({"fields": "Must be an object of field name to value."})
            merged = None
            if fields is not None:
                merged = {k: v for k, v in (current.fields | fields).items() if v is not None}
            changes = check_page_changes(current, fields=merged, body=body, title=title)
        if all(getattr(current, name) == value for name, value in changes.items()):
            return current
        for name, value in changes.items():
            setattr(current, name, value)
        current.revision += 1
        current.save()
    return current


def create_free_page(project, *, actor, slug, title, body="", change_reason=""):
    """Create a page outside the categories (a runbook, a glossary, a decision record)."""
    page = Page(project=project, slug=slug)
    changes = check_page_changes(page, title=title, body=body)
    page.title, page.body = changes["title"], changes["body"]
    duplicate = f"{project.name} already has a page '{slug}'."
    if Page.objects.filter(project=project, slug=slug).exists():
        raise ValidationError({"slug": duplicate})
    try:
        with transaction.atomic(), recording(actor, change_reason or "Created page"):
            page.save()
    except IntegrityError:
        # A concurrent request created the same slug between our check and our insert.
        raise ValidationError({"slug": duplicate}) from None
    return page
