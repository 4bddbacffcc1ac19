"""What a documentation category is, and the rules of the values its fields hold.

The categories themselves are data: each project is pinned to a version of a template
(wiki.models.Template, its YAML checked by wiki.doc_templates), whose spec lists them.
The browser forms, the validation of stored values and the completeness score are all
derived from the project's spec; the built-in default (wiki/packs/default.yaml) follows
the source document (shared/seeds), "O que documentar em um projeto de Machine
Learning", extended with the overview that audits ask for.

Stored values, by kind:
- ``markdown``: a string of Markdown, rendered and sanitized for display;
- ``text``: a one-line string (optionally one of ``choices``);
- ``table``: a key-value table, a list of ``{"key": str, "value": str}`` rows, in order.
"""

import re
from dataclasses import dataclass, field, replace

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
    # The items of a regulation this field documents ("annex_iv.3", "sr_11_7.limitations").
    evidences: tuple[str, ...] = ()
    # "category.field" names this field had in earlier templates: an upgrade moves their values.
    renamed_from: tuple[str, ...] = ()
    # A value stored under a name the template no longer has (see Category.fields_for).
    unknown: bool = False


@dataclass(frozen=True)
class Category:
    """A documentation category: one page per project with these fields plus a free body."""

    name: str
    label: str
    description: str
    fields: tuple[Field, ...] = field(default_factory=tuple)
    # The kinds of record whose arrival makes this page stale (wiki.health.QUESTIONS).
    stale_on: tuple[str, ...] = ()

    def get_field(self, name):
        for f in self.fields:
            if f.name == name:
                return f
        return None

    @property
    def required_fields(self):
        return [f for f in self.fields if f.required]

    def fields_for(self, *values):
        """The fields to show for stored ``values`` (one or more dicts, e.g. the two sides
        of a diff): the category's, then any name a value has that the category does not
        (written under an older template), shown under its stored name, never dropped."""
        known = {f.name for f in self.fields}
        extra = dict.fromkeys(n for v in values for n in (v or {}) if n not in known)
        found = [next((v[name] for v in values if v and name in v), None) for name in extra]
        return [self._as_stored(f, values) for f in self.fields] + [
            Field(name, name, "A field of an earlier template.", guess_kind(value),
                  required=False, unknown=True)
            for name, value in zip(extra, found, strict=True)
        ]  # fmt: skip

    @staticmethod
    def _as_stored(field, values):
        """``field``, shown as the kind its stored value has (a template may have changed
        a field's kind since the value was written)."""
        stored = [v[field.name] for v in values if v and v.get(field.name)]
        if any((field.kind == TABLE) != isinstance(value, list) for value in stored):
            return replace(field, kind=guess_kind(stored[0]), choices=())
        return field


def guess_kind(value):
    """The kind a stored value reads as, when no field says: rows are a table."""
    return TABLE if isinstance(value, list) else MARKDOWN


# The category names of the built-in default template.
DEFAULT_CATEGORY_NAMES = ("overview", "data", "model", "deployment", "workflow", "maintenance")
# The first path segments of the project's own URLs (projects/<slug>/<segment>/… in
# frontend/urls.py; a test keeps this list complete): a page with such a slug would be
# shadowed by the route, so neither a free page nor a template's category may take one.
PROJECT_ROUTE_SLUGS = frozenset({
    "pages", "records", "settings", "members", "notifications", "mlflow", "activity",
    "audit", "exports", "tokens", "runs", "deployments", "model-versions", "template",
    "validations", "findings",
})  # fmt: skip
# Free-page slugs that would clash with category pages or the project's own URLs.
# The default template's category names are kept too, so a free page made under it never
# blocks a later template (each template's own names are checked by Page.clean).
RESERVED_SLUGS = frozenset(DEFAULT_CATEGORY_NAMES) | PROJECT_ROUTE_SLUGS


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
