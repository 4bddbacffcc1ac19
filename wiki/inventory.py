"""The model inventory and the periodic review: one row per project (an ML system is a
model of the inventory) with what a model-risk function asks of it.

A project's **risk tier** is the value of its template's risk-tier field (by default
overview.risk_level). Its template sets how many months may pass between reviews for each
tier (``review_months``). The **next review** falls that many months after the last
concluded validation, or after the project was created when it has never been validated:
a new model has one review period to get its first validation. A review is **due soon**
within REVIEW_SOON_DAYS of that date and **overdue** after it. A project with no tier set,
or whose tier the template gives no period, has no review date: the inventory says why.

``inventory`` answers for many projects in a fixed number of queries (the inventory page
and API, the dashboard, the digest and /metrics all use it).
"""

import calendar
import csv
import io
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import reduce
from operator import or_

from django.db.models import Count, F, OuterRef, Q, Subquery, Window
from django.db.models.functions import RowNumber
from django.http import HttpResponse
from django.utils import timezone

from wiki.audit import csv_cell
from wiki.models import Deployment, Finding, Page, Validation

REVIEW_SOON_DAYS = 30
# Deployments to these environments (any case) are what "the production version" means,
# here and in the audit report's inventory.
PRODUCTION_ENVIRONMENTS = ("production", "prod")

OVERDUE, DUE_SOON, SCHEDULED, NO_TIER = "overdue", "due_soon", "scheduled", "no_tier"
REVIEW_STATES = (OVERDUE, DUE_SOON, SCHEDULED, NO_TIER)
REVIEW_LABELS = {
    OVERDUE: "overdue", DUE_SOON: "due soon", SCHEDULED: "scheduled", NO_TIER: "no tier"
}  # fmt: skip
SEVERITIES = [s.value for s in Finding.Severity]


def add_months(day, months):
    """``day`` moved ``months`` later, on the last day of the month where it has no such
    day (31 January + 1 month is 28 or 29 February)."""
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass
class InventoryRow:
    """What the inventory says of one project."""

    project: object
    risk_tier: str
    status: str
    production_version: str | None
    last_validation: Validation | None
    open_findings: dict = field(default_factory=dict)  # severity -> unresolved findings
    overdue_findings: int = 0
    next_review: date | None = None
    review_state: str = NO_TIER

    @property
    def template(self):
        return self.project.spec.name

    @property
    def review_label(self):
        return REVIEW_LABELS[self.review_state]

    @property
    def review_months(self):
        """The months between reviews the template sets for the tier (None: none)."""
        return self.project.spec.review_months.get(self.risk_tier)

    @property
    def open_total(self):
        return sum(self.open_findings.values())


def _field(spec, fields, dotted):
    """The text of ``dotted`` ("category.field") in ``fields`` (category -> the fields of
    its page); "" when unset or not a text."""
    if not dotted:
        return ""
    category, name = dotted.split(".", 1)
    value = fields.get(category, {}).get(name, "")
    return value if isinstance(value, str) else ""


def risk_tier(spec, fields):
    """The risk tier its template's risk-tier field gives a project whose category pages
    hold ``fields`` (category -> fields)."""
    return _field(spec, fields, spec.risk_tier_field)


def next_review(spec, tier, created_at, concluded_at=None, outcome=""):
    """The date of the next review of a project of template ``spec`` and risk ``tier``
    created at ``created_at`` whose last validation was concluded at ``concluded_at`` with
    ``outcome``: the tier's period after that conclusion (after the creation while never
    validated), or, when that validation rejected the model, the day of the rejection (a
    rejected model is due again at once). None when the template sets no period for the
    tier."""
    months = spec.review_months.get(tier) if tier else None
    if not months:
        return None
    if outcome == Validation.Outcome.REJECTED:
        return timezone.localdate(concluded_at)
    return add_months(timezone.localdate(concluded_at or created_at), months)


def review_state(next_review, today):
    if next_review is None:
        return NO_TIER
    if next_review < today:
        return OVERDUE
    if next_review <= today + timedelta(days=REVIEW_SOON_DAYS):
        return DUE_SOON
    return SCHEDULED


def inventory(projects, today=None):
    """An InventoryRow for each of ``projects`` (a queryset), in a fixed number of queries."""
    today = today or timezone.localdate()
    last = Validation.objects.filter(project=OuterRef("pk"), concluded_at__isnull=False)
    last = last.order_by("-concluded_at", "-number").values("pk")[:1]
    projects = list(projects.annotate(last_validation_id=Subquery(last)))
    ids = [p.pk for p in projects]
    validations = Validation.objects.in_bulk(
        [p.last_validation_id for p in projects if p.last_validation_id]
    )
    # The fields the rows read (tier, status, purpose), by project then category.
    fields = {}
    pages = (
        Page.objects.categories()
        .filter(project__in=ids)
        .values_list("project_id", "category", "fields")
    )
    for project_id, category, values in pages.order_by():
        fields.setdefault(project_id, {})[category] = values
    unresolved = {}
    counts = (
        Finding.objects.unresolved().filter(project__in=ids).values_list("project_id", "severity")
    )
    for project_id, severity, number in counts.annotate(n=Count("pk")).order_by():
        unresolved.setdefault(project_id, {})[severity] = number
    overdue = dict(
        Finding.objects.overdue(today).filter(project__in=ids).values_list("project_id")
        .annotate(n=Count("pk")).order_by()
    )  # fmt: skip
    production = _production_versions(ids)
    rows = []
    for project in projects:
        spec, own = project.spec, fields.get(project.pk, {})
        tier = risk_tier(spec, own)
        validation = validations.get(project.last_validation_id)
        review = next_review(
            spec, tier, project.created_at,
            *((validation.concluded_at, validation.outcome) if validation else ()),
        )  # fmt: skip
        row = InventoryRow(
            project=project,
            risk_tier=tier,
            status=_field(spec, own, "overview.status"),
            production_version=production.get(project.pk),
            last_validation=validation,
            open_findings={s: unresolved.get(project.pk, {}).get(s, 0) for s in SEVERITIES},
            overdue_findings=overdue.get(project.pk, 0),
            next_review=review,
            review_state=review_state(review, today),
        )
        rows.append(row)
    return rows


def is_production(environment):
    """Whether a deployment to ``environment`` is one to production."""
    return environment.casefold() in PRODUCTION_ENVIRONMENTS


def in_production():
    """The deployments to production, as a filter (is_production in the database)."""
    return reduce(or_, (Q(environment__iexact=name) for name in PRODUCTION_ENVIRONMENTS))


def _production_versions(ids):
    """The model version live in production in each project: the latest succeeded
    deployment to a production environment."""
    rank = Window(
        RowNumber(),
        partition_by=[F("project_id")],
        order_by=[F("started_at").desc(), F("id").desc()],
    )
    live = (
        Deployment.objects.filter(project__in=ids, status=Deployment.Status.SUCCEEDED)
        .filter(in_production())
        .annotate(rank=rank)
        .filter(rank=1)
        .values_list("project_id", "model_version__version")
        .order_by()
    )
    return dict(live)


TIER_ORDER = {"high": 0, "medium": 1, "low": 2}
_FAR = date.max
# The inventory's orders: name -> (key, newest/most first).
SORTS = {
    "name": (lambda r: (r.project.name.lower(), r.project.slug), False),
    "tier": (
        lambda r: (TIER_ORDER.get(r.risk_tier, len(TIER_ORDER)), r.risk_tier, r.project.slug),
        False,
    ),
    "next_review": (lambda r: (r.next_review or _FAR, r.project.slug), False),
    "findings": (lambda r: (*(-r.open_findings[s] for s in SEVERITIES), r.project.slug), False),
    "validated": (
        lambda r: (
            r.last_validation.concluded_at.timestamp() if r.last_validation else 0,
            r.project.slug,
        ),
        True,
    ),
    "team": (lambda r: (r.project.owner_team.lower(), r.project.slug), False),
}
NEVER = "none"  # the outcome filter's value for projects never validated


def chosen(
    rows, *, tier=None, status=None, review=None, outcome=None, team=None, text=None, sort="name"
):
    """``rows`` that match every filter given, in the ``sort`` order (SORTS)."""

    def keep(row):
        validation = row.last_validation
        return (
            (tier is None or row.risk_tier == tier)
            and (status is None or row.status == status)
            and (review is None or row.review_state == review)
            and (outcome is None or (validation.outcome if validation else NEVER) == outcome)
            and (team is None or row.project.owner_team == team)
            and (
                text is None
                or text.casefold() in f"{row.project.name} {row.project.slug}".casefold()
            )
        )

    key, reverse = SORTS[sort]
    return sorted(filter(keep, rows), key=key, reverse=reverse)


CSV_HEADER = [
    "model_id", "name", "owner_team", "risk_tier", "template", "status", "production_version",
    "last_validation_outcome", "last_validation_date", "validator", "open_findings_high",
    "open_findings_medium", "open_findings_low", "overdue_findings", "next_review",
    "review_state",
]  # fmt: skip


def as_record(row):
    """``row`` as plain values, in CSV_HEADER's order (the API and the CSV say the same)."""
    validation = row.last_validation
    return {
        "model_id": row.project.slug,
        "name": row.project.name,
        "owner_team": row.project.owner_team,
        "risk_tier": row.risk_tier,
        "template": row.template,
        "status": row.status,
        "production_version": row.production_version or "",
        "last_validation_outcome": validation.outcome if validation else "",
        "last_validation_date": (
            timezone.localdate(validation.concluded_at).isoformat() if validation else ""
        ),
        "validator": validation.concluded_by_name if validation else "",
        **{f"open_findings_{s}": row.open_findings[s] for s in SEVERITIES},
        "overdue_findings": row.overdue_findings,
        "next_review": row.next_review.isoformat() if row.next_review else "",
        "review_state": row.review_state,
    }


def csv_response(rows):
    """The inventory as a CSV download."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    for row in rows:
        writer.writerow([csv_cell(value) for value in as_record(row).values()])
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="model-inventory.csv"'
    return response
