"""A first draft of a page's empty fields from what the records know (issue 14, item 4).

What H2O AutoDoc writes from a fitted model, written here from what pipelines posted: the
latest training run's hyperparameters, training algorithm and evaluation metrics, the
datasets and splits the runs name, the latest successful deployment's environment and
configuration. A draft is only a proposal: the edit form shows it for a person to read
and change, nothing is saved without them, and the revision they save says it started
from a draft (frontend.views.pages.page_edit).
"""

import functools
import json

from wiki.categories import (
    MARKDOWN_MAX_LENGTH,
    TABLE,
    TABLE_CELL_MAX_LENGTH,
    TABLE_MAX_ROWS,
    TEXT,
    TEXT_MAX_LENGTH,
)
from wiki.models import Deployment, TrainingRun

# Hyperparameters and tags that name the training algorithm (scikit-learn, XGBoost,
# LightGBM and MLflow's autologging use these), and those that tell the data's split.
ALGORITHM_NAMES = {
    "algorithm", "training_algorithm", "model_type", "model_class", "estimator", "estimator_name",
    "estimator_class", "learner", "booster", "objective", "framework",
}  # fmt: skip
SPLIT_WORDS = ("split", "train_size", "test_size", "val_size", "validation", "holdout", "fold")
DATASETS_SHOWN = 10


def draft(page):
    """{field name: proposed value} for the page's empty fields that the records can fill
    (values as the page stores them: text, Markdown, or table rows); {} if none."""
    if page.spec is None:
        return {}
    drafters = DRAFTERS.get(page.category, {})
    empty = [f for f in page.spec.fields if f.name in drafters and not page.fields.get(f.name)]
    if not empty:
        return {}
    records = _Records(page.project)
    proposed = {}
    for spec in empty:
        value = drafters[spec.name](records)
        if value:
            proposed[spec.name] = _fit(spec, value)
    return proposed


class _Records:
    """What the drafters read, each looked up once, when first asked for."""

    def __init__(self, project):
        self.project = project

    @functools.cached_property
    def run(self):
        """The latest succeeded training run, else the latest of any status."""
        runs = TrainingRun.objects.filter(project=self.project).select_related("model_version")
        ordered = runs.order_by("-started_at", "-pk")
        return ordered.filter(status=TrainingRun.Status.SUCCEEDED).first() or ordered.first()

    @functools.cached_property
    def datasets(self):
        """(name, version, uri) of the datasets the latest runs name, newest first."""
        rows = (
            TrainingRun.objects.filter(project=self.project)
            .exclude(dataset_name="")
            .order_by("-started_at", "-pk")
            .values_list("dataset_name", "dataset_version", "dataset_uri")[:200]
        )
        return list(dict.fromkeys(rows))[:DATASETS_SHOWN]

    @functools.cached_property
    def deployment(self):
        """The latest successful deployment."""
        return (
            Deployment.objects.filter(project=self.project, status=Deployment.Status.SUCCEEDED)
            .select_related("model_version")
            .order_by("-started_at", "-pk")
            .first()
        )


def _text(value):
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _rows(mapping):
    return [_row(key, _text(value)) for key, value in sorted(mapping.items())]


def _row(key, value):
    """A table row the edit form shows as one "key: value" line and reads back the same:
    no line break in either, no colon in the key, and a key (tables refuse an empty one)."""
    key = _one_line(str(key)).replace(":", " ").strip() or "(no name)"
    return {"key": key, "value": _one_line(value).strip()}


def _cell(text):
    """``text`` as a cell of a Markdown table."""
    return _one_line(text).replace("|", "\\|")


def _one_line(text):
    return " ".join(text.splitlines())


def _from(run):
    return f"From training run {run.pk} of model version `{run.model_version.version}`"


def _hyperparameters(records):
    run = records.run
    return _rows(run.hyperparameters) if run and run.hyperparameters else None


def _training_algorithm(records):
    run = records.run
    if run is None:
        return None
    named = {**run.tags, **run.hyperparameters}
    found = [f"- {name}: {_text(named[name])}" for name in sorted(named) if name in ALGORITHM_NAMES]
    libraries = [f"{name} {_text(version)}" for name, version in sorted(run.environment.items())]
    if not found and not libraries:
        return None
    lines = [f"{_from(run)}:", "", *found]
    if libraries:
        lines += ["", f"Trained with {', '.join(libraries)}."]
    return "\n".join(lines)


def _evaluation_metrics(records):
    run = records.run
    if run is None or not run.metrics:
        return None
    lines = [f"{_from(run)}:", "", "| Metric | Value |", "|---|---|"]
    metrics = sorted(run.metrics.items())
    lines += [f"| {_cell(name)} | {float(value)!r} |" for name, value in metrics]
    return "\n".join(lines)


def _split(records):
    run = records.run
    if run is None:
        return None
    named = {**run.tags, **run.hyperparameters}
    found = [
        f"- {name}: {_text(value)}"
        for name, value in sorted(named.items())
        if any(word in name.lower() for word in SPLIT_WORDS)
    ]
    return "\n".join([f"{_from(run)}:", "", *found]) if found else None


def _dataset_versions(records):
    rows = [_row(name, " ".join(filter(None, [v, uri]))) for name, v, uri in records.datasets]
    return rows or None


def _environment(records):
    deployment = records.deployment
    if deployment is None:
        return None
    target = f" ({deployment.target})" if deployment.target else ""
    return f"{deployment.environment}{target}"


def _configuration(records):
    deployment = records.deployment
    return _rows(deployment.config) if deployment and deployment.config else None


DRAFTERS = {
    "model": {
        "hyperparameters": _hyperparameters,
        "training_algorithm": _training_algorithm,
        "evaluation_metrics": _evaluation_metrics,
    },
    "data": {"dataset_versions": _dataset_versions, "split": _split},
    "deployment": {"environment": _environment, "configuration": _configuration},
}


def _fit(spec, value):
    """``value`` within what the field takes (a long text is cut, as the person will see)."""
    if spec.kind == TEXT:
        return value[:TEXT_MAX_LENGTH]
    if spec.kind == TABLE:
        cut = TABLE_CELL_MAX_LENGTH
        return [{"key": row["key"][:cut], "value": row["value"][:cut]} for row in value][
            :TABLE_MAX_ROWS
        ]
    return value[:MARKDOWN_MAX_LENGTH]
