"""Editing documentation pages and creating free pages."""

import copy
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from wiki import caching, doctree, metrics
from wiki.access import MAINTAIN, can
from wiki.categories import MARKDOWN_MAX_LENGTH, normalize_newlines, validate_fields
from wiki.history import CHANGE_REASON_MAX_LENGTH, Source, check_reason, recording
from wiki.models import Membership, Page, Project, max_length
from wiki.services import EditConflict, notifications


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


# How a change came in, for the reason an edit without one is given.
CHANNELS = {
    Source.WEB: "in the browser", Source.API: "through the API", Source.ADMIN: "in the admin",
    Source.CLI: "from the command line", Source.SYSTEM: "by the system",
}  # fmt: skip


def _listed(names, conjunction="and"):
    """Names as a sentence says them: a; a and b; a, b and c (or another conjunction)."""
    return (
        ", ".join(names) if len(names) < 2 else f"{', '.join(names[:-1])} {conjunction} {names[-1]}"
    )


def default_reason(page, changes, actor):
    """What an edit saved without a change reason says: what it changed, through which
    channel and by whom ("Changed owners and the body through the API (token 'ci')")."""
    changed = []
    if changes.get("title", page.title) != page.title:
        changed.append("the title")
    if "fields" in changes and page.spec is not None:
        new, old = changes["fields"], page.fields
        changed += [
            f.label[0].lower() + f.label[1:]
            for f in page.spec.fields
            if new.get(f.name) != old.get(f.name)
        ]
    if changes.get("body", page.body) != page.body:
        changed.append("the body")
    changed = changed or ["the page"]  # values that differ only in form
    who = f"token '{actor.token.name}'" if actor.token is not None else actor.username
    reason = f"Changed {_listed(changed)} {CHANNELS.get(actor.source, '')}".rstrip()
    return f"{reason} ({who})" if who else reason


def edit_page(
    page, *, actor, base_revision, change_reason, fields=None, body=None, title=None,
    merge_fields=False, origin=None,
):  # fmt: skip
    """Save a new revision of ``page`` with the given parts replaced.

    ``base_revision`` is the revision the editor started from; if the page has moved on
    since, EditConflict is raised and nothing is saved (None skips the check, for
    scripted writes). Only what is given (not None) is replaced; an edit that changes
    nothing saves no revision. With ``merge_fields``, ``fields`` changes the fields it
    names (None removes one) and keeps the others as they are at the time of saving.
    Without a change reason, the revision says what changed and who changed it
    (``default_reason``). ``origin`` names where the change comes from, if another
    system records it (wiki.history.git_origin). Returns the page as saved.
    """
    change_reason = check_reason(change_reason)
    if not merge_fields:
        changes = check_page_changes(page, fields=fields, body=body, title=title)
    with transaction.atomic():
        # The row lock makes concurrent editors of one page queue up here, so only one
        # of two edits from the same base revision can pass the check below. No key
        # changes, so it leaves the page to rows that refer to it (a finding, an
        # attachment): their foreign key's check, at the commit of a writer holding the
        # chain head, would otherwise wait for this lock while this waits for the head.
        current = Page.objects.select_for_update(no_key=True).get(pk=page.pk)
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
        reason = change_reason or default_reason(current, changes, actor)
        for name, value in changes.items():
            setattr(current, name, value)
        current.revision += 1
        current.edited_at = timezone.now()
        if current.review_state == Page.ReviewState.APPROVED:
            # The approval stays on record for the revision it approved; this one is new.
            current.review_state = Page.ReviewState.DRAFT
        with recording(actor, reason, origin):
            current.save()
        Project.pages_changed(current.project_id)
        transaction.on_commit(lambda: metrics.PAGE_EDITS.labels(str(actor.source)).inc())
    return current


def revision_of(page, number):
    """The history row that created revision ``number`` of ``page`` (or of a project), or
    None: its author, time and reason are the revision's. Later rows with the same number
    record events on that content (a submission for review, an approval), not new content."""
    if not isinstance(number, int):
        return None
    return page.history.filter(revision=number).order_by("history_date", "history_id").first()


# What a page's view shows of the revision it shows: who wrote it and when.
HEAD_FIELDS = ("history_id", "history_date", "history_user_id", "history_username")


def current_revision_of(page):
    """revision_of(page, page.revision) with only HEAD_FIELDS, cached: the first history
    row of a revision never changes (wiki.caching.revision_head_key)."""

    def first_row():
        rows = page.history.filter(revision=page.revision).order_by("history_date", "history_id")
        return rows.values(*HEAD_FIELDS).first()

    row = caching.get_or_compute(caching.revision_head_key(page), first_row)
    return None if row is None else page.history.model(**row)


def compared_revisions(page, older, newer):
    """The history rows of revisions ``older`` and ``newer`` of ``page`` (as given in a
    query: text or None), to compare them; ValidationError naming "from" and "to" for each
    that is missing, not a number, or not a revision of the page."""
    rows, errors = {}, {}
    span = f"{page.title} has revisions 1 to {page.revision}."
    for name, value in (("from", older), ("to", newer)):
        if value in (None, ""):
            errors[name] = [f"Give a revision number. {span}"]
            continue
        try:
            number = int(value)
        except ValueError:
            errors[name] = [f"{str(value)[:20]!r} is not a revision number. {span}"]
            continue
        row = revision_of(page, number)
        if row is None:
            errors[name] = [f"There is no revision {number}. {span}"]
        rows[name] = row
    if errors:
        raise ValidationError(errors)
    return rows["from"], rows["to"]


def restore_page(page, *, actor, revision, base_revision, change_reason):
    """Save, as a new revision, the content ``page`` had at ``revision``.

    Nothing is rewritten: the restore is one more revision, whose reason says which one
    it restores. Restoring what the page already says saves nothing.
    """
    old = revision_of(page, revision)
    if old is None:
        raise ValidationError({"revision": f"{page} has no revision {revision}."})
    prefix = f"Restored revision {revision}: "
    room = CHANGE_REASON_MAX_LENGTH - len(prefix)
    if isinstance(change_reason, str) and len(change_reason) > room:
        raise ValidationError(
            {"change_reason": f"At most {room} characters here: the history adds “{prefix}”."}
        )
    reason = prefix + change_reason if change_reason else prefix.removesuffix(": ")
    return edit_page(
        page,
        actor=actor,
        base_revision=base_revision,
        change_reason=reason,
        fields=old.fields,
        body=old.body,
        title=None if page.category else old.title,
    )


def submit_for_review(page, *, actor, change_reason=""):
    """Ask the maintainers to review the page's current revision."""
    with transaction.atomic(), recording(actor, change_reason or "Submitted for review"):
        current = Page.objects.select_for_update(no_key=True).get(pk=page.pk)
        if current.review_state != Page.ReviewState.IN_REVIEW:
            current.review_state = Page.ReviewState.IN_REVIEW
            current.save()
            Project.pages_changed(current.project_id)
    return current


@dataclass(frozen=True)
class Approval:
    """Whether one user may approve a page's current revision; if not, why, and who may."""

    allowed: bool
    why_not: str = ""  # says who may approve instead
    approvers: tuple = ()  # user names of the maintainers who may (only when not allowed)


def approval_for(page, user, written=None):
    """The four-eyes rule, written once: a maintainer of the project (or a superuser) who
    did not write the page's current revision may approve it. ``written``: that revision's
    first history row (revision_of), if the caller has it already."""
    written = written or revision_of(page, page.revision)
    author = written.history_user_id if written is not None else None
    maintainer = can(user, MAINTAIN, page.project)
    if maintainer and (author is None or user.pk != author):
        return Approval(allowed=True)
    approvers = tuple(
        Membership.objects.filter(
            project=page.project, role=Membership.Role.MAINTAINER, user__is_active=True
        )
        .exclude(user_id=author)
        .order_by("user__username")
        .values_list("user__username", flat=True)
    )
    number, ask = page.revision, _listed(approvers, "or")
    if not maintainer:
        why_not = (
            f"Only maintainers approve: ask {ask}."
            if approvers
            else "Only maintainers approve, and no maintainer but its author can approve "
            f"revision {number}: a maintainer must add another on the Members page."
        )
    elif approvers:
        why_not = (
            f"Four eyes: you wrote revision {number}; another maintainer approves it: ask {ask}."
        )
    else:
        why_not = (
            f"Four eyes: you wrote revision {number} and no other maintainer can approve it: "
            "add a maintainer on the Members page."
        )
    return Approval(False, why_not, approvers)


def approve_page(page, *, actor, revision, comment=""):
    """Approve ``revision`` (the current one) of ``page``, if approval_for allows ``actor``.

    PermissionDenied (saying why) for anyone else; EditConflict if the page moved past
    ``revision``.
    """
    limit = max_length(Page, "approval_comment")
    if not isinstance(comment, str) or len(comment) > limit:
        raise ValidationError({"comment": f"A comment is text of at most {limit:,} characters."})
    with transaction.atomic(), recording(actor, f"Approved revision {revision}"):
        current = Page.objects.select_for_update(no_key=True).get(pk=page.pk)
        if revision != current.revision:
            raise EditConflict(current)
        current.project = page.project
        approval = approval_for(current, actor.user)
        if not approval.allowed:
            raise PermissionDenied(approval.why_not)
        current.review_state = Page.ReviewState.APPROVED
        current.approved_revision = revision
        current.approved_by = actor.user
        current.approved_by_name = actor.username
        current.approved_at = timezone.now()
        current.approval_comment = comment.strip()
        current.save()
        notifications.page_approved(current)
        Project.pages_changed(current.project_id)
    return current


def create_free_page(project, *, actor, slug, title, body="", change_reason="", origin=None):
    """Create a page outside the categories (a runbook, a glossary, a decision record)."""
    page = Page(project=project, slug=slug)
    changes = check_page_changes(page, title=title, body=body)
    page.title, page.body = changes["title"], changes["body"]
    duplicate = f"{project.name} already has a page '{slug}'."
    if Page.objects.filter(project=project, slug=slug).exists():
        raise ValidationError({"slug": duplicate})
    try:
        with transaction.atomic(), recording(actor, change_reason or "Created page", origin):
            page.save()
            Project.pages_changed(project.pk)
    except IntegrityError:
        # A concurrent request created the same slug between our check and our insert.
        raise ValidationError({"slug": duplicate}) from None
    return page


# Files one push may hold: a project's pages, with room to spare.
MAX_TREE_FILES = 500


@dataclass(frozen=True)
class TreeFile:
    """A file of a pushed tree (wiki.doctree): its path, its content, and its content at
    the commit before, if it was there (what the wiki had after that commit's push)."""

    path: str
    content: str
    previous: str | None = None


class TreeConflict(Exception):
    """Pages of a pushed tree were edited in the wiki since the tree last had them;
    ``conflicts`` holds (path, page as it is now, the history row of its revision)."""

    def __init__(self, conflicts):
        self.conflicts = conflicts
        lines = [
            f"{path}: '{page.slug}' was changed in the wiki since the last push (revision "
            f"{page.revision}, {row.history_username or 'the system'}, "
            f"{row.history_date:%Y-%m-%d %H:%M} UTC: {row.history_change_reason or 'no reason'})"
            for path, page, row in conflicts
        ]
        super().__init__(
            "Nothing was written. Take these changes into your files (export_markdown or "
            "GET …/markdown.tar.gz shows them), commit and push again.\n" + "\n".join(lines)
        )


def _unchanged(page, changes):
    return all(getattr(page, name) == value for name, value in changes.items())


def _changes(page, parsed):
    return check_page_changes(page, fields=parsed.fields, body=parsed.body, title=parsed.title)


def _reads_as(page, previous):
    """Whether ``page`` holds what the file ``previous`` says (False if it says nothing
    valid)."""
    try:
        return previous is not None and _unchanged(page, _changes(page, doctree.read(previous)))
    except ValidationError:
        return False


def _repository(url):
    """A repository's URL reduced to what names it: https://host/org/repo.git,
    git@host:org/repo and ssh://git@host/org/repo are all "host/org/repo"."""
    url = url.strip().removesuffix("/").removesuffix(".git")
    if "://" in url:
        url = url.split("://", 1)[1]
    elif ":" in url:  # scp-like: [user@]host:path
        url = url.replace(":", "/", 1)
    host, _, path = url.rpartition("@")[2].partition("/")
    return f"{host.lower()}/{path}"


def _same_line(written, origin):
    """Whether the origin of a page's revision (``written``) is an earlier push of the
    same branch of the same repository as ``origin``."""
    return (
        (written or {}).get("tool") == "git"
        and _repository(written["repository"]) == _repository(origin["repository"])
        and written.get("branch") == origin["branch"]
    )


def push_tree(project, *, actor, files, origin, change_reason=""):
    """Write the pages of a pushed tree (``TreeFile``s, as wiki.doctree writes them) as
    revisions from ``origin`` (wiki.history.git_origin), all or nothing.

    A file that says what its page holds writes nothing. Otherwise it replaces the page
    only if the page is as the tree last had it: its revision was pushed from the same
    branch of the same repository, or it reads as the file's previous content, or it is
    still empty. A page edited in the wiki since is never overwritten: TreeConflict names
    every one and nothing is written. A free page the tree names and the project lacks
    is created. Files that are not valid raise ValidationError ({path: messages}).
    Returns [(path, page, outcome)], outcome "unchanged", "changed" or "created".
    """
    change_reason = check_reason(change_reason) or (
        f"Pushed from {origin['branch'] or 'git'} at {origin['commit'][:12]}"
    )
    parsed, errors = {}, {}
    for file in files:
        if file.path in parsed or file.path in errors:
            errors[file.path] = ["This path is in the push twice."]
            continue
        try:
            page_file = doctree.read(file.content)
        except ValidationError as error:
            errors[file.path] = error.messages
            continue
        named = next((p for p, f in parsed.items() if f.slug == page_file.slug), None)
        if named is not None:
            errors[file.path] = [f"{named} is page '{page_file.slug}' already."]
        else:
            parsed[file.path] = page_file
    previous = {file.path: file.previous for file in files}
    outcomes, writes, conflicts = [], [], []
    with transaction.atomic():
        # Locked in one order, so two pushes of one project queue up instead of deadlocking.
        slugs = [f.slug for f in parsed.values()]
        locked = Page.objects.select_for_update(no_key=True).filter(project=project, slug__in=slugs)
        pages = {page.slug: page for page in locked.order_by("pk")}
        for path, page_file in parsed.items():
            page = pages.get(page_file.slug)
            if page is None:
                page = Page(project=project, slug=page_file.slug, title=page_file.title or "")
            try:
                changes = _changes(page, page_file)
            except ValidationError as error:
                errors[path] = error.messages
                continue
            if page.pk is None:
                writes.append((path, None, page_file))
            elif _unchanged(page, changes):
                outcomes.append((path, page, "unchanged"))
            else:
                written = revision_of(page, page.revision)
                pushed = written is not None and _same_line(written.history_origin, origin)
                empty = not page.body and not page.fields  # nothing to lose
                if pushed or empty or _reads_as(page, previous[path]):
                    writes.append((path, page, page_file))
                else:
                    conflicts.append((path, page, written))
        if errors:
            raise ValidationError(errors)
        if conflicts:
            raise TreeConflict(conflicts)
        for path, page, page_file in writes:
            if page is None:
                page = create_free_page(
                    project, actor=actor, slug=page_file.slug, title=page_file.title or "",
                    body=page_file.body, change_reason=change_reason, origin=origin,
                )  # fmt: skip
                outcomes.append((path, page, "created"))
                continue
            page = edit_page(
                page, actor=actor, base_revision=page.revision, change_reason=change_reason,
                fields=page_file.fields, body=page_file.body, title=page_file.title,
                origin=origin,
            )  # fmt: skip
            outcomes.append((path, page, "changed"))
    return sorted(outcomes, key=lambda outcome: outcome[0])
