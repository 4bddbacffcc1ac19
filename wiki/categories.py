"""The documentation categories every project has, and the structured fields of each.

This registry is the single definition of what a project's documentation holds: the
browser forms, the validation of stored values and the completeness score are all
derived from it. The fields follow the source document (shared/seeds), "O que documentar
em um projeto de Machine Learning", extended with the overview that audits ask for.

Stored values, by kind:
- ``markdown``: a string of Markdown, rendered and sanitized for display;
- ``text``: a one-line string (optionally one of ``choices``);
- ``table``: a key-value table, a list of ``{"key": str, "value": str}`` rows, in order.
"""

import re
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError

MARKDOWN = "markdown"
TEXT = "text"
TABLE = "table"
KINDS = (MARKDOWN, TEXT, TABLE)

TEXT_MAX_LENGTH = 200
TABLE_CELL_MAX_LENGTH = 500
TABLE_MAX_ROWS = 200
MARKDOWN_MAX_LENGTH = 100_000


@dataclass(frozen=True)
class Field:
    """One structured field of a category page."""

    name: str
    label: str
    help_text: str
    kind: str
    required: bool = True
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Category:
    """A documentation category: one page per project with these fields plus a free body."""

    name: str
    label: str
    description: str
    fields: tuple[Field, ...] = field(default_factory=tuple)

    def get_field(self, name):
        for f in self.fields:
            if f.name == name:
                return f
        return None

    @property
    def required_fields(self):
        return [f for f in self.fields if f.required]


CATEGORIES = (
    Category(
        "overview",
        "Overview",
        "What the system is for, who owns it, and how risky it is.",
        (
            Field(
                "purpose",
                "Purpose and intended use",
                "The problem the model solves, who uses its output, and the decisions it informs.",
                MARKDOWN,
            ),
            Field(
                "owners",
                "Owners",
                "Who is accountable, one row per role, e.g. 'Product owner: Ana Souza', "
                "'ML lead: João Lima'.",
                TABLE,
            ),
            Field(
                "stakeholders",
                "Stakeholders",
                "Teams and people who depend on or are affected by the model, and their "
                "interest in it.",
                TABLE,
            ),
            Field(
                "status",
                "Status",
                "Where the system is in its life cycle.",
                TEXT,
                choices=("development", "validation", "production", "deprecated", "retired"),
            ),
            Field(
                "risk_level",
                "Risk level",
                "The impact of a wrong prediction on people and the business, as rated by "
                "your risk process.",
                TEXT,
                choices=("low", "medium", "high"),
            ),
            Field(
                "out_of_scope",
                "Out-of-scope uses",
                "Uses the model was not designed or validated for, and must not be put to.",
                MARKDOWN,
                required=False,
            ),
        ),
    ),
    Category(
        "data",
        "Data",
        "Where the data comes from and everything done to it before training.",
        (
            Field(
                "sources",
                "Data sources",
                "The origin of every dataset: systems, tables, vendors, collection period "
                "and owner.",
                MARKDOWN,
            ),
            Field(
                "preprocessing",
                "Preprocessing",
                "How the raw data was cleaned: filtering, deduplication, missing values, outliers.",
                MARKDOWN,
            ),
            Field(
                "feature_engineering",
                "Transformations and feature engineering",
                "The transformations applied and the features derived, with the reason for each.",
                MARKDOWN,
            ),
            Field(
                "split",
                "Train / validation / test split",
                "How the data was divided (random, by time, by group), why, and the size of "
                "each set.",
                MARKDOWN,
            ),
            Field(
                "dataset_versions",
                "Dataset versions",
                "One row per dataset with the version or snapshot used, e.g. "
                "'customers: 2024-06-30'.",
                TABLE,
            ),
            Field(
                "limitations_bias",
                "Known limitations and bias",
                "Gaps, imbalances and groups under-represented in the data, and their "
                "effect on the model.",
                MARKDOWN,
                required=False,
            ),
            Field(
                "personal_data_licensing",
                "Personal data and licensing",
                "Personal or sensitive data used, its legal basis, and the licences of "
                "third-party data.",
                MARKDOWN,
                required=False,
            ),
        ),
    ),
    Category(
        "model",
        "Model",
        "How the model is built, trained and judged.",
        (
            Field(
                "architecture",
                "Architecture",
                "The model family and structure (e.g. gradient-boosted trees, a two-tower "
                "network) and why it was chosen.",
                MARKDOWN,
            ),
            Field(
                "hyperparameters",
                "Hyperparameters",
                "The hyperparameters selected, one row each, e.g. 'learning_rate: 0.05'; "
                "say in the body how they were tuned.",
                TABLE,
            ),
            Field(
                "training_algorithm",
                "Training algorithm",
                "The training procedure: algorithm, loss, optimiser, early stopping, hardware.",
                MARKDOWN,
            ),
            Field(
                "evaluation_metrics",
                "Evaluation metrics",
                "The metrics chosen to evaluate the model, why they fit the problem, and the "
                "acceptance thresholds.",
                MARKDOWN,
            ),
            Field(
                "previous_versions",
                "Previous versions",
                "Earlier versions of the model, what changed between them and why they were "
                "replaced.",
                MARKDOWN,
            ),
            Field(
                "limitations",
                "Limitations",
                "Known weaknesses: inputs or segments where the model performs poorly.",
                MARKDOWN,
                required=False,
            ),
        ),
    ),
    Category(
        "deployment",
        "Deployment",
        "How the model runs in production and how it is watched.",
        (
            Field(
                "environment",
                "Deployment environment",
                "Where the model runs, e.g. 'Kubernetes cluster ml-prod (eu-west-1)' or "
                "'nightly batch on Airflow'.",
                TEXT,
            ),
            Field(
                "configuration",
                "Deployment configuration",
                "The settings it runs with, one row each, e.g. 'replicas: 3', 'timeout: 200 ms'.",
                TABLE,
            ),
            Field(
                "monitoring",
                "Production monitoring and metrics",
                "What is monitored in production (latency, errors, drift, business "
                "metrics), thresholds and alerts.",
                MARKDOWN,
            ),
            Field(
                "scaling",
                "Scaling procedures",
                "How the service scales with load: autoscaling rules, limits, capacity tests.",
                MARKDOWN,
            ),
            Field(
                "architecture",
                "Implementation architecture",
                "The components around the model (feature store, API, queues, batch jobs) "
                "and how requests flow.",
                MARKDOWN,
            ),
            Field(
                "rollback",
                "Rollback procedure",
                "How to return to the previous version, who may decide it, and how long it takes.",
                MARKDOWN,
                required=False,
            ),
        ),
    ),
    Category(
        "workflow",
        "Workflow",
        "The automated path from data to production.",
        (
            Field(
                "workflow",
                "Training, validation and deployment workflow",
                "The steps from new data to a deployed model, who or what triggers each, "
                "and the gates between them.",
                MARKDOWN,
            ),
            Field(
                "scheduled_jobs",
                "Scheduled jobs",
                "The automated jobs, one row each with their schedule, e.g. "
                "'retraining: every Monday 02:00 UTC'.",
                TABLE,
            ),
            Field(
                "dependencies",
                "Dependencies and pipelines",
                "Upstream data pipelines, libraries, services and repositories this system "
                "depends on.",
                MARKDOWN,
            ),
        ),
    ),
    Category(
        "maintenance",
        "Maintenance",
        "What changed after go-live, why, and how each change was tested.",
        (
            Field(
                "update_log",
                "Update log",
                "Every update since the first release: date, version and what changed.",
                MARKDOWN,
            ),
            Field(
                "update_reasons",
                "Reasons for each update",
                "Why each update was made: drift, new data, a bug, a new requirement.",
                MARKDOWN,
            ),
            Field(
                "post_update_tests",
                "Post-update test results",
                "The tests run after each update and their results, with links to the evidence.",
                MARKDOWN,
            ),
        ),
    ),
)

CATEGORY_NAMES = tuple(c.name for c in CATEGORIES)
_BY_NAME = {c.name: c for c in CATEGORIES}

# Free-page slugs that would clash with category pages or the project's own URLs.
RESERVED_SLUGS = frozenset(CATEGORY_NAMES) | {
    "pages", "records", "settings", "members", "activity", "audit", "tokens",
    "runs", "deployments", "model-versions",
    "validations", "findings",
}  # fmt: skip


def get_category(name):
    """The category called ``name``; KeyError for an unknown name."""
    return _BY_NAME[name]


def validate_fields(category, values):
    """Check ``values`` against ``category``'s fields and return them normalized.

    Strings are stripped, empty values dropped (an absent field is an unfilled field),
    table rows with neither key nor value dropped. Raises ValidationError with one message
    per offending field; nothing is returned partially.
    """
    if not isinstance(values, dict):
        raise ValidationError({"fields": "Fields must be an object of field name to value."})
    errors = {}
    cleaned = {}
    for name, value in values.items():
        spec = category.get_field(name)
        if spec is None:
            known = ", ".join(f.name for f in category.fields) or "none"
            errors[name] = f"Unknown field '{name}' for {category.label}; known fields: {known}."
            continue
        try:
            value = _clean_value(spec, value)
        except ValidationError as e:
            errors[name] = e.messages
            continue
        if value:
            cleaned[name] = value
    if errors:
        raise ValidationError(errors)
    # Keep the registry's order, so stored and displayed fields read the same way.
    return {f.name: cleaned[f.name] for f in category.fields if f.name in cleaned}


def normalize_newlines(text):
    """Browsers send CRLF from text areas; store LF so equal texts compare equal."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _clean_value(spec, value):
    if value is None:
        return None
    if spec.kind == MARKDOWN:
        if not isinstance(value, str):
            raise ValidationError("Must be Markdown text (a string).")
        if len(value) > MARKDOWN_MAX_LENGTH:
            raise ValidationError(f"Must be at most {MARKDOWN_MAX_LENGTH} characters.")
        return normalize_newlines(value).strip()
    if spec.kind == TEXT:
        if not isinstance(value, str):
            raise ValidationError("Must be a short text (a string).")
        value = value.strip()
        if "\n" in value or "\r" in value:
            raise ValidationError("Must be a single line.")
        if len(value) > TEXT_MAX_LENGTH:
            raise ValidationError(f"Must be at most {TEXT_MAX_LENGTH} characters.")
        if value and spec.choices and value not in spec.choices:
            raise ValidationError(f"Must be one of: {', '.join(spec.choices)}.")
        return value
    return _clean_table(value)


def _clean_table(rows):
    if not isinstance(rows, list):
        raise ValidationError('Must be a table: a list of {"key": ..., "value": ...} rows.')
    if len(rows) > TABLE_MAX_ROWS:
        raise ValidationError(f"Must have at most {TABLE_MAX_ROWS} rows.")
    cleaned = []
    seen = set()
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict) or set(row) != {"key", "value"}:
            raise ValidationError(f'Row {number} must be an object with "key" and "value".')
        key, value = row["key"], row["value"]
        if not isinstance(key, str) or not isinstance(value, str):
            raise ValidationError(f"Row {number}: key and value must be strings.")
        key, value = key.strip(), value.strip()
        if not key and not value:
            continue
        if not key:
            raise ValidationError(f"Row {number} has a value but no key.")
        if any(c in key + value for c in "\r\n"):
            raise ValidationError(f"Row {number}: keys and values must be single lines.")
        # The browser edits tables as "key: value" lines, so a key must not hold a colon.
        if ":" in key:
            raise ValidationError(f"Row {number}: a key cannot contain ':' ({key}).")
        if key in seen:
            raise ValidationError(f"Row {number}: the key '{key}' is repeated.")
        seen.add(key)
        if len(key) > TABLE_CELL_MAX_LENGTH or len(value) > TABLE_CELL_MAX_LENGTH:
            raise ValidationError(
                f"Row {number}: keys and values must be at most {TABLE_CELL_MAX_LENGTH} characters."
            )
        cleaned.append({"key": key, "value": value})
    return cleaned


# Words people type where text is still to come. A value is a placeholder when, read
# without case, surrounding whitespace and punctuation (so "**TBD.**" and "N/A" count), it
# is one of these or nothing at all ("-", "?", "..."), or when it is one line that starts
# with a to-do marker and a colon ("TODO: describe the split"). A real sentence that
# mentions a to-do ("the todo list is reviewed weekly") is text. "None" and "n/a" count
# too: a field that truly does not apply says why in a sentence ("No personal data is used.").
PLACEHOLDERS = frozenset({
    "tbd", "tbc", "tba", "todo", "to do", "to-do", "fixme", "xxx", "wip", "pending",
    "placeholder", "n/a", "na", "n.a", "none", "nil", "null", "unknown", "fill in",
    "fill me in", "fill in later", "coming soon", "to be defined", "to be determined",
    "to be decided", "to be done", "to be confirmed", "to be completed", "to be added",
    "to be written", "to be filled in", "to be announced",
})  # fmt: skip
_TRIM = " \t\n.,;:!?-_*~`#>\"'()[]{}<>…–—"
_MARKUP = " \t*_`#>[("
_MARKER_RE = re.compile(r"^(tbd|tbc|todo|fixme)(\s*:|\s+[-–—]\s)", re.IGNORECASE)


def is_placeholder(value):
    """Whether a field value only stands in for text still to be written (PLACEHOLDERS);
    a table is one when every row's value is. An empty value is empty, not a placeholder."""
    if isinstance(value, list):
        return bool(value) and all(_placeholder_text(row["value"]) for row in value)
    return bool(value) and _placeholder_text(value)


def _placeholder_text(text):
    words = " ".join(text.casefold().strip(_TRIM).split())
    if words in PLACEHOLDERS or not words:
        return True
    return "\n" not in text.strip() and bool(_MARKER_RE.match(text.lstrip(_MARKUP)))


def missing_required(category, values):
    """The required fields of ``category`` that ``values`` leaves unfilled: empty, or only
    a placeholder such as "TBD" (is_placeholder)."""
    return [
        f for f in category.required_fields
        if not values.get(f.name) or is_placeholder(values[f.name])
    ]  # fmt: skip
