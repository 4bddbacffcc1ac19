"""Records pipelines post: training runs, deployments (and their life cycle), model versions."""

import json
import re

from django.db.models import FloatField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.http import StreamingHttpResponse
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, mixins, status
from rest_framework.response import Response

from api.auth import Scope
from api.errors import ErrorSerializer
from api.pagination import NumberedPages, RecordCursor
from api.parsers import SeriesJSONParser
from api.serializers import (
    SERIES,
    DeploymentSerializer,
    DeploymentUpdateSerializer,
    ModelVersionSerializer,
    SeriesAppendedSerializer,
    SeriesSerializer,
    TrainingRunSerializer,
)
from api.views.base import (
    IDEMPOTENCY_KEY,
    LOCATION,
    REPLAYED,
    TEXT,
    TIME,
    ApiView,
    Filters,
    idempotent,
    list_responses,
    responses,
)
from wiki import series as curves
from wiki.models import Deployment, ModelVersion, TrainingRun
from wiki.services import series as series_service
from wiki.services.records import (
    DEPLOYMENT_UPDATE_FIELDS,
    create_model_version,
    record_deployment,
    record_training_run,
    update_deployment,
)

# Points per curve a GET of a run's series may ask for (max_points), and its default.
MIN_POINTS, MAX_POINTS, DEFAULT_POINTS = 10, 5000, 1000
SERIES_TOO_LARGE = OpenApiResponse(ErrorSerializer, description="The body is over 4 MiB.")

RECORD_FILTERS = [
    OpenApiParameter("model_version", TEXT, description="Exact model version."),
    OpenApiParameter("since", TIME, description="Started at or after (ISO 8601, with zone)."),
    OpenApiParameter("until", TIME, description="Started before (ISO 8601, with zone)."),
    OpenApiParameter("git_commit", TEXT, description="Commit hash or its prefix."),
]


class RecordList(mixins.ListModelMixin, ApiView):
    """Shared by the record lists: filters, ordering, cursor pages, exactly-once create."""

    pagination_class = RecordCursor
    scopes = ApiView.scopes | {"POST": Scope.RECORDS_WRITE}
    model = None
    cursor_ordering = "-started_at"
    filters = {"model_version", "status", "since", "until", "git_commit", "ordering"}

    def filtered(self, project, query):
        records = self.model.objects.filter(project=project).select_related(
            "model_version", "project"
        )
        version = query.text("model_version")
        if version is not None:
            records = records.filter(model_version__version=version)
        record_status = query.choice("status", self.model.Status.values)
        if record_status is not None:
            records = records.filter(status=record_status)
        since, until = query.time("since"), query.time("until")
        if since is not None:
            records = records.filter(started_at__gte=since)
        if until is not None:
            records = records.filter(started_at__lt=until)
        commit = query.text("git_commit")
        if commit is not None:
            records = records.filter(git_commit__istartswith=commit)
        return records

    def order(self, records, query):
        if query.choice("ordering", ["started_at", "-started_at"]) == "started_at":
            self.cursor_ordering = "started_at"
        return records

    def get_queryset(self):
        query = self.query(self.filters)
        return self.order(self.filtered(self.get_project(), query), query)

    def create(self, record):
        """Validate the body, store it with ``record(project, actor, **data)``: 201."""
        project = self.get_project()

        def write():
            serializer = self.get_serializer(data=self.request.data)
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
            # The same serializer shows the stored record (one serializer per request).
            serializer.instance = record(project, actor=self.actor(), **data)
            return serializer.data

        return idempotent(self, project, write, status.HTTP_201_CREATED)


class TrainingRunList(RecordList):
    """Training runs of a project, newest first. Post each run once it ended: records are
    append-only."""

    model = TrainingRun
    serializer_class = TrainingRunSerializer
    parser_classes = [SeriesJSONParser]  # a run may carry its metric series

    def order(self, records, query):
        ordering = query.text("ordering") or "-started_at"
        name = ordering.lstrip("-")
        if not name.startswith("metric:"):
            if name != "started_at":
                raise exceptions.ValidationError(
                    {"ordering": ["Use started_at, -started_at, metric:<name> or -metric:<name>."]}
                )
            return super().order(records, query)
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
            *RECORD_FILTERS,
            OpenApiParameter("status", str, enum=TrainingRun.Status.values),
            OpenApiParameter(
                "ordering",
                TEXT,
                description="started_at, -started_at (default), metric:<name> or "
                "-metric:<name> (runs without that metric are left out).",
            ),
        ],  # fmt: skip
        responses=list_responses(TrainingRunSerializer),
    )
    def get(self, request, project):
        return self.list(request)

    @extend_schema(
        parameters=[IDEMPOTENCY_KEY, REPLAYED, LOCATION],
        responses=responses(
            {201: TrainingRunSerializer}, 400, 404, 413, 415, 422, replay=TrainingRunSerializer
        )
        | {413: SERIES_TOO_LARGE},
    )
    def post(self, request, project):
        return self.create(record_training_run)


class DeploymentList(RecordList):
    """Deployments of a project, newest first. Post one as it starts (pending or
    in_progress) and PATCH it forward, or post it once it ended."""

    model = Deployment
    serializer_class = DeploymentSerializer
    filters = RecordList.filters | {"environment"}

    def filtered(self, project, query):
        records = super().filtered(project, query)
        environment = query.text("environment")
        if environment is not None:
            records = records.filter(environment=environment)
        return records

    @extend_schema(
        parameters=[
            *RECORD_FILTERS,
            OpenApiParameter("environment", TEXT, description="e.g. staging, production."),
            OpenApiParameter("status", str, enum=Deployment.Status.values),
            OpenApiParameter("ordering", str, enum=["started_at", "-started_at"]),
        ],
        responses=list_responses(DeploymentSerializer),
    )
    def get(self, request, project):
        return self.list(request)

    @extend_schema(
        parameters=[IDEMPOTENCY_KEY, REPLAYED, LOCATION],
        responses=responses(
            {201: DeploymentSerializer}, 400, 404, 413, 415, 422, replay=DeploymentSerializer
        ),
    )
    def post(self, request, project):
        return self.create(record_deployment)


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

    @extend_schema(responses=responses({200: TrainingRunSerializer}, 404))
    def get(self, request, project, pk):
        return super().get(request, project, pk)


class TrainingRunSeries(RecordDetail):
    """A training run's learning curves: POST appends points (up to 10,000 per call, all
    metrics together; bodies up to 4 MiB), GET reads every metric's curve, each with its
    real total and whether it was downsampled."""

    model = TrainingRun
    serializer_class = SeriesSerializer
    parser_classes = [SeriesJSONParser]
    scopes = ApiView.scopes | {"POST": Scope.RECORDS_WRITE}

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "metric",
                str,
                many=True,
                explode=True,
                description="Only this metric (repeatable); by default every one.",
            ),
            OpenApiParameter(
                "max_points",
                {"type": "integer", "minimum": MIN_POINTS, "maximum": MAX_POINTS},
                description=f"Points per curve at most (default {DEFAULT_POINTS}); a curve "
                "with more is downsampled (the first and last points, and the lowest and "
                "highest of each bucket of steps).",
            ),
            OpenApiParameter(
                "raw",
                str,
                enum=["1"],
                description="Every point as stored, [step, value, timestamp or null], in the "
                "order appended, streamed (no max_points).",
            ),
        ],  # fmt: skip
        responses=responses({200: SeriesSerializer}, 400, 404),
    )
    def get(self, request, project, pk):
        query = Filters(request, {"metric", "max_points", "raw"}, repeatable={"metric"})
        run = self.get_record()
        metrics = query.texts("metric") or None
        if query.choice("raw", ["1"]):
            if query.text("max_points") is not None:
                raise exceptions.ValidationError({"max_points": ["Not with raw=1."]})
            return self.streamed(run, metrics)
        max_points = query.text("max_points") or str(DEFAULT_POINTS)
        if not re.fullmatch(r"[0-9]{1,5}", max_points) or not (
            MIN_POINTS <= int(max_points) <= MAX_POINTS
        ):
            raise exceptions.ValidationError(
                {"max_points": [f"A whole number from {MIN_POINTS} to {MAX_POINTS}."]}
            )
        found = curves.curves(run, metrics, max_points=int(max_points))
        return Response({
            "run": run.pk,
            "max_points": int(max_points),
            "metrics": [
                {"metric": c.metric, "total": c.total, "downsampled": c.downsampled,
                 "points": c.points}
                for c in found
            ],
        })  # fmt: skip

    def streamed(self, run, metrics):
        """Every stored point, written out chunk by chunk as stored (already JSON)."""

        def body():
            yield f'{{"run":{run.pk},"max_points":null,"metrics":['
            current, total = None, 0
            for metric, count, text in curves.stored(run, metrics):
                if metric != current:
                    if current is not None:
                        yield f'],"total":{total},"downsampled":false}},'
                    yield f'{{"metric":{json.dumps(metric)},"points":['
                    current, total = metric, 0
                else:
                    yield ","
                yield text[1:-1]
                total += count
            if current is not None:
                yield f'],"total":{total},"downsampled":false}}'
            yield "]}"

        return StreamingHttpResponse(body(), content_type="application/json")

    @extend_schema(
        request={"application/json": SERIES},
        parameters=[IDEMPOTENCY_KEY, REPLAYED, LOCATION],
        responses=responses(
            {201: SeriesAppendedSerializer}, 400, 404, 413, 415, 422,
            replay=SeriesAppendedSerializer,
        ) | {413: SERIES_TOO_LARGE},
    )  # fmt: skip
    def post(self, request, project, pk):
        run = self.get_record()

        def write():
            chunks = series_service.append(run, request.data, actor=self.actor())
            appended = {chunk.metric: chunk.count for chunk in chunks}
            url = reverse("api:training-run-series", args=[run.project.slug, run.pk])
            return {
                "url": request.build_absolute_uri(url),
                "appended": appended,
                "totals": curves.counts(run),
            }

        return idempotent(self, run.project, write, status.HTTP_201_CREATED)


class DeploymentDetail(RecordDetail):
    """A deployment, and its way forward: status (pending → in_progress → succeeded |
    failed; succeeded → rolled_back), finished_at (once, with a final status; stamped now
    if not given) and checks (added to those recorded). Any other change is a 409."""

    model = Deployment
    serializer_class = DeploymentSerializer
    scopes = ApiView.scopes | {"PATCH": Scope.RECORDS_WRITE}

    @extend_schema(responses=responses({200: DeploymentSerializer}, 404))
    def get(self, request, project, pk):
        return super().get(request, project, pk)

    @extend_schema(
        request=DeploymentUpdateSerializer,
        parameters=[IDEMPOTENCY_KEY, REPLAYED],
        responses=responses({200: DeploymentSerializer}, 400, 404, 409, 413, 415, 422),
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
    """Model versions of a project, newest first. They are made by the records that name
    them; register one by hand ahead of its records with pages:write."""

    serializer_class = ModelVersionSerializer
    pagination_class = NumberedPages
    scopes = ApiView.scopes | {"POST": Scope.PAGES_WRITE}

    def get_queryset(self):
        query = self.query({"version"})
        versions = ModelVersion.objects.filter(project=self.get_project())
        prefix = query.text("version")
        if prefix is not None:
            versions = versions.filter(version__startswith=prefix)
        return versions.order_by("-created_at", "-id")

    @extend_schema(
        parameters=[OpenApiParameter("version", TEXT, description="Version or its prefix.")],
        responses=list_responses(ModelVersionSerializer),
    )
    def get(self, request, project):
        return self.list(request)

    @extend_schema(
        parameters=[IDEMPOTENCY_KEY, REPLAYED],
        responses=responses(
            {201: ModelVersionSerializer},
            400,
            404,
            409,
            413,
            415,
            422,
            replay=ModelVersionSerializer,
        ),  # fmt: skip
    )
    def post(self, request, project):
        project = self.get_project()

        def write():
            serializer = self.get_serializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
            serializer.instance = create_model_version(project, actor=self.actor(), **data)
            return serializer.data

        return idempotent(self, project, write, status.HTTP_201_CREATED)
