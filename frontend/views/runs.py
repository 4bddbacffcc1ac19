"""A training run's page, and training runs compared side by side."""

import json
import re

from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_safe

from frontend.views.attachments import resolver
from frontend.views.base import project_context, project_for
from wiki.charts import line_chart, scatter_chart
from wiki.comparison import MAX_RUNS, MIN_RUNS, compare
from wiki.models import Deployment, TrainingRun
from wiki.rendering import render_markdown
from wiki.series import curves

# A run's model version's deployments shown in its lineage (the newest; the count says more).
LINEAGE_DEPLOYMENTS = 10
# The largest id a database's integer holds (SQLite refuses larger numbers outright).
LARGEST_ID = 2**63 - 1
# Curves drawn per run on the compare page (its charts hold up to MAX_RUNS lines each).
COMPARE_POINTS = 300


def commit_url(run):
    """Where the run's commit can be seen: the repository URL the pipeline posted in the
    run's ``environment`` (or ``tags``) as ``repository_url``, with ``/commit/<hash>``
    (GitHub, GitLab, Gitea and Bitbucket all answer it); None without both. Projects have
    no repository setting: the pipeline knows its repository (GITHUB_SERVER_URL and
    GITHUB_REPOSITORY, CI_PROJECT_URL), the wiki does not."""
    url = run.environment.get("repository_url") or run.tags.get("repository_url")
    if not run.git_commit or not isinstance(url, str):
        return None
    if not url.startswith(("https://", "http://")):
        return None  # never a javascript: or data: link
    return f"{url.rstrip('/')}/commit/{run.git_commit}"


def duration(run):
    """How long the run took, in words ("2 h 5 min 3 s"); None while it has not finished."""
    if run.finished_at is None:
        return None
    seconds = int((run.finished_at - run.started_at).total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{hours} h" if hours else "", f"{minutes} min" if minutes else "", f"{seconds} s"]
    return " ".join(p for p in parts if p) if seconds or minutes or hours else "0 s"


def _series(curve, **extra):
    return {"name": curve.metric, "points": curve.points, "total": curve.total,
            "downsampled": curve.downsampled} | extra  # fmt: skip


@require_safe
def run_detail(request, project, pk):
    project = project_for(request, project)
    run = get_object_or_404(
        TrainingRun.objects.select_related("model_version"), project=project, pk=pk
    )
    deployments = Deployment.objects.filter(model_version=run.model_version).order_by(
        "-started_at", "-id"
    )
    shown = list(deployments[:LINEAGE_DEPLOYMENTS])
    charts = [
        line_chart(curve.metric, [_series(curve)], y_label=curve.metric) for curve in curves(run)
    ]
    context = project_context(request, project, "records") | {
        "run": run,
        # The row its post wrote: who posted it, with which token, from where, in which request.
        "posted": run.history.order_by("history_id").first(),
        "duration": duration(run),
        "commit_url": commit_url(run),
        "deployments": shown,
        "deployments_total": (
            deployments.count() if len(shown) == LINEAGE_DEPLOYMENTS else len(shown)
        ),
        "charts": [chart for chart in charts if chart],
        # ![loss](attachment:loss.png) in the notes shows the run's own attachment.
        "notes_html": render_markdown(run.notes, project.slug, resolver(run)) if run.notes else "",
    }
    return render(request, "frontend/run_detail.html", context)


def _chosen_runs(request, project):
    """The runs named by the ``run`` parameters, in the order given (repeats ignored), or
    the reason they cannot be compared; 404 if one is not a run of ``project``."""
    ids = []
    for value in request.GET.getlist("run"):
        if not re.fullmatch(r"[0-9]{1,30}", value.strip()):
            return None, f"“{value}” is not a training run number."
        if int(value) > LARGEST_ID:  # no such run, and more than the database can compare
            raise Http404("There is no such training run.")
        if int(value) not in ids:
            ids.append(int(value))
    if not MIN_RUNS <= len(ids) <= MAX_RUNS:
        return (
            None,
            f"Choose {MIN_RUNS} to {MAX_RUNS} training runs to compare ({len(ids)} chosen).",
        )
    found = TrainingRun.objects.filter(project=project, pk__in=ids).select_related("model_version")
    by_id = {run.pk: run for run in found}
    if len(by_id) != len(ids):
        raise Http404("There is no such training run.")
    return [by_id[pk] for pk in ids], None


def _axis_value(value):
    """A parameter on the scatter's x axis: numbers as numbers, the rest as text (true,
    not Python's True)."""
    return json.dumps(value) if isinstance(value, bool) else value


@require_safe
def runs_compare(request, project):
    project = project_for(request, project)
    context = project_context(request, project, "records")
    runs, error = _chosen_runs(request, project)
    if error:
        return render(request, "frontend/runs_compare.html", context | {"error": error}, status=400)
    names = [f"run #{run.pk} ({run.model_version.version})" for run in runs]
    table = compare(runs)
    by_metric = {}
    for style, run in enumerate(runs):
        for curve in curves(run, max_points=COMPARE_POINTS):
            by_metric.setdefault(curve.metric, []).append(
                _series(curve, name=names[style], style=style)
            )
    charts = [
        line_chart(metric, series, y_label=metric) for metric, series in sorted(by_metric.items())
    ]

    params = [row["name"] for row in table["params"]]
    metrics = [row["name"] for row in table["metrics"]]
    differing = [row["name"] for row in table["params"] if row["differs"]]

    # By default the parameter that differs and most runs have (a point per run), and
    # the metric most runs have.
    def shared(name, values):
        return -sum(name in getattr(run, values) for run in runs)

    x = request.GET.get("x")
    x = (
        x
        if x in params
        else min(differing or params or [None], key=lambda n: shared(n, "hyperparameters"))
    )
    y = request.GET.get("y")
    y = y if y in metrics else min(metrics or [None], key=lambda n: shared(n, "metrics"))
    points = [
        {
            "name": names[style],
            "x": _axis_value(run.hyperparameters[x]),
            "y": run.metrics[y],
            "style": style,
        }
        for style, run in enumerate(runs)
        if run.hyperparameters.get(x) is not None and y in run.metrics
    ]
    scatter = scatter_chart(f"{y} against {x}", points, x, y) if x and y else None
    context |= {
        "runs": list(zip(runs, names, strict=True)),
        "run_ids": [run.pk for run in runs],
        "params": table["params"],
        "metrics": table["metrics"],
        "charts": [chart for chart in charts if chart],
        "param_names": params,
        "metric_names": metrics,
        "x": x,
        "y": y,
        "scatter": scatter,
    }
    return render(request, "frontend/runs_compare.html", context)
