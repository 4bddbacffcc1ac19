"""Independent validation: opening a validation, filing findings, their remediation,
comments, and the signed conclusion.

Who may do what is a rule of the domain here (independence), so each function checks it
itself and raises PermissionDenied saying who may: a validator (wiki.access.VALIDATE)
opens, files, closes, sends back and concludes; the finding's owner, an editor or a
maintainer proposes a remediation; a maintainer accepts a risk. Nobody judges their own
work, whatever their rights: a validator pins no revision they wrote, and neither the
finding's owner nor who proposed its remediation closes it or sends it back. A change
the life cycle does not allow is a RecordConflict (409 in the API); a finding changed
since the caller read it is an EditConflict (412).

Every write takes its project's audit chain head (wiki.audit.lock_chain) before any row
lock, as the rest of the wiki does: a conclusion racing a new finding then queues on
the head, instead of each holding a row the other waits for (a deadlock, which
PostgreSQL ends by failing one of them).
"""

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from wiki.access import EDIT, MAINTAIN, VALIDATE, VIEW, can
from wiki.audit import lock_chain
from wiki.categories import MARKDOWN_MAX_LENGTH, normalize_newlines
from wiki.history import recording
from wiki.models import (
    Deployment,
    Finding,
    FindingComment,
    ModelVersion,
    Page,
    TrainingRun,
    Validation,
    max_length,
)
from wiki.services import EditConflict
from wiki.services.records import RecordConflict

Status = Finding.Status
Outcome = Validation.Outcome

# The records a finding may be about ("<kind>:<key>"): kind → (model, key field, label).
RECORD_KINDS = {
    "deployment": (Deployment, "pk", "deployment"),
    "training_run": (TrainingRun, "pk", "training run"),
    "model_version": (ModelVersion, "version", "model version"),
}
# Pages pinned by one validation at most (a project's pages, with room to spare).
MAX_PINNED = 500


def _may(actor, right, project, why):
    if not can(actor.user, right, project):
        raise PermissionDenied(why)


def _text(name, value, *, required=True, limit=MARKDOWN_MAX_LENGTH):
    """Markdown or plain text as stored: a string, newlines normalised, stripped."""
    if not isinstance(value, str):
        raise ValidationError({name: "Must be text."})
    value = normalize_newlines(value).strip()
    if required and not value:
        raise ValidationError({name: "This field is required."})
    if len(value) > limit:
        raise ValidationError({name: f"At most {limit:,} characters."})
    return value


def _clean(obj, exclude=()):
    obj.full_clean(exclude=["project", *exclude], validate_constraints=False)


def _next_number(model, project):
    """The next number of ``model`` in ``project``. The caller holds the project's chain
    head (lock_chain), so two writers never take the same one."""
    last = model.objects.filter(project=project).order_by("-number").values("number").first()
    return (last["number"] if last else 0) + 1


def _pinned(project, pinned):
    """The revisions a validation covers, checked: [{"page": slug, "revision": n}] by slug;
    None means every page of the project at its current revision."""
    pages = {page.slug: page for page in Page.objects.filter(project=project)}
    if pinned is None:
        return [{"page": slug, "revision": pages[slug].revision} for slug in sorted(pages)]
    if not isinstance(pinned, list) or not pinned:
        raise ValidationError({"pinned": "Give a list of {page, revision}, or leave it out."})
    if len(pinned) > MAX_PINNED:
        raise ValidationError({"pinned": f"At most {MAX_PINNED} pages."})
    result, seen = [], set()
    for number, item in enumerate(pinned):
        where = f"Item {number} (counting from 0)"
        if not isinstance(item, dict) or set(item) != {"page", "revision"}:
            raise ValidationError({"pinned": f"{where} must be {{page, revision}}."})
        slug, revision = item["page"], item["revision"]
        page = pages.get(slug) if isinstance(slug, str) else None
        if page is None:
            raise ValidationError({"pinned": f"{where}: {project.name} has no page {slug!r}."})
        if slug in seen:
            raise ValidationError({"pinned": f"{where}: page {slug!r} is pinned twice."})
        if isinstance(revision, bool) or not isinstance(revision, int):
            raise ValidationError({"pinned": f"{where}: the revision must be a number."})
        if not 1 <= revision <= page.revision:
            raise ValidationError(
                {"pinned": f"{where}: {page.title} has revisions 1 to {page.revision}."}
            )
        seen.add(slug)
        result.append({"page": slug, "revision": revision})
    return result


def _own_revisions(project, pinned, user):
    """The pinned revisions ``user`` wrote, as (page title, revision): the author of a
    revision is who saved its first history row (later rows of the same revision are
    reviews and approvals, which do not change the text)."""
    if not pinned:
        return []
    pages = {
        p.slug: p
        for p in Page.objects.filter(project=project, slug__in=[i["page"] for i in pinned])
    }
    wanted = Q()
    for item in pinned:
        wanted |= Q(id=pages[item["page"]].pk, revision=item["revision"])
    authors = {}
    rows = Page.history.filter(wanted).order_by("history_id")
    for page_id, revision, author in rows.values_list("id", "revision", "history_user_id"):
        authors.setdefault((page_id, revision), author)
    return [
        (pages[item["page"]].title, item["revision"])
        for item in pinned
        if authors.get((pages[item["page"]].pk, item["revision"])) == user.pk
    ]


def open_validation(project, *, actor, title, scope="", pinned=None):
    """Open the next validation of ``project`` over the ``pinned`` page revisions (by
    default every page at its current revision), none of which the validator wrote."""
    _may(actor, VALIDATE, project, "Only a validator of this project opens validations.")
    title = _text("title", title, limit=max_length(Validation, "title"))
    scope = _text("scope", scope, required=False)
    with transaction.atomic():
        lock_chain(project)
        checked = _pinned(project, pinned)
        own = _own_revisions(project, checked, actor.user)
        if own:
            wrote = ", ".join(f"{title} (revision {revision})" for title, revision in own)
            leave = (
                f" Choose the pages to pin, leaving out {', '.join(title for title, _ in own)}."
                if pinned is None
                else ""
            )
            raise ValidationError(
                {"pinned": f"You wrote {wrote}: a validator does not validate their own "
                 f"text; another validator does.{leave}"}
            )  # fmt: skip
        validation = Validation(
            project=project,
            title=title,
            scope=scope,
            pinned=checked,
            validator=actor.user,
            validator_name=actor.username,
            opened_at=timezone.now(),
        )
        validation.number = _next_number(Validation, project)
        _clean(validation)
        with recording(actor, f"Opened validation {validation.number}"):
            validation.save()
    return validation


def parse_record(project, record):
    """The record "<kind>:<key>" names in ``project`` (ValidationError on "record" if it
    is malformed or there is no such record), as (label, object)."""
    kind, _, key = record.partition(":")
    if kind not in RECORD_KINDS or not key:
        kinds = ", ".join(f"{name}:<{'version' if name == 'model_version' else 'id'}>"
                          for name in RECORD_KINDS)  # fmt: skip
        raise ValidationError({"record": f"Name a record as {kinds}."})
    model, field, label = RECORD_KINDS[kind]
    if field == "pk" and not (key.isascii() and key.isdigit() and len(key) <= 18):
        raise ValidationError({"record": f"A {label} is named by its number: {kind}:12."})
    found = model.objects.filter(project=project, **{field: key}).first()
    if found is None:
        raise ValidationError({"record": f"{project.name} has no {label} {key}."})
    return label, found


def _owner(project, username):
    """The active user ``username``, who must see ``project`` (ValidationError on "owner")."""
    if username in (None, ""):
        return None
    if not isinstance(username, str):
        raise ValidationError({"owner": "Give a user name."})
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise ValidationError({"owner": f"There is no active user '{username}'."})
    if not can(user, VIEW, project):
        raise ValidationError({"owner": f"{username} cannot see {project.name}."})
    if can(user, VALIDATE, project) and not can(user, EDIT, project):
        # Who checks the remedy does not make it: a validator closes their own otherwise.
        raise ValidationError(
            {"owner": f"{username} validates {project.name}: the owner is who remedies it."}
        )
    return user


def _due_date(value):
    if value is not None and value < timezone.localdate():
        raise ValidationError({"due_date": "Is in the past: the finding would be overdue at once."})
    return value


def _subject(project, *, page, field, page_revision, record):
    """What a finding is about, checked: (page or None, field, page revision, record)."""
    if not any((page, field, page_revision is not None, record)):
        raise ValidationError(
            {"page": "Say what the finding is about: a page (and a field or revision of it) "
             "or a record."}
        )  # fmt: skip
    found = None
    if page:
        found = Page.objects.filter(project=project, slug=page).first()
        if found is None:
            raise ValidationError({"page": f"{project.name} has no page {page!r}."})
    if field:
        if found is None:
            raise ValidationError({"field": "Name the page the field is on (page)."})
        names = [f.name for f in found.spec.fields] if found.spec else []
        if field not in names:
            raise ValidationError(
                {"field": f"{found.title} has no field {field!r}"
                 + (f"; its fields: {', '.join(names)}." if names else " (a free page).")}
            )  # fmt: skip
    if page_revision is not None:
        if found is None:
            raise ValidationError({"page_revision": "Name the page of the revision (page)."})
        if isinstance(page_revision, bool) or not isinstance(page_revision, int):
            raise ValidationError({"page_revision": "Must be a revision number."})
        if not 1 <= page_revision <= found.revision:
            raise ValidationError(
                {"page_revision": f"{found.title} has revisions 1 to {found.revision}."}
            )
    if record:
        parse_record(project, record)
    return found, field, page_revision, record


def file_finding(
    validation, *, actor, title, description, severity, page="", field="",
    page_revision=None, record="", owner=None, due_date=None,
):  # fmt: skip
    """File a finding in an open ``validation`` about a page (a field, a revision of it)
    or a record of its project; ``owner`` is a user name."""
    project = validation.project
    _may(actor, VALIDATE, project, "Only a validator of this project files findings.")
    finding = Finding(
        project=project,
        validation=validation,
        title=_text("title", title, limit=max_length(Finding, "title")),
        description=_text("description", description),
        severity=severity,
        owner=_owner(project, owner),
        due_date=_due_date(due_date),
        created_by=actor.user,
        created_by_name=actor.username,
    )
    finding.owner_name = finding.owner.get_username() if finding.owner else ""
    finding.page, finding.field, finding.page_revision, finding.record = _subject(
        project, page=page, field=field, page_revision=page_revision, record=record
    )
    _clean(finding, exclude=["validation", "number"])
    with transaction.atomic():
        lock_chain(project)
        current = Validation.objects.select_for_update().get(pk=validation.pk)
        if not current.is_open:
            raise RecordConflict(
                f"Validation {current.number} is concluded: open a new one to file findings."
            )
        finding.number = _next_number(Finding, project)
        finding.created_at = finding.updated_at = timezone.now()
        with recording(actor, f"Filed finding {finding.number} ({severity})"):
            finding.save()
    return finding


def _changing(finding, base_revision):
    """The finding locked for a change (in the caller's transaction, after its project's
    chain head), at ``base_revision`` (None skips the check)."""
    lock_chain(finding.project)
    current = Finding.objects.select_for_update().select_related("project").get(pk=finding.pk)
    if base_revision is not None and current.revision != base_revision:
        raise EditConflict(current)
    return current


def _expect(finding, *statuses, doing):
    if finding.status not in statuses:
        allowed = " or ".join(Status(s).label.lower() for s in statuses)
        raise RecordConflict(
            f"Finding {finding.number} is {Status(finding.status).label.lower()}: only a "
            f"finding that is {allowed} can be {doing}."
        )


def _save(finding, actor, reason):
    finding.revision += 1
    finding.updated_at = timezone.now()
    with recording(actor, reason):
        finding.save()
    return finding


def _comment(finding, actor, body):
    return FindingComment.objects.create(
        project=finding.project,
        finding=finding,
        author=actor.user,
        author_name=actor.username,
        body=body,
        created_at=timezone.now(),
    )


def propose_remediation(finding, *, actor, remediation, base_revision):
    """The owner (or an editor or maintainer) says how an open finding is remedied."""
    remediation = _text("remediation", remediation)
    with transaction.atomic():
        current = _changing(finding, base_revision)
        if current.owner_id != actor.user.pk:
            _may(
                actor, EDIT, current.project,
                "Only the finding's owner, an editor or a maintainer proposes a remediation.",
            )  # fmt: skip
        _expect(current, Status.OPEN, doing="given a remediation")
        current.status = Status.REMEDIATION_PROPOSED
        current.remediation = remediation
        return _save(current, actor, f"Proposed a remediation of finding {current.number}")


def proposer(finding):
    """The user (id) who proposed the remediation ``finding`` now has: who wrote the
    first history row of its latest run of "remediation proposed" rows (a new owner or
    due date meanwhile writes rows of the same status); None if there is none."""
    found = None
    rows = finding.history.order_by("-history_id").values_list("status", "history_user_id")
    for status, user_id in rows.iterator():
        if status != Status.REMEDIATION_PROPOSED:
            break
        found = user_id
    return found


def own_work(finding, user):
    """Why ``user`` may not judge ``finding``'s remediation (they own the finding or
    proposed the remedy), or "" if they may."""
    if finding.owner_id == user.pk:
        return f"You own finding {finding.number}: another validator judges its remediation."
    if finding.status == Status.REMEDIATION_PROPOSED and proposer(finding) == user.pk:
        return (
            f"You proposed the remediation of finding {finding.number}: another validator "
            "judges it."
        )
    return ""


def _judging(current, actor, doing):
    """A validator, independent of the remedy, judges ``current``'s remediation."""
    _may(actor, VALIDATE, current.project, f"Only a validator of this project {doing} findings.")
    _expect(
        current, Status.REMEDIATION_PROPOSED,
        doing="closed" if doing == "closes" else "sent back",
    )  # fmt: skip
    why = own_work(current, actor.user)
    if why:
        raise PermissionDenied(why)


def close_finding(finding, *, actor, base_revision, comment=""):
    """A validator accepts the proposed remediation: the finding is closed."""
    comment = _text("comment", comment, required=False)
    with transaction.atomic():
        current = _changing(finding, base_revision)
        _judging(current, actor, "closes")
        current.status = Status.CLOSED
        current.closed_by, current.closed_by_name = actor.user, actor.username
        current.closed_at = timezone.now()
        if comment:
            with recording(actor, f"Commented on finding {current.number}"):
                _comment(current, actor, comment)
        return _save(current, actor, f"Closed finding {current.number}")


def reopen_finding(finding, *, actor, base_revision, comment):
    """A validator refuses the proposed remediation: the finding is open again, with a
    comment saying why."""
    comment = _text("comment", comment)
    with transaction.atomic():
        current = _changing(finding, base_revision)
        _judging(current, actor, "reopens")
        current.status = Status.OPEN
        with recording(actor, f"Commented on finding {current.number}"):
            _comment(current, actor, comment)
        return _save(current, actor, f"Sent finding {current.number} back: remediation refused")


def accept_risk(finding, *, actor, justification, base_revision):
    """A maintainer accepts the risk of an unresolved finding instead of remedying it."""
    justification = _text("risk_justification", justification)
    with transaction.atomic():
        current = _changing(finding, base_revision)
        _may(actor, MAINTAIN, current.project, "Only a maintainer accepts a finding's risk.")
        _expect(current, *Finding.UNRESOLVED, doing="accepted as a risk")
        current.status = Status.ACCEPTED_RISK
        current.risk_justification = justification
        current.accepted_by, current.accepted_by_name = actor.user, actor.username
        current.closed_at = timezone.now()
        return _save(current, actor, f"Accepted the risk of finding {current.number}")


# Not given: leave as it is (None is a value here: no owner, no due date).
KEEP = object()


def assign_finding(finding, *, actor, base_revision, owner=KEEP, due_date=KEEP):
    """A validator or a maintainer changes an unresolved finding's owner (a user name, or
    None) or due date (or None)."""
    with transaction.atomic():
        current = _changing(finding, base_revision)
        project = current.project
        if not (can(actor.user, VALIDATE, project) or can(actor.user, MAINTAIN, project)):
            raise PermissionDenied("Only a validator or a maintainer assigns findings.")
        _expect(current, *Finding.UNRESOLVED, doing="reassigned")
        changed = []
        # An unchanged owner is not checked again: one who left the project or was
        # deactivated still lets the due date change (change_finding does the same).
        if owner is not KEEP and (owner or "") != current.owner_name:
            user = _owner(project, owner)
            if user != current.owner:
                current.owner, current.owner_name = user, user.get_username() if user else ""
                changed.append(f"owner {current.owner_name or 'none'}")
        if due_date is not KEEP and due_date != current.due_date:
            current.due_date = _due_date(due_date)
            changed.append(f"due {due_date.isoformat() if due_date else 'never'}")
        if not changed:
            return current
        return _save(current, actor, f"Finding {current.number}: {', '.join(changed)}")


def comment_on_finding(finding, *, actor, body):
    """A comment by someone working on the finding: its owner, an editor, a maintainer or
    a validator (auditors and viewers read, and change nothing)."""
    body = _text("body", body)
    project = finding.project
    if finding.owner_id != actor.user.pk and not (
        can(actor.user, EDIT, project) or can(actor.user, VALIDATE, project)
    ):
        raise PermissionDenied(
            "Only the finding's owner, an editor, a maintainer or a validator comments."
        )
    with transaction.atomic(), recording(actor, f"Commented on finding {finding.number}"):
        return _comment(finding, actor, body)


def conclude_validation(validation, *, actor, outcome, conclusion):
    """A validator signs the outcome of an open validation.

    "approved" needs every finding of the validation closed or accepted as a risk:
    findings still unresolved are conditions, so the outcome is then "approved with
    conditions" (or "rejected"). The conclusion is signed by the history row it writes:
    the validator's name, the time, and that row's digest in the audit chain."""
    _may(actor, VALIDATE, validation.project, "Only a validator of this project concludes.")
    if outcome not in Outcome.values:
        raise ValidationError({"outcome": f"Must be one of: {', '.join(Outcome.values)}."})
    conclusion = _text("conclusion", conclusion)
    with transaction.atomic():
        lock_chain(validation.project)  # before the validation's row, as file_finding
        current = Validation.objects.select_for_update().get(pk=validation.pk)
        if not current.is_open:
            raise RecordConflict(
                f"Validation {current.number} was concluded on "
                f"{current.concluded_at:%Y-%m-%d} ({current.get_outcome_display().lower()})."
            )
        unresolved = current.findings.unresolved().count()
        if outcome == Outcome.APPROVED and unresolved:
            raise ValidationError(
                {"outcome": f"{unresolved} finding(s) of this validation are unresolved: "
                 "conclude 'approved_with_conditions' (or 'rejected'), or close them first."}
            )  # fmt: skip
        current.outcome = outcome
        current.conclusion = conclusion
        current.concluded_at = timezone.now()
        current.concluded_by, current.concluded_by_name = actor.user, actor.username
        label = current.get_outcome_display().lower()
        with recording(actor, f"Concluded validation {current.number}: {label}"):
            current.save()
    return current


# What each status a finding is moved to needs, and may take, beside it.
TRANSITIONS = {
    Status.REMEDIATION_PROPOSED: ({"remediation"}, set()),
    Status.CLOSED: (set(), {"comment"}),
    Status.OPEN: ({"comment"}, set()),
    Status.ACCEPTED_RISK: ({"risk_justification"}, set()),
}


def change_finding(finding, *, actor, base_revision, status=None, owner=KEEP, due_date=KEEP,
                   **texts):  # fmt: skip
    """One change of ``finding`` as the API's PATCH says it, in one transaction: a new
    owner or due date, then a move to ``status`` with the ``texts`` that move needs
    (remediation, comment, risk_justification). Restating what the finding already says
    changes nothing."""
    if status is not None and status not in Status.values:
        raise ValidationError({"status": f"Must be one of: {', '.join(Status.values)}."})
    texts = {name: value for name, value in texts.items() if value is not None}
    moving = status is not None and status != finding.status
    needs, takes = TRANSITIONS.get(status, (set(), set())) if moving else (set(), set())
    wrong = {
        name: f"Only with a change of status to {_needing(name)}."
        for name in set(texts) - needs - takes
    }
    wrong |= {name: f"Needed to move the finding to {status}." for name in needs - set(texts)}
    if wrong:
        raise ValidationError(wrong)
    with transaction.atomic():
        current = _changing(finding, base_revision)
        if owner is not KEEP and (owner or "") == current.owner_name:
            owner = KEEP
        if due_date is not KEEP and due_date == current.due_date:
            due_date = KEEP
        if owner is not KEEP or due_date is not KEEP:
            current = assign_finding(
                current, actor=actor, base_revision=None, owner=owner, due_date=due_date
            )
        if not moving:
            return current
        if status == Status.REMEDIATION_PROPOSED:
            return propose_remediation(
                current, actor=actor, remediation=texts["remediation"], base_revision=None
            )
        if status == Status.CLOSED:
            return close_finding(
                current, actor=actor, comment=texts.get("comment", ""), base_revision=None
            )
        if status == Status.OPEN:
            return reopen_finding(
                current, actor=actor, comment=texts["comment"], base_revision=None
            )
        return accept_risk(
            current, actor=actor, justification=texts["risk_justification"], base_revision=None
        )


def _needing(name):
    return " or ".join(
        status for status, (needs, takes) in TRANSITIONS.items() if name in needs | takes
    )
