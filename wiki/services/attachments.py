"""Attaching files to pages and records, replacing and deleting them.

The bytes are stored first (wiki.attachments.store, content-addressed, outside any
transaction: a storage cannot roll back), then the Attachment row and its history row
are written in one transaction. A failure in between leaves at most an unreferenced
file, never a row naming bytes that are not there.
"""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from wiki import attachments as files
from wiki.history import recording
from wiki.models import Attachment, Page, Project
from wiki.models.attachments import TARGETS


def _target_field(target):
    for field, model in TARGETS.items():
        if isinstance(target, model):
            return field
    raise TypeError(f"Cannot attach a file to {type(target).__name__}.")


def of(target):
    """The current (not deleted) attachments of a page or record, by name."""
    return Attachment.objects.filter(**{_target_field(target): target}, deleted=False).order_by(
        "name"
    )


def attach(target, file, *, actor, name=None, change_reason="", origin=None):
    """Attach ``file`` (a binary file object; an upload) to ``target`` (a page, training
    run, deployment or model version) as ``name`` (cleaned; by default the file's own
    name). A name already in use gets a new revision holding the new bytes; the same
    bytes again under the same name change nothing. Returns the Attachment.

    ValidationError (type not accepted, too large, damaged image), or
    wiki.storage.Unavailable when the storage does not answer.
    """
    sha256, size = files.digest(file)  # first: a file over the limit is not read whole
    if size == 0:
        raise ValidationError({"file": "The file is empty."})
    content_type = files.sniff(file)
    clean = files.clean_name(name or getattr(file, "name", ""), content_type)
    files.store(file, sha256)
    field = _target_field(target)
    project_id = target.project_id
    for _ in range(2):  # a second time if another request created the name meanwhile
        try:
            return _save(field, target, project_id, clean, sha256, size, content_type, actor,
                         change_reason, origin)  # fmt: skip
        except IntegrityError:
            continue
    raise IntegrityError(f"Could not attach {clean}.")


def _save(
    field, target, project_id, name, sha256, size, content_type, actor, change_reason, origin
):  # fmt: skip
    with transaction.atomic():
        _lock_page(target.pk if field == "page" else None)
        current = (
            Attachment.objects.select_for_update().filter(**{field: target, "name": name}).first()
        )
        if current is not None and not current.deleted and current.sha256 == sha256:
            return current
        verb = "Attached" if current is None or current.deleted else "Replaced"
        with recording(actor, change_reason or f"{verb} {name}", origin):
            if current is None:
                current = Attachment(**{field: target}, project_id=project_id, name=name)
            else:
                current.revision += 1
            current.sha256, current.size, current.content_type = sha256, size, content_type
            current.deleted = False
            current.uploaded_by_name = actor.username
            current.full_clean(exclude=["project", *TARGETS], validate_constraints=False)
            current.save()
            _end_approval(current)
    return current


def remove(attachment, *, actor, change_reason=""):
    """Delete an attachment: a new revision that hides it; its file and every earlier
    version stay in the history. Deleting one already deleted changes nothing."""
    with transaction.atomic():
        _lock_page(attachment.page_id)
        current = Attachment.objects.select_for_update().get(pk=attachment.pk)
        if current.deleted:
            return current
        with recording(actor, change_reason or f"Deleted attachment {current.name}"):
            current.deleted = True
            current.revision += 1
            current.save()
            _end_approval(current)
    return current


def _lock_page(page_id):
    """Lock the page an attachment is on (if it is on one) before anything else: its
    approval may end (_end_approval), and every writer of a page takes the page's row
    before the chain head (edit_page, approve_page), so one taking them the other way
    round would deadlock with it."""
    if page_id is not None:
        list(Page.objects.select_for_update(no_key=True).filter(pk=page_id).values_list("pk"))


def _end_approval(attachment):
    """A page's figures are part of what its approval vouched for: changing one ends the
    approval as an edit does (the approval stays on record for the revision it approved,
    and the page says its attachments changed since)."""
    if attachment.page_id is None:
        return
    page = Page.objects.get(pk=attachment.page_id)  # locked first (_lock_page)
    if page.review_state == Page.ReviewState.APPROVED:
        page.review_state = Page.ReviewState.DRAFT
        page.save()
        Project.pages_changed(page.project_id)  # a page write: its history has a new row


def version(attachment, sha256):
    """The history row of ``attachment``'s version holding the bytes ``sha256`` (the
    latest, if the same bytes came back), or None: a deleted attachment has them too."""
    return attachment.history.filter(sha256=sha256).order_by("-history_id").first()


def versions(attachment):
    """Every version of an attachment, newest first: its history rows (sha256, size,
    content type, who, when, why; a deleted one has deleted=True)."""
    return attachment.history.order_by("-history_date", "-history_id")
