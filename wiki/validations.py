"""Reading validations: the signature of a conclusion, a finding's life cycle, and the
overdue findings the dashboard and the digest show (wiki.services.validations writes)."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Q

from wiki.models import AuditEntry, Finding, Validation


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
