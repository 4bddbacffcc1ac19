"""A pipeline's DAG drawn on the server as SVG, for the workflow page.

Tasks are laid out left to right by stage (wiki.pipelines.stages: the longest chain of
tasks before each), one column per stage; within a column, a task sits near the tasks it
waits for, so few arrows cross. Each box names the task, its component (or, for a kfp
sub-DAG, the tasks inside it), its inputs and outputs; every box and arrow has a tooltip
(<title>) with the whole text, and the page lists the same tasks in a table. Text from the
spec is escaped (wiki.charts._label).
"""

from django.utils.html import escape
from django.utils.safestring import mark_safe

from wiki.charts import _label, _short
from wiki.pipelines import stages

BOX_W, BOX_H, GAP_X, GAP_Y = 190, 66, 60, 22
MARGIN, TOP = 16, 64  # TOP: room for the pipeline's name, schedule and inputs
CHARS = 29  # what fits on one line of a box at font size 11


def _listed(names):
    return ", ".join(names) if names else "none"


def layout(tasks):
    """{task name: (column, row)}: the column is the task's stage; within a column tasks
    are ordered by the mean row of the tasks they wait for, then by name."""
    stage = stages(tasks)
    by_name = {task["name"]: task for task in tasks}
    place = {}
    for column in range(max(stage.values()) + 1):
        names = [name for name in sorted(by_name) if stage[name] == column]

        def pull(name):
            before = [place[b][1] for b in by_name[name]["after"]]
            return (sum(before) / len(before) if before else 0, name)

        for row, name in enumerate(sorted(names, key=pull)):
            place[name] = (column, row)
    return place


def _box(task, x, y):
    second = f"contains: {_listed(task['contains'])}" if task["contains"] else task["component"]
    lines = [second, f"in: {_listed(task['inputs'])}", f"out: {_listed(task['outputs'])}"]
    tip = (
        f"{task['name']} ({task['component']}). Inputs: {_listed(task['inputs'])}. "
        f"Outputs: {_listed(task['outputs'])}. Runs after: {_listed(task['after'])}."
    )
    if task["contains"]:
        tip += f" Contains: {_listed(task['contains'])}."
    parts = [
        f'<g class="step"><rect x="{x:.1f}" y="{y:.1f}" width="{BOX_W}" height="{BOX_H}" rx="6" '
        f'fill="none" stroke="currentColor" stroke-width="1.5"><title>{escape(tip)}</title></rect>',
        _label(x + 8, y + 16, _short(task["name"], CHARS - 4), size=12, tip=task["name"]),
    ]
    for i, line in enumerate(lines):
        parts.append(_label(x + 8, y + 31 + 13 * i, _short(line, CHARS), size=10, tip=line))
    parts.append("</g>")
    return "".join(parts)


def _arrow(start, end):
    (x1, y1), (x2, y2) = start, end
    middle = (x1 + x2) / 2
    return (
        f'<path d="M{x1:.1f},{y1:.1f} C{middle:.1f},{y1:.1f} {middle:.1f},{y2:.1f} '
        f'{x2:.1f},{y2:.1f}" fill="none" stroke="currentColor" stroke-opacity="0.6" '
        'stroke-width="1.2" marker-end="url(#dag-arrow)">'
    )


def pipeline_chart(dag):
    """The SVG of a normalized DAG (wiki.pipelines), with the tasks by stage for the
    table beside it: {"svg", "tasks" (each with its "stage"), "stages"}."""
    tasks = dag["tasks"]
    place = layout(tasks)
    columns = max(column for column, _ in place.values()) + 1
    rows = max(row for _, row in place.values()) + 1
    width = max(640, 2 * MARGIN + columns * BOX_W + (columns - 1) * GAP_X)
    height = TOP + rows * BOX_H + (rows - 1) * GAP_Y + MARGIN

    def corner(name):
        column, row = place[name]
        return MARGIN + column * (BOX_W + GAP_X), TOP + row * (BOX_H + GAP_Y)

    schedule = dag["schedule"] or "none given"
    parts = [
        '<defs><marker id="dag-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 Z" '
        'fill="currentColor"/></marker></defs>',
        _label(MARGIN, 18, f"{dag['name']}: {len(tasks)} steps in {columns} stages", size=13),
        _label(MARGIN, 36, f"Schedule: {schedule}"),
        _label(MARGIN, 52, _short(f"Pipeline inputs: {_listed(dag['inputs'])}", 110)),
    ]
    for task in tasks:
        x2, y2 = corner(task["name"])
        for before in task["after"]:
            x1, y1 = corner(before)
            tip = f"{before} → {task['name']}"
            parts.append(
                _arrow((x1 + BOX_W, y1 + BOX_H / 2), (x2, y2 + BOX_H / 2))
                + f"<title>{escape(tip)}</title></path>"
            )
    parts += [_box(task, *corner(task["name"])) for task in tasks]
    title = f"Pipeline {dag['name']}"
    description = (
        f"{len(tasks)} steps, left to right in the order they run (a step to the right of "
        f"the arrows into it); schedule: {schedule}."
    )
    svg = mark_safe(  # noqa: S308  every text inside is escaped (escape, _label)
        f'<svg class="chart dag" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
        f"<desc>{escape(description)}</desc>{''.join(parts)}</svg>"
    )
    ordered = sorted(tasks, key=lambda task: (place[task["name"]], task["name"]))
    return {
        "svg": svg,
        "tasks": [task | {"stage": place[task["name"]][0] + 1} for task in ordered],
        "stages": columns,
    }
