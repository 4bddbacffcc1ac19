import pytest
from django.core.exceptions import ValidationError

from wiki.categories import (
    KINDS,
    MARKDOWN_MAX_LENGTH,
    PROJECT_ROUTE_SLUGS,
    RESERVED_SLUGS,
    TABLE_MAX_ROWS,
    TEXT_MAX_LENGTH,
    is_placeholder,
    missing_required,
    validate_fields,
)
from wiki.doc_templates import pack_spec

# The built-in default template, as its pack file says.
DEFAULT = pack_spec("default")
CATEGORIES = DEFAULT.categories
CATEGORY_NAMES = DEFAULT.category_names
get_category = DEFAULT.get_category

# Every field DESIGN.md lists, by category; (name, required).
DESIGN_FIELDS = {
    "overview": [
        ("purpose", True),
        ("owners", True),
        ("stakeholders", True),
        ("status", True),
        ("risk_level", True),
        ("out_of_scope", False),
    ],
    "data": [
        ("sources", True),
        ("preprocessing", True),
        ("feature_engineering", True),
        ("split", True),
        ("dataset_versions", True),
        ("limitations_bias", False),
        ("personal_data_licensing", False),
    ],
    "model": [
        ("architecture", True),
        ("hyperparameters", True),
        ("training_algorithm", True),
        ("evaluation_metrics", True),
        ("previous_versions", True),
        ("limitations", False),
    ],
    "deployment": [
        ("environment", True),
        ("configuration", True),
        ("monitoring", True),
        ("scaling", True),
        ("architecture", True),
        ("rollback", False),
    ],
    "workflow": [("workflow", True), ("scheduled_jobs", True), ("dependencies", True)],
    "maintenance": [("update_log", True), ("update_reasons", True), ("post_update_tests", True)],
}


def test_the_default_template_has_the_six_categories_of_the_design_in_order():
    assert CATEGORY_NAMES == ("overview", "data", "model", "deployment", "workflow", "maintenance")


@pytest.mark.parametrize("name", list(DESIGN_FIELDS))
def test_each_category_has_every_design_field_with_its_requiredness(name):
    category = get_category(name)
    assert [(f.name, f.required) for f in category.fields] == DESIGN_FIELDS[name]


def test_every_field_has_a_label_help_text_and_known_kind():
    for category in CATEGORIES:
        assert category.label and category.description
        for field in category.fields:
            assert field.label.strip()
            assert len(field.help_text) > 20, field.name
            assert field.kind in KINDS
            assert not field.choices or field.kind == "text"


def test_field_names_do_not_collide_with_the_edit_forms_own_inputs():
    own = {"title", "body", "change_reason", "base_revision"}
    for category in CATEGORIES:
        assert not own & {f.name for f in category.fields}


def test_category_names_are_reserved_as_free_page_slugs():
    assert set(CATEGORY_NAMES) <= RESERVED_SLUGS


def _project_segments(patterns, prefix=""):
    """The literal first path segments after projects/<slug:project>/ in ``patterns``."""
    project = "projects/<slug:project>/"
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if hasattr(pattern, "url_patterns"):
            yield from _project_segments(pattern.url_patterns, route)
        elif route.startswith(project):
            segment = route.removeprefix(project).split("/")[0]
            if segment and not segment.startswith("<"):
                yield segment


def test_every_route_under_a_project_is_a_reserved_slug():
    """A page whose slug is a route's first segment would be shadowed by that route: a
    new route under projects/<slug>/ must be added to PROJECT_ROUTE_SLUGS."""
    from frontend import urls

    segments = set(_project_segments(urls.urlpatterns))
    assert {"settings", "records", "exports", "notifications", "mlflow"} <= segments
    assert segments <= PROJECT_ROUTE_SLUGS, segments - PROJECT_ROUTE_SLUGS
    assert PROJECT_ROUTE_SLUGS <= RESERVED_SLUGS
    assert PROJECT_ROUTE_SLUGS | set(CATEGORY_NAMES) == RESERVED_SLUGS


def test_a_category_the_template_lacks_is_none():
    assert get_category("nope") is None


OVERVIEW = get_category("overview")


def test_valid_values_are_normalized_and_kept_in_registry_order():
    cleaned = validate_fields(
        OVERVIEW,
        {
            "risk_level": " high ",
            "purpose": "  Predict churn.\n",
            "owners": [{"key": " Lead ", "value": " Ana "}, {"key": "", "value": ""}],
            "stakeholders": [],
            "out_of_scope": "",
        },
    )
    assert cleaned == {
        "purpose": "Predict churn.",
        "owners": [{"key": "Lead", "value": "Ana"}],
        "risk_level": "high",
    }
    assert list(cleaned) == ["purpose", "owners", "risk_level"]


def test_unknown_field_is_refused_with_the_known_ones_listed():
    with pytest.raises(ValidationError) as e:
        validate_fields(OVERVIEW, {"purpose": "x", "colour": "blue"})
    assert "colour" in e.value.message_dict
    assert "purpose" in e.value.message_dict["colour"][0]
    assert "purpose" not in e.value.message_dict


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("purpose", 42, "Markdown text"),
        ("purpose", ["a"], "Markdown text"),
        ("purpose", "x" * (MARKDOWN_MAX_LENGTH + 1), "at most"),
        ("status", 3, "short text"),
        ("status", "production\nnow", "single line"),
        ("status", "shipped", "one of"),
        ("risk_level", "extreme", "one of"),
        ("owners", "Ana", "table"),
        ("owners", {"Lead": "Ana"}, "table"),
        ("owners", [["Lead", "Ana"]], "Row 1"),
        ("owners", [{"key": "Lead"}], "Row 1"),
        ("owners", [{"key": "Lead", "value": "Ana", "x": 1}], "Row 1"),
        ("owners", [{"key": "Lead", "value": 5}], "strings"),
        ("owners", [{"key": "", "value": "Ana"}], "no key"),
        ("owners", [{"key": "Lead\nx", "value": "Ana"}], "single lines"),
        ("owners", [{"key": "k" * 501, "value": "v"}], "at most"),
        ("owners", [{"key": f"k{i}", "value": "v"} for i in range(TABLE_MAX_ROWS + 1)], "rows"),
    ],
)
def test_wrong_types_and_values_are_refused_per_field(name, value, message):
    with pytest.raises(ValidationError) as e:
        validate_fields(OVERVIEW, {name: value})
    assert list(e.value.message_dict) == [name]
    assert message in e.value.message_dict[name][0]


def test_short_text_may_be_up_to_the_limit():
    deployment = get_category("deployment")
    assert validate_fields(deployment, {"environment": "e" * TEXT_MAX_LENGTH})
    with pytest.raises(ValidationError):
        validate_fields(deployment, {"environment": "e" * (TEXT_MAX_LENGTH + 1)})


def test_fields_must_be_an_object():
    with pytest.raises(ValidationError) as e:
        validate_fields(OVERVIEW, ["purpose"])
    assert "fields" in e.value.message_dict


def test_all_errors_are_reported_at_once():
    with pytest.raises(ValidationError) as e:
        validate_fields(OVERVIEW, {"status": "nope", "risk_level": "nope", "x": 1})
    assert set(e.value.message_dict) == {"status", "risk_level", "x"}


def test_none_clears_a_field():
    assert validate_fields(OVERVIEW, {"purpose": None}) == {}


def test_missing_required_lists_only_unfilled_required_fields():
    missing = missing_required(OVERVIEW, {"purpose": "x", "out_of_scope": ""})
    assert [f.name for f in missing] == ["owners", "stakeholders", "status", "risk_level"]


def rows(*values):
    return [{"key": f"k{i}", "value": v} for i, v in enumerate(values)]


@pytest.mark.parametrize(
    "value",
    ["TBD", "tbd", " TODO ", "**TBD.**", "N/A", "n/a", "na", "None", "-", "—", "?", "...",
     "…", "TBC", "FIXME", "to be defined", "To be determined.", "Fill in", "_todo_",
     "TODO: describe the split", "TBD - waiting for legal", rows("TBD", "n/a"), rows("")],
)  # fmt: skip
def test_placeholders_are_recognised(value):
    assert is_placeholder(value)


@pytest.mark.parametrize(
    "value",
    ["", [], "0", "-1", "x", "No personal data is used.", "The todo list is reviewed weekly.",
     "Todo-list app for the support team", "TBD: first line\n\nThen the real text.",
     "None of the features use personal data.", rows("TBD", "0.05")],
)  # fmt: skip
def test_real_text_is_not_a_placeholder(value):
    assert not is_placeholder(value)


def test_a_placeholder_in_a_required_field_counts_as_missing():
    values = {"purpose": "TBD", "owners": rows("n/a"), "stakeholders": rows("Finance: budget"),
              "status": "production", "risk_level": "low", "out_of_scope": "TODO"}  # fmt: skip
    assert [f.name for f in missing_required(OVERVIEW, values)] == ["purpose", "owners"]
