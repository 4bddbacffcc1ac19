"""Browser views: thin adapters that read the domain and call wiki/services to write."""

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Count, Prefetch
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from frontend.forms import (
    FreePageCreateForm,
    PageForm,
    ProjectCreateForm,
    ProjectSettingsForm,
    apply_errors,
)
from wiki.categories import CATEGORIES, validate_fields
from wiki.history import Actor, Source
from wiki.models import Deployment, ModelVersion, Page, Project, TrainingRun
from wiki.services import EditConflict
from wiki.services.pages import create_free_page, edit_page
from wiki.services.projects import create_project, update_project

PROJECTS_PER_PAGE = 50
REVISIONS_PER_PAGE = 50
RECORDS_SHOWN = 50


def _actor(request):
    return Actor(user=request.user, source=Source.WEB)


def _project_context(project, active):
    """What the project header and its tabs need: the category pages with their scores."""
    pages = {
        p.category: p for p in project.pages.categories().only("project", "category", "fields")
    }
    tabs = [(category, pages[category.name]) for category in CATEGORIES]
    return {"project": project, "tabs": tabs, "active": active}


@login_not_required
@never_cache
@require_GET
def healthz(request):
    """Liveness and database check for load balancers and container health checks."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return HttpResponse("ok", content_type="text/plain")


@require_GET
def project_list(request):
    category_pages = Page.objects.categories().only("project", "category", "fields")
    projects = Project.objects.with_last_change().prefetch_related(
        Prefetch("pages", queryset=category_pages, to_attr="category_pages")
    )
    page_obj = Paginator(projects, PROJECTS_PER_PAGE).get_page(request.GET.get("page"))
    for project in page_obj:
        filled = sum(p.completeness[0] for p in project.category_pages)
        required = sum(p.completeness[1] for p in project.category_pages)
        project.score = round(100 * filled / required) if required else 100
    return render(request, "frontend/project_list.html", {"page_obj": page_obj})


@require_http_methods(["GET", "POST"])
def project_create(request):
    form = ProjectCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            project = create_project(actor=_actor(request), **form.cleaned_data)
        except ValidationError as e:
            apply_errors(form, e)
        else:
            messages.success(request, f"Created {project.name}. Start with its overview.")
            return redirect("frontend:page-edit", project.slug, "overview")
    return render(request, "frontend/project_create.html", {"form": form})


@require_http_methods(["GET", "POST"])
def project_settings(request, project):
    project = get_object_or_404(Project, slug=project)
    form = ProjectSettingsForm.for_project(project, request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        try:
            update_project(
                project,
                actor=_actor(request),
                base_revision=data.pop("base_revision"),
                change_reason=data.pop("change_reason"),
                **data,
            )
        except EditConflict as conflict:
            _report_conflict(form, conflict)
        except ValidationError as e:
            apply_errors(form, e)
        else:
            messages.success(request, "Project settings saved.")
            return redirect("frontend:project-detail", project.slug)
    context = _project_context(project, "settings") | {"form": form}
    return render(request, "frontend/project_settings.html", context)


def _report_conflict(form, conflict):
    """Keep the user's input, explain the conflict, and let a second save go through."""
    current = conflict.current
    form.add_error(
        None,
        f"Someone else saved this while you were editing (it is now at revision "
        f"{current.revision}). Your text is kept below: compare it with the current "
        f"version (open it in another tab), then save again to replace it.",
    )
    data = form.data.copy()
    data["base_revision"] = current.revision
    form.data = data


def _get_page(project_slug, page_slug):
    return get_object_or_404(
        Page.objects.select_related("project"), project__slug=project_slug, slug=page_slug
    )


@require_GET
def project_detail(request, project):
    return page_detail(request, project, "overview")


@require_GET
def page_detail(request, project, page):
    page = _get_page(project, page)
    last = page.history.only("history_date", "history_username", "history_source").first()
    context = _project_context(page.project, page.category or "pages") | {
        "page": page,
        "fields": _display_fields(page.spec, page.fields),
        "last": last,
    }
    return render(request, "frontend/page_detail.html", context)


def _display_fields(spec, values):
    """(registry field, value) pairs of a category page, in registry order."""
    if spec is None:
        return []
    return [(field, values.get(field.name)) for field in spec.fields]


@require_http_methods(["GET", "POST"])
def page_edit(request, project, page):
    page = _get_page(project, page)
    form = PageForm(page, request.POST or None)
    preview = None
    if request.method == "POST" and form.is_valid():
        if "preview" in request.POST:
            preview = _preview(page, form)
        else:
            saved = _save_page(request, page, form)
            if saved:
                return redirect("frontend:page", saved.project.slug, saved.slug)
    context = _project_context(page.project, page.category or "pages") | {
        "page": page,
        "form": form,
        "preview": preview,
    }
    return render(request, "frontend/page_edit.html", context)


def _preview(page, form):
    """What the page would look like with the submitted values, or None if they are invalid."""
    try:
        values = validate_fields(page.spec, form.field_values()) if page.spec else {}
    except ValidationError as e:
        apply_errors(form, e)
        return None
    return {
        "title": form.cleaned_data.get("title", page.title),
        "fields": _display_fields(page.spec, values),
        "body": form.cleaned_data["body"],
    }


def _save_page(request, page, form):
    data = form.cleaned_data
    try:
        saved = edit_page(
            page,
            actor=_actor(request),
            base_revision=data["base_revision"],
            change_reason=data["change_reason"],
            fields=form.field_values(),
            body=data["body"],
            title=data.get("title"),
        )
    except EditConflict as conflict:
        _report_conflict(form, conflict)
        return None
    except ValidationError as e:
        apply_errors(form, e)
        return None
    if saved.revision == page.revision:
        messages.info(request, "Nothing changed, so no new revision was saved.")
    else:
        messages.success(request, f"Saved revision {saved.revision}.")
    return saved


@require_http_methods(["GET", "POST"])
def page_create(request, project):
    project = get_object_or_404(Project, slug=project)
    form = FreePageCreateForm(request.POST or None, initial={"slug": request.GET.get("slug", "")})
    if request.method == "POST" and form.is_valid():
        try:
            page = create_free_page(project, actor=_actor(request), **form.cleaned_data)
        except ValidationError as e:
            apply_errors(form, e)
        else:
            messages.success(request, f"Created page {page.title}.")
            return redirect("frontend:page", project.slug, page.slug)
    context = _project_context(project, "pages") | {"form": form}
    return render(request, "frontend/page_create.html", context)


@require_GET
def page_list(request, project):
    project = get_object_or_404(Project, slug=project)
    pages = project.pages.free().only("project", "slug", "title", "updated_at").order_by("title")
    context = _project_context(project, "pages") | {"pages": pages}
    return render(request, "frontend/page_list.html", context)


@require_GET
def page_history(request, project, page):
    page = _get_page(project, page)
    revisions = page.history.only(
        "history_id", "revision", "history_date", "history_username", "history_source",
        "history_change_reason", "history_type",
    )  # fmt: skip
    page_obj = Paginator(revisions, REVISIONS_PER_PAGE).get_page(request.GET.get("page"))
    context = _project_context(page.project, page.category or "pages") | {
        "page": page,
        "page_obj": page_obj,
    }
    return render(request, "frontend/page_history.html", context)


@require_GET
def records(request, project):
    project = get_object_or_404(Project, slug=project)
    context = _project_context(project, "records") | {
        "model_versions": ModelVersion.objects.filter(project=project).annotate(
            runs=Count("training_runs", distinct=True),
            deploys=Count("deployments", distinct=True),
        ),
        "training_runs": TrainingRun.objects.filter(project=project).select_related(
            "model_version"
        )[:RECORDS_SHOWN],
        "deployments": Deployment.objects.filter(project=project).select_related("model_version")[
            :RECORDS_SHOWN
        ],
    }
    return render(request, "frontend/records.html", context)
