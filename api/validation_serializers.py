"""The shapes of validations, findings and their comments (api.views.validations). Kept
apart from api.serializers, which is long enough; the checks are
wiki.services.validations'."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.reverse import reverse

from api.fields import StrictCharField, StrictSerializer
from wiki import validations
from wiki.categories import MARKDOWN_MAX_LENGTH
from wiki.models import Finding, Validation, max_length


def _url(name, obj, request, *extra):
    return reverse(f"api:{name}", args=[obj.project.slug, obj.number, *extra], request=request)


def markdown(**options):
    return StrictCharField(max_length=MARKDOWN_MAX_LENGTH, trim_whitespace=False, **options)


class PinnedSerializer(StrictSerializer):
    page = StrictCharField(help_text="The page's slug (a category name for category pages).")
    revision = serializers.IntegerField(min_value=1)


class SignatureSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="The validator who signed the conclusion.")
    at = serializers.DateTimeField()
    digest = serializers.CharField(
        help_text="The audit chain digest of the conclusion's history row: "
        "GET .../audit/verify/ proves it unchanged."
    )


class ValidationSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    url = serializers.SerializerMethodField()
    title = serializers.CharField()
    scope = serializers.CharField(help_text="Markdown.")
    pinned = PinnedSerializer(many=True, help_text="The page revisions validated.")
    validator = serializers.CharField(source="validator_name")
    opened_at = serializers.DateTimeField()
    outcome = serializers.ChoiceField(
        choices=Validation.Outcome.choices,
        allow_blank=True,
        help_text="Empty while the validation is open.",
    )
    conclusion = serializers.CharField(help_text="Markdown.")
    concluded_at = serializers.DateTimeField(allow_null=True)
    concluded_by = serializers.CharField(source="concluded_by_name")
    signature = serializers.SerializerMethodField()
    findings_url = serializers.SerializerMethodField()

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, validation):
        return _url("validation-detail", validation, self.context["request"])

    @extend_schema_field(SignatureSerializer(allow_null=True))
    def get_signature(self, validation):
        digests = self.context.get("signatures")  # a list's, read at once
        if validation.is_open:
            return None
        if digests is None:
            signed = validations.signature(validation)
        elif validation.pk in digests:
            signed = validations.Signature(
                validation.concluded_by_name, validation.concluded_at, digests[validation.pk]
            )
        else:
            signed = None
        return SignatureSerializer(signed).data if signed else None

    @extend_schema_field(OpenApiTypes.URI)
    def get_findings_url(self, validation):
        url = reverse(
            "api:finding-list", args=[validation.project.slug], request=self.context["request"]
        )
        return f"{url}?validation={validation.number}"


class ValidationCreateSerializer(StrictSerializer):
    title = StrictCharField(max_length=max_length(Validation, "title"))
    scope = markdown(required=False, allow_blank=True)
    pinned = PinnedSerializer(
        many=True,
        required=False,
        help_text="The page revisions to validate; by default every page at its current one.",
    )


class ConclusionSerializer(StrictSerializer):
    outcome = serializers.ChoiceField(
        choices=Validation.Outcome.choices,
        help_text="'approved' needs every finding of the validation closed or accepted as a "
        "risk; unresolved findings are the conditions of 'approved_with_conditions'.",
    )
    conclusion = markdown()


class StepSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Finding.Status.choices)
    at = serializers.DateTimeField()
    user = serializers.CharField(source="username")
    reason = serializers.CharField()


class FindingSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    url = serializers.SerializerMethodField()
    validation = serializers.IntegerField(source="validation.number")
    title = serializers.CharField()
    description = serializers.CharField(help_text="Markdown.")
    severity = serializers.ChoiceField(choices=Finding.Severity.choices)
    page = serializers.CharField(source="page.slug", allow_null=True, default=None)
    field = serializers.CharField()
    page_revision = serializers.IntegerField(allow_null=True)
    record = serializers.CharField(
        help_text="deployment:<id>, training_run:<id> or model_version:<version>; or empty."
    )
    owner = serializers.CharField(source="owner_name")
    due_date = serializers.DateField(allow_null=True)
    overdue = serializers.BooleanField(source="is_overdue")
    status = serializers.ChoiceField(choices=Finding.Status.choices)
    remediation = serializers.CharField(help_text="Markdown: the owner's proposal.")
    risk_justification = serializers.CharField()
    accepted_by = serializers.CharField(source="accepted_by_name")
    closed_by = serializers.CharField(source="closed_by_name")
    created_by = serializers.CharField(source="created_by_name")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(allow_null=True)
    revision = serializers.IntegerField(help_text="The finding's own; its ETag.")
    comments_url = serializers.SerializerMethodField()

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, finding):
        return _url("finding-detail", finding, self.context["request"])

    @extend_schema_field(OpenApiTypes.URI)
    def get_comments_url(self, finding):
        return _url("finding-comment-list", finding, self.context["request"])


class FindingDetailSerializer(FindingSerializer):
    lifecycle = serializers.SerializerMethodField()

    @extend_schema_field(StepSerializer(many=True))
    def get_lifecycle(self, finding):
        """Each status it had, who gave it and when, oldest first."""
        return StepSerializer(validations.lifecycle(finding), many=True).data


class FindingCreateSerializer(StrictSerializer):
    validation = serializers.IntegerField(
        min_value=1,
        required=False,
        help_text="The number of the open validation it is filed in; may be left out while "
        "the project has exactly one open.",
    )
    title = StrictCharField(max_length=max_length(Finding, "title"))
    description = markdown()
    severity = serializers.ChoiceField(choices=Finding.Severity.choices)
    page = StrictCharField(required=False, allow_blank=True, help_text="A page's slug.")
    field = StrictCharField(
        required=False, allow_blank=True, max_length=max_length(Finding, "field"),
        help_text="A field of the page's category.",
    )  # fmt: skip
    page_revision = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, help_text="A revision of the page."
    )
    record = StrictCharField(
        required=False, allow_blank=True, max_length=max_length(Finding, "record"),
        help_text="deployment:<id>, training_run:<id> or model_version:<version>.",
    )  # fmt: skip
    owner = StrictCharField(
        required=False, allow_blank=True, help_text="The user name of who remedies it."
    )
    due_date = serializers.DateField(required=False, allow_null=True)

    def to_internal_value(self, data):
        if isinstance(data, dict) and "revision" in data:
            raise serializers.ValidationError(
                {"revision": ["The page revision a finding is about is page_revision "
                              "(revision is the finding's own, read-only)."]}
            )  # fmt: skip
        return super().to_internal_value(data)


class FindingUpdateSerializer(StrictSerializer):
    """A change of status, with what the transition needs, and of the owner or due date."""

    status = serializers.ChoiceField(
        choices=Finding.Status.choices,
        required=False,
        help_text="open → remediation_proposed (with remediation) → closed (by a validator, "
        "comment optional) or back to open (by a validator, with a comment); open or "
        "remediation_proposed → accepted_risk (by a maintainer, with risk_justification).",
    )
    remediation = markdown(required=False)
    comment = markdown(required=False)
    risk_justification = markdown(required=False)
    owner = StrictCharField(required=False, allow_blank=True, allow_null=True)
    due_date = serializers.DateField(required=False, allow_null=True)


class CommentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    author = serializers.CharField(source="author_name")
    body = serializers.CharField(help_text="Markdown.")
    created_at = serializers.DateTimeField()


class CommentCreateSerializer(StrictSerializer):
    body = markdown()
