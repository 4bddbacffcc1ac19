"""Projects: the list, creation, settings, members, activity, records and the audit chain."""

from datetime import UTC, datetime

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from frontend.forms import (
    ActivityFilterForm,
    MemberForm,
    MlflowSyncForm,
    NotificationsForm,
    ProjectCreateForm,
    ProjectSettingsForm,
    TemplateChangeForm,
    apply_errors,
)
from frontend.views.base import CURSORS, actor, cursor, pager, project_context, project_for
from frontend.views.exports import EXPORTS_SHOWN
from wiki.access import MAINTAIN, may_create_projects, visible_projects
from wiki.audit import activity, activity_csv_response, describe, head_for, verify
from wiki.health import dashboard
from wiki.models import (
    ApiToken,
    Deployment,
    ExportJob,
    Membership,
    MlflowSync,
    ModelVersion,
    NotificationSettings,
    Page,
    TrainingRun,
)
from wiki.services import EditConflict
from wiki.services import mlflow as import_service
from wiki.services import notifications as notify
from wiki.services.members import remove_member, set_member
from wiki.services.pages import revision_of
from wiki.services.projects import create_project, update_project
from wiki.services.records import RecordConflict
from wiki.services.templates import PlanChanged, preview_upgrade, upgrade_project
from wiki.services.tokens import revoke_token
from wiki.summaries import count_per_version, lineage

PROJECTS_PER_PAGE = 50
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# ?sort= on the dashboard: (key, descending).
DASHBOARD_SORTS = {
    "attention": (lambda row: row.attention, False),
    "name": (lambda row: (row.project.name.lower(), row.project.slug), False),
    "documented": (lambda row: (row.completeness, row.project.name), False),
    "stale": (lambda row: (len(row.stale), -row.completeness), True),
    "activity": (lambda row: row.last_at or _EPOCH, True),
}
# The dashboard's columns: (the sort its header asks for, or "", label).
SORT_COLUMNS = [
    ("name", "Project"), ("documented", "Documented"), ("stale", "Stale pages"),
    ("", "Approved"), ("", "Model versions"), ("activity", "Last activity"),
]  # fmt: skip
ACTIVITY_PER_PAGE = 100
RECORDS_SHOWN = 50


@require_safe
def project_list(request):
    """The dashboard: every project the user may see with its documentation's health,
    the ones most in need of attention first (or sorted as asked)."""
    sort = request.GET.get("sort", "attention")
    if sort not in DASHBOARD_SORTS:
        sort = "attention"
    key, newest_first = DASHBOARD_SORTS[sort]
    rows = sorted(dashboard(visible_projects(request.user)), key=key, reverse=newest_first)
    page_obj = Paginator(rows, PROJECTS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "page_obj": page_obj, "sort": sort, "query": f"sort={sort}", "sort_columns": SORT_COLUMNS
    }  # fmt: skip
    return render(request, "frontend/project_list.html", context)


@require_http_methods(["GET", "HEAD", "POST"])
def project_create(request):
    if not may_create_projects(request.user):
        raise PermissionDenied
    form = ProjectCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            project = create_project(actor=actor(request), **form.cleaned_data)
        except ValidationError as e:
            apply_errors(form, e)
        else:
            messages.success(request, f"Created {project.name}. Start with its overview.")
            return redirect("frontend:page-edit", project.slug, "overview")
    return render(request, "frontend/project_create.html", {"form": form})


def conflict_row(form, conflict):
    """Keep the user's input and let a second, deliberate save replace the newer revision.

    Returns the history row that made the current revision (who saved it, when, why) for
    the template.
    """
    current = conflict.current
    data = form.data.copy()
    data["base_revision"] = current.revision
    form.data = data
    return revision_of(current, current.revision)


@require_http_methods(["GET", "HEAD", "POST"])
def project_settings(request, project):
    project = project_for(request, project, MAINTAIN)
    form = ProjectSettingsForm.for_project(project, request.POST or None)
    conflict = None
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        try:
            update_project(
                project,
                actor=actor(request),
                base_revision=data.pop("base_revision"),
                change_reason=data.pop("change_reason"),
                **data,
            )
        except EditConflict as e:
            conflict = conflict_row(form, e)
        except ValidationError as e:
            apply_errors(form, e)
        else:
            messages.success(request, "Project settings saved.")
            return redirect("frontend:project-detail", project.slug)
    context = project_context(request, project, "settings") | {
        "form": form, "conflict": conflict, "template": project.template,
    }  # fmt: skip
    return render(request, "frontend/project_settings.html", context)


@require_http_methods(["GET", "HEAD", "POST"])
def project_template(request, project):
    """Change the project's template (maintainers): choose a version (GET ?template=),
    see what the move would do, confirm it (POST). The confirmation carries the digest of
    the plan shown: if the pages changed since, so that the move would now do something
    else, nothing is saved and the new plan is shown to be confirmed again."""
    project = project_for(request, project, MAINTAIN)
    data = request.POST if request.method == "POST" else request.GET
    form = TemplateChangeForm(data if "template" in data else None)
    form.fields["template"].initial = project.template_id
    plan = None
    if form.is_bound and form.is_valid():
        chosen = form.cleaned_data["template"]
        try:
            if request.method == "POST":
                upgrade_project(
                    project, chosen, actor=actor(request),
                    reason=form.cleaned_data["change_reason"],
                    expected=form.cleaned_data["plan_digest"],  # "" (no preview): refused
                )  # fmt: skip
                messages.success(request, f"The project now follows the template {chosen}.")
                return redirect("frontend:project-settings", project.slug)
            plan = preview_upgrade(project, chosen)
        except PlanChanged as e:
            plan = e.plan
            form.add_error(None, str(e))
        except ValidationError as e:
            apply_errors(form, e)
    context = project_context(request, project, "settings") | {
        "form": form, "plan": plan, "current": project.template,
    }  # fmt: skip
    return render(request, "frontend/project_template.html", context)


def _project_tokens(project):
    """The tokens limited to this project (all-project tokens belong to their owners)."""
    return [
        token
        for token in ApiToken.objects.filter(all_projects=False).select_related("user")
        if project.slug in token.projects
    ]


@require_http_methods(["GET", "HEAD", "POST"])
def members(request, project):
    project = project_for(request, project, MAINTAIN)
    form = MemberForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            set_member(project, actor=actor(request), **form.cleaned_data)
        except ValidationError as e:
            apply_errors(form, e)
        except RecordConflict as e:
            form.add_error(None, str(e))
        else:
            messages.success(
                request, f"{form.cleaned_data['username']} is now {form.cleaned_data['role']}."
            )
            return redirect("frontend:members", project.slug)
    context = project_context(request, project, "members") | {
        "form": form,
        "memberships": project.memberships.select_related("user").order_by("user__username"),
        "tokens": _project_tokens(project),
    }
    return render(request, "frontend/members.html", context)


DELIVERIES_SHOWN = 50


@require_http_methods(["GET", "HEAD", "POST"])
def notifications(request, project):
    """Where the project's notifications go (maintainers), a test message, and the log."""
    project = project_for(request, project, MAINTAIN)
    current = notify.settings_of(project)
    initial = {name: getattr(current, name) for name in NotificationSettings.SETTINGS}
    form = NotificationsForm(request.POST or None, initial=initial)
    if request.method == "POST" and "test" in request.POST:
        sent = notify.announce_test(project, actor(request))
        if sent:
            messages.success(
                request, "A test message to the saved settings is on its way: see the log below."
            )
        else:
            messages.error(
                request,
                "Nothing to send it to: no webhook URL is saved, and e-mail is off or no "
                "maintainer has an e-mail address on their account.",
            )
        return redirect("frontend:notifications", project.slug)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        try:
            notify.configure(
                project, actor=actor(request), change_reason=data.pop("change_reason"), **data
            )
        except ValidationError as e:
            apply_errors(form, e)
        else:
            messages.success(request, "Notification settings saved.")
            return redirect("frontend:notifications", project.slug)
    context = project_context(request, project, "notifications") | {
        "form": form,
        "deliveries": project.deliveries.all()[:DELIVERIES_SHOWN],
    }
    return render(request, "frontend/notifications.html", context)


@require_http_methods(["GET", "HEAD", "POST"])
def mlflow_sync(request, project):
    """The project's sync from MLflow (maintainers): its settings, "Sync now", and how the
    last sync went (mlflow.js reads the page again while one runs, moving its progress bar)."""
    project = project_for(request, project, MAINTAIN)
    sync = MlflowSync.objects.filter(project=project).first()
    initial = {name: getattr(sync, name) for name in import_service.SYNC_SETTINGS} if sync else {}
    form = MlflowSyncForm(request.POST or None, initial=initial)
    if request.method == "POST" and "now" in request.POST:
        if sync is None:
            messages.error(request, "Save the sync's settings first.")
        elif import_service.request_sync(sync):
            messages.success(request, "The sync is queued; this page follows its progress.")
        else:
            messages.info(request, "A sync is queued or running already.")
        return redirect("frontend:mlflow-sync", project.slug)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        try:
            import_service.configure_sync(
                project, actor=actor(request), change_reason=data.pop("change_reason"), **data
            )
        except ValidationError as e:
            apply_errors(form, e)
        else:
            messages.success(request, "MLflow sync saved.")
            return redirect("frontend:mlflow-sync", project.slug)
    context = project_context(request, project, "mlflow") | {"form": form, "sync": sync}
    return render(request, "frontend/mlflow_sync.html", context)


@require_POST
def member_remove(request, project, pk):
    project = project_for(request, project, MAINTAIN)
    membership = get_object_or_404(Membership, project=project, pk=pk)
    try:
        remove_member(membership, actor=actor(request))
    except RecordConflict as e:
        messages.error(request, str(e))
    else:
        messages.success(request, f"{membership.user} is no longer a member.")
    return redirect("frontend:members", project.slug)


@require_POST
def project_token_revoke(request, project, pk):
    project = project_for(request, project, MAINTAIN)
    token = get_object_or_404(ApiToken, pk=pk)
    if token.all_projects or project.slug not in token.projects:
        raise PermissionDenied
    revoke_token(token, actor=actor(request))
    messages.success(request, f"Revoked {token.name} ({token.prefix}…).")
    return redirect("frontend:members", project.slug)


# Where the records page shows each kind: (model, anchor, how many it shows).
# Each record has a page of its own: (model, URL name, what the URL names it by).
RECORD_PAGES = {
    "modelversion": (ModelVersion, "frontend:model-version", "version"),
    "trainingrun": (TrainingRun, "frontend:run", "pk"),
    "deployment": (Deployment, "frontend:deployment", "pk"),
}


def _shown(model, project, ids, limit):
    """Those of ``ids`` that still exist and are among the ``limit`` newest of the project
    (the ones a list shows, so that a link to their row finds it)."""
    rows = model.objects.filter(project=project).values_list("pk", flat=True)
    return set(rows[:limit] if limit else rows.filter(pk__in=ids)) & set(ids)


def link_entries(project, entries, can_maintain):
    """Set ``entry.link`` on each activity entry: where what it is about can be seen, if
    it still exists and the user may see it (None otherwise). A few queries per page of
    entries, one per kind at most."""
    ids = {}
    for entry in entries:
        ids.setdefault(entry.kind, set()).add(entry.object_id)
    # A page's entry opens the revision it made (its history row knows the number).
    slugs = dict(
        Page.objects.filter(project=project, pk__in=ids.get("page", ())).values_list("pk", "slug")
    )
    revisions = dict(
        Page.history.filter(
            history_id__in=[e.history_id for e in entries if e.kind == "page"]
        ).values_list("history_id", "revision")
    )
    records = {
        kind: dict(model.objects.filter(project=project, pk__in=ids[kind]).values_list("pk", key))
        for kind, (model, _, key) in RECORD_PAGES.items()
        if kind in ids
    }
    exports = _shown(ExportJob, project, ids.get("exportjob", ()), EXPORTS_SHOWN)
    for entry in entries:
        entry.link = None
        if entry.kind == "page" and entry.object_id in slugs and entry.history_id in revisions:
            number = revisions[entry.history_id]
            entry.link = reverse(
                "frontend:revision", args=[project.slug, slugs[entry.object_id], number]
            )
        elif entry.kind == "project":
            entry.link = reverse("frontend:project-detail", args=[project.slug])
        elif entry.kind in RECORD_PAGES and entry.object_id in records[entry.kind]:
            name = RECORD_PAGES[entry.kind][1]
            entry.link = reverse(name, args=[project.slug, records[entry.kind][entry.object_id]])
        elif entry.kind == "exportjob" and entry.object_id in exports:
            url = reverse("frontend:exports", args=[project.slug])
            entry.link = f"{url}#export-{entry.object_id}"
        elif entry.kind == "membership" and can_maintain:
            entry.link = reverse("frontend:members", args=[project.slug])
        elif entry.kind == "notificationsettings" and can_maintain:
            entry.link = reverse("frontend:notifications", args=[project.slug])


@require_safe
def activity_log(request, project):
    project = project_for(request, project)
    form = ActivityFilterForm(request.GET or None)
    entries = activity(project, **form.filters())
    refused = form.is_bound and not form.is_valid()
    if refused:  # a filter that cannot be read selects nothing, rather than everything
        entries = entries.none()
    elif request.GET.get("format") == "csv":
        return activity_csv_response(project, entries)
    # Keyset-paginated by the chain's sequence number (frontend.views.base.pager).
    before, after = cursor(request, "before"), cursor(request, "after")
    if after is not None:
        shown = list(entries.filter(seq__gt=after).order_by("seq")[: ACTIVITY_PER_PAGE + 1])
        newer, older = len(shown) > ACTIVITY_PER_PAGE, True
        shown = shown[:ACTIVITY_PER_PAGE][::-1]
    else:
        if before is not None:
            entries = entries.filter(seq__lt=before)
        shown = list(entries[: ACTIVITY_PER_PAGE + 1])
        newer, older = before is not None, len(shown) > ACTIVITY_PER_PAGE
        shown = shown[:ACTIVITY_PER_PAGE]
    query = request.GET.copy()
    for name in CURSORS:
        query.pop(name, None)
    context = project_context(request, project, "activity")
    link_entries(project, shown, context["can_maintain"])
    context |= {
        "form": form,
        "entries": shown,
        "pager": pager(
            request,
            newer=shown[0].seq if newer and shown else None,
            older=shown[-1].seq if older and shown else None,
        ),
        "query": query.urlencode(),
    }
    return render(request, "frontend/activity.html", context, status=400 if refused else 200)


@require_safe
def records(request, project):
    project = project_for(request, project)
    context = project_context(request, project, "records") | {
        "lineage": lineage(project),
        "model_versions": ModelVersion.objects.filter(project=project).annotate(
            runs=count_per_version(TrainingRun), deploys=count_per_version(Deployment)
        ),
        "training_runs": TrainingRun.objects.filter(project=project).select_related(
            "model_version"
        )[:RECORDS_SHOWN],
        "deployments": Deployment.objects.filter(project=project).select_related("model_version")[
            :RECORDS_SHOWN
        ],
    }
    return render(request, "frontend/records.html", context)


@require_POST
def audit_verify(request, project):
    """Recompute the project's audit chain now (its verdict shows on the overview)."""
    project = project_for(request, project)
    verdict = verify(head_for(project))
    if verdict.ok and verdict.unchecked:
        messages.warning(
            request,
            f"The audit chain is intact: {verdict.entries} entries; but {verdict.unchecked}. "
            "Verify again once it answers.",
        )
    elif verdict.ok:
        messages.success(request, f"The audit chain is intact: {verdict.entries} entries.")
    else:
        messages.error(request, f"The audit chain is broken: {describe(verdict.first_bad)}.")
    return redirect("frontend:project-detail", project.slug)
