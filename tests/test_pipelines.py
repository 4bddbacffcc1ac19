"""Pipelines on the workflow page: a spec compiled by kfp (from PyPI, in .venv-kfp) or a
generic DAG, posted through the API or the CI client, drawn as SVG, kept as revisions."""

import json
import os
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from tests.factories import ProjectFactory, cli_actor, make_token
from tests.test_ci_client import run_client
from wiki.health import is_stale, stale_reasons, with_staleness
from wiki.models import AuditEntry, Page, Pipeline
from wiki.services.pages import edit_page

URL = "/api/v1/projects/churn/pages/workflow/pipeline/"
PAGE = "/projects/churn/workflow/"
KFP_PYTHON = Path(__file__).resolve().parent.parent / ".venv-kfp" / "bin" / "python"

# Four components wired by their artifacts and parameters, a condition (a sub-DAG) and a
# task that only runs after another (no data between them).
KFP_PIPELINE = """
import sys
from kfp import compiler, dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

@dsl.component(base_image="python:3.11")
def extract(rows: int, data: Output[Dataset]):
    pass

@dsl.component(base_image="python:3.11")
def train(data: Input[Dataset], learning_rate: float, model: Output[Model]) -> float:
    return 0.0

@dsl.component(base_image="python:3.11")
def evaluate(model: Input[Model], metrics: Output[Metrics]):
    pass

@dsl.component(base_image="python:3.11")
def notify(message: str):
    pass

@dsl.pipeline(name="churn-training")
def pipeline(rows: int = 1000, learning_rate: float = 0.1):
    data = extract(rows=rows)
    trained = train(data=data.outputs["data"], learning_rate=learning_rate)
    evaluated = evaluate(model=trained.outputs["model"])
    with dsl.If(trained.outputs["Output"] > 0.5):
        notify(message="good enough")
    notify(message="done").after(evaluated)

compiler.Compiler().compile(pipeline, sys.argv[1])
"""


@pytest.fixture(scope="module")
def kfp_spec(tmp_path_factory):
    """The YAML kfp compiles for KFP_PIPELINE (once per module: it takes a second)."""
    if not KFP_PYTHON.exists():
        reason = f"kfp is not installed in {KFP_PYTHON.parent.parent} (make test-deps)"
        if os.environ.get("KFP_TESTS") == "required":
            pytest.fail(f"{reason} (KFP_TESTS=required)", pytrace=False)
        pytest.skip(reason)
    directory = tmp_path_factory.mktemp("kfp")
    source, path = directory / "pipeline.py", directory / "pipeline.yaml"
    source.write_text(KFP_PIPELINE)  # kfp reads each component's source from its file
    compiled = subprocess.run(
        [str(KFP_PYTHON), str(source), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert compiled.returncode == 0, compiled.stderr
    return path.read_text()


@pytest.fixture
def writer(user, project):
    return make_token(user, scopes=["pages:write"], projects=["churn"], name="ci")[1]


def post(api, key, body, content_type="application/yaml", query=""):
    data = body if isinstance(body, str) else json.dumps(body)
    return api(key).post(URL + query, data, content_type=content_type)


def dag_svg(html):
    """The pipeline's SVG in a page, parsed."""
    found = re.search(r'<svg class="chart dag".*?</svg>', html, re.S)
    assert found, "no pipeline drawn"
    return ET.fromstring(found.group(0))  # noqa: S314  our own server's output


SVG = "{http://www.w3.org/2000/svg}"


def drawn_texts(svg):
    """Every line of text drawn, in full: a line too long for its box is cut short, and
    its tooltip (<title>) holds all of it."""
    lines = []
    for text in svg.iter(f"{SVG}text"):
        tip = text.find(f"{SVG}title")
        lines.append(tip.text if tip is not None else text.text)
    return lines


def tooltips(svg, element):
    return [
        title.text for node in svg.iter(f"{SVG}{element}") for title in node.iter(f"{SVG}title")
    ]


def ports(component, kind):
    definitions = component.get(kind, {})
    return sorted([*definitions.get("parameters", {}), *definitions.get("artifacts", {})])


def test_a_kfp_compiled_pipeline_posted_to_the_workflow_page_is_drawn_with_every_component(
    api, writer, kfp_spec, client_logged_in
):
    response = post(api, writer, kfp_spec)
    assert response.status_code == 201, response.json()
    spec = yaml.safe_load(kfp_spec)
    tasks, components = spec["root"]["dag"]["tasks"], spec["components"]
    assert len(tasks) >= 5
    svg = dag_svg(client_logged_in.get(PAGE).content.decode())
    assert svg.get("role") == "img" and svg.get("aria-label") == "Pipeline churn-training"
    texts = drawn_texts(svg)
    drawn = set()
    for name, task in tasks.items():
        component = components[task["componentRef"]["name"]]
        assert name in texts
        inner = component.get("dag", {}).get("tasks", {})
        if inner:  # a condition: its box names the tasks inside, and their components
            assert f"contains: {', '.join(sorted(inner))}" in texts
            drawn |= {t["componentRef"]["name"] for t in inner.values()}
        else:
            assert task["componentRef"]["name"] in texts
        assert f"in: {', '.join(ports(component, 'inputDefinitions')) or 'none'}" in texts
        assert f"out: {', '.join(ports(component, 'outputDefinitions')) or 'none'}" in texts
        drawn.add(task["componentRef"]["name"])
    assert drawn == set(components)
    # An arrow for each dependency the spec states.
    arrows = set(tooltips(svg, "path"))
    for name, task in tasks.items():
        for before in task.get("dependentTasks", []):
            assert f"{before} → {name}" in arrows
    assert "Schedule: none given" in texts


def test_a_kfp_spec_is_read_whatever_its_executors_say_and_with_a_platform_document(
    api, writer, kfp_spec
):
    first = post(api, writer, kfp_spec, query="?schedule=0%203%20*%20*%20*")
    assert first.status_code == 201
    assert first.json()["schedule"] == "0 3 * * *"
    assert first.json()["changes"]["added"] == sorted(
        yaml.safe_load(kfp_spec)["root"]["dag"]["tasks"]
    )
    # Another image and a platform spec (a second document) leave the steps as they were.
    other = kfp_spec.replace("python:3.11", "python:3.12") + (
        "---\nplatforms:\n  kubernetes:\n    deploymentSpec:\n      executors: {}\n"
    )
    assert other != kfp_spec
    again = post(api, writer, other, query="?schedule=0%203%20*%20*%20*")
    assert again.status_code == 200
    assert again.json()["revision"] == 1
    assert Pipeline.history.count() == 1


GENERIC = {
    "name": "nightly",
    "schedule": "every night at 03:00",
    "nodes": [
        {"name": "extract", "outputs": ["rows.parquet"]},
        {"name": "train", "component": "xgboost-trainer", "inputs": ["rows.parquet"],
         "outputs": ["model.bin"]},
        {"name": "publish", "inputs": ["model.bin"]},
    ],
    "edges": [{"from": "extract", "to": "train"}, {"from": "train", "to": "publish"}],
}  # fmt: skip


def test_a_generic_dag_is_drawn_with_its_schedule(api, writer, client_logged_in):
    response = post(api, writer, GENERIC, "application/json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["source"] == "generic"
    assert {t["name"]: t["after"] for t in body["tasks"]} == {
        "extract": [], "publish": ["train"], "train": ["extract"]
    }  # fmt: skip
    html = client_logged_in.get(PAGE).content.decode()
    svg = dag_svg(html)
    texts = drawn_texts(svg)
    assert {"extract", "train", "publish", "xgboost-trainer"} <= set(texts)
    assert "in: rows.parquet" in texts and "out: model.bin" in texts
    assert "Schedule: every night at 03:00" in texts
    # Left to right by stage: extract, then train, then publish.
    lefts = {
        group.find(f"{SVG}text").text: float(group.find(f"{SVG}rect").get("x"))
        for group in svg.iter(f"{SVG}g")
    }
    assert lefts["extract"] < lefts["train"] < lefts["publish"]
    assert api(writer).get(URL).json()["tasks"] == body["tasks"]


def test_text_from_the_spec_is_escaped(api, writer, client_logged_in):
    dag = {"name": "<script>x</script>", "nodes": [{"name": "a&b", "inputs": ['"><img>']}]}
    assert post(api, writer, dag, "application/json").status_code == 201
    html = client_logged_in.get(PAGE).content.decode()
    assert "<script>x</script>" not in html and "<img>" not in html
    svg = dag_svg(html)  # parses: every text was escaped, and reads back as posted
    assert svg.get("aria-label") == "Pipeline <script>x</script>"
    assert "a&b" in drawn_texts(svg) and 'in: "><img>' in drawn_texts(svg)


def cycle(n):
    names = [f"s{i}" for i in range(n)]
    edges = [{"from": a, "to": b} for a, b in zip(names, names[1:] + names[:1], strict=True)]
    return {"name": "loop", "nodes": [{"name": n} for n in [*names, "free"]], "edges": edges}


REFUSED = [
    ("application/yaml", "root: [unclosed", 400, "not valid YAML"),
    ("application/yaml", "a: &x [1]\nb: *x\n", 400, "aliases"),
    ("application/yaml", "!!python/object/apply:os.system ['true']", 400, "not valid YAML"),
    ("application/yaml", "just: a mapping\n", 400, "no pipeline spec"),
    ("application/yaml", "x:" + " [" * 40 + " ]" * 40, 400, "nested more than"),
    ("application/json", "{not json", 400, "not valid JSON"),
    ("application/json", {"name": "x", "nodes": []}, 400, "nodes: Must be a list of at least one"),
    ("application/json", cycle(3), 400, "cycle: s0 → s1 → s2 → s0"),
    ("application/json",
     {"name": "x", "nodes": [{"name": "a"}], "edges": [{"from": "a", "to": "b"}]}, 400,
     "edges[0].to: 'b' is not among the nodes"),
    ("application/json", {"name": "x", "nodes": [{"name": "a"}, {"name": "a"}]}, 400,
     "nodes[1].name: 'a' names another node already"),
    ("application/json", {"name": "x", "nodes": [{"name": "a"}], "sheduel": "daily"}, 400,
     "sheduel: Unknown key"),
    ("application/json", {"pipelineInfo": {"name": "p"}, "root": {"dag": {"tasks": {
        "a": {"componentRef": {"name": "comp-a"}}}}}}, 400,
     "root.dag.tasks.a.componentRef.name: 'comp-a' is not among the components"),
    ("application/json", {"pipelineInfo": {"name": "p"}, "components": {"comp-a": {}},
     "root": {"dag": {"tasks": {"a": {"componentRef": {"name": "comp-a"},
                                      "dependentTasks": ["ghost"]}}}}}, 400,
     "tasks.a: Runs after 'ghost', which is not among the tasks"),
    ("application/yaml", "# " + "x" * (1024 * 1024), 413, "over 1024 KiB"),
    ("text/plain", "extract -> train", 415, "application/json or application/yaml"),
]  # fmt: skip


@pytest.mark.parametrize(("content_type", "body", "status", "message"), REFUSED)
def test_bad_input_is_refused_saying_what_is_wrong_and_nothing_is_written(
    api, writer, project, content_type, body, status, message
):
    entries = AuditEntry.objects.count()
    response = post(api, writer, body, content_type)
    assert response.status_code == status, response.content
    assert message in response.json()["detail"]
    assert Pipeline.objects.count() == 0 and Pipeline.history.count() == 0
    assert AuditEntry.objects.count() == entries


def workflow(project):
    return with_staleness(Page.objects.filter(project=project, category="workflow")).get()


def changed_generic():
    dag = json.loads(json.dumps(GENERIC))
    dag["nodes"][1]["inputs"].append("params.yaml")  # train changes
    dag["nodes"] = [n for n in dag["nodes"] if n["name"] != "publish"]  # publish removed
    dag["nodes"].append({"name": "validate", "inputs": ["model.bin"]})  # validate added
    dag["edges"] = [{"from": "extract", "to": "train"}, {"from": "train", "to": "validate"}]
    return dag


def test_the_same_dag_twice_is_one_revision_and_a_changed_one_the_next_with_its_diff(
    api, writer, project, client_logged_in
):
    assert not is_stale(workflow(project))
    first = post(api, writer, GENERIC, "application/json")
    entries = AuditEntry.objects.count()
    reordered = GENERIC | {"nodes": GENERIC["nodes"][::-1], "edges": GENERIC["edges"][::-1]}
    again = post(api, writer, reordered, "application/json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["revision"] == 1 and again["ETag"] == '"1"'
    assert Pipeline.history.count() == 1 and AuditEntry.objects.count() == entries
    assert is_stale(workflow(project))
    assert "1 changed pipeline: nightly, revision 1" in stale_reasons(workflow(project))[0]

    page = Page.objects.get(project=project, category="workflow")
    edit_page(page, actor=cli_actor(), base_revision=None, change_reason="", body="Nightly.")
    assert not is_stale(workflow(project))

    changed = post(api, writer, changed_generic(), "application/json", "?change_reason=Validate")
    assert changed.status_code == 201
    assert changed.json()["revision"] == 2
    assert changed.json()["changes"] == {
        "added": ["validate"],
        "removed": ["publish"],
        "changed": [{"name": "train", "parts": ["inputs"]}],
    }
    assert is_stale(workflow(project))
    rows = Pipeline.history.order_by("history_id")
    assert [(r.revision, r.history_change_reason, r.history_token_name) for r in rows] == [
        (1, "Posted pipeline nightly (revision 1)", "ci"),
        (2, "Validate", "ci"),
    ]
    # Each revision is linked into the project's audit chain.
    kinds = AuditEntry.objects.filter(chain__project=project, kind="pipeline")
    assert sorted(kinds.values_list("history_id", flat=True)) == [r.history_id for r in rows]
    html = client_logged_in.get(PAGE).content.decode()
    assert "Records arrived since this page was last edited" in html
    assert "Added: validate" in html and "Removed: publish" in html
    assert "Changed train: inputs" in html
    assert "validate" in drawn_texts(dag_svg(html)) and "publish" not in drawn_texts(dag_svg(html))


def test_only_a_pages_write_token_of_the_project_may_post(api, user, project):
    _, reader = make_token(user, scopes=["read"], projects=["churn"])
    _, recorder = make_token(user, scopes=["records:write"], projects=["churn"])
    ProjectFactory(slug="other")
    _, elsewhere = make_token(user, scopes=["pages:write"], projects=["other"])
    for key in (reader, recorder, elsewhere):
        assert post(api, key, GENERIC, "application/json").status_code == 403
    assert post(api, None, GENERIC, "application/json").status_code == 401
    assert api(reader).get(URL).status_code == 404  # readable, and none posted yet
    assert Pipeline.objects.count() == 0


def test_the_page_says_how_to_post_a_pipeline_before_one_is(client_logged_in, project):
    html = client_logged_in.get(PAGE).content.decode()
    assert "No pipeline posted yet" in html
    assert "mlwiki_ci.py pipeline push" in html


@pytest.mark.django_db(transaction=True)
def test_the_ci_client_pushes_a_kfp_yaml_file_and_a_json_dag(live_server, user, project, tmp_path):
    _, key = make_token(user, scopes=["pages:write"], projects=["churn"])
    wiki = {"url": live_server.url, "token": key}
    # A kfp spec as written by the compiler (without kfp here: see the first test).
    spec = tmp_path / "pipeline.yml"
    spec.write_text(yaml.safe_dump({
        "pipelineInfo": {"name": "p"},
        "components": {"comp-a": {"outputDefinitions": {"artifacts": {"m": {}}}},
                       "comp-b": {"inputDefinitions": {"artifacts": {"m": {}}}}},
        "root": {"dag": {"tasks": {
            "a": {"componentRef": {"name": "comp-a"}},
            "b": {"componentRef": {"name": "comp-b"}, "inputs": {"artifacts": {"m": {
                "taskOutputArtifact": {"producerTask": "a", "outputArtifactKey": "m"}}}}},
        }}},
    }))  # fmt: skip
    pushed = run_client("pipeline", "push", str(spec), "--project", "churn", "--schedule",
                        "@daily", **wiki)  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr
    answer = json.loads(pushed.stdout)
    # b waits for a because it reads a's output, though the spec names no dependentTasks.
    assert [(t["name"], t["after"]) for t in answer["tasks"]] == [("a", []), ("b", ["a"])]
    assert (answer["source"], answer["schedule"]) == ("kfp", "@daily")
    dag = tmp_path / "dag.json"
    dag.write_text(json.dumps(GENERIC))
    pushed = run_client("pipeline", "push", str(dag), "--project", "churn", "--reason", "Moved",
                        **wiki)  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr
    assert Pipeline.objects.get().revision == 2
    assert Pipeline.history.latest("history_id").history_change_reason == "Moved"
    refused = run_client("pipeline", "push", str(spec).replace(".yml", ".txt"), "--project",
                         "churn", **wiki)  # fmt: skip
    assert refused.returncode == 2 and ".yaml or .yml" in refused.stderr
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(cycle(2)))
    refused = run_client("pipeline", "push", str(bad), "--project", "churn", **wiki)
    assert refused.returncode == 1 and "cycle" in refused.stderr
    assert Pipeline.objects.get().revision == 2
