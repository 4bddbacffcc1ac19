"""The documentation as it stood at a moment: what ``?as_of=`` reads.

An auditor asks "what did the documentation say when version 1.2.0 went to production?".
``parse`` reads the moment from an ``as_of`` value, and ``documentation`` returns the
project and each of its pages as the history rows (django-simple-history) say they stood
then: each page at the revision current then, with its approval state then.

``as_of`` is one of:

- an ISO 8601 date-time (``2025-06-01T14:30:00Z``; one without an offset is UTC);
- an ISO 8601 date (``2025-06-01``): the end of that day in UTC, so the day's changes count;
- ``deployment:<id>``: when that deployment of the project started (``started_at``, which
  never changes): the documentation the deployment shipped with;
- ``model-version:<version>``: when that model version was registered (its first
  history row: the chain's time of it, a moment after its ``created_at``).

A moment in the future, or before the project existed, is refused: there is no
documentation of it to show.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from urllib.parse import urlencode

from django.core.exceptions import ValidationError
from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from wiki.doc_templates import DEFAULT
from wiki.models import Deployment, ModelVersion, Page, Project, Template, TrainingRun

PARAMETER = "as_of"
MAX_LENGTH = 200  # longer is no moment: refused before it is read
HELP = (
    "An ISO 8601 date-time (UTC unless it has an offset), a date (the end of that day, UTC), "
    "deployment:<id> (when that deployment started) or model-version:<version> (when that "
    "version was registered)."
)


class UnknownRecord(ValidationError):
    """``as_of`` names a deployment or model version the project does not have: a 404."""


@dataclass(frozen=True)
class Moment:
    """A moment of a project's history, and the record that names it, if one does."""

    at: datetime
    value: str  # as a link carries it (?as_of=<value>)
    deployment: Deployment | None = None
    model_version: ModelVersion | None = None

    @property
    def when(self):
        """The moment as a reader is told it: 2025-06-01 14:30 UTC."""
        return self.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")

    @property
    def record(self):
        """What names the moment, in words, or "" for a time given as such."""
        if self.deployment is not None:
            d = self.deployment
            return f"deployment {d.pk} of {d.model_version.version} to {d.environment}"
        if self.model_version is not None:
            return f"model version {self.model_version.version} registered"
        return ""

    @property
    def label(self):
        """2025-06-01 14:30 UTC (deployment 12 of 1.2.0 to production)."""
        return f"{self.when} ({self.record})" if self.record else self.when


def _refuse(message):
    return ValidationError({PARAMETER: [message]})


def _time(value):
    """The moment an ISO date or date-time names (aware, UTC when it has no offset)."""
    try:
        if len(value) == 10:  # YYYY-MM-DD: the end of the day
            day = datetime.strptime(value, "%Y-%m-%d").date()  # noqa: DTZ007 - a date
            return datetime.combine(day, time.max, UTC)
        moment = datetime.fromisoformat(value)
        if timezone.is_naive(moment):
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):  # not a moment, or one out of datetime's range
        return None


def parse(project, value):
    """The Moment ``value`` (an ``as_of`` as given) names in ``project``'s history.

    ValidationError naming ``as_of`` for a value that is no moment, in the future or
    before the project existed; UnknownRecord for a deployment or model version that the
    project does not have."""
    if not isinstance(value, str) or not value.strip():
        raise _refuse(f"Empty: give a moment, or leave as_of out. {HELP}")
    value = value.strip()
    if len(value) > MAX_LENGTH or "\x00" in value:
        raise _refuse(f"Not a moment. {HELP}")
    kind, _, name = value.partition(":")
    if kind == "deployment" and name:
        # isdigit() alone passes "²", which int() refuses: ASCII digits only.
        if not (name.isascii() and name.isdigit()) or len(name) > 18:
            raise _refuse(f"'{name[:40]}' is not a deployment id (a number).")
        found = (
            Deployment.objects.select_related("model_version")
            .filter(project=project, pk=int(name))
            .first()
        )
        if found is None:
            raise UnknownRecord({PARAMETER: [f"{project.name} has no deployment {name}."]})
        moment = Moment(found.started_at, f"deployment:{found.pk}", deployment=found)
    elif kind == "model-version" and name:
        found = ModelVersion.objects.filter(project=project, version=name).first()
        if found is None:
            raise UnknownRecord(
                {PARAMETER: [f"{project.name} has no model version '{name[:100]}'."]}
            )
        # Registered when its first history row was written (what the chain says).
        first = found.history.order_by("history_date", "history_id").first()
        at = first.history_date if first is not None else found.created_at
        moment = Moment(at, f"model-version:{found.version}", model_version=found)
    else:
        at = _time(value)
        if at is None:
            raise _refuse(f"'{value[:40]}' is not a moment. {HELP}")
        moment = Moment(at, value)
    if moment.at > timezone.now():
        raise _refuse(
            f"{moment.when} is in the future: leave as_of out to read today's documentation."
        )
    if moment.at < project.created_at:
        created = project.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        raise _refuse(f"{project.name} did not exist yet on {moment.when} (created {created}).")
    return moment


@dataclass
class Documentation:
    """A project's documentation as it stood at ``moment``: the project and its pages
    rebuilt from their history rows (unsaved objects: never save one)."""

    moment: Moment
    # The project's history row then: its name, summary, owner, tags and template version
    # then (``project.spec`` is the template then).
    project_row: object
    project: Project
    pages: list = field(default_factory=list)  # Page objects, as they stood then

    def page(self, slug):
        """The page ``slug`` as it stood then, or None if it did not exist then."""
        return next((page for page in self.pages if page.slug == slug), None)

    @property
    def category_pages(self):
        return {page.category: page for page in self.pages if page.category}

    @property
    def free_pages(self):
        return sorted((page for page in self.pages if not page.category), key=lambda p: p.slug)


def latest_rows(history, at, **where):
    """The latest history row of each object matching ``where`` at or before ``at``, in
    one query (a window over the rows, which both PostgreSQL and SQLite run)."""
    rows = history.filter(history_date__lte=at, **where).annotate(
        latest=Window(
            RowNumber(),
            partition_by=[F("id")],
            order_by=[F("history_date").desc(), F("history_id").desc()],
        )
    )
    return rows.filter(latest=1)


def _rebuilt(model, row, **extra):
    """A ``model`` object with the values of its history ``row`` (columns the history
    leaves out get ``extra`` or their defaults)."""
    kept = {f.attname for f in type(row)._meta.concrete_fields}
    values = {
        f.attname: getattr(row, f.attname) for f in model._meta.concrete_fields if f.attname in kept
    }
    obj = model(**(values | extra))
    obj.history_row = row
    return obj


def documentation(project, moment, slug=None):
    """The Documentation of ``project`` at ``moment``: each page that existed then (one
    deleted since included, one created later absent) at its latest history row at or
    before the moment. ``slug`` limits it to that page. Two queries: the project's row
    and the pages' rows."""
    project_row = latest_rows(Project.history, moment.at, id=project.pk).first()
    if project_row is None:  # no history (never, through the services): as it is now
        then = project
    else:
        # Slugs never change; the caches' versions are kept from today's project.
        then = _rebuilt(
            Project, project_row,
            records_version=project.records_version, pages_version=project.pages_version,
        )  # fmt: skip
        if then.template_id is None:
            # A row from before templates: migration 0018 pinned every project to the
            # default template's first version, which holds the categories of then.
            then.template_id = Template.objects.values_list("pk", flat=True).get(
                slug=DEFAULT, version=1
            )
    where = {"project_id": project.pk} | ({"slug": slug} if slug is not None else {})
    pages = []
    for row in latest_rows(Page.history, moment.at, **where).order_by("title", "id"):
        if row.history_type == "-":  # deleted by then
            continue
        # edited_at is not in the history: the page's row last changed then.
        page = _rebuilt(Page, row, edited_at=row.updated_at)
        page.project = then
        pages.append(page)
    return Documentation(moment=moment, project_row=project_row, project=then, pages=pages)


@dataclass
class Records:
    """A project's records as they stood at a moment, each list in the order things
    happened: model versions by creation, training runs and deployments by start."""

    model_versions: list
    training_runs: list
    deployments: list


def records(project, moment):
    """The Records of ``project`` at ``moment``: each model version, training run and
    deployment recorded by then, as its latest history row then says (a deployment's
    status then), each run and deployment with its model version. Three queries."""

    def then(model):
        rows = latest_rows(model.history, moment.at, project_id=project.pk)
        return [_rebuilt(model, row) for row in rows if row.history_type != "-"]

    versions = {version.pk: version for version in then(ModelVersion)}
    runs, deployments = then(TrainingRun), then(Deployment)
    for record in (*runs, *deployments):
        record.model_version = versions[record.model_version_id]
    return Records(
        model_versions=sorted(versions.values(), key=lambda v: (v.created_at, v.pk)),
        training_runs=sorted(runs, key=lambda r: (r.started_at, r.pk)),
        deployments=sorted(deployments, key=lambda d: (d.started_at, d.pk)),
    )


def link_query(moment, elsewhere=False):
    """The query string that keeps ``moment`` in a link: ?as_of=deployment%3A12; in a
    link to another project (``elsewhere``) the moment as a time, since a record of this
    project names nothing there."""
    if moment is None:
        return ""
    return "?" + urlencode({PARAMETER: moment.at.isoformat() if elsewhere else moment.value})
