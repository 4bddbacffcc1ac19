"""The API's shapes. They check types and names; the services in wiki/ check the rest."""

from datetime import UTC

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.reverse import reverse

from api.fields import (
    SCALAR,
    AwareDateTimeField,
    JSONObjectField,
    ModelVersionNameField,
    StrictBooleanField,
    StrictCharField,
    StrictSerializer,
    json_object,
)
from wiki.as_of import HELP as AS_OF_HELP
from wiki.audit import ACTIONS
from wiki.history import CHANGE_REASON_MAX_LENGTH
from wiki.models import (
    Deployment,
    ExportJob,
    ModelVersion,
    Page,
    Project,
    Template,
    TrainingRun,
    max_length,
)
from wiki.models.base import validate_commit
from wiki.series import counts as series_counts
from wiki.services.pages import MAX_TREE_FILES


def _record_url(view_name, record, request):
    return reverse(view_name, args=[record.project.slug, record.pk], request=request)


class ProjectSerializer(StrictSerializer):
    url = serializers.SerializerMethodField()
    slug = serializers.CharField(max_length=max_length(Project, "slug"))
    name = serializers.CharField(max_length=max_length(Project, "name"))
    summary = serializers.CharField(
        max_length=max_length(Project, "summary"), required=False, allow_blank=True
    )
    owner_team = serializers.CharField(max_length=max_length(Project, "owner_team"))
    tags = serializers.ListField(child=serializers.CharField(), required=False)
    revision = serializers.IntegerField(read_only=True)
    completeness = serializers.SerializerMethodField()
    # On creation: the slug of the template to follow (its latest version; default "default").
    template = serializers.CharField(
        write_only=True, required=False, max_length=max_length(Template, "slug")
    )
    template_slug = serializers.CharField(source="template.slug", read_only=True)
    template_version = serializers.IntegerField(source="template.version", read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)
    change_reason = serializers.CharField(
        write_only=True, required=False, allow_blank=True, max_length=CHANGE_REASON_MAX_LENGTH
    )

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, project):
        return reverse("api:project-detail", args=[project.slug], request=self.context["request"])

    def get_completeness(self, project) -> float:
        """Share of required documentation fields filled, 0..1."""
        return project.completeness / 100


class ProjectUpdateSerializer(ProjectSerializer):
    """PATCH: what it names changes; the slug may be restated but never changed."""

    slug = serializers.CharField(required=False, write_only=True)
    name = serializers.CharField(max_length=max_length(Project, "name"), required=False)
    owner_team = serializers.CharField(max_length=max_length(Project, "owner_team"), required=False)

    def validate_slug(self, value):
        if value != self.context["project"].slug:
            raise serializers.ValidationError("A project's slug never changes (links use it).")
        return value

    def validate_template(self, value):
        raise serializers.ValidationError(
            "A project changes template by an upgrade: POST .../template/."
        )

    def validate(self, data):
        data.pop("slug", None)
        return data


class TemplateChangeSerializer(StrictSerializer):
    """POST .../template/: move the project to a template version (or preview the move)."""

    template = serializers.CharField(max_length=max_length(Template, "slug"))
    version = serializers.IntegerField(min_value=1, required=False)
    dry_run = serializers.BooleanField(default=False)
    change_reason = serializers.CharField(
        required=False, allow_blank=True, max_length=CHANGE_REASON_MAX_LENGTH
    )
    plan_digest = serializers.CharField(
        required=False, max_length=64,
        help_text="The plan_digest of a dry run: the move is refused (409) if it would now "
        "do something else.",
    )  # fmt: skip


class FieldMoveSerializer(serializers.Serializer):
    category = serializers.CharField()
    field = serializers.CharField(source="name")
    label = serializers.CharField()
    to_category = serializers.CharField(allow_null=True)
    to_field = serializers.CharField(source="to_name", allow_null=True)
    why = serializers.CharField()


class CategoryPlanSerializer(serializers.Serializer):
    category = serializers.CharField(source="name")
    label = serializers.CharField()
    new_page = serializers.BooleanField()
    added_fields = serializers.SerializerMethodField()
    moved_in = FieldMoveSerializer(many=True)
    to_body = FieldMoveSerializer(many=True)

    def get_added_fields(self, plan) -> list[str]:
        return [f.name for f in plan.added]


class TemplatePlanSerializer(serializers.Serializer):
    """What a move to another template does (or did), per category of the new one."""

    project = serializers.CharField(source="project.slug")
    template_from = serializers.CharField(source="old.name")
    template_to = serializers.CharField(source="new.name")
    applied = serializers.BooleanField()
    plan_digest = serializers.CharField(
        source="digest", help_text="Send it back with the move to make exactly this one."
    )
    categories = CategoryPlanSerializer(many=True)


class MissingFieldSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    help_text = serializers.CharField()


class PageListSerializer(serializers.Serializer):
    url = serializers.SerializerMethodField()
    category = serializers.CharField(read_only=True)
    slug = serializers.CharField(read_only=True)
    title = serializers.CharField(read_only=True)
    revision = serializers.IntegerField(read_only=True)
    completeness = serializers.SerializerMethodField()
    updated_at = serializers.DateTimeField(read_only=True)
    review_state = serializers.ChoiceField(choices=Page.ReviewState.choices, read_only=True)
    as_of = serializers.SerializerMethodField()

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, page):
        return reverse(
            "api:page-detail", args=[page.project.slug, page.slug], request=self.context["request"]
        )

    def get_as_of(self, page) -> str | None:
        """The moment this is the page as it stood at (?as_of=, in UTC); null: today."""
        moment = self.context.get("as_of")
        return moment.at.astimezone(UTC).isoformat() if moment is not None else None

    def get_completeness(self, page) -> float:
        """Share of the category's required fields filled, 0..1 (1 for free pages)."""
        filled, required = page.completeness
        return filled / required if required else 1.0


class ApprovalSerializer(serializers.Serializer):
    """The latest approval of a page: which revision, by whom, when (null if none)."""

    revision = serializers.IntegerField(source="approved_revision")
    by = serializers.CharField(source="approved_by_name")
    at = serializers.DateTimeField(source="approved_at")
    comment = serializers.CharField(source="approval_comment")
    current = serializers.SerializerMethodField()

    def get_current(self, page) -> bool:
        """Whether the approved revision is the page's current one."""
        return page.approved_revision == page.revision


def _summary_list(help_text):
    return serializers.ListField(child=serializers.DictField(), required=False, help_text=help_text)


class RecordsSummarySerializer(serializers.Serializer):
    """What the records say on the model, deployment and maintenance pages, each with its
    own keys; null on the other pages."""

    versions_total = serializers.IntegerField(
        required=False, help_text="Model page: how many model versions there are."
    )
    key_metrics = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Model page: the metrics the latest runs report, compared across versions.",
    )
    latest_run = serializers.DictField(
        required=False,
        allow_null=True,
        help_text="Model page: the latest training run (id, model_version, status, "
        "started_at, hyperparameters, metrics); null before the first.",
    )
    model_versions = _summary_list(
        "Model page: the latest versions (version, created_at, and their latest "
        "training_runs and deployments)."
    )
    environments = _summary_list(
        "Deployment page: per environment, the version live there (environment, "
        "model_version, deployment_id, target, since)."
    )
    updates = _summary_list(
        "Maintenance page: the update log, newest first (deployment_id, model_version, "
        "environment, status, reason, recorded_by, recorded_with_token, started_at, "
        "finished_at, checks)."
    )


class PageSerializer(PageListSerializer):
    fields = serializers.JSONField(read_only=True)
    body = serializers.CharField(read_only=True)
    body_html = serializers.SerializerMethodField()
    missing_fields = serializers.SerializerMethodField()
    updated_by = serializers.SerializerMethodField()
    approval = serializers.SerializerMethodField()
    records_summary = serializers.SerializerMethodField()
    stale = serializers.SerializerMethodField()
    stale_reasons = serializers.SerializerMethodField()
    edited_at = serializers.DateTimeField(read_only=True)

    @extend_schema_field(ApprovalSerializer(allow_null=True))
    def get_approval(self, page):
        return ApprovalSerializer(page).data if page.approved_revision else None

    def get_body_html(self, page) -> str:
        """The body rendered to sanitized HTML."""
        return self.context["body_html"]

    @extend_schema_field(MissingFieldSerializer(many=True))
    def get_missing_fields(self, page):
        return [
            {"name": f.name, "label": f.label, "help_text": f.help_text}
            for f in page.missing_fields
        ]

    def get_updated_by(self, page) -> str:
        """Who saved the current revision (user name; empty for the system)."""
        return self.context["updated_by"]

    @extend_schema_field(RecordsSummarySerializer(allow_null=True))
    def get_records_summary(self, page):
        """Model, deployment and maintenance pages: what the records say (else null)."""
        return self.context["records_summary"]

    def get_stale(self, page) -> bool:
        """Whether records that concern the page arrived since its last edit."""
        return bool(self.context["stale_reasons"])

    def get_stale_reasons(self, page) -> list[str]:
        """What arrived since the page's last edit (edited_at), newest first."""
        return self.context["stale_reasons"]


class PageWriteSerializer(StrictSerializer):
    """PUT replaces fields and body; PATCH changes what it names (fields key by key)."""

    title = StrictCharField(max_length=max_length(Page, "title"), required=False)
    fields = serializers.DictField(required=False, allow_empty=True)
    body = StrictCharField(required=False, allow_blank=True, trim_whitespace=False)
    change_reason = StrictCharField(
        required=False, allow_blank=True, max_length=CHANGE_REASON_MAX_LENGTH
    )

    def __init__(self, *args, read_only_names=(), **kwargs):
        super().__init__(*args, **kwargs)
        # A client may send back what it read: the read-only parts are accepted and ignored.
        for name in read_only_names:
            self.fields.setdefault(
                name, serializers.JSONField(required=False, write_only=True, allow_null=True)
            )


class TreeSourceSerializer(StrictSerializer):
    """The commit a tree is pushed from: recorded as its revisions' origin."""

    repository = StrictCharField(max_length=500, help_text="The repository's URL.")
    branch = StrictCharField(max_length=255, required=False, allow_blank=True, default="")
    commit = StrictCharField(max_length=64, validators=[validate_commit])


class TreeFileSerializer(StrictSerializer):
    path = StrictCharField(max_length=500, help_text="The file's path in the tree.")
    content = StrictCharField(allow_blank=True, trim_whitespace=False)
    previous = StrictCharField(
        required=False, allow_null=True, default=None, trim_whitespace=False,
        help_text="The file at the commit before this one (omit if it was not there): a "
        "page holding that may be replaced, though it was last written in the wiki.",
    )  # fmt: skip


class TreePushSerializer(StrictSerializer):
    source = TreeSourceSerializer()
    message = StrictCharField(
        required=False, allow_blank=True, default="", max_length=CHANGE_REASON_MAX_LENGTH,
        help_text="The commit message: the change reason of every revision written.",
    )  # fmt: skip
    files = serializers.ListField(
        child=TreeFileSerializer(), allow_empty=False, max_length=MAX_TREE_FILES
    )


class TreePageSerializer(serializers.Serializer):
    path = serializers.CharField()
    page = serializers.CharField(source="page.slug")
    revision = serializers.IntegerField(source="page.revision")
    outcome = serializers.ChoiceField(choices=["unchanged", "changed", "created"])


class TreePushedSerializer(serializers.Serializer):
    pages = TreePageSerializer(many=True)


class DatasetSerializer(StrictSerializer):
    name = StrictCharField(
        source="dataset_name", max_length=max_length(TrainingRun, "dataset_name"), required=False
    )
    version = StrictCharField(
        source="dataset_version",
        max_length=max_length(TrainingRun, "dataset_version"),
        required=False,
    )
    uri = StrictCharField(
        source="dataset_uri", max_length=max_length(TrainingRun, "dataset_uri"), required=False
    )


# Learning curves (wiki.series): as posted with a run or to its series, and as read.
SERIES_POINT = {
    "type": "object",
    "required": ["step", "value"],
    "properties": {
        "step": {"type": "integer", "minimum": 0},
        "value": {"type": "number"},
        "timestamp": {"type": "string", "format": "date-time", "nullable": True},
    },
    "additionalProperties": False,
}
SERIES = {
    "type": "object",
    "additionalProperties": {"type": "array", "items": SERIES_POINT, "minItems": 1},
    "description": "Points of each metric by name (at most 10,000 points in all per call).",
}


@extend_schema_field(SERIES)
class SeriesField(JSONObjectField):
    """A run's metric series as posted, taken whole (wiki.series checks every point)."""


class CurveSerializer(serializers.Serializer):
    metric = serializers.CharField()
    total = serializers.IntegerField(help_text="How many points the run holds.")
    downsampled = serializers.BooleanField(
        help_text="Whether points are a selection of them: the first and last, and the lowest "
        "and highest of each bucket of steps."
    )
    points = serializers.ListField(
        child=serializers.ListField(child=serializers.JSONField()),
        help_text="[step, value] by step; with raw=1, [step, value, timestamp or null] in "
        "the order appended.",
    )


class SeriesSerializer(serializers.Serializer):
    run = serializers.IntegerField()
    max_points = serializers.IntegerField(allow_null=True, help_text="null with raw=1.")
    metrics = CurveSerializer(many=True)


class SeriesAppendedSerializer(serializers.Serializer):
    url = serializers.URLField(help_text="The run's series.")
    appended = serializers.DictField(
        child=serializers.IntegerField(), help_text="Points added, by metric."
    )
    totals = serializers.DictField(
        child=serializers.IntegerField(), help_text="Points the run now holds, by metric."
    )


class TrainingRunSerializer(StrictSerializer):
    id = serializers.IntegerField(read_only=True)
    url = serializers.SerializerMethodField()
    model_version = ModelVersionNameField()
    status = serializers.ChoiceField(choices=TrainingRun.Status.choices)
    started_at = AwareDateTimeField()
    finished_at = AwareDateTimeField(required=False, allow_null=True)
    git_commit = StrictCharField(
        max_length=max_length(TrainingRun, "git_commit"), required=False, allow_blank=True
    )
    pipeline_url = serializers.URLField(
        max_length=max_length(TrainingRun, "pipeline_url"), required=False, allow_blank=True
    )
    dataset = DatasetSerializer(source="*", required=False)
    hyperparameters = json_object(SCALAR)
    metrics = json_object({"type": "number"})
    tags = json_object({"type": "string"})
    environment = json_object({})
    notes = StrictCharField(required=False, allow_blank=True, trim_whitespace=False)
    created_at = serializers.DateTimeField(read_only=True)
    series = SeriesField(write_only=True, required=False)
    series_points = serializers.SerializerMethodField()

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, run):
        return _record_url("api:training-run-detail", run, self.context["request"])

    @extend_schema_field(
        {"type": "object", "additionalProperties": {"type": "integer"}, "nullable": True}
    )
    def get_series_points(self, run):
        """Points of each metric series the run holds (its .../series/ has them); null in
        lists, which do not count them."""
        if isinstance(self.parent, serializers.ListSerializer):
            return None
        if hasattr(self, "_validated_data"):  # just posted: the run holds what was sent
            posted = self.validated_data.get("series", {})
            return {metric: len(posted[metric]) for metric in sorted(posted)}
        return series_counts(run)


class CheckSerializer(StrictSerializer):
    name = StrictCharField(max_length=200)
    passed = StrictBooleanField()
    value = serializers.JSONField(required=False)
    details = StrictCharField(required=False, allow_blank=True)


class DeploymentSerializer(StrictSerializer):
    id = serializers.IntegerField(read_only=True)
    url = serializers.SerializerMethodField()
    model_version = ModelVersionNameField()
    environment = StrictCharField(max_length=max_length(Deployment, "environment"))
    target = StrictCharField(
        max_length=max_length(Deployment, "target"), required=False, allow_blank=True
    )
    status = serializers.ChoiceField(choices=Deployment.Status.choices)
    config = json_object({})
    git_commit = StrictCharField(
        max_length=max_length(TrainingRun, "git_commit"), required=False, allow_blank=True
    )
    pipeline_url = serializers.URLField(
        max_length=max_length(TrainingRun, "pipeline_url"), required=False, allow_blank=True
    )
    reason = StrictCharField(required=False, allow_blank=True, trim_whitespace=False)
    # A deployment is usually recorded as it starts: the time defaults to now.
    started_at = AwareDateTimeField(required=False, default=timezone.now)
    finished_at = AwareDateTimeField(required=False, allow_null=True)
    checks = CheckSerializer(many=True, required=False)
    created_at = serializers.DateTimeField(read_only=True)

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, deployment):
        return _record_url("api:deployment-detail", deployment, self.context["request"])


class DeploymentUpdateSerializer(StrictSerializer):
    """What a PATCH of a deployment may change (restating other fields as they are is
    allowed; changing them is a 409)."""

    status = serializers.ChoiceField(choices=Deployment.Status.choices, required=False)
    finished_at = AwareDateTimeField(required=False)
    checks = CheckSerializer(many=True, required=False)


class ModelVersionSerializer(StrictSerializer):
    id = serializers.IntegerField(read_only=True)
    version = serializers.CharField(max_length=max_length(ModelVersion, "version"))
    description = serializers.CharField(required=False, allow_blank=True)
    created_at = serializers.DateTimeField(read_only=True)
    change_reason = serializers.CharField(
        write_only=True, required=False, allow_blank=True, max_length=CHANGE_REASON_MAX_LENGTH
    )


class AttachmentUploadSerializer(StrictSerializer):
    """An upload (multipart/form-data): the file, and the name to attach it under."""

    file = serializers.FileField(
        help_text="The file. Its type is decided from its content: an image (PNG, JPEG, GIF, "
        "WebP, SVG), a PDF, CSV, JSON, plain text or an HTML report."
    )
    name = serializers.CharField(
        required=False,
        max_length=255,
        help_text="The name to attach it under (default: the file's own), cleaned: ASCII "
        "letters, digits, '.', '_' and '-', ending in its type's extension. An existing "
        "name gets a new version; the earlier ones stay downloadable.",
    )
    change_reason = serializers.CharField(
        required=False, allow_blank=True, max_length=CHANGE_REASON_MAX_LENGTH
    )


class AttachmentSerializer(serializers.Serializer):
    """An attachment as it is now (its current version)."""

    name = serializers.CharField()
    sha256 = serializers.CharField(help_text="Of the bytes; also the download's ETag.")
    size = serializers.IntegerField(help_text="Bytes.")
    content_type = serializers.CharField(help_text="Decided from the content.")
    url = serializers.SerializerMethodField(help_text="Download it here (GET).")
    revision = serializers.IntegerField(
        help_text="1 for the first upload, +1 for each replacement or deletion."
    )
    uploaded_by = serializers.CharField(source="uploaded_by_name")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_url(self, attachment) -> str:
        return f"{self.context['attachments_url']}{attachment.name}/"


class AttachmentVersionSerializer(serializers.Serializer):
    """A version of an attachment: a row of its history, sealed by the audit chain."""

    revision = serializers.IntegerField()
    sha256 = serializers.CharField()
    size = serializers.IntegerField()
    content_type = serializers.CharField()
    deleted = serializers.BooleanField(help_text="This revision deleted the attachment.")
    url = serializers.SerializerMethodField(help_text="Download these bytes here (GET).")
    at = serializers.DateTimeField(source="history_date")
    user = serializers.CharField(source="history_username")
    token = serializers.CharField(source="history_token_name")
    source = serializers.CharField(source="history_source")
    reason = serializers.CharField(source="history_change_reason", allow_null=True)
    request_id = serializers.UUIDField(source="history_request_id", allow_null=True)

    def get_url(self, row) -> str:
        return f"{self.context['attachments_url']}{row.name}/?sha256={row.sha256}"


class RevisionSerializer(serializers.Serializer):
    """A page's revision: who saved it, when, from where, why, in which request."""

    revision = serializers.IntegerField()
    at = serializers.DateTimeField(source="history_date")
    user = serializers.CharField(source="history_username")
    token = serializers.CharField(source="history_token_name")
    source = serializers.CharField(source="history_source")
    reason = serializers.CharField(source="history_change_reason", allow_null=True)
    request_id = serializers.UUIDField(source="history_request_id", allow_null=True)
    origin = serializers.JSONField(
        source="history_origin", allow_null=True,
        help_text="Where another system records this change: for a docs push, "
        '{"tool": "git", "repository", "branch", "commit"}; null for changes made here.',
    )  # fmt: skip
    review_state = serializers.CharField()


class RevisionDetailSerializer(RevisionSerializer):
    title = serializers.CharField()
    fields = serializers.JSONField()
    body = serializers.CharField()
    body_html = serializers.SerializerMethodField()

    def get_body_html(self, row) -> str:
        """The body of this revision, rendered and sanitized."""
        return self.context["body_html"]


class LineSerializer(serializers.Serializer):
    op = serializers.ChoiceField(choices=["equal", "delete", "insert", "replace"])
    old = serializers.CharField(allow_null=True)
    new = serializers.CharField(allow_null=True)


class ChangeSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    changed = serializers.BooleanField()
    old = serializers.CharField()
    new = serializers.CharField()
    lines = LineSerializer(many=True)


class DiffSerializer(serializers.Serializer):
    from_revision = serializers.IntegerField()
    to_revision = serializers.IntegerField()
    changes = ChangeSerializer(many=True)


class RestoreSerializer(StrictSerializer):
    revision = serializers.IntegerField(min_value=1)
    change_reason = StrictCharField(
        required=False, allow_blank=True, max_length=CHANGE_REASON_MAX_LENGTH
    )


class ApproveSerializer(StrictSerializer):
    revision = serializers.IntegerField(
        min_value=1, help_text="The revision you approve: the current one."
    )
    comment = StrictCharField(
        required=False, allow_blank=True, max_length=max_length(Page, "approval_comment")
    )


class ActivitySerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    at = serializers.DateTimeField()
    user = serializers.CharField(source="username")
    source = serializers.CharField()
    kind = serializers.CharField()
    action = serializers.SerializerMethodField()
    object = serializers.CharField(source="object_repr")
    object_id = serializers.IntegerField()
    reason = serializers.CharField()
    request_id = serializers.UUIDField(allow_null=True)
    digest = serializers.CharField()

    def get_action(self, entry) -> str:
        """created, changed or deleted."""
        return ACTIONS[entry.action]


class ExportRequestSerializer(StrictSerializer):
    format = serializers.ChoiceField(choices=ExportJob.Format.values)
    since = serializers.DateField(required=False, allow_null=True, help_text="First day (UTC).")
    until = serializers.DateField(required=False, allow_null=True, help_text="Last day (UTC).")
    include_diffs = StrictBooleanField(
        required=False, default=False, help_text="Full diffs of page changes, not only a list."
    )
    as_of = StrictCharField(
        required=False, allow_null=True, max_length=max_length(ExportJob, "as_of"),
        help_text="A report of the project as it stood at a moment. " + AS_OF_HELP,
    )  # fmt: skip

    def validate(self, attrs):
        if attrs.get("since") and attrs.get("until") and attrs["since"] > attrs["until"]:
            raise serializers.ValidationError({"until": ["The period ends before it starts."]})
        return attrs


class ExportSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.SerializerMethodField(help_text="This status resource.")
    project = serializers.CharField(source="project.slug")
    format = serializers.CharField()
    since = serializers.DateField(allow_null=True)
    until = serializers.DateField(allow_null=True)
    include_diffs = serializers.BooleanField()
    as_of = serializers.CharField(
        allow_null=True, help_text="The moment the report describes; null: when it was built."
    )
    status = serializers.ChoiceField(choices=ExportJob.Status.values)
    progress = serializers.IntegerField(help_text="0 to 100.")
    last_error = serializers.CharField(help_text="Why it failed; empty otherwise.")
    requested_by = serializers.CharField(source="requested_by_name")
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    size = serializers.IntegerField(allow_null=True, help_text="Bytes, once done.")
    sha256 = serializers.CharField(help_text="Of the file, once done.")
    downloads = serializers.IntegerField(help_text="How many times the file was downloaded.")
    download_url = serializers.SerializerMethodField()

    def _absolute(self, name, job):
        return self.context["request"].build_absolute_uri(reverse(name, kwargs={"pk": job.pk}))

    def get_url(self, job) -> str:
        return self._absolute("api:export-detail", job)

    def get_download_url(self, job) -> str | None:
        """Where to POST (no body) for the file, once done: each download is recorded."""
        return self._absolute("api:export-download", job) if job.status == "done" else None
