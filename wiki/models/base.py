"""What every domain model shares: validators, the history every model keeps, and the
check that refuses what the database could not store."""

import math
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from simple_history.models import HistoricalRecords

from wiki.history import RevisionInfo, RevisionManager

SLUG_PATTERN = r"[a-z0-9]+(?:-[a-z0-9]+)*"
validate_slug = RegexValidator(
    rf"^{SLUG_PATTERN}\Z",
    "Use lowercase letters, digits and single hyphens (e.g. churn-model).",
)
# What a model version may be called: letters, digits and . _ + - : @ (no spaces, control
# or invisible characters, which would make look-alike versions).
validate_version = RegexValidator(
    r"^[\w.+\-:@]+\Z",
    "Use letters, digits and . _ + - : @ only (e.g. 1.4.0, 2024-06-rc1).",
)
validate_commit = RegexValidator(
    r"^[0-9a-fA-F]{4,64}\Z", "A commit hash: 4 to 64 hexadecimal digits."
)
# Future times beyond this are a clock or a pipeline bug, not a record.
CLOCK_SKEW = timedelta(hours=1)

# /projects/new/ is the form that creates a project.
RESERVED_PROJECT_SLUGS = {"new"}


def max_length(model, field):
    """The length limit of ``model.field``: forms, serializers and services read limits
    from the models, never retype them."""
    return model._meta.get_field(field).max_length


def validate_project_slug(value):
    if value in RESERVED_PROJECT_SLUGS:
        raise ValidationError(f"'{value}' is reserved; choose another slug.")


def history(excluded_fields=()):
    return HistoricalRecords(
        bases=[RevisionInfo], history_manager=RevisionManager, excluded_fields=list(excluded_fields)
    )


# Deeper JSON than this is not documentation; refusing it also keeps every walk over it
# (validation, rendering, hashing) far from Python's recursion limit.
MAX_JSON_DEPTH = 20


def too_deep(data, limit):
    """Whether parsed JSON or YAML ``data`` nests more than ``limit`` levels (walked
    without recursion, so no depth can exhaust Python's stack)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > limit:
                return True
            items = value.values() if isinstance(value, dict) else value
            stack.extend((item, depth + 1) for item in items)
    return False


def _storage_problem(value, depth=0):
    """Why PostgreSQL could not store ``value`` as given, or None.

    PostgreSQL refuses NUL characters in text and NaN or infinity in JSON: caught here,
    they are a validation error naming the field instead of a 500.
    """
    if isinstance(value, str):
        return "Must not contain NUL (\\x00) characters." if "\x00" in value else None
    if isinstance(value, float) and not math.isfinite(value):
        return "Numbers must be finite (no NaN or infinity)."
    if isinstance(value, (dict, list)):
        if depth >= MAX_JSON_DEPTH:
            return f"Nested more than {MAX_JSON_DEPTH} levels deep."
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            problem = _storage_problem(key, depth) or _storage_problem(item, depth + 1)
            if problem:
                return problem
    return None


class DomainModel(models.Model):
    """Base of the domain models: full_clean() also refuses what PostgreSQL cannot store
    (NUL characters, non-finite numbers) and over-deep JSON, anywhere in any field."""

    class Meta:
        abstract = True

    def clean_fields(self, exclude=None):
        try:
            super().clean_fields(exclude)
            errors = {}
        except ValidationError as e:
            errors = e.error_dict
        for field in self._meta.concrete_fields:
            if field.name in (exclude or ()) or field.name in errors:
                continue
            problem = _storage_problem(getattr(self, field.attname))
            if problem:
                errors[field.name] = [ValidationError(problem)]
        if errors:
            raise ValidationError(errors)
