"""Projects: list, create (admin scope), read, change (admin scope, If-Match)."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, mixins, status
from rest_framework.response import Response

from api.auth import Scope, request_token
from api.serializers import (
    ProjectSerializer,
    ProjectUpdateSerializer,
    TemplateChangeSerializer,
    TemplatePlanSerializer,
)
from api.views.base import (
    IF_MATCH,
    LOCATION,
    TEXT,
    ApiView,
    if_match_revision,
    list_responses,
    responses,
    with_etag,
)
from wiki.access import MAINTAIN, may_create_projects, visible_projects
from wiki.models import Project
from wiki.services.projects import create_project, update_project
from wiki.services.templates import preview_upgrade, template_named, upgrade_project


class ProjectList(mixins.ListModelMixin, ApiView):
    """The projects the caller may see, by slug. Creating one (with its six category pages)
    needs an admin token valid for all projects."""

    serializer_class = ProjectSerializer
    scopes = ApiView.scopes | {"POST": Scope.ADMIN}

    def get_queryset(self):
        query = self.query({"tag", "owner_team"})
        projects = visible_projects(self.request.user).with_category_pages()
        projects = projects.select_related("template").order_by("slug")
        token = request_token(self.request)
        if token is not None and not token.all_projects:
            projects = projects.filter(slug__in=token.projects)
        owner = query.text("owner_team")
        if owner is not None:
            projects = projects.filter(owner_team=owner)
        tag = query.text("tag")
        if tag is not None:
            # A JSON list: SQLite has no "contains" lookup for it, so match in Python.
            tagged = [pk for pk, tags in Project.objects.values_list("pk", "tags") if tag in tags]
            projects = projects.filter(pk__in=tagged)
        return projects

    @extend_schema(
        parameters=[
            OpenApiParameter("tag", TEXT, description="Projects with this tag."),
            OpenApiParameter("owner_team", TEXT, description="Projects of this team."),
        ],
        responses=list_responses(ProjectSerializer),
    )
    def get(self, request):
        return self.list(request)

    @extend_schema(
        parameters=[LOCATION],
        responses=responses({201: ProjectSerializer}, 400, 413, 415),
    )
    def post(self, request):
        if not may_create_projects(request.user):
            raise exceptions.PermissionDenied("An auditor reads projects but creates none.")
        token = request_token(request)
        if token is not None and not token.all_projects:
            raise exceptions.PermissionDenied(
                "Creating projects needs a token valid for all projects."
            )
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        project = create_project(actor=self.actor(), **serializer.validated_data)
        project = (
            Project.objects.with_category_pages().select_related("template").get(pk=project.pk)
        )
        data = self.get_serializer(project).data
        response = Response(data, status=status.HTTP_201_CREATED, headers={"Location": data["url"]})
        return with_etag(response, project.revision)


class ProjectDetail(ApiView):
    """A project; its ETag is its revision. Changing it needs an admin token, a maintainer
    and If-Match."""

    serializer_class = ProjectSerializer
    scopes = ApiView.scopes | {"PATCH": Scope.ADMIN}
    needs = ApiView.needs | {"PATCH": MAINTAIN}

    def project(self):
        self.get_project()
        return (
            Project.objects.with_category_pages()
            .select_related("template")
            .get(pk=self._project.pk)
        )

    @extend_schema(responses=responses({200: ProjectSerializer}, 404))
    def get(self, request, project):
        current = self.project()
        return with_etag(Response(self.get_serializer(current).data), current.revision)

    @extend_schema(
        request=ProjectUpdateSerializer,
        parameters=[IF_MATCH],
        responses=responses({200: ProjectSerializer}, 400, 404, 412, 413, 415, 428),
    )
    def patch(self, request, project):
        project = self.get_project()
        base_revision = if_match_revision(request)
        context = {"request": request, "project": project}
        serializer = ProjectUpdateSerializer(data=request.data, context=context)
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        update_project(
            project,
            actor=self.actor(),
            base_revision=base_revision,
            change_reason=changes.pop("change_reason", "") or "Changed through the API",
            **changes,
        )
        current = self.project()
        return with_etag(Response(self.get_serializer(current).data), current.revision)


class ProjectTemplate(ApiView):
    """Move the project to a template version (its latest when no version is given), or
    with ``dry_run`` only say what the move would do. Needs an admin token and a
    maintainer. Repeating a move that was made changes nothing, so no Idempotency-Key.
    The answer is the plan carried out (computed under the upgrade's locks); with the
    ``plan_digest`` of a dry run, a 409 when the pages changed since so that the move
    would now do something else."""

    serializer_class = TemplatePlanSerializer
    scopes = ApiView.scopes | {"POST": Scope.ADMIN}
    needs = ApiView.needs | {"POST": MAINTAIN}

    @extend_schema(
        request=TemplateChangeSerializer,
        responses=responses({200: TemplatePlanSerializer}, 400, 404, 409, 413, 415),
    )
    def post(self, request, project):
        project = self.get_project()
        serializer = TemplateChangeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        template = template_named(data["template"], data.get("version"))
        if data["dry_run"]:
            plan = preview_upgrade(project, template)
        else:
            plan = upgrade_project(
                project, template, actor=self.actor(), reason=data.get("change_reason", ""),
                expected=data.get("plan_digest"),
            )  # fmt: skip
        return Response(self.get_serializer(plan).data)
