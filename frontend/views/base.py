"""What the browser views share: the acting user, and the project or page a URL names,
found only if the user may see it."""

from dataclasses import dataclass

from django.http import Http404
from django.shortcuts import render

from wiki import access, as_of, caching
from wiki.access import EDIT, MAINTAIN, VIEW, rights
from wiki.health import is_stale, with_staleness
from wiki.history import Actor, Source
from wiki.models import Page, Project


def actor(request):
    return Actor(user=request.user, source=Source.WEB)


def project_for(request, slug, right=VIEW):
    """The project ``slug``: 404 if the user may not see it (or it does not exist, which
    looks the same), 403 if they see it but lack ``right``."""
    try:
        return access.project_for(request.user, slug, right)
    except Project.DoesNotExist:
        raise Http404("There is no such project.") from None


def page_for(request, project_slug, page_slug, right=VIEW):
    project = project_for(request, project_slug, right)
    page = Page.objects.filter(project=project, slug=page_slug).first()
    if page is None:
        raise Http404("There is no such page.")
    page.project = project
    return page


@dataclass(frozen=True)
class Tab:
    """A category page as its tab shows it: (filled, required) fields, and staleness."""

    pk: int
    category: str
    completeness: tuple
    stale: bool


def _tabs(project):
    pages = with_staleness(
        project.pages.categories().only("project", "category", "fields", "edited_at"),
        [project.spec],
    )
    # Plain tuples in the cache, not objects of a class that may change.
    return [(page.pk, page.category, page.completeness, is_stale(page)) for page in pages]


def project_context(request, project, active):
    """What the project header and its tabs need: the category pages with their scores
    (cached by the project's records and pages versions), and what the user may do here."""
    marks = caching.get_or_compute(caching.state_key(project, "tabs"), lambda: _tabs(project))
    by_category = {mark[1]: Tab(*mark) for mark in marks}
    tabs = [(c, by_category[c.name]) for c in project.spec.categories if c.name in by_category]
    granted = rights(request.user, project)
    return {
        "project": project,
        "tabs": tabs,
        "active": active,
        "can_edit": EDIT in granted,
        "can_maintain": MAINTAIN in granted,
    }


def moment_of(request, project):
    """The moment ``?as_of=`` names in ``project``'s history (wiki.as_of.parse), None
    without one; ValidationError (UnknownRecord) for a bad one: see as_of_refused."""
    value = request.GET.get(as_of.PARAMETER)
    return None if value is None else as_of.parse(project, value)


def as_of_refused(request, project, error):
    """The page that says why an ``as_of`` cannot be read: 404 for a record the project
    does not have, 400 for anything else."""
    context = project_context(request, project, "pages") | {
        "reasons": error.message_dict.get(as_of.PARAMETER, error.messages),
        "today_url": request.path,
    }
    status = 404 if isinstance(error, as_of.UnknownRecord) else 400
    return render(request, "frontend/as_of_refused.html", context, status=status)


def as_of_context(request, documentation, active):
    """project_context for the documentation as it stood at a moment (wiki.as_of): the
    project and tabs as they were then, nothing to write, and the banner's facts."""
    pages = documentation.category_pages
    tabs = [
        (c, Tab(pages[c.name].pk, c.name, pages[c.name].completeness, stale=False))
        for c in documentation.project.spec.categories  # the template then
        if c.name in pages
    ]
    return {
        "project": documentation.project,
        "tabs": tabs,
        "active": active,
        "can_edit": False,
        "can_maintain": False,
        "as_of": documentation.moment,
        "as_of_query": as_of.link_query(documentation.moment),
        "today_url": request.path,
    }


# Keyset pagination: a list newest first is paged by the key of its rows (a revision
# number, a chain's sequence number), ``?before=<key>`` for older rows and
# ``?after=<key>`` for newer ones. No OFFSET (the database would read every row skipped)
# and no COUNT (every row matching): a page costs the rows it shows, however long the
# list; and rows that arrive meanwhile never shift a page (none is shown twice or skipped).
CURSORS = ("before", "after", "page")


@dataclass(frozen=True)
class Pager:
    """The links of frontend/_keyset_pagination.html: query strings, "" for none."""

    newer: str = ""
    older: str = ""


def cursor(request, name):
    """The ``before`` or ``after`` key of the request: a positive integer, else None (a
    key that cannot be read is ignored: the list starts at its newest)."""
    try:
        value = int(request.GET.get(name, ""))
    except ValueError:
        return None
    return value if 0 < value < 2**63 else None


def pager(request, newer=None, older=None):
    """Links to the rows after ``newer`` and before ``older`` (the keys of the first and
    last rows shown; None: no such link), keeping the request's other parameters."""

    def link(name, key):
        if key is None:
            return ""
        query = request.GET.copy()
        for each in CURSORS:
            query.pop(each, None)
        query[name] = key
        return f"?{query.urlencode()}"

    return Pager(newer=link("after", newer), older=link("before", older))
