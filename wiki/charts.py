"""Charts drawn on the server as SVG, from the records: a metric across training runs (on
the model page) and the deployments per environment over time (on the deployment page).

Shapes, not colours alone, carry the meaning (the production version's runs are squares;
a failed deployment a cross, a rolled back one a triangle), every mark has a tooltip
(<title>), and the page shows the same data as a table beside each chart. Text from
records (versions, environments) is escaped.
"""

from django.utils.html import escape
from django.utils.safestring import mark_safe

from wiki.models import Deployment, TrainingRun

RUNS_CHARTED = 50
DEPLOYMENTS_CHARTED = 100
WIDTH, HEIGHT, PAD = 640, 220, 44


def _fmt(value):
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _label(x, y, content, anchor="start", size=11, tip=""):
    """An SVG text (``content`` is escaped here), with an optional tooltip."""
    tip = f"<title>{escape(tip)}</title>" if tip else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" '
        f'fill="currentColor">{escape(content)}{tip}</text>'
    )


def _rule(x1, y1, x2, y2, opacity=0.4):
    return (
        f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
        f'stroke="currentColor" stroke-opacity="{opacity}"/>'
    )


def _svg(title, description, body, height=HEIGHT):
    return mark_safe(  # noqa: S308  every text inside was escaped by the callers
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title><desc>{escape(description)}</desc>{body}</svg>"
    )


def metric_trend(project, metric=None, production_version=None):
    """The chosen metric (default: auc if recorded, else the first by name) across the
    latest training runs, oldest first; None when no run recorded a metric."""
    runs = list(
        TrainingRun.objects.filter(project=project)
        .select_related("model_version")
        .only("id", "started_at", "metrics", "model_version__version")
        .order_by("-started_at", "-id")[:RUNS_CHARTED]
    )[::-1]
    names = sorted({name for run in runs for name in run.metrics})
    if not names:
        return None
    if metric not in names:
        metric = "auc" if "auc" in names else names[0]
    points = [
        {
            "run": run.id,
            "version": run.model_version.version,
            "started_at": run.started_at,
            "value": run.metrics[metric],
            "production": run.model_version.version == production_version,
        }
        for run in runs
        if isinstance(run.metrics.get(metric), (int, float))
    ]
    return {"metric": metric, "metrics": names, "points": points,
            "svg": _trend_svg(metric, points, production_version)}  # fmt: skip


def _trend_svg(metric, points, production_version):
    values = [p["value"] for p in points]
    low, high = min(values), max(values)
    span = (high - low) or abs(high) or 1.0
    low, high = low - span * 0.1, high + span * 0.1
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD

    def x(i):
        return PAD + (inner_w * i / (len(points) - 1) if len(points) > 1 else inner_w / 2)

    def y(value):
        return PAD + inner_h * (high - value) / (high - low)

    # The x axis is the runs' order, not time (a sweep of many runs in an hour would
    # pile up on a time axis): evenly spaced, and labelled with run numbers, not dates.
    bottom = HEIGHT - PAD
    parts = [
        _rule(PAD, bottom, WIDTH - PAD, bottom),
        _label(PAD - 6, y(max(values)) + 4, _fmt(max(values)), "end"),
        _label(PAD - 6, y(min(values)) + 4, _fmt(min(values)), "end"),
        _label(PAD, bottom + 16, f"run #{points[0]['run']}"),
        _label(WIDTH / 2, bottom + 16, "runs in the order they started, evenly spaced", "middle"),
        _label(WIDTH - PAD, bottom + 16, f"run #{points[-1]['run']}", "end"),
    ]
    line = " ".join(f"{x(i):.1f},{y(p['value']):.1f}" for i, p in enumerate(points))
    parts.append(
        f'<polyline points="{line}" fill="none" stroke="currentColor" stroke-width="1.5"/>'
    )
    for i, p in enumerate(points):
        tip = escape(
            f"Run #{p['run']} of {p['version']}, started {p['started_at']:%Y-%m-%d %H:%M}: "
            f"{metric} = {_fmt(p['value'])}"
        )
        cx, cy = x(i), y(p["value"])
        if p["production"]:
            parts.append(
                f'<rect x="{cx - 5:.1f}" y="{cy - 5:.1f}" width="10" height="10" '
                f'fill="currentColor"><title>{tip} (production version)</title></rect>'
            )
        else:
            parts.append(
                f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4" fill="none" stroke="currentColor" '
                f'stroke-width="1.5"><title>{tip}</title></circle>'
            )
    legend = "○ a training run"
    if production_version:
        legend += f"   ■ a run of {production_version}, in production"
    parts.append(
        f'<text x="{PAD}" y="{PAD - 14}" font-size="12" fill="currentColor">{escape(legend)}</text>'
    )
    description = (
        f"{metric} of the {len(points)} latest training runs in the order they started, "
        "oldest on the left, evenly spaced."
    )
    return _svg(f"{metric} across training runs", description, "".join(parts))


OUTCOME_MARKS = {
    "succeeded": "●",
    "failed": "✗",
    "rolled_back": "▲",
    "pending": "○",
    "in_progress": "◐",
}
LEGEND = "● succeeded   ✗ failed   ▲ rolled back   ○ pending   ◐ in progress"


def deployment_timeline(project):
    """The latest deployments on a time axis, one row per environment; None if none."""
    deployments = list(
        Deployment.objects.filter(project=project)
        .select_related("model_version")
        .only("id", "environment", "status", "started_at", "model_version__version")
        .order_by("-started_at", "-id")[:DEPLOYMENTS_CHARTED]
    )[::-1]
    if not deployments:
        return None
    environments = sorted({d.environment for d in deployments})
    rows = [
        {"id": d.id, "environment": d.environment, "status": d.status,
         "version": d.model_version.version, "started_at": d.started_at,
         "mark": OUTCOME_MARKS[d.status]}
        for d in deployments
    ]  # fmt: skip
    return {"environments": environments, "deployments": rows,
            "svg": _timeline_svg(environments, rows)}  # fmt: skip


def _timeline_svg(environments, rows):
    left, row_h = 110, 34
    height = PAD + row_h * len(environments) + 30
    first, last = rows[0]["started_at"], rows[-1]["started_at"]
    seconds = (last - first).total_seconds() or 1.0
    inner_w = WIDTH - left - PAD

    def x(moment):
        return left + inner_w * (moment - first).total_seconds() / seconds

    parts = [
        _label(left, height - 8, f"{first:%Y-%m-%d}"),
        _label(WIDTH - PAD, height - 8, f"{last:%Y-%m-%d}", "end"),
        _label(left, PAD - 20, LEGEND, size=12),
    ]
    lanes = {env: PAD + row_h * i + row_h / 2 for i, env in enumerate(environments)}
    for env, lane in lanes.items():
        parts.append(_label(left - 10, lane + 4, env, "end", size=12))
        parts.append(_rule(left, lane, WIDTH - PAD, lane, opacity=0.25))
    for row in rows:
        tip = f"#{row['id']} {row['version']} to {row['environment']}: {row['status']}"
        lane = lanes[row["environment"]]
        parts.append(_label(x(row["started_at"]), lane + 5, row["mark"], "middle", 14, tip))
    description = f"The {len(rows)} latest deployments by environment, oldest on the left."
    return _svg("Deployments over time", description, "".join(parts), height)
