"""Pipelines drawn on the workflow page: a Kubeflow Pipelines spec (as the kfp 2.x
compiler writes it) or a small generic DAG, read into one normalized DAG.

A normalized DAG is plain JSON, the same whatever was posted::

    {"name": "churn-training", "source": "kfp", "schedule": "0 3 * * *",
     "inputs": ["learning_rate", "rows"],
     "tasks": [{"name": "train", "component": "comp-train", "inputs": ["data"],
                "outputs": ["model"], "after": ["extract"], "contains": []}, ...]}

Tasks are sorted by name and every list in them too, so two posts of the same pipeline
(keys reordered, comments changed, another kfp version's executors) give the same DAG and
the same ``digest``. ``after`` holds the tasks that must finish first: kfp's
``dependentTasks`` and the producers of the task's inputs. A kfp sub-DAG (a condition, a
loop, a nested pipeline) is one task whose ``contains`` names the tasks inside it.

Anything malformed is refused with a ValidationError naming where it is: the size, the
nesting, a reference to a task that does not exist, duplicate names, a cycle.
"""

import hashlib
import json

import yaml
from django.core.exceptions import ValidationError

from wiki.models.base import too_deep

# The API refuses larger bodies first (api.parsers); the limit is here too for any other
# caller. A compiled spec of a hundred steps is about 300 KB.
MAX_SPEC_CHARS = 1024 * 1024
MAX_DEPTH = 32
MAX_TASKS = 500
MAX_PORTS = 200  # inputs or outputs of one task
MAX_NAME = 200
GENERIC_KEYS = {"name", "nodes", "edges", "schedule"}
NODE_KEYS = {"name", "component", "inputs", "outputs"}


def _refuse(where, message):
    raise ValidationError({where: message})


class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing aliases (``*name``): a few lines of aliases can
    stand for billions of nodes once walked ("billion laughs"). The kfp compiler never
    writes one."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.constructor.ConstructorError(
                None, None, "aliases (*name) are not accepted", event.start_mark
            )
        return super().compose_node(parent, index)


def load_yaml(text):
    """The documents of a YAML text (the kfp compiler writes a second one, the platform
    spec, when a pipeline sets Kubernetes options), safely: no tags that build Python
    objects, no aliases, at most MAX_SPEC_CHARS and MAX_DEPTH levels."""
    if len(text) > MAX_SPEC_CHARS:
        _refuse("body", f"The spec is over {MAX_SPEC_CHARS // 1024} KiB.")
    try:
        # A SafeLoader (constructs plain data only) that also refuses aliases.
        documents = list(yaml.load_all(text, Loader=_NoAliasLoader))  # noqa: S506
    except RecursionError:
        _refuse("body", f"The YAML is nested more than {MAX_DEPTH} levels deep.")
    except yaml.YAMLError as error:
        _refuse("body", f"The body is not valid YAML: {' '.join(str(error).split())}")
    if any(too_deep(document, MAX_DEPTH) for document in documents):
        _refuse("body", f"The YAML is nested more than {MAX_DEPTH} levels deep.")
    return documents


def normalize(data, schedule=None):
    """The normalized DAG of posted ``data``: YAML documents (a list, from load_yaml), a
    kfp spec, or a generic DAG (an object with nodes and edges). ``schedule`` (a cron
    line or words) is given apart for a kfp spec, which carries none."""
    if isinstance(data, list):
        specs = [d for d in data if isinstance(d, dict) and ("root" in d or "pipelineInfo" in d)]
        if len(specs) != 1:
            found = "no pipeline spec" if not specs else f"{len(specs)} pipeline specs"
            _refuse(
                "body",
                f"The YAML holds {found}: post one file from the kfp compiler "
                "(with pipelineInfo and root).",
            )
        data = specs[0]
    if not isinstance(data, dict):
        _refuse("body", "Expected a kfp pipeline spec or an object with nodes and edges.")
    if "root" in data or "pipelineInfo" in data:
        dag = _from_kfp(data)
    else:
        dag = _from_generic(data)
        if schedule is not None and dag["schedule"]:
            _refuse("schedule", "Given both in the body and as a parameter: give it once.")
    if schedule is not None:
        dag["schedule"] = _text(schedule, "schedule", allow_empty=True)
    dag["tasks"] = _checked(dag["tasks"])
    return dag


def _text(value, where, allow_empty=False):
    if not isinstance(value, str):
        _refuse(where, "Must be text.")
    value = value.strip()
    if not value and not allow_empty:
        _refuse(where, "Must not be empty.")
    if len(value) > MAX_NAME:
        _refuse(where, f"At most {MAX_NAME} characters.")
    if not value.isprintable():
        _refuse(where, "Must not contain control characters.")
    return value


def _names(value, where):
    """A sorted list of distinct names."""
    if not isinstance(value, list):
        _refuse(where, "Must be a list of names.")
    if len(value) > MAX_PORTS:
        _refuse(where, f"At most {MAX_PORTS} names.")
    return sorted({_text(item, f"{where}[{i}]") for i, item in enumerate(value)})


def _mapping(data, key, where, required=True):
    value = data.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        _refuse(f"{where}.{key}" if where else key, "Missing, or not a mapping.")
    return value


def _from_kfp(spec):
    name = _text(_mapping(spec, "pipelineInfo", "").get("name"), "pipelineInfo.name")
    components = _mapping(spec, "components", "", required=False)
    root = _mapping(spec, "root", "")
    tasks = _kfp_tasks(_mapping(root, "dag", "root"), components, "root.dag")
    definitions = _mapping(root, "inputDefinitions", "root", required=False)
    inputs = _ports(definitions, "root.inputDefinitions")
    return {"name": name, "source": "kfp", "schedule": "", "inputs": inputs, "tasks": tasks}


def _ports(definitions, where):
    """The names a kfp input or output definition declares: parameters and artifacts."""
    names = []
    for kind in ("parameters", "artifacts"):
        names += list(_mapping(definitions, kind, where, required=False))
    return _names(names, where)


def _kfp_tasks(dag, components, where):
    tasks = _mapping(dag, "tasks", where)
    if not tasks or len(tasks) > MAX_TASKS:
        _refuse(f"{where}.tasks", f"Must hold 1 to {MAX_TASKS} tasks.")
    found = []
    for key, task in tasks.items():
        at = f"{where}.tasks.{key}"
        name = _text(key, at)
        if not isinstance(task, dict):
            _refuse(at, "Must be a mapping.")
        ref = _text(_mapping(task, "componentRef", at).get("name"), f"{at}.componentRef.name")
        component = components.get(ref)
        if not isinstance(component, dict):
            _refuse(f"{at}.componentRef.name", f"'{ref}' is not among the components.")
        after = task.get("dependentTasks", [])
        if not isinstance(after, list):
            _refuse(f"{at}.dependentTasks", "Must be a list of task names.")
        after = after + _producers(_mapping(task, "inputs", at, required=False), at)
        inner = component.get("dag")
        contains = []
        if isinstance(inner, dict):
            contains = list(_mapping(inner, "tasks", f"components.{ref}.dag"))
        found.append({
            "name": name,
            "component": ref,
            "inputs": _ports(_mapping(component, "inputDefinitions", ref, False), ref),
            "outputs": _ports(_mapping(component, "outputDefinitions", ref, False), ref),
            "after": _names(after, f"{at}.dependentTasks"),
            "contains": _names(contains, f"components.{ref}.dag.tasks"),
        })  # fmt: skip
    return found


def _producers(inputs, where):
    """The tasks whose outputs feed a kfp task's inputs (its data dependencies)."""
    producers = []
    wiring = (("parameters", "taskOutputParameter"), ("artifacts", "taskOutputArtifact"))
    for kind, source in wiring:
        for name, wire in _mapping(inputs, kind, f"{where}.inputs", required=False).items():
            if isinstance(wire, dict) and isinstance(wire.get(source), dict):
                producer = wire[source].get("producerTask")
                producers.append(_text(producer, f"{where}.inputs.{kind}.{name}.producerTask"))
    return producers


def _from_generic(body):
    unknown = sorted(set(body) - GENERIC_KEYS)
    if unknown:
        _refuse(unknown[0], f"Unknown key; a DAG has {', '.join(sorted(GENERIC_KEYS))}.")
    name = _text(body.get("name"), "name")
    nodes = body.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        _refuse("nodes", "Must be a list of at least one node.")
    if len(nodes) > MAX_TASKS:
        _refuse("nodes", f"At most {MAX_TASKS} nodes.")
    tasks = {}
    for i, node in enumerate(nodes):
        at = f"nodes[{i}]"
        if not isinstance(node, dict):
            _refuse(at, 'Must be an object such as {"name": "train"}.')
        unknown = sorted(set(node) - NODE_KEYS)
        if unknown:
            keys = ", ".join(sorted(NODE_KEYS))
            _refuse(f"{at}.{unknown[0]}", f"Unknown key; a node has {keys}.")
        task_name = _text(node.get("name"), f"{at}.name")
        if task_name in tasks:
            _refuse(f"{at}.name", f"'{task_name}' names another node already.")
        tasks[task_name] = {
            "name": task_name,
            "component": _text(node.get("component", task_name), f"{at}.component"),
            "inputs": _names(node.get("inputs", []), f"{at}.inputs"),
            "outputs": _names(node.get("outputs", []), f"{at}.outputs"),
            "after": [],
            "contains": [],
        }
    edges = body.get("edges", [])
    if not isinstance(edges, list):
        _refuse("edges", 'Must be a list of {"from": "a", "to": "b"}.')
    for i, edge in enumerate(edges):
        at = f"edges[{i}]"
        if not isinstance(edge, dict) or set(edge) != {"from", "to"}:
            _refuse(at, 'Must be {"from": "a", "to": "b"}.')
        start, end = _text(edge["from"], f"{at}.from"), _text(edge["to"], f"{at}.to")
        for key, node in (("from", start), ("to", end)):
            if node not in tasks:
                _refuse(f"{at}.{key}", f"'{node}' is not among the nodes.")
        tasks[end]["after"] = sorted(set(tasks[end]["after"]) | {start})
    schedule = body.get("schedule")
    schedule = "" if schedule is None else _text(schedule, "schedule", allow_empty=True)
    return {"name": name, "source": "generic", "schedule": schedule, "inputs": [],
            "tasks": list(tasks.values())}  # fmt: skip


def _checked(tasks):
    """``tasks`` sorted by name, once every name is unique, every task ``after`` names
    exists and they form no cycle."""
    by_name = {}
    for task in tasks:
        if task["name"] in by_name:
            _refuse(f"tasks.{task['name']}", "Two tasks have this name.")
        by_name[task["name"]] = task
    for task in tasks:
        for before in task["after"]:
            if before not in by_name:
                message = f"Runs after '{before}', which is not among the tasks."
                _refuse(f"tasks.{task['name']}", message)
    stages(tasks)  # refuses a cycle
    return sorted(tasks, key=lambda task: task["name"])


def stages(tasks):
    """{task name: stage}: 0 for a task that waits for none, else one more than the
    latest stage it waits for (the longest path to it). ValidationError naming a cycle."""
    waiting = {task["name"]: set(task["after"]) for task in tasks}
    followers = {name: [] for name in waiting}
    for name, before in waiting.items():
        for other in before:
            followers[other].append(name)
    ready = sorted(name for name, before in waiting.items() if not before)
    stage = dict.fromkeys(ready, 0)
    while ready:
        name = ready.pop()
        for follower in followers[name]:
            stage[follower] = max(stage.get(follower, 0), stage[name] + 1)
            waiting[follower].discard(name)
            if not waiting[follower]:
                ready.append(follower)
    if any(waiting.values()):
        _refuse("edges", f"The steps form a cycle: {' → '.join(_cycle(waiting))}.")
    return stage


def _cycle(waiting):
    """One cycle among the tasks still waiting once every task that could run has: each
    of them waits for another such task, so walking back from any one repeats."""
    name = min(name for name, before in waiting.items() if before)
    path = []
    while name not in path:
        path.append(name)
        name = min(waiting[name])
    cycle = path[path.index(name) :] + [name]
    return cycle[::-1]


def digest(dag):
    """SHA-256 of the DAG's canonical JSON: what a post is compared by."""
    canonical = json.dumps(dag, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


# What step_changes compares of a task, and what it calls each part.
TASK_PARTS = {"component": "component", "inputs": "inputs", "outputs": "outputs",
              "after": "dependencies", "contains": "tasks inside"}  # fmt: skip


def step_changes(old, new):
    """What changed from DAG ``old`` (None: nothing before) to ``new``: the tasks added,
    removed and changed (with the parts that changed), and the name, schedule or
    pipeline inputs if they changed (as [old, new])."""
    before = {t["name"]: t for t in (old or {}).get("tasks", [])}
    after = {t["name"]: t for t in new["tasks"]}
    changed = [
        {"name": name, "parts": [label for part, label in TASK_PARTS.items()
                                 if before[name].get(part) != task.get(part)]}
        for name, task in after.items()
        if name in before and before[name] != task
    ]  # fmt: skip
    changes = {
        "added": sorted(set(after) - set(before)),
        "removed": sorted(set(before) - set(after)),
        "changed": changed,
    }
    for key in ("name", "schedule", "inputs"):
        if old is not None and old.get(key) != new.get(key):
            changes[key] = [old.get(key), new.get(key)]
    return changes
