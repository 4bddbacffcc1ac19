"""Reading validations: the signature of a conclusion, a finding's life cycle, the overdue
findings the dashboard and the digest show, and the audit report's validation section
(wiki.services.validations writes).

The audit report and its inventory header may be made as of a moment (wiki.as_of): the
functions they call take ``until`` (an aware datetime; None: now) and then read each
validation and finding as its latest history row at or before it says it stood.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import Count, Q
from django.utils import timezone

from wiki import as_of
from wiki.models import AuditEntry, Finding, FindingComment, Page, Validation


@dataclass(frozen=True)
class Signature:
    """Who signed a validation's conclusion, when, and the digest that seals it: the audit
    chain digest of the history row the conclusion wrote."""

    name: str
    at: datetime
    digest: str


def signature(validation):
    """The signature of ``validation``'s conclusion; None while it is open (or if its
    chain entry is missing, which wiki.audit.verify reports)."""
    if validation.is_open:
        return None
    row = (
        validation.history.exclude(outcome="")
        .order_by("history_date", "history_id")
        .values("history_id")
        .first()
    )
    if row is None:
        return None
    entry = (
        AuditEntry.objects.filter(
            chain__key=f"project:{validation.project_id}",
            table=Validation.history.model._meta.label,
            history_id=row["history_id"],
        )
        .values("digest")
        .first()
    )
    if entry is None:
        return None
    return Signature(validation.concluded_by_name, validation.concluded_at, entry["digest"])


@dataclass(frozen=True)
class Step:
    """One step of a finding's life: it was filed, or its status changed."""

    status: str
    label: str
    at: datetime
    username: str
    reason: str


def lifecycle(finding):
    """The steps of ``finding``'s life, oldest first, from its history rows."""
    rows = finding.history.order_by("history_date", "history_id").values(
        "status", "history_date", "history_username", "history_change_reason"
    )
    steps, previous = [], None
    for row in rows:
        if row["status"] != previous:
            steps.append(
                Step(
                    status=row["status"],
                    label=Finding.Status(row["status"]).label,
                    at=row["history_date"],
                    username=row["history_username"],
                    reason=row["history_change_reason"] or "",
                )
            )
            previous = row["status"]
    return steps


def overdue_counts(projects, today=None):
    """{project id: overdue findings} of ``projects`` (a queryset or ids), those with
    any, in one query."""
    rows = (
        Finding.objects.overdue(today)
        .filter(project__in=projects)
        .values("project")
        .annotate(count=Count("id"))
        .order_by()
    )
    return {row["project"]: row["count"] for row in rows}


def _then(model, project, until):
    """The validations or findings (``model``) of ``project`` as they stood at ``until``:
    the latest history row of each filed by then (never deleted through the services;
    a deletion row would mean it no longer existed), in one query."""
    rows = as_of.latest_rows(model.history, until, project_id=project.pk)
    return [row for row in rows if row.history_type != "-"]


def open_counts(project, until=None):
    """Unresolved findings of ``project`` by severity: {"high": n, "medium": n, "low": n}
    (at ``until``, if given)."""
    if until is not None:
        counts = dict.fromkeys(Finding.Severity.values, 0)
        for row in _then(Finding, project, until):
            if row.status in Finding.UNRESOLVED:
                counts[row.severity] += 1
        return counts
    return Finding.objects.filter(project=project).aggregate(
        **{
            severity: Count("id", filter=Q(severity=severity, status__in=Finding.UNRESOLVED))
            for severity in Finding.Severity.values
        }
    )


def _iso(value):
    """A time as ISO 8601 in UTC, a date as YYYY-MM-DD, as the audit report writes them."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat() if isinstance(value, datetime) else value.isoformat()


def signatures(project, until=None):
    """{validation id: the audit chain digest of its conclusion's history row}, of the
    validations concluded by ``until`` (None: now)."""
    first = {}
    rows = Validation.history.filter(project=project).exclude(outcome="")
    if until is not None:
        rows = rows.filter(history_date__lte=until)
    rows = rows.order_by("history_date", "history_id").values_list("id", "history_id")
    for validation_id, history_id in rows:
        first.setdefault(validation_id, history_id)
    digests = dict(
        AuditEntry.objects.filter(
            chain__key=f"project:{project.pk}",
            table=Validation.history.model._meta.label,
            history_id__in=list(first.values()),
        ).values_list("history_id", "digest")
    )
    return {pk: digests.get(history_id, "") for pk, history_id in first.items()}


def _lifecycles(project, until=None):
    """{finding id: [step, …]} of every finding of ``project``, from its history rows
    (those written by ``until``, if given)."""
    rows = Finding.history.filter(project=project)
    if until is not None:
        rows = rows.filter(history_date__lte=until)
    rows = rows.order_by("id", "history_date", "history_id").values(
        "id", "status", "history_date", "history_username", "history_change_reason"
    )
    steps, previous = {}, {}
    for row in rows:
        if previous.get(row["id"]) != row["status"]:
            previous[row["id"]] = row["status"]
            steps.setdefault(row["id"], []).append(
                {
                    "status": row["status"],
                    "at": _iso(row["history_date"]),
                    "by": row["history_username"],
                    "reason": row["history_change_reason"] or "",
                }
            )
    return steps


def _findings_then(project, validations, until):
    """The findings of ``project`` as their history rows say they stood at ``until``,
    each with its validation (of ``validations``, those of then) and page (slugs never
    change: today's), in two queries."""
    findings = []
    rows = sorted(_then(Finding, project, until), key=lambda row: row.number)
    slugs = dict(
        Page.objects.filter(pk__in={row.page_id for row in rows if row.page_id}).values_list(
            "pk", "slug"
        )
    )
    for row in rows:
        finding = row.instance  # unsaved: the finding as its row says
        finding.validation = validations[row.validation_id]
        finding.page = Page(pk=row.page_id, slug=slugs[row.page_id]) if row.page_id else None
        findings.append(finding)
    return findings


def report_section(project, until=None):
    """The audit report's "validation" section (wiki.reports): every validation with the
    revisions it pinned, its validator, outcome and signature, and every finding with what
    it is about, its life cycle (each status, who gave it, when) and its comments.

    With ``until``, as they stood then: the validations opened and the findings filed by
    then, each as its latest history row then says (a validation not concluded by then
    is open), the steps of each life cycle and the comments up to then."""
    digests = signatures(project, until)
    lifecycles = _lifecycles(project, until)
    comments = {}
    written = FindingComment.objects.filter(project=project)
    if until is not None:
        written = written.filter(created_at__lte=until)  # comments are never changed
    for comment in written.order_by("created_at", "id"):
        comments.setdefault(comment.finding_id, []).append(
            {"by": comment.author_name, "at": _iso(comment.created_at), "body": comment.body}
        )
    if until is None:
        opened = list(Validation.objects.filter(project=project).order_by("number"))
        filed = list(
            Finding.objects.filter(project=project)
            .select_related("validation", "page")
            .order_by("number")
        )
        today = timezone.localdate()
    else:
        opened = sorted(
            (row.instance for row in _then(Validation, project, until)), key=lambda v: v.number
        )
        filed = _findings_then(project, {v.pk: v for v in opened}, until)
        today = timezone.localdate(until)
    validations = [
        {
            "number": v.number,
            "title": v.title,
            "scope": v.scope,
            "pinned": v.pinned,
            "validator": v.validator_name,
            "opened_at": _iso(v.opened_at),
            "outcome": v.outcome,
            "conclusion": v.conclusion,
            "concluded_at": _iso(v.concluded_at),
            "concluded_by": v.concluded_by_name,
            "signature": digests.get(v.pk, ""),
        }
        for v in opened
    ]
    findings = [
        {
            "number": f.number,
            "validation": f.validation.number,
            "title": f.title,
            "description": f.description,
            "severity": f.severity,
            "page": f.page.slug if f.page else None,
            "field": f.field,
            "page_revision": f.page_revision,
            "record": f.record,
            "owner": f.owner_name,
            "due_date": _iso(f.due_date),
            "status": f.status,
            "overdue": f.is_unresolved and f.due_date is not None and f.due_date < today,
            "remediation": f.remediation,
            "risk_justification": f.risk_justification,
            "accepted_by": f.accepted_by_name,
            "closed_by": f.closed_by_name,
            "created_by": f.created_by_name,
            "created_at": _iso(f.created_at),
            "closed_at": _iso(f.closed_at),
            "lifecycle": lifecycles.get(f.pk, []),
            "comments": comments.get(f.pk, []),
        }
        for f in filed
    ]
    return {"validations": validations, "findings": findings}


def last_concluded(project, until=None):
    """The latest concluded validation of ``project`` as the inventory shows it, or None
    (the latest concluded by ``until``, if given)."""
    if until is None:
        found = project.validations.exclude(outcome="").order_by("-concluded_at", "-number")
        found = found.first()
    else:
        # Filtered here, not in the query: a filter beside the window would pick among
        # the rows before the window ranks them.
        concluded = [v for v in _then(Validation, project, until) if v.outcome]
        found = max(concluded, key=lambda v: (v.concluded_at, v.number), default=None)
    if found is None:
        return None
    return {
        "number": found.number,
        "outcome": found.outcome,
        "concluded_at": _iso(found.concluded_at),
        "validator": found.concluded_by_name,
    }
