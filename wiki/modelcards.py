"""Model cards out (issue 14, item 5): a project's documentation and records as a Hugging
Face model card (a README.md: YAML metadata, then Markdown) and as Model Card Toolkit JSON.

Both are made from one reading of the project (``read``, in one database snapshot): its
category pages, in the registry's order, each as a section of its structured fields and
Markdown body; the latest succeeded training run, whose metrics are the evaluation results,
whose dataset is the training data and whose model version is the card's version; and what
they were made from: the mlwiki version and time, each page's revision and the project's
audit chain head (entries and digest), as the audit report states it.

mlwiki has no licence field: the models it documents are internal. The Hub takes ``other``
with a ``license_name`` for a licence it does not list, and the toolkit's schema names
``proprietary`` for a model with none: both cards say ``proprietary``.
"""

import json
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from wiki import audit
from wiki.categories import TABLE
from wiki.doctree import FRONT_MATTER, pages, yaml_text
from wiki.models import ChainHead, Project, TrainingRun
from wiki.rendering import site_link
from wiki.reports import iso, revision_url
from wiki.services.exports import snapshot

HUGGINGFACE = "huggingface"
MODEL_CARD_TOOLKIT = "model-card-toolkit"
FORMATS = (HUGGINGFACE, MODEL_CARD_TOOLKIT)
# The newest schema the model-card-toolkit package ships (2.0.0).
MCT_SCHEMA_VERSION = "0.0.2"
LICENCE = "proprietary"
# The Hub's task for a model it has no pipeline for: mlwiki does not know the task.
HF_TASK = "other"


@dataclass(frozen=True)
class Source:
    """What a card is made from: one state of the project."""

    project: Project
    pages: list  # its category pages, in the registry's order
    run: TrainingRun | None  # the latest succeeded training run
    head: ChainHead
    made_at: datetime


def read(project):
    """The ``Source`` of ``project``'s cards, read in one snapshot of the database."""
    with snapshot():
        project = Project.objects.get(pk=project.pk)  # its name and tags as of the snapshot
        run = (
            TrainingRun.objects.filter(project=project, status=TrainingRun.Status.SUCCEEDED)
            .select_related("model_version")
            .order_by("-started_at", "-pk")
            .first()
        )
        category_pages = [page for page in pages(project) if page.category]
        return Source(project, category_pages, run, audit.head_for(project), timezone.now())


def huggingface(source):
    """The Hugging Face model card: a README.md whose metadata the Hub reads (licence,
    tags, datasets, metrics, and a model-index of the run's results) and whose text is the
    documentation."""
    project, run = source.project, source.run
    metadata = {
        "license": "other",
        "license_name": LICENCE,
        "tags": list(dict.fromkeys([*project.tags, "mlwiki"])),
    }
    if run is not None and run.dataset_name:
        metadata["datasets"] = [run.dataset_name]
    if run is not None and run.metrics:
        metadata["metrics"] = sorted(run.metrics)
        metadata["model-index"] = [{"name": project.slug, "results": [_hf_result(run, project)]}]
    metadata["mlwiki"] = provenance(source)
    return f"{FRONT_MATTER}{yaml_text(metadata)}{FRONT_MATTER}\n{markdown(source)}"


def _hf_result(run, project):
    """The run's metrics as one result of a model-index."""
    dataset = {"type": run.dataset_name or "unrecorded", "name": run.dataset_name or "unrecorded"}
    if run.dataset_version:
        dataset["revision"] = run.dataset_version
    return {
        "task": {"type": HF_TASK},
        "dataset": dataset,
        "metrics": [{"type": name, "value": value} for name, value in sorted(run.metrics.items())],
        "source": {"name": f"mlwiki training run {run.pk}", "url": _run_url(project, run)},
    }


def model_card_toolkit(source):
    """The Model Card Toolkit's model card (schema ``MCT_SCHEMA_VERSION``), as JSON values."""
    project, run = source.project, source.run
    fields = {page.category: page.fields for page in source.pages}
    overview, data, model = (fields.get(name, {}) for name in ("overview", "data", "model"))
    details = {
        "name": project.name,
        "overview": project.summary,
        "documentation": markdown(source),
        "owners": [{"name": project.owner_team}]
        + [{"name": f"{row['value']} ({row['key']})"} for row in overview.get("owners", [])],
        "licenses": [{"identifier": LICENCE}],
        "references": [{"reference": revision_url(project, page)} for page in source.pages],
        "citations": [{"style": "mlwiki", "citation": _made_from(source)}],
    }
    parameters = {"model_architecture": model.get("architecture")}
    metrics = []
    if run is not None:
        version = run.model_version
        details["version"] = _present(
            name=version.version,
            date=version.created_at.date().isoformat(),
            diff=version.description,
        )
        details["references"].append({"reference": _run_url(project, run)})
        if run.dataset_name:
            where = " at ".join(filter(None, [run.dataset_version, run.dataset_uri]))
            parameters["data"] = [_present(name=run.dataset_name, description=where)]
        metrics = [
            {"type": name, "value": json.dumps(value)}
            for name, value in sorted(run.metrics.items())
        ]
    stakeholders, risk = overview.get("stakeholders", []), overview.get("risk_level")
    considerations = _present(
        users=[{"description": f"{row['key']}: {row['value']}"} for row in stakeholders],
        use_cases=_described(overview.get("purpose")),
        limitations=_described(
            model.get("limitations"), data.get("limitations_bias"), overview.get("out_of_scope")
        ),
        ethical_considerations=[{"name": f"Risk level: {risk}"}] if risk else [],
    )
    return _present(
        schema_version=MCT_SCHEMA_VERSION,
        model_details=_present(**details),
        model_parameters=_present(**parameters),
        quantitative_analysis=_present(performance_metrics=metrics),
        considerations=considerations,
    )


def _present(**values):
    """``values`` without the empty ones (the schema takes absent keys, not empty ones)."""
    return {key: value for key, value in values.items() if value not in (None, "", [], {})}


def _described(*texts):
    return [{"description": text} for text in texts if text]


def provenance(source):
    """What the card was made from, as plain values: the mlwiki version and time, the
    project's audit chain head, each page's revision and the training run."""
    made_from = {
        "version": settings.APP_VERSION,
        "generated_at": iso(source.made_at),
        "project": source.project.slug,
        "audit_chain": {"entries": source.head.seq, "head": source.head.digest},
        "pages": {page.slug: page.revision for page in source.pages},
    }
    if source.run is not None:
        made_from["training_run"] = source.run.pk
    return made_from


def _made_from(source):
    """``provenance`` in a sentence."""
    project, head = source.project, source.head
    revisions = ", ".join(f"{page.slug} revision {page.revision}" for page in source.pages)
    run = f"; training run {source.run.pk}" if source.run else ""
    return (
        f"Made by mlwiki {settings.APP_VERSION} at {iso(source.made_at)} from project "
        f"{project.slug} at audit chain entry {head.seq} (head {head.digest}): "
        f"{revisions or 'no pages'}{run}."
    )


def markdown(source):
    """The card's text: the project, each category page as a section, the evaluation
    results, and what the card was made from."""
    project = source.project
    parts = [f"# {project.name}"]
    if project.summary:
        parts.append(project.summary)
    for page in source.pages:
        parts += _section(page)
    parts += ["## Evaluation results", _evaluation(source)]
    links = ", ".join(
        f"[{page.title} revision {page.revision}]({revision_url(project, page)})"
        for page in source.pages
    )
    parts += ["## Provenance", _made_from(source)]
    if links:
        parts.append(f"The pages: {links}.")
    return "\n\n".join(parts) + "\n"


def _section(page):
    """A page as Markdown: its title, each filled field under its label, then its body."""
    parts = [f"## {page.title}"]
    for spec in page.spec.fields_for(page.fields):
        value = page.fields.get(spec.name)
        if value:
            parts += [f"### {spec.label}", _table(value) if spec.kind == TABLE else value]
    if page.body.strip():
        parts.append(page.body.strip())
    if len(parts) == 1:
        parts.append("*Not documented yet.*")
    return parts


def _table(rows):
    return "\n".join(f"- {row['key']}: {row['value']}" for row in rows)


def _evaluation(source):
    run = source.run
    if run is None:
        return "*No succeeded training run has been recorded yet.*"
    dataset = ""
    if run.dataset_name:
        version = f" version {run.dataset_version}" if run.dataset_version else ""
        dataset = f", on dataset {run.dataset_name}{version}"
    lines = [
        f"From [training run {run.pk}]({_run_url(source.project, run)}) of model version "
        f"{run.model_version.version}{dataset}:",
    ]
    if run.metrics:
        lines += ["", "| Metric | Value |", "|---|---|"]
        lines += [f"| {_cell(name)} | {value!r} |" for name, value in sorted(run.metrics.items())]
    else:
        lines.append("\nIt recorded no metrics.")
    return "\n".join(lines)


def _cell(text):
    return " ".join(text.split()).replace("|", "\\|")


def _run_url(project, run):
    return site_link("frontend:run", project.slug, run.pk)
