"""Reading validations: the signature of a conclusion, a finding's life cycle, the overdue
findings the dashboard and the digest show, and the audit report's validation section
(wiki.services.validations writes)."""

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import Count, Q

from wiki.models import AuditEntry, Finding, FindingComment, Validation


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


def open_counts(project):
    """Unresolved findings of ``project`` by severity: {"high": n, "medium": n, "low": n}."""
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


def signatures(project):
    """{validation id: the audit chain digest of its conclusion's history row}."""
    first = {}
    rows = (
        Validation.history.filter(project=project)
        .exclude(outcome="")
        .order_by("history_date", "history_id")
        .values_list("id", "history_id")
    )
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


def _lifecycles(project):
    """{finding id: [step, …]} of every finding of ``project``, from its history rows."""
    rows = (
        Finding.history.filter(project=project)
        .order_by("id", "history_date", "history_id")
        .values("id", "status", "history_date", "history_username", "history_change_reason")
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


def report_section(project):
    """The audit report's "validation" section (wiki.reports): every validation with the
    revisions it pinned, its validator, outcome and signature, and every finding with what
    it is about, its life cycle (each status, who gave it, when) and its comments."""
    digests = signatures(project)
    lifecycles = _lifecycles(project)
    comments = {}
    for comment in FindingComment.objects.filter(project=project).order_by("created_at", "id"):
        comments.setdefault(comment.finding_id, []).append(
            {"by": comment.author_name, "at": _iso(comment.created_at), "body": comment.body}
        )
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
        for v in Validation.objects.filter(project=project).order_by("number")
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
            "overdue": f.is_overdue,
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
        for f in Finding.objects.filter(project=project)
        .select_related("validation", "page")
        .order_by("number")
    ]
    return {"validations": validations, "findings": findings}


def last_concluded(project):
    """The latest concluded validation of ``project`` as the inventory shows it, or None."""
    found = project.validations.exclude(outcome="").order_by("-concluded_at", "-number").first()
    if found is None:
        return None
    return {
        "number": found.number,
        "outcome": found.outcome,
        "concluded_at": _iso(found.concluded_at),
        "validator": found.concluded_by_name,
    }
