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


# Learning curves and run comparison: several series on one chart, each told apart by its
# dash pattern and its marker shape (colour only helps), named in a legend and by a label
# at the end of its line; the data table under each chart holds exactly the points drawn.
DASHES = [
    "none",
    "8 4",
    "2 3",
    "10 3 2 3",
    "4 4",
    "12 3 2 3 2 3",
    "1 5",
    "6 2 6 6",
    "16 4",
    "3 2 8 2",
]
MARKERS = ["circle", "square", "triangle", "diamond", "cross", "plus",
           "dot", "block", "wedge", "gem"]  # fmt: skip
GLYPHS = {"circle": "○", "square": "□", "triangle": "△", "diamond": "◇", "cross": "×",
          "plus": "+", "dot": "●", "block": "■", "wedge": "▲", "gem": "◆"}  # fmt: skip
# Okabe and Ito's palette, told apart by most colour-blind readers; the first is the text's.
COLOURS = ["currentColor", "#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9",
           "#7f7f7f", "#b8860b", "#6a3d9a"]  # fmt: skip
MAX_SERIES = len(MARKERS)
MARKS_PER_SERIES = 8  # markers along a long line: enough to follow it, few enough to read
LABEL_GAP = 13  # least vertical distance between two end-of-line labels
CURVE_PAD_RIGHT = 120  # room for the labels at the lines' ends
LEFT = 64  # room for the values on the y axis (0.01795)
# The other markers as strokes of (dx, dy) in units of the marker's radius.
OUTLINES = {
    "triangle": [[(0, -1), (1, 1), (-1, 1)]],
    "diamond": [[(0, -1), (1, 0), (0, 1), (-1, 0)]],
    "cross": [[(-1, -1), (1, 1)], [(-1, 1), (1, -1)]],
    "plus": [[(-1, 0), (1, 0)], [(0, -1), (0, 1)]],
}


def series_style(index):
    """The dash pattern, marker shape, its glyph (for legends in HTML) and colour of the
    ``index``-th series of a chart."""
    marker = MARKERS[index % MAX_SERIES]
    return {"dash": DASHES[index % MAX_SERIES], "marker": marker, "glyph": GLYPHS[marker],
            "colour": COLOURS[index % MAX_SERIES]}  # fmt: skip


def _short(text, limit=24):
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _marker(shape, cx, cy, colour, tip):
    """A marker of ``shape`` centred on (cx, cy), its tooltip ``tip`` escaped here."""
    tip = f"<title>{escape(tip)}</title>"
    filled = shape in ("dot", "block", "wedge", "gem")
    paint = (
        f'fill="{colour}" stroke="{colour}"'
        if filled
        else f'fill="none" stroke="{colour}" stroke-width="1.5"'
    )
    r = 4.5
    if shape in ("circle", "dot"):
        return (
            f'<circle class="mark" cx="{cx:.1f}" cy="{cy:.1f}" r="{r - 0.5}" {paint}>{tip}</circle>'
        )
    if shape in ("square", "block"):
        return (
            f'<rect class="mark" x="{cx - r + 1:.1f}" y="{cy - r + 1:.1f}" width="{2 * r - 2:.1f}" '
            f'height="{2 * r - 2:.1f}" {paint}>{tip}</rect>'
        )
    strokes = OUTLINES[shape.replace("wedge", "triangle").replace("gem", "diamond")]
    d = " ".join(
        "M" + " L".join(f"{cx + r * dx:.1f},{cy + r * dy:.1f}" for dx, dy in stroke)
        for stroke in strokes
    )
    if shape in ("triangle", "diamond", "wedge", "gem"):
        d += " Z"
    return f'<path class="mark" d="{d}" {paint}>{tip}</path>'


def _legend(names, styles, top):
    """Legend rows (three entries a row) naming each series beside its line and marker;
    returns (svg parts, height taken)."""
    parts, column = [], (WIDTH - 2 * PAD) / 3
    for i, (name, style) in enumerate(zip(names, styles, strict=True)):
        x, y = PAD + column * (i % 3), top + 16 * (i // 3)
        parts.append(
            f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{x + 26:.1f}" y2="{y:.1f}" '
            f'stroke="{style["colour"]}" stroke-width="1.5" stroke-dasharray="{style["dash"]}"/>'
        )
        parts.append(_marker(style["marker"], x + 13, y, style["colour"], name))
        parts.append(_label(x + 32, y + 4, _short(name, 26), tip=name))
    return parts, 16 * ((len(names) + 2) // 3)


def _number(value):
    """A value in a data table: as posted, in full (the table is the chart's exact data).
    Numbers need no escaping (and escaping 10,000 of them is a measurable share of a run
    page's time)."""
    return str(value) if isinstance(value, (int, float)) else escape(value)


def _range(values):
    low, high = min(values), max(values)
    span = (high - low) or abs(high) or 1.0
    return low - span * 0.05, high + span * 0.05


def _table(caption, head, rows):
    """A data table (HTML, every cell escaped here) for a chart."""
    header = "".join(f'<th scope="col">{escape(h)}</th>' for h in head)
    body = "".join(f"<tr><td>{'</td><td>'.join(row)}</td></tr>" for row in rows)
    return mark_safe(  # noqa: S308  escaped above (cells by their callers, as _number does)
        f'<table class="list small"><caption>{escape(caption)}</caption>'
        f"<thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"
    )


def line_chart(title, series, x_label="step", y_label="value"):
    """Up to MAX_SERIES lines (learning curves) on one chart.

    ``series`` is a list of dicts: ``name``, ``points`` [(x, y), ...] in x order, and
    optionally ``total`` (points before downsampling), ``downsampled`` and ``style`` (the
    index of its look, by default its position: a run keeps its look on every chart of a
    comparison, even where another run has no such series). Returns the
    ``svg``, the data ``table`` (the points drawn, one row per x, one column per series),
    the ``notes`` saying how many of how many points each downsampled series shows, and
    the ``legend`` (name and style of each series); None when no series has a point.
    """
    series = [s for s in series[:MAX_SERIES] if s["points"]]
    if not series:
        return None
    styles = [series_style(s.get("style", i)) for i, s in enumerate(series)]
    legend, legend_h = _legend([s["name"] for s in series], styles, PAD - 18)
    top = PAD + legend_h
    height = HEIGHT + legend_h
    bottom, right = height - PAD, WIDTH - CURVE_PAD_RIGHT
    xs = [x for s in series for x, _ in s["points"]]
    x_low, x_high = min(xs), max(xs)
    y_low, y_high = _range([y for s in series for _, y in s["points"]])

    # x_of(x) = x_scale * x + x_shift, and the same for y: a run page draws 10,000 points.
    x_scale = (right - LEFT) / (x_high - x_low) if x_high > x_low else 0.0
    x_shift = LEFT - x_scale * x_low if x_high > x_low else (LEFT + right) / 2
    y_scale = -(bottom - top) / (y_high - y_low)
    y_shift = top - y_scale * y_high

    def x_of(x):
        return x_scale * x + x_shift

    def y_of(y):
        return y_scale * y + y_shift

    values = [y for s in series for _, y in s["points"]]
    parts = [
        _rule(LEFT, bottom, right, bottom),
        _rule(LEFT, top, LEFT, bottom),
        _label(LEFT - 6, y_of(max(values)) + 4, _fmt(max(values)), "end"),
        _label(LEFT - 6, y_of(min(values)) + 4, _fmt(min(values)), "end"),
        _label(LEFT, bottom + 16, _fmt(x_low)),
        _label((LEFT + right) / 2, bottom + 16, x_label, "middle"),
        _label(right, bottom + 16, _fmt(x_high), "end"),
        _label(LEFT, top - 6, y_label),
        *legend,
    ]
    ends = []
    for i, s in enumerate(series):
        style, points = styles[i], s["points"]
        line = " L".join(
            f"{x_scale * x + x_shift:.1f},{y_scale * y + y_shift:.1f}" for x, y in points
        )
        parts.append(
            f'<path class="series" d="M{line}" fill="none" stroke="{style["colour"]}" '
            f'stroke-width="1.5" stroke-dasharray="{style["dash"]}"><title>{escape(s["name"])}'
            "</title></path>"
        )
        # Markers spread along the line, shifted per series so that overlaid lines'
        # markers do not sit on one another.
        every = max(1, len(points) // MARKS_PER_SERIES)
        for x, y in points[(i * every // len(series)) % every :: every]:
            tip = f"{s['name']}: {x_label} {_fmt(x)}, {y_label} {_fmt(y)}"
            parts.append(_marker(style["marker"], x_of(x), y_of(y), style["colour"], tip))
        ends.append([y_of(points[-1][1]), x_of(points[-1][0]), s["name"], style])
    # Direct labels at the lines' ends, pushed apart so that none overlaps another.
    ends.sort(key=lambda end: end[0])
    for j in range(1, len(ends)):
        ends[j][0] = max(ends[j][0], ends[j - 1][0] + LABEL_GAP)
    for y, x, name, style in ends:
        parts.append(_label(x + 8, y + 4, f"{style['glyph']} {_short(name, 16)}", tip=name))

    notes = [
        f"{s['name']}: {len(s['points'])} of {s['total']} points shown, min/max per bucket"
        for s in series
        if s.get("downsampled")
    ]
    # The points are numbers (drawn above by arithmetic): nothing to escape. Values to six
    # significant digits, which is also 4 times faster than Python's shortest exact form
    # (a run page tables 10,000 of them).
    columns = {}
    for i, s in enumerate(series):
        for x, y in s["points"]:
            columns.setdefault(x, [""] * len(series))[i] = f"{y:.6g}"
    rows = [[str(x), *cells] for x, cells in sorted(columns.items())]
    caption = f"{title}: the points drawn (values to 6 significant digits)"
    table = _table(caption, [x_label, *(s["name"] for s in series)], rows)
    description = f"{y_label} against {x_label} for " + ", ".join(
        f"{s['name']} ({style['glyph']}, {len(s['points'])} points)"
        for s, style in zip(series, styles, strict=True)
    )
    return {
        "title": title,
        "svg": _svg(title, description, "".join(parts), height),
        "table": table,
        "notes": notes,
        "legend": [{"name": s["name"], **style} for s, style in zip(series, styles, strict=True)],
    }


def scatter_chart(title, points, x_label, y_label):
    """One dot per run: a parameter (``x``) against a metric (``y``).

    ``points`` is a list of dicts: ``name``, ``x`` (a number, or text: then the axis lists
    the values in order), ``y`` (a number) and ``style`` (the index of the run's series on
    the other charts, so a run keeps its marker). Each dot is labelled with its name.
    Returns ``svg`` and ``table``; None without points.
    """
    if not points:
        return None
    numeric = all(isinstance(p["x"], (int, float)) and not isinstance(p["x"], bool) for p in points)
    categories = [] if numeric else sorted({str(p["x"]) for p in points})
    positions = [p["x"] if numeric else categories.index(str(p["x"])) for p in points]
    x_low, x_high = _range(positions) if numeric else (-0.5, len(categories) - 0.5)
    y_low, y_high = _range([p["y"] for p in points])
    bottom, right = HEIGHT - PAD, WIDTH - CURVE_PAD_RIGHT

    def x_of(x):
        return LEFT + (right - LEFT) * (x - x_low) / (x_high - x_low)

    def y_of(y):
        return PAD + (bottom - PAD) * (y_high - y) / (y_high - y_low)

    ys = [p["y"] for p in points]
    parts = [
        _rule(LEFT, bottom, right, bottom),
        _rule(LEFT, PAD, LEFT, bottom),
        _label(LEFT - 6, y_of(max(ys)) + 4, _fmt(max(ys)), "end"),
        _label(LEFT - 6, y_of(min(ys)) + 4, _fmt(min(ys)), "end"),
        _label((LEFT + right) / 2, bottom + 30, x_label, "middle"),
        _label(LEFT, PAD - 10, y_label),
    ]
    if numeric:
        parts += [
            _label(x_of(min(positions)), bottom + 16, _fmt(min(positions)), "middle"),
            _label(x_of(max(positions)), bottom + 16, _fmt(max(positions)), "middle"),
        ]
    else:
        parts += [
            _label(x_of(i), bottom + 16, _short(c, 14), "middle", tip=c)
            for i, c in enumerate(categories)
        ]
    for p, position in zip(points, positions, strict=True):
        style = series_style(p["style"])
        cx, cy = x_of(position), y_of(p["y"])
        tip = f"{p['name']}: {x_label} {p['x']}, {y_label} {_fmt(p['y'])}"
        parts.append(_marker(style["marker"], cx, cy, style["colour"], tip))
        parts.append(_label(cx + 8, cy + 4, _short(p["name"], 16), tip=p["name"]))
    rows = [[escape(p["name"]), _number(p["x"]), _number(p["y"])] for p in points]
    description = f"{y_label} against {x_label}, one mark per run, each labelled."
    return {
        "title": title,
        "svg": _svg(title, description, "".join(parts)),
        "table": _table(f"{title}: the points drawn", ["run", x_label, y_label], rows),
    }
