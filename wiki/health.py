"""Documentation health: which pages the records have overtaken.

A category page is stale when a record that concerns it arrived (was posted) after its
content last changed: a new model version or training run for the model page; a new or
changed deployment (it moved on: succeeded, failed, rolled back, got checks) for the
deployment and maintenance pages; a training run on a dataset version no earlier run
used, for the data page; a pipeline whose DAG changed (wiki.pipelines), for the workflow
page. Editing the page clears it.

``with_staleness`` answers for many pages in one query (the dashboard, the project tabs);
``stale_reasons`` says what arrived, for one page (its banner, the API); ``dashboard``
sums up each project's health for the home page.
"""

from dataclasses import dataclass

from django.db.models import (
    BooleanField,
    Case,
    Count,
    Exists,
    F,
    OuterRef,
    Subquery,
    Value,
    When,
    Window,
)
from django.db.models.functions import Coalesce, RowNumber
from django.utils import timezone

from wiki import inventory
from wiki.categories import missing_required
from wiki.doc_templates import spec_of
from wiki.models import (
    AuditEntry,
    Deployment,
    Finding,
    ModelVersion,
    Page,
    Pipeline,
    Project,
    Template,
    TrainingRun,
    Validation,
)

REASONS_SHOWN = 5


def _arrived(model, project, since, moment="created_at"):
    return model.objects.filter(project=project, **{f"{moment}__gt": since})


def _new_datasets(project, since):
    """Runs posted since that were the first to use their dataset version (so no run
    before used it). Asked as "is this run the first use": one probe of the (project,
    dataset, version, created_at) index per run, and the database stops at the first such
    run; "was it used before" made it sort every run since."""
    first_use = TrainingRun.objects.filter(
        project=OuterRef("project"),
        dataset_name=OuterRef("dataset_name"),
        dataset_version=OuterRef("dataset_version"),
    ).order_by("created_at")
    return (
        _arrived(TrainingRun, project, since)
        .exclude(dataset_name="")
        .filter(created_at=Subquery(first_use.values("created_at")[:1]))
    )


# The staleness rule, written once: for each question, the records of ``project`` that
# arrived ``since`` (a page's last edit) and concern it. ``with_staleness`` asks them of
# many pages at once (project and since are the outer page's columns), ``stale_reasons``
# of one page, to list them.
# A deployment concerns a page when it changed (moved on) since, a pipeline when its DAG
# changed (it is saved only then), the others when posted.
MOMENTS = {"new_deployments": "updated_at", "changed_pipeline": "updated_at"}
QUESTIONS = {
    "new_model_versions": lambda project, since: _arrived(ModelVersion, project, since),
    "new_training_runs": lambda project, since: _arrived(TrainingRun, project, since),
    "new_deployments": lambda project, since: _arrived(
        Deployment, project, since, MOMENTS["new_deployments"]
    ),
    "new_dataset_versions": _new_datasets,
    "changed_pipeline": lambda project, since: _arrived(
        Pipeline, project, since, MOMENTS["changed_pipeline"]
    ),
}


def concerns(page):
    """The questions that concern ``page``: its category's ``stale_on`` in its template."""
    return page.spec.stale_on if page.spec else ()


def with_staleness(pages, specs=None):
    """``pages`` annotated with what arrived since each one's last edit (the questions
    their categories' ``stale_on`` names in ``specs``, the templates of their projects;
    None: every loaded template).

    Each question is asked only of the pages it may concern: the database evaluates a
    CASE lazily, so the dataset question runs for data pages only, not for all six. A
    category that one template makes stale and another not is asked for both: is_stale
    reads each page's own template."""
    if specs is None:
        specs = [spec_of(pk) for pk in Template.objects.values_list("pk", flat=True)]
    outer = OuterRef("project"), OuterRef("edited_at")
    return pages.annotate(
        **{
            name: Case(
                When(
                    category__in={c for spec in specs for c in spec.stale_categories(name)},
                    then=Exists(question(*outer)),
                ),
                default=Value(False),
                output_field=BooleanField(),
            )
            for name, question in QUESTIONS.items()
        }
    )


def is_stale(page):
    """Whether ``page`` (annotated by ``with_staleness``) is behind its records."""
    return any(getattr(page, name) for name in concerns(page))


def _when(moment):
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _deployment(d):
    status = d.status.replace("_", " ")
    return f"#{d.pk} {d.model_version} to {d.environment}, {status} ({_when(d.updated_at)})"


# How stale_reasons lists what each question found: (what, how one reads).
LISTINGS = {
    "new_model_versions": (
        "new model version",
        lambda v: f"{v.version} ({_when(v.created_at)})",
    ),
    "new_training_runs": (
        "new training run",
        lambda r: f"#{r.pk} of {r.model_version} {r.status} ({_when(r.created_at)})",
    ),
    "new_dataset_versions": (
        "new dataset version",
        lambda r: (
            f"{r.dataset_name}@{r.dataset_version} first used by training run #{r.pk} "
            f"({_when(r.created_at)})"
        ),
    ),
    "new_deployments": ("new or changed deployment", _deployment),
    "changed_pipeline": (
        "changed pipeline",
        lambda p: f"{p.name}, revision {p.revision} ({_when(p.updated_at)})",
    ),
}


def stale_reasons(page):
    """What arrived since ``page``'s last edit that concerns it, newest first, as
    sentences (empty when it is up to date, and for pages no record concerns): '3 new
    deployments: #7 …; #6 …; and 1 more', the newest first, counted in the same query."""
    reasons = []
    for name in concerns(page):
        kind, describe = LISTINGS[name]
        moment = MOMENTS.get(name, "created_at")
        records = QUESTIONS[name](page.project_id, page.edited_at)
        if records.model in (TrainingRun, Deployment):
            records = records.select_related("model_version")
        newest = records.annotate(total=Window(Count("id"))).order_by(f"-{moment}", "-id")
        shown = list(newest[:REASONS_SHOWN])
        if shown:
            total = shown[0].total
            more = f"; and {total - len(shown)} more" if total > len(shown) else ""
            plural = "s" if total > 1 else ""
            listed = "; ".join(describe(record) for record in shown)
            reasons.append(f"{total} {kind}{plural}: {listed}{more}")
    return reasons


@dataclass
class ProjectHealth:
    """One project's line on the dashboard."""

    project: Project
    completeness: int  # percent of required fields filled
    missing: int  # required fields empty
    stale: list  # labels of the stale category pages
    approved: int  # category pages whose current revision is approved
    in_review: int
    pages: int
    latest_version: str | None
    environments: list  # (environment, model version) live now, by name
    last_at: object
    last_by: str
    overdue_findings: int = 0  # unresolved validation findings past their due date
    next_review: object = None  # the periodic review's date (wiki.inventory), if any
    review_state: str = inventory.NO_TIER

    @property
    def review_label(self):
        return inventory.REVIEW_LABELS[self.review_state]

    @property
    def attention(self):
        """Sort key, the most in need of attention first: overdue findings, an overdue
        review, incomplete, stale, unapproved."""
        return (
            -self.overdue_findings,
            self.review_state != inventory.OVERDUE,
            self.completeness,
            -len(self.stale),
            self.approved - self.pages,
            self.project.name,
        )


def dashboard(projects):
    """The health of each of ``projects`` (a queryset), in a fixed number of queries."""
    latest_version = ModelVersion.objects.filter(project=OuterRef("pk")).order_by(
        "-created_at", "-id"
    )
    # The chain's head knows its last number: one lookup of the (chain, seq) key, not a
    # sort of the project's whole chain.
    last_entry = AuditEntry.objects.filter(chain__project=OuterRef("pk"), seq=F("chain__seq"))
    overdue = (
        Finding.objects.overdue()
        .filter(project=OuterRef("pk"))
        .values("project")
        .annotate(count=Count("id"))
        .values("count")
    )
    concluded = Validation.objects.filter(project=OuterRef("pk"), concluded_at__isnull=False)
    concluded = concluded.order_by("-concluded_at", "-number")
    projects = list(
        projects.annotate(
            latest_version=Subquery(latest_version.values("version")[:1]),
            overdue_findings=Coalesce(Subquery(overdue[:1]), 0),
            last_concluded=Subquery(concluded.values("concluded_at")[:1]),
            last_outcome=Subquery(concluded.values("outcome")[:1]),
            last_at=Subquery(last_entry.values("at")[:1]),
            last_by=Subquery(last_entry.values("username")[:1]),
        )
    )
    ids = [p.pk for p in projects]
    pages = {}
    specs = {project.pk: project.spec for project in projects}
    chosen = with_staleness(Page.objects.categories().filter(project__in=ids), list(specs.values()))
    # Plain rows, not pages: building 6 model instances per project cost more than the query.
    columns = ("project_id", "category", "fields", "revision", "review_state",
               "approved_revision", *QUESTIONS)  # fmt: skip
    for page in chosen.values(*columns).order_by():
        spec = specs[page["project_id"]].category_or_unknown(page["category"])
        required = len(spec.required_fields)
        page["score"] = (required - len(missing_required(spec, page["fields"])), required)
        page["label"] = spec.label
        page["stale"] = any(page[name] for name in spec.stale_on)
        pages.setdefault(page["project_id"], []).append(page)
    # The version live in each environment: the latest succeeded deployment there.
    rank = Window(
        RowNumber(),
        partition_by=[F("project_id"), F("environment")],
        order_by=[F("started_at").desc(), F("id").desc()],
    )
    live = (
        Deployment.objects.filter(project__in=ids, status=Deployment.Status.SUCCEEDED)
        .annotate(rank=rank)
        .filter(rank=1)
        .values_list("project_id", "environment", "model_version__version")
        .order_by("project_id", "environment")
    )
    environments = {}
    for project_id, environment, version in live:
        environments.setdefault(project_id, []).append((environment, version))
    rows = []
    today = timezone.localdate()
    for project in projects:
        order = project.spec.order
        own = sorted(pages.get(project.pk, []), key=lambda p: order(p["category"]))
        filled = sum(p["score"][0] for p in own)
        required = sum(p["score"][1] for p in own)
        tier = inventory.risk_tier(project.spec, {p["category"]: p["fields"] for p in own})
        review = inventory.next_review(
            project.spec, tier, project.created_at, project.last_concluded, project.last_outcome
        )
        rows.append(
            ProjectHealth(
                project=project,
                completeness=round(100 * filled / required) if required else 100,
                missing=required - filled,
                stale=[p["label"] for p in own if p["stale"]],
                approved=sum(p["approved_revision"] == p["revision"] for p in own),
                in_review=sum(p["review_state"] == Page.ReviewState.IN_REVIEW for p in own),
                pages=len(own),
                latest_version=project.latest_version,
                environments=environments.get(project.pk, []),
                last_at=project.last_at,
                last_by=project.last_by or "",
                overdue_findings=project.overdue_findings,
                next_review=review,
                review_state=inventory.review_state(review, today),
            )
        )
    return rows
