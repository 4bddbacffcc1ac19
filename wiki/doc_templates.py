"""Documentation templates: a template's YAML, checked strictly, and the spec read from it.

A template (a versioned YAML file; the shipped packs are in wiki/packs/) lists the
categories of a project's documentation and the fields of each, says which items of a
regulation each field evidences (the EU AI Act's Annex IV, SR 11-7), which other sources
an item has (records, a free page, the history), how often a model of each risk tier is
reviewed and which field holds the tier. ``parse`` checks a YAML text and returns its
definition (plain JSON, kept on wiki.models.Template); ``Spec`` is what every reader of
categories uses, built once per template (``spec_for``): templates never change.
"""

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import yaml

from wiki.annex_iv import EVIDENCE_SOURCES, ITEMS
from wiki.categories import KINDS, PROJECT_ROUTE_SLUGS, TEXT, Category, Field
from wiki.models import Page, Template, max_length
from wiki.models.base import SLUG_PATTERN, too_deep
from wiki.pipelines import _NoAliasLoader

PACKS = Path(__file__).resolve().parent / "packs"
DEFAULT = "default"
SHIPPED = ("default", "eu-ai-act-high-risk", "sr-11-7")  # the packs in PACKS

MAX_CHARS = 256 * 1024
MAX_DEPTH = 8
MAX_CATEGORIES = 30
MAX_FIELDS = 60
NAME_MAX = max_length(Page, "category")  # a category's name is a page's slug and category
SLUG_MAX = max_length(Template, "slug")
LABEL_MAX = max_length(Template, "label")
HELP_MAX = 2000
TEXT_CHOICE_MAX = 200
SLUG_RE = re.compile(rf"^{SLUG_PATTERN}\Z")
FIELD_RE = re.compile(r"^[a-z][a-z0-9_]*\Z")
REVIEW_MONTHS_MAX = 120

TOP_KEYS = {"slug", "version", "label", "description", "review_months", "risk_tier_field",
            "categories", "evidence"}  # fmt: skip
CATEGORY_KEYS = {"name", "label", "description", "stale_on", "fields"}
# What may make a category's page stale: the questions of wiki.health, by name.
STALE_ON = ("new_model_versions", "new_training_runs", "new_dataset_versions",
            "new_deployments", "changed_pipeline")  # fmt: skip
FIELD_KEYS = {"name", "label", "help", "kind", "required", "choices", "evidences",
              "renamed_from"}  # fmt: skip


class _Loader(_NoAliasLoader):
    """The pipelines' safe loader (no aliases), also refusing a key said twice in one
    mapping, which PyYAML would otherwise let the last one win silently."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key '{key}' is repeated", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


class TemplateError(ValueError):
    """A template that cannot be loaded; ``errors`` name each place ("categories[2].fields[4]
    .kind: ...")."""

    def __init__(self, errors):
        self.errors = list(errors)
        super().__init__("; ".join(self.errors))


def digest(text):
    """The SHA-256 of a template's YAML text: same text, same template."""
    return hashlib.sha256(text.encode()).hexdigest()


def read_pack(slug):
    """The YAML text of the shipped pack ``slug`` (wiki/packs/<slug>.yaml)."""
    return (PACKS / f"{slug}.yaml").read_text(encoding="utf-8")


def pack_spec(slug):
    """The spec of the shipped pack ``slug`` as its file says, read without the database."""
    return Spec.from_definition(parse(read_pack(slug)))


def parse(text):
    """The definition of the template in YAML ``text``, normalized (every optional key
    filled in); TemplateError listing every problem found, each with its place."""
    if not isinstance(text, str):
        raise TemplateError(["The template must be YAML text."])
    if len(text) > MAX_CHARS:
        raise TemplateError([f"The template is over {MAX_CHARS // 1024} KiB."])
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 (safe, and no aliases)
    except RecursionError:
        raise TemplateError([f"too_deep: nested more than {MAX_DEPTH} levels."]) from None
    except yaml.YAMLError as error:
        raise TemplateError([f"Not valid YAML: {' '.join(str(error).split())}"]) from None
    if too_deep(data, MAX_DEPTH):
        raise TemplateError([f"too_deep: nested more than {MAX_DEPTH} levels."])
    checker = _Checker()
    definition = checker.template(data)
    if checker.errors:
        raise TemplateError(checker.errors)
    return definition


class _Checker:
    """Walks a parsed YAML document, collecting every problem with its place."""

    def __init__(self):
        self.errors = []

    def error(self, where, message):
        self.errors.append(f"{where}: {message}")

    def mapping(self, value, where, keys, required):
        if not isinstance(value, dict):
            self.error(where or "template", "must be a mapping.")
            return None
        prefix = f"{where}." if where else ""
        for key in value:
            if key not in keys:
                self.error(f"{prefix}{key}", f"unknown key (known: {', '.join(sorted(keys))}).")
        for key in required:
            if key not in value:
                self.error(f"{prefix}{key}", "is required.")
        return value

    def text(self, value, where, limit, *, pattern=None, required=True, what="text"):
        if value is None and not required:
            return ""
        if not isinstance(value, str) or (required and not value.strip()):
            self.error(where, f"must be {what}.")
            return ""
        if len(value) > limit:
            self.error(where, f"must be at most {limit} characters.")
        elif pattern and not pattern.match(value):
            self.error(where, f"must be {what}.")
        return value.strip()

    def strings(self, value, where):
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.error(where, "must be a list of strings.")
            return []
        return value

    def template(self, data):
        data = self.mapping(data, "", TOP_KEYS, ("slug", "version", "label", "categories"))
        if data is None:
            return None
        slug = "a slug (lowercase letters, digits, single hyphens)"
        version = data.get("version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            self.error("version", "must be a whole number, 1 or more.")
        categories = data.get("categories")
        if not isinstance(categories, list) or not categories:
            self.error("categories", "must be a non-empty list.")
            categories = []
        elif len(categories) > MAX_CATEGORIES:
            self.error("categories", f"at most {MAX_CATEGORIES}.")
        definition = {
            "slug": self.text(data.get("slug"), "slug", SLUG_MAX, pattern=SLUG_RE, what=slug),
            "version": version,
            "label": self.text(data.get("label"), "label", LABEL_MAX),
            "description": self.text(
                data.get("description"), "description", HELP_MAX, required=False
            ),  # fmt: skip
            "categories": [self.category(c, f"categories[{i}]") for i, c in enumerate(categories)],
        }
        names = {}
        for i, category in enumerate(definition["categories"]):
            if category and category["name"] in names:
                self.error(f"categories[{i}].name", f"'{category['name']}' is repeated.")
            elif category:
                names[category["name"]] = category
        definition["risk_tier_field"] = self.tier_field(data.get("risk_tier_field"), names)
        definition["review_months"] = self.review_months(
            data.get("review_months"), names, definition["risk_tier_field"]
        )
        definition["evidence"] = self.evidence(data.get("evidence"))
        return definition

    def category(self, data, where):
        data = self.mapping(data, where, CATEGORY_KEYS, ("name", "label", "fields"))
        if data is None:
            return None
        fields = data.get("fields")
        if not isinstance(fields, list):
            self.error(f"{where}.fields", "must be a list.")
            fields = []
        elif len(fields) > MAX_FIELDS:
            self.error(f"{where}.fields", f"at most {MAX_FIELDS}.")
        category = {
            "name": self.text(data.get("name"), f"{where}.name", NAME_MAX, pattern=SLUG_RE,
                              what="a slug (lowercase letters, digits, single hyphens)"),
            "label": self.text(data.get("label"), f"{where}.label", LABEL_MAX),
            "description": self.text(data.get("description"), f"{where}.description",
                                     HELP_MAX, required=False),
            "stale_on": self.strings(data.get("stale_on"), f"{where}.stale_on"),
            "fields": [self.field(f, f"{where}.fields[{i}]") for i, f in enumerate(fields)],
        }  # fmt: skip
        if category["name"] in PROJECT_ROUTE_SLUGS:
            self.error(f"{where}.name", f"'{category['name']}' is a page of every project "
                       "(its address would show that page): choose another name.")  # fmt: skip
        for number, name in enumerate(category["stale_on"]):
            if name not in STALE_ON:
                self.error(f"{where}.stale_on[{number}]",
                           f"must be one of {', '.join(STALE_ON)}.")  # fmt: skip
        seen = set()
        for i, field in enumerate(category["fields"]):
            if field and field["name"] in seen:
                self.error(f"{where}.fields[{i}].name", f"'{field['name']}' is repeated.")
            elif field:
                seen.add(field["name"])
        return category

    def field(self, data, where):
        data = self.mapping(data, where, FIELD_KEYS, ("name", "label", "kind"))
        if data is None:
            return None
        kind = data.get("kind")
        if kind not in KINDS:
            self.error(f"{where}.kind", f"must be one of {', '.join(KINDS)}, not {kind!r}.")
        required = data.get("required", True)
        if not isinstance(required, bool):
            self.error(f"{where}.required", "must be true or false.")
        choices = self.strings(data.get("choices"), f"{where}.choices")
        if choices and kind != TEXT:
            self.error(f"{where}.choices", "only a text field has choices.")
        if len(set(choices)) != len(choices) or any(
            not c.strip() or len(c) > TEXT_CHOICE_MAX for c in choices
        ):
            self.error(f"{where}.choices", "must be distinct, non-empty short texts.")
        evidences = self.strings(data.get("evidences"), f"{where}.evidences")
        for number, item in enumerate(evidences):
            if item not in ITEMS:
                self.error(f"{where}.evidences[{number}]", f"unknown item '{item}'.")
        renamed = self.strings(data.get("renamed_from"), f"{where}.renamed_from")
        for number, old in enumerate(renamed):
            category, _, name = old.partition(".")
            if not SLUG_RE.match(category) or not FIELD_RE.match(name):
                self.error(f"{where}.renamed_from[{number}]", "must be 'category.field'.")
        return {
            "name": self.text(data.get("name"), f"{where}.name", NAME_MAX, pattern=FIELD_RE,
                              what="a field name (lowercase letters, digits, underscores)"),
            "label": self.text(data.get("label"), f"{where}.label", LABEL_MAX),
            "help": self.text(data.get("help"), f"{where}.help", HELP_MAX, required=False),
            "kind": kind,
            "required": required,
            "choices": choices,
            "evidences": list(dict.fromkeys(evidences)),
            "renamed_from": renamed,
        }  # fmt: skip

    def tier_field(self, value, categories):
        if value is None:
            return None
        category, _, name = value.partition(".") if isinstance(value, str) else ("", "", "")
        fields = {f["name"]: f for f in (categories.get(category) or {}).get("fields", []) if f}
        if name not in fields or fields[name]["kind"] != TEXT:
            self.error("risk_tier_field", "must name a text field, as 'category.field'.")
            return None
        return value

    def review_months(self, value, categories, tier_field):
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error("review_months", "must map each risk tier to a number of months.")
            return {}
        choices = None
        if tier_field:
            category, _, name = tier_field.partition(".")
            field = next(f for f in categories[category]["fields"] if f and f["name"] == name)
            choices = field["choices"] or None
        for tier, months in value.items():
            if choices and tier not in choices:
                self.error(f"review_months.{tier}", f"not a choice of {tier_field}.")
            if isinstance(months, bool) or not isinstance(months, int):
                self.error(f"review_months.{tier}", "must be a whole number of months.")
            elif not 1 <= months <= REVIEW_MONTHS_MAX:
                self.error(f"review_months.{tier}", f"must be 1 to {REVIEW_MONTHS_MAX}.")
        return {str(tier): months for tier, months in value.items()}

    def evidence(self, value):
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error("evidence", "must map item ids to lists of sources.")
            return {}
        for item, sources in value.items():
            if item not in ITEMS:
                self.error(f"evidence.{item}", "unknown item.")
            for number, source in enumerate(self.strings(sources, f"evidence.{item}")):
                page = source.removeprefix("page:")
                if source not in EVIDENCE_SOURCES and not (
                    source.startswith("page:") and SLUG_RE.match(page)
                ):
                    self.error(f"evidence.{item}[{number}]", f"unknown source '{source}'.")
        return {str(k): list(v) for k, v in value.items() if isinstance(v, list)}


@dataclass(frozen=True)
class Spec:
    """A template version as every reader of categories uses it: immutable, built once."""

    slug: str
    version: int
    label: str
    description: str
    categories: tuple[Category, ...]
    review_months: MappingProxyType
    risk_tier_field: str | None
    evidence: MappingProxyType  # item id -> non-field sources

    @classmethod
    def from_definition(cls, definition):
        categories = tuple(
            Category(
                c["name"], c["label"], c["description"],
                tuple(
                    Field(f["name"], f["label"], f["help"], f["kind"], f["required"],
                          tuple(f["choices"]), tuple(f["evidences"]), tuple(f["renamed_from"]))
                    for f in c["fields"]
                ),
                tuple(c["stale_on"]),
            )
            for c in definition["categories"]
        )  # fmt: skip
        return cls(
            slug=definition["slug"],
            version=definition["version"],
            label=definition["label"],
            description=definition["description"],
            categories=categories,
            review_months=MappingProxyType(dict(definition["review_months"])),
            risk_tier_field=definition["risk_tier_field"],
            evidence=MappingProxyType({k: tuple(v) for k, v in definition["evidence"].items()}),
        )

    @property
    def name(self):
        return f"{self.slug} v{self.version}"

    @property
    def category_names(self):
        return tuple(c.name for c in self.categories)

    def get_category(self, name):
        """The category called ``name``, None when this template has none."""
        return next((c for c in self.categories if c.name == name), None)

    def category_or_unknown(self, name):
        """The category ``name``, or (a page kept from a template that had it) one with no
        fields, so its stored values still show under their own names."""
        return self.get_category(name) or Category(name, name, "Not in this template.", ())

    def order(self, name):
        """Where a category page sorts: the template's order, unknown ones after."""
        names = self.category_names
        return names.index(name) if name in names else len(names)

    def sources(self, item):
        """What evidences ``item``: "category.field" of each field naming it, in the
        template's order, then its other sources (``evidence``)."""
        fields = [
            f"{c.name}.{f.name}" for c in self.categories for f in c.fields if item in f.evidences
        ]
        return fields + list(self.evidence.get(item, ()))

    def stale_categories(self, question):
        """The categories whose pages ``question`` (wiki.health) makes stale."""
        return [c.name for c in self.categories if question in c.stale_on]

    def evidences_any(self, prefix):
        """Whether any field or source of this template evidences an item of ``prefix``."""
        items = {i for c in self.categories for f in c.fields for i in f.evidences}
        return any(i.startswith(prefix) for i in items | set(self.evidence))


# Templates never change once loaded, so a spec is built once per template row and
# process. Loading a template drops its primary key's entry (``forget``): a test database
# rolled back may give the key to another row.
_specs = {}


def spec_of(template_id, definition=None):
    """The spec of the template with primary key ``template_id`` (read once per process;
    not at all when its ``definition`` is at hand)."""
    spec = _specs.get(template_id)
    if spec is None:
        if definition is None:
            definition = Template.objects.values_list("definition", flat=True).get(pk=template_id)
        spec = _specs[template_id] = Spec.from_definition(definition)
    return spec


def forget(template_id):
    _specs.pop(template_id, None)
