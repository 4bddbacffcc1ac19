"""The shapes of a project's pipeline (api.views.pipelines). Kept apart from
api.serializers, which is long enough; the checks are wiki.pipelines'."""

from rest_framework import serializers

from wiki.models import Pipeline


def names(**options):
    """A list of names (a new field each time: DRF binds a field to one serializer)."""
    return serializers.ListField(child=serializers.CharField(), **options)


class TaskSerializer(serializers.Serializer):
    name = serializers.CharField()
    component = serializers.CharField()
    inputs = names()
    outputs = names()
    after = names(help_text="The tasks that finish before this one starts.")
    contains = names(
        help_text="The tasks inside a kfp sub-DAG (a condition, a loop); empty for others."
    )


class ChangedTaskSerializer(serializers.Serializer):
    name = serializers.CharField()
    parts = names(help_text="What changed: component, inputs, outputs, dependencies, tasks inside.")


class StepChangesSerializer(serializers.Serializer):
    added = names()
    removed = names()
    changed = ChangedTaskSerializer(many=True)
    name = names(required=False, help_text="[old, new] if it changed.")
    schedule = serializers.ListField(
        child=serializers.CharField(allow_blank=True),
        required=False,
        help_text="[old, new] if it changed.",
    )
    inputs = serializers.ListField(
        child=names(), required=False, help_text="The pipeline's inputs, [old, new], if changed."
    )


class PipelineSerializer(serializers.Serializer):
    """A pipeline as its revision stores it, with what that revision changed."""

    name = serializers.CharField()
    source = serializers.ChoiceField(choices=Pipeline.Source.choices)
    schedule = serializers.CharField(allow_blank=True)
    inputs = names()
    tasks = TaskSerializer(many=True)
    revision = serializers.IntegerField()
    digest = serializers.CharField(help_text="SHA-256 of the normalized DAG.")
    updated_at = serializers.DateTimeField(help_text="When this revision was posted.")
    changes = StepChangesSerializer(help_text="From the revision before (all added for the first).")
