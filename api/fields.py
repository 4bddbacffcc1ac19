"""The API's field types: strict about what JSON they take (a string is a string, a time
says its zone), so that a pipeline's mistake is a 400 naming the field, never a guess."""

from datetime import UTC

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from wiki.models import ModelVersion, max_length


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know (a typo must not be dropped silently)."""

    default_error_messages = {
        "invalid": "Send a JSON object of the fields by name (got {datatype}).",
    }

    def to_internal_value(self, data):
        unknown = sorted(set(data) - set(self.fields)) if isinstance(data, dict) else []
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as error:
            if not unknown:
                raise
            detail = error.detail if isinstance(error.detail, dict) else {}
            raise serializers.ValidationError(
                detail | {name: ["Unknown field."] for name in unknown}
            ) from None
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return value


class StrictCharField(serializers.CharField):
    """Text that must arrive as a JSON string (5 is not silently read as "5")."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError("Must be a string.")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """true or false as JSON booleans ("yes", "1" and 1 are not read as true)."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            raise serializers.ValidationError("Must be true or false.")
        return data


# No pipeline ran before this: an earlier time is a clock or a parsing bug.
EARLIEST_YEAR = 1970


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 date and time that says its time zone (a pipeline's clock is not ours)."""

    EXAMPLE = "e.g. 2024-06-01T12:00:00Z or 2024-06-01T14:00:00+02:00"

    def to_internal_value(self, value):
        if not isinstance(value, str):
            raise serializers.ValidationError(f"Must be a date and time as text, {self.EXAMPLE}.")
        try:
            parsed = parse_datetime(value)
        except ValueError:  # well formed, but no such date or time (Feb 30, 25:00, +99:00)
            raise serializers.ValidationError(f"No such date or time: {value[:40]!r}.") from None
        if parsed is None:
            hint = " (a '+' in a URL is sent as %2B)" if " " in value.strip() else ""
            raise serializers.ValidationError(
                f"Not a date and time: {value[:40]!r}; write it {self.EXAMPLE}{hint}."
            )
        if len(value.strip()) <= len("2024-06-01"):
            raise serializers.ValidationError(f"Give the time and its zone too, {self.EXAMPLE}.")
        if timezone.is_naive(parsed):
            raise serializers.ValidationError(f"Include a time zone, {self.EXAMPLE}.")
        try:
            # In UTC: PostgreSQL refuses the offsets past ±15:59 that ISO 8601 allows.
            in_utc = parsed.astimezone(UTC)
        except OverflowError:  # past the first or the last representable time
            in_utc = None
        if in_utc is None and parsed.year > EARLIEST_YEAR:
            raise serializers.ValidationError("Is after the year 9999.")
        if in_utc is None or in_utc.year < EARLIEST_YEAR:
            raise serializers.ValidationError(
                f"Is before {EARLIEST_YEAR}; check the pipeline's clock."
            )
        return in_utc


class ModelVersionNameField(StrictCharField):
    """The model version as its version string, in and out."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", max_length(ModelVersion, "version"))
        super().__init__(**kwargs)

    def to_representation(self, value):
        return value.version


class JSONObjectField(serializers.JSONField):
    """A JSON object taken as a whole: the domain checks its entries (naming the bad one),
    which spares a serializer field per entry on every record posted."""

    default_error_messages = {"invalid": "Must be a JSON object."}

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            self.fail("invalid")
        return data


def json_object(values):
    """A JSONObjectField whose schema says what its values are."""
    schema = {"type": "object", "additionalProperties": values}
    return extend_schema_field(schema)(type("JSONObject", (JSONObjectField,), {}))(required=False)


SCALAR = {"oneOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}], "nullable": True}
