"""Records pipelines post: training runs, deployments (and their life cycle), model versions."""

from django.db.models import FloatField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, mixins, status
from rest_framework.response import Response

from api.auth import Scope
from api.pagination import NumberedPages, RecordCursor
from api.serializers import (
    AwareDateTimeField,
    DeploymentSerializer,
    ModelVersionSerializer,
    TrainingRunSerializer,
)
from api.views.base import ApiView, idempotent
from wiki.models import Deployment, ModelVersion, TrainingRun
from wiki.services.records import (
    DEPLOYMENT_UPDATE_FIELDS,
    create_model_version,
    record_deployment,
    record_training_run,
    update_deployment,
)

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key", str, OpenApiParameter.HEADER,
    description="Retry-safe writes: a replay with the same key and body returns the first "
    "response (200) and creates nothing; the same key with another body is a 422.",
)  # fmt: skip


def _filter_value(request, name):
    value = request.query_params.get(name)
    return value if value not in (None, "") else None


def _time_filter(request, name):
    value = _filter_value(request, name)
    if value is None:
        return None
    try:
        return AwareDateTimeField().to_internal_value(value)
    except exceptions.ValidationError as error:
        raise exceptions.ValidationError({name: error.detail}) from None


def _choice_filter(request, name, choices):
    value = _filter_value(request, name)
    if value is not None and value not in choices:
        raise exceptions.ValidationError({name: [f"Must be one of: {', '.join(choices)}."]})
    return value


class RecordList(mixins.ListModelMixin, ApiView):
    """Shared by the record lists: filters, ordering, cursor pages, exactly-once create."""

    pagination_class = RecordCursor
    scopes = ApiView.scopes | {"POST": Scope.RECORDS_WRITE}
    model = None
    cursor_ordering = "-started_at"

    def filtered(self, project):
        request = self.request
        records = self.model.objects.filter(project=project).select_related(
            "model_version", "project"
        )
        version = _filter_value(request, "model_version")
        if version is not None:
            records = records.filter(model_version__version=version)
        record_status = _choice_filter(request, "status", self.model.Status.values)
        if record_status is not None:
            records = records.filter(status=record_status)
        since, until = _time_filter(request, "since"), _time_filter(request, "until")
        if since is not None:
            records = records.filter(started_at__gte=since)
        if until is not None:
            records = records.filter(started_at__lt=until)
        return records

    def order(self, records):
        ordering = _choice_filter(self.request, "ordering", ["started_at", "-started_at"])
        if ordering == "started_at":
            self.cursor_ordering = "started_at"
        return records

    def get_queryset(self):
        return self.order(self.filtered(self.get_project()))


class TrainingRunList(RecordList):
    model = TrainingRun
    serializer_class = TrainingRunSerializer

    def filtered(self, project):
        records = super().filtered(project)
        commit = _filter_value(self.request, "git_commit")
        if commit is not None:
            records = records.filter(git_commit__startswith=commit)
        return records

    def order(self, records):
        ordering = _filter_value(self.request, "ordering") or "-started_at"
        name = ordering.lstrip("-")
        if not name.startswith("metric:"):
            return super().order(records)
        metric = name.removeprefix("metric:")
        if not metric:
            raise exceptions.ValidationError({"ordering": ["Name a metric: metric:<name>."]})
        # Runs without the metric cannot be placed in its order: they are left out.
        records = records.filter(metrics__has_key=metric).annotate(
            metric_value=Cast(KeyTextTransform(metric, "metrics"), FloatField())
        )
        self.cursor_ordering = "-metric_value" if ordering.startswith("-") else "metric_value"
        return records

    @extend_schema(
        parameters=[
            OpenApiParameter("model_version", str, description="Exact model version."),
            OpenApiParameter("status", str, enum=TrainingRun.Status.values),
            OpenApiParameter(
                "since", str, description="Started at or after (ISO 8601, with zone)."
            ),
            OpenApiParameter("until", str, description="Started before (ISO 8601, with zone)."),
            OpenApiParameter("git_commit", str, description="Commit hash or its prefix."),
            OpenApiParameter(
                "ordering",
                str,
                description="started_at, -started_at (default), metric:<name> or "
                "-metric:<name> (runs without that metric are left out).",
            ),
        ],  # fmt: skip
    )
    def get(self, request, project):
        return self.list(request)

    @extend_schema(parameters=[IDEMPOTENCY_KEY], responses={201: TrainingRunSerializer})
    def post(self, request, project):
        project = self.get_project()

        def write():
            serializer = self.get_serializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
            # The same serializer shows the stored run (one serializer per request).
            serializer.instance = record_training_run(project, actor=self.actor(), **data)
            return serializer.data

        return idempotent(self, project, write, status.HTTP_201_CREATED)


class DeploymentList(RecordList):
    model = Deployment
    serializer_class = DeploymentSerializer

    def filtered(self, project):
        records = super().filtered(project)
        environment = _filter_value(self.request, "environment")
        if environment is not None:
            records = records.filter(environment=environment)
        return records

    @extend_schema(
        parameters=[
            OpenApiParameter("model_version", str, description="Exact model version."),
            OpenApiParameter("environment", str, description="e.g. staging, production."),
            OpenApiParameter("status", str, enum=Deployment.Status.values),
            OpenApiParameter(
                "since", str, description="Started at or after (ISO 8601, with zone)."
            ),
            OpenApiParameter("until", str, description="Started before (ISO 8601, with zone)."),
            OpenApiParameter("ordering", str, enum=["started_at", "-started_at"]),
        ],
    )
    def get(self, request, project):
        return self.list(request)

    @extend_schema(parameters=[IDEMPOTENCY_KEY], responses={201: DeploymentSerializer})
    def post(self, request, project):
        project = self.get_project()

        def write():
            serializer = self.get_serializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
            serializer.instance = record_deployment(project, actor=self.actor(), **data)
            return serializer.data

        return idempotent(self, project, write, status.HTTP_201_CREATED)


class RecordDetail(ApiView):
    model = None

    def get_record(self):
        project = self.get_project()
        record = (
            self.model.objects.filter(project=project, pk=self.kwargs["pk"])
            .select_related("model_version", "project")
            .first()
        )
        if record is None:
            name = self.model._meta.verbose_name
            raise exceptions.NotFound(f"{project.name} has no {name} {self.kwargs['pk']}.")
        return record

    def get(self, request, project, pk):
        return Response(self.get_serializer(self.get_record()).data)


class TrainingRunDetail(RecordDetail):
    """A training run. Records are append-only: no change or deletion."""

    model = TrainingRun
    serializer_class = TrainingRunSerializer


class DeploymentDetail(RecordDetail):
    model = Deployment
    serializer_class = DeploymentSerializer
    scopes = ApiView.scopes | {"PATCH": Scope.RECORDS_WRITE}

    @extend_schema(
        parameters=[IDEMPOTENCY_KEY],
        description="Move the deployment forward: status (pending → in_progress → succeeded "
        "| failed; succeeded → rolled_back), finished_at (once) and checks (appended). Any "
        "other change is a 409.",
    )
    def patch(self, request, project, pk):
        deployment = self.get_record()

        def write():
            serializer = self.get_serializer(deployment, data=request.data, partial=True)
            serializer.is_valid(raise_exception=True)
            changes = dict(serializer.validated_data)
            if "checks" in changes:
                changes["checks"] = [dict(check) for check in changes["checks"]]
            # Restating a fixed field's current value is no change; changing it is a 409.
            for name in set(changes) - DEPLOYMENT_UPDATE_FIELDS:
                current = getattr(deployment, name)
                if name == "model_version":
                    current = current.version
                if changes[name] == current:
                    del changes[name]
            serializer.instance = update_deployment(deployment, actor=self.actor(), **changes)
            return serializer.data

        return idempotent(self, deployment.project, write, status.HTTP_200_OK)


class ModelVersionList(mixins.ListModelMixin, ApiView):
    serializer_class = ModelVersionSerializer
    pagination_class = NumberedPages
    scopes = ApiView.scopes | {"POST": Scope.PAGES_WRITE}

    def get_queryset(self):
        return ModelVersion.objects.filter(project=self.get_project()).order_by(
            "-created_at", "-id"
        )

    def get(self, request, project):
        return self.list(request)

    def post(self, request, project):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = create_model_version(
            self.get_project(), actor=self.actor(), **serializer.validated_data
        )
        return Response(self.get_serializer(version).data, status=status.HTTP_201_CREATED)
