"""Browser views: thin adapters that read the domain and call wiki/services to write."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_safe

from frontend.forms import (
    FreePageCreateForm,
    PageForm,
    ProjectCreateForm,
    ProjectSettingsForm,
    TokenForm,
    apply_errors,
)
from wiki.categories import CATEGORIES
from wiki.history import Actor, Source
from wiki.models import Deployment, ModelVersion, Page, Project, TrainingRun
from wiki.rendering import render_markdown_many, render_page, to_slug
from wiki.services import EditConflict
from wiki.services.pages import check_page_changes, create_free_page, edit_page
from wiki.services.projects import create_project, update_project
from wiki.services.tokens import create_token, revoke_token
from wiki.summaries import records_summary

PROJECTS_PER_PAGE = 50
REVISIONS_PER_PAGE = 50
RECORDS_SHOWN = 50


def _actor(request):
    return Actor(user=request.user, source=Source.WEB)


def _project_context(project, active):
    """What the project header and its tabs need: the category pages with their scores."""
    pages = project.pages.categories().only("project", "category", "fields")
    by_category = {page.category: page for page in pages}
    tabs = [(c, by_category[c.name]) for c in CATEGORIES if c.name in by_category]
    return {"project": project, "tabs": tabs, "active": active}


@require_safe
def project_list(request):
    projects = Project.objects.with_last_change().with_category_pages()
    page_obj = Paginator(projects, PROJECTS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "frontend/project_list.html", {"page_obj": page_obj})


@require_http_methods(["GET", "HEAD", "POST"])
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


@require_http_methods(["GET", "HEAD", "POST"])
def project_settings(request, project):
    project = get_object_or_404(Project, slug=project)
    form = ProjectSettingsForm.for_project(project, request.POST or None)
    conflict = None
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
        except EditConflict as e:
            conflict = _conflict(form, e)
        except ValidationError as e:
            apply_errors(form, e)
        else:
            messages.success(request, "Project settings saved.")
            return redirect("frontend:project-detail", project.slug)
    context = _project_context(project, "settings") | {"form": form, "conflict": conflict}
    return render(request, "frontend/project_settings.html", context)


def _conflict(form, conflict):
    """Keep the user's input and let a second, deliberate save replace the newer revision.

    Returns the latest revision's history row (who saved it, when, why) for the template.
    """
    current = conflict.current
    data = form.data.copy()
    data["base_revision"] = current.revision
    form.data = data
    return current.history.first()


def _get_page(project_slug, page_slug):
    return get_object_or_404(
        Page.objects.select_related("project"), project__slug=project_slug, slug=page_slug
    )


@require_safe
def project_detail(request, project):
    return page_detail(request, project, "overview")


@require_safe
def page_detail(request, project, page):
    found = Page.objects.select_related("project").filter(project__slug=project, slug=page)
    page_obj = found.first()
    if page_obj is None:
        return _missing_page(request, project, page)
    last = page_obj.history.only("history_date", "history_username").first()
    fields, body_html = render_page(page_obj.spec, page_obj.fields, page_obj.body, project)
    summary = records_summary(page_obj)
    if summary and "updates" in summary:
        reasons = render_markdown_many([u["reason"] for u in summary["updates"]], project)
        for update, reason_html in zip(summary["updates"], reasons, strict=True):
            update["reason_html"] = reason_html
    context = _project_context(page_obj.project, page_obj.category or "pages") | {
        "page": page_obj,
        "fields": fields,
        "body_html": body_html,
        "last": last,
        "summary": summary,
    }
    return render(request, "frontend/page_detail.html", context)


def _missing_page(request, project_slug, page_slug):
    """404 for a page that does not exist, offering to create it in an existing project."""
    project = get_object_or_404(Project, slug=project_slug)
    context = _project_context(project, "pages") | {"slug": to_slug(page_slug)}
    return render(request, "frontend/page_missing.html", context, status=404)


@require_http_methods(["GET", "HEAD", "POST"])
def page_edit(request, project, page):
    page = _get_page(project, page)
    previewing = "preview" in request.POST
    form = PageForm(page, request.POST or None, reason_required=not previewing)
    preview = conflict = None
    if request.method == "POST" and form.is_valid():
        if previewing:
            preview = _preview(page, form)
        else:
            try:
                saved = _save_page(request, page, form)
            except EditConflict as e:
                conflict = _conflict(form, e)
            else:
                if saved:
                    return redirect("frontend:page", saved.project.slug, saved.slug)
    context = _project_context(page.project, page.category or "pages") | {
        "page": page,
        "form": form,
        "preview": preview,
        "conflict": conflict,
    }
    return render(request, "frontend/page_edit.html", context)


def _preview(page, form):
    """What the page would look like with the submitted values, or None if they are invalid."""
    try:
        changes = check_page_changes(
            page, fields=form.field_values(), body=form.cleaned_data["body"]
        )
    except ValidationError as e:
        apply_errors(form, e)
        return None
    fields, body_html = render_page(
        page.spec, changes.get("fields", {}), changes["body"], page.project.slug
    )
    return {
        "title": form.cleaned_data.get("title", page.title),
        "fields": fields,
        "body_html": body_html,
    }


def _save_page(request, page, form):
    """Save the edit; returns the saved page, or None with the errors put on ``form``."""
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
    except ValidationError as e:
        apply_errors(form, e)
        return None
    if saved.revision == page.revision:
        messages.info(request, "Nothing changed, so no new revision was saved.")
    else:
        messages.success(request, f"Saved revision {saved.revision}.")
    return saved


@require_http_methods(["GET", "HEAD", "POST"])
def page_create(request, project):
    project = get_object_or_404(Project, slug=project)
    slug = to_slug(request.GET.get("slug", ""))
    initial = {"slug": slug, "title": slug.replace("-", " ").capitalize()}
    form = FreePageCreateForm(request.POST or None, initial=initial)
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


@require_safe
def page_list(request, project):
    project = get_object_or_404(Project, slug=project)
    pages = project.pages.free().only("project", "slug", "title", "updated_at").order_by("title")
    context = _project_context(project, "pages") | {"pages": pages}
    return render(request, "frontend/page_list.html", context)


@require_safe
def page_history(request, project, page):
    page = _get_page(project, page)
    revisions = page.history.only(
        "history_id", "revision", "history_date", "history_username", "history_source",
        "history_change_reason", "history_type", "history_token_name",
    )  # fmt: skip
    page_obj = Paginator(revisions, REVISIONS_PER_PAGE).get_page(request.GET.get("page"))
    context = _project_context(page.project, page.category or "pages") | {
        "page": page,
        "page_obj": page_obj,
    }
    return render(request, "frontend/page_history.html", context)


@require_safe
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


NEW_KEY = "mlwiki-new-token-key"


@require_http_methods(["GET", "HEAD", "POST"])
@never_cache
def tokens(request):
    """The user's API tokens. A new key is shown once, on the page after issuing it (kept
    in the session just until then), so reloading neither repeats nor re-issues it."""
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            _, key = create_token(actor=_actor(request), user=request.user, **form.cleaned_data)
        except ValidationError as e:
            apply_errors(form, e)
        else:
            request.session[NEW_KEY] = key
            return redirect("frontend:tokens")
    context = {
        "form": form,
        "key": request.session.pop(NEW_KEY, None),
        "tokens": request.user.api_tokens.all(),
    }
    return render(request, "frontend/tokens.html", context)


@require_http_methods(["POST"])
def token_revoke(request, pk):
    token = get_object_or_404(request.user.api_tokens, pk=pk)
    revoke_token(token, actor=_actor(request))
    messages.success(request, f"Revoked {token.name} ({token.prefix}…).")
    return redirect("frontend:tokens")
