"""Records in the browser: the runs table, a deployment's page and a model version's page."""

import json

from django.core.exceptions import ValidationError
from django.db.models import OuterRef, Subquery
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_safe

from frontend.forms import RunsTableForm, apply_errors
from frontend.views.attachments import resolver
from frontend.views.base import project_context, project_for
from wiki import run_table
from wiki.models import Deployment, ModelVersion, RunValue
from wiki.rendering import render_markdown

# Runs listed on a model version's page; the runs table, filtered by the version, has all.
VERSION_RUNS_SHOWN = 50

# A value a run lacks, told apart from a parameter that is null.
MISSING = object()


@require_safe
def runs(request, project):
    """The project's training runs: filtered, sorted, with the columns one chooses."""
    project = project_for(request, project)
    form = RunsTableForm(request.GET)
    names = run_table.known_names(project)
    page = None
    if form.is_valid():
        try:
            page = run_table.page(
                project, form.filters(), form.cleaned_data["sort"], form.cleaned_data["cursor"]
            )
        except ValidationError as error:
            apply_errors(form, error)
    metrics, params = form.columns()
    if metrics is None:
        metrics, params = run_table.default_metrics(names), []
    sort = form.cleaned_data.get("sort") if form.is_valid() else None
    if sort is not None and sort.kind is not None:  # the values sorted by are shown
        shown = metrics if sort.kind == RunValue.Kind.METRIC else params
        if sort.name not in shown:
            shown.append(sort.name)
    rows = []
    for run in page.runs if page else []:
        cells = [(name, run.metrics.get(name, MISSING)) for name in metrics]
        cells += [(name, run.hyperparameters.get(name, MISSING)) for name in params]
        rows.append((run, [(name, value is not MISSING, value) for name, value in cells]))
    query = request.GET.copy()
    query.pop("cursor", None)
    context = project_context(request, project, "records") | {
        "form": form,
        "page": page,
        "rows": rows,
        "metrics": metrics,
        "params": params,
        "metric_choices": _choices(names[RunValue.Kind.METRIC], metrics),
        "param_choices": _choices(names[RunValue.Kind.PARAM], params),
        "query": query.urlencode(),
        "page_size": run_table.PAGE_SIZE,
    }
    return render(request, "frontend/runs.html", context, status=200 if page else 400)


def _choices(known, chosen):
    """Names to offer as columns and sort keys: those chosen, then the latest runs' ones."""
    return list(dict.fromkeys([*chosen, *(name for name, _ in known)]))


@require_safe
def deployment_detail(request, project, pk):
    """A deployment: its checks, configuration, reason and the timeline of its status."""
    project = project_for(request, project)
    deployment = get_object_or_404(
        Deployment.objects.select_related("model_version"), project=project, pk=pk
    )
    deployment.project = project  # for its attachments' addresses, without a query
    context = project_context(request, project, "records") | {
        "deployment": deployment,
        "timeline": _status_changes(deployment),
        "reason_html": render_markdown(deployment.reason, project.slug, resolver(deployment)),
        "config": json.dumps(deployment.config, indent=2, ensure_ascii=False),
        "failed_checks": sum(not check["passed"] for check in deployment.checks),
    }
    return render(request, "frontend/deployment.html", context)


def _status_changes(deployment):
    """The history rows in which the deployment's status changed, oldest first (the first
    is its recording)."""
    changes, status = [], None
    for row in deployment.history.order_by("history_date", "history_id"):
        if row.status != status:
            row.previous_status = status
            changes.append(row)
            status = row.status
    return changes


@require_safe
def model_version_detail(request, project, version):
    """A model version: what it is, the runs that trained it, where it is deployed."""
    project = project_for(request, project)
    model_version = get_object_or_404(ModelVersion, project=project, version=version)
    model_version.project = project  # for its attachments' addresses, without a query
    # What is live in an environment now: its latest deployment that succeeded (one
    # rolled back no longer counts, so the one before it is live again).
    live = Deployment.objects.filter(
        project=project, environment=OuterRef("environment"), status=Deployment.Status.SUCCEEDED
    ).order_by("-started_at", "-id")
    deployments = model_version.deployments.annotate(
        live_id=Subquery(live.values("pk")[:1]),
        live_version=Subquery(live.values("model_version__version")[:1]),
    ).order_by("environment", "-started_at", "-id")
    environments = {}
    for deployment in deployments:
        environments.setdefault(deployment.environment, []).append(deployment)
    training_runs = model_version.training_runs.order_by("-started_at", "-id")
    context = project_context(request, project, "records") | {
        "model_version": model_version,
        "description_html": render_markdown(
            model_version.description, project.slug, resolver(model_version)
        ),
        "training_runs": training_runs[:VERSION_RUNS_SHOWN],
        "runs_total": training_runs.count(),
        "environments": [
            {
                "name": name,
                "deployments": rows,
                "live": next((d for d in rows if d.pk == d.live_id), None),
                "live_version": rows[0].live_version,
            }
            for name, rows in sorted(environments.items())
        ],
    }
    return render(request, "frontend/model_version.html", context)
