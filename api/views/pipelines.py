"""The pipeline a project's workflow page draws: read it, post a new spec."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

from api.auth import Scope
from api.parsers import LimitedJSONParser, YAMLParser
from api.pipeline_serializers import PipelineSerializer
from api.views.base import ApiView, Filters, responses, with_etag
from wiki import pipelines
from wiki.models import Pipeline
from wiki.services.pipelines import post_pipeline, previous_dag

GENERIC_DAG = inline_serializer(
    "GenericDag",
    {
        "name": serializers.CharField(),
        "nodes": serializers.ListField(
            child=inline_serializer(
                "GenericDagNode",
                {
                    "name": serializers.CharField(),
                    "component": serializers.CharField(required=False),
                    "inputs": serializers.ListField(child=serializers.CharField(), required=False),
                    "outputs": serializers.ListField(child=serializers.CharField(), required=False),
                },
            )
        ),
        "edges": serializers.ListField(
            child=inline_serializer(
                "GenericDagEdge", {"from": serializers.CharField(), "to": serializers.CharField()}
            ),
            required=False,
        ),
        "schedule": serializers.CharField(required=False),
    },
)


class PipelineDetail(ApiView):
    """The project's pipeline, as last posted: its DAG (tasks with their inputs, outputs
    and what they run after), schedule, revision, and the step changes of that revision.

    POST a spec as the kfp 2.x compiler writes it (Content-Type: application/yaml; a kfp
    spec in JSON is read too) or a generic DAG from another orchestrator
    (application/json: name, nodes, edges, schedule); needs pages:write. The same DAG as
    the current one saves nothing and answers 200 (so a retry is harmless); another is
    the next revision (201), and the workflow page is stale until it is edited."""

    serializer_class = PipelineSerializer
    parser_classes = [LimitedJSONParser, YAMLParser]
    scopes = ApiView.scopes | {"POST": Scope.PAGES_WRITE}

    def represent(self, pipeline, status_code=status.HTTP_200_OK):
        dag = pipeline.dag
        data = {
            "name": pipeline.name,
            "source": pipeline.source,
            "schedule": dag["schedule"],
            "inputs": dag["inputs"],
            "tasks": dag["tasks"],
            "revision": pipeline.revision,
            "digest": pipeline.digest,
            "updated_at": pipeline.updated_at,
            "changes": pipelines.step_changes(previous_dag(pipeline), dag),
        }
        response = Response(PipelineSerializer(data).data, status=status_code)
        return with_etag(response, pipeline.revision)

    @extend_schema(responses=responses({200: PipelineSerializer}, 404))
    def get(self, request, project):
        project = self.get_project()
        pipeline = Pipeline.objects.filter(project=project).first()
        if pipeline is None:
            raise exceptions.NotFound(f"{project.name} has no pipeline yet: POST one here.")
        return self.represent(pipeline)

    @extend_schema(
        request={"application/yaml": OpenApiTypes.STR, "application/json": GENERIC_DAG},
        parameters=[
            OpenApiParameter(
                "schedule",
                {"type": "string", "minLength": 1},
                description="When the pipeline runs (a cron line, or words), for a kfp "
                "spec, which carries none; a generic DAG may say it in its body instead.",
            ),
            OpenApiParameter(
                "change_reason",
                {"type": "string", "minLength": 1},
                description="Why, for the history (default: the pipeline and revision).",
            ),
        ],  # fmt: skip
        responses=responses({200: PipelineSerializer, 201: PipelineSerializer}, 400, 404, 413, 415),
    )
    def post(self, request, project):
        project = self.get_project()
        query = Filters(request, {"schedule", "change_reason"})
        dag = pipelines.normalize(request.data, schedule=query.text("schedule"))
        pipeline, saved = post_pipeline(
            project, dag, actor=self.actor(), change_reason=query.text("change_reason") or ""
        )
        return self.represent(pipeline, status.HTTP_201_CREATED if saved else status.HTTP_200_OK)
