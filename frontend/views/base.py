"""What the browser views share: the acting user, and the project or page a URL names,
found only if the user may see it."""

from django.http import Http404

from wiki import access
from wiki.access import EDIT, MAINTAIN, VIEW, rights
from wiki.categories import CATEGORIES
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


def project_context(request, project, active):
    """What the project header and its tabs need: the category pages with their scores,
    and what the user may do here."""
    pages = with_staleness(
        project.pages.categories().only("project", "category", "fields", "edited_at")
    )
    by_category = {page.category: page for page in pages}
    for page in by_category.values():
        page.stale = is_stale(page)
    tabs = [(c, by_category[c.name]) for c in CATEGORIES if c.name in by_category]
    granted = rights(request.user, project)
    return {
        "project": project,
        "tabs": tabs,
        "active": active,
        "can_edit": EDIT in granted,
        "can_maintain": MAINTAIN in granted,
    }
