"""Projects: list, create (admin scope), read, change (admin scope, If-Match)."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, mixins, status
from rest_framework.response import Response

from api.auth import Scope, request_token
from api.serializers import ProjectSerializer, ProjectUpdateSerializer
from api.views.base import ApiView, if_match_revision, with_etag
from wiki.models import Project
from wiki.services.projects import create_project, update_project

IF_MATCH = OpenApiParameter(
    "If-Match", str, OpenApiParameter.HEADER, required=True,
    description='The ETag (revision) you read, e.g. "3"; "*" to skip the check.',
)  # fmt: skip


class ProjectList(mixins.ListModelMixin, ApiView):
    serializer_class = ProjectSerializer
    scopes = ApiView.scopes | {"POST": Scope.ADMIN}

    def get_queryset(self):
        projects = Project.objects.with_category_pages().order_by("slug")
        token = request_token(self.request)
        if token is not None and not token.all_projects:
            projects = projects.filter(slug__in=token.projects)
        return projects

    def get(self, request):
        return self.list(request)

    def post(self, request):
        token = request_token(request)
        if token is not None and not token.all_projects:
            raise exceptions.PermissionDenied(
                "Creating projects needs a token valid for all projects."
            )
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        project = create_project(actor=self.actor(), **serializer.validated_data)
        project = Project.objects.with_category_pages().get(pk=project.pk)
        response = Response(self.get_serializer(project).data, status=status.HTTP_201_CREATED)
        return with_etag(response, project.revision)


class ProjectDetail(ApiView):
    serializer_class = ProjectSerializer
    scopes = ApiView.scopes | {"PATCH": Scope.ADMIN}

    def project(self):
        self.get_project()
        return Project.objects.with_category_pages().get(pk=self._project.pk)

    def get(self, request, project):
        current = self.project()
        return with_etag(Response(self.get_serializer(current).data), current.revision)

    @extend_schema(request=ProjectUpdateSerializer, parameters=[IF_MATCH])
    def patch(self, request, project):
        base_revision = if_match_revision(request)
        context = {"request": request, "project": self.get_project()}
        serializer = ProjectUpdateSerializer(data=request.data, context=context)
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        update_project(
            self.get_project(),
            actor=self.actor(),
            base_revision=base_revision,
            change_reason=changes.pop("change_reason", "") or "Changed through the API",
            **changes,
        )
        current = self.project()
        return with_etag(Response(self.get_serializer(current).data), current.revision)
