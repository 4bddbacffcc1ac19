"""Audit report exports over the API: ask for one (202), follow it, download it."""

from django.http import FileResponse, HttpResponse, JsonResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, mixins
from rest_framework.response import Response

from api.errors import ErrorSerializer
from api.pagination import NumberedPages
from api.serializers import ExportRequestSerializer, ExportSerializer
from api.views.base import ApiView, FormatIsAParameter, list_responses, responses
from wiki import doctree, modelcards, storage
from wiki.access import VIEW
from wiki.models import ExportJob
from wiki.services.exports import TooManyExports, open_for_download, request_export

CONTENT_TYPES = {
    "pdf": "application/pdf",
    "html": "text/html; charset=utf-8",
    "markdown": "text/markdown; charset=utf-8",
    "json": "application/json",
    "zip": "application/zip",
}


class NotReady(exceptions.APIException):
    status_code = 409
    default_code = "not_ready"


class Gone(exceptions.APIException):
    status_code = 410
    default_code = "gone"


class StorageUnavailable(exceptions.APIException):
    status_code = 503
    default_code = "storage_unavailable"
    wait = storage.RETRY_AFTER  # sent as Retry-After


class ExportList(mixins.ListModelMixin, ApiView):
    """A project's audit report exports, newest first; POST asks for a new one, built in
    the background: follow its ``url`` until ``status`` is ``done``, then download it.
    Anyone who may read the project may ask (auditors included)."""

    serializer_class = ExportSerializer
    pagination_class = NumberedPages
    # Asking for a report reads the project; it changes none of its documentation.
    needs = ApiView.needs | {"POST": VIEW}

    def get_queryset(self):
        self.query()
        return ExportJob.objects.filter(project=self.get_project()).select_related("project")

    @extend_schema(responses=list_responses(ExportSerializer))
    def get(self, request, project):
        return self.list(request)

    @extend_schema(
        request=ExportRequestSerializer,
        responses=responses({202: ExportSerializer}, 400, 404),
        description="429 when the caller already has EXPORTS_IN_FLIGHT exports unfinished.",
    )
    def post(self, request, project):
        serializer = ExportRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            job = request_export(
                self.get_project(), actor=self.actor(), **serializer.validated_data
            )
        except TooManyExports as error:
            raise exceptions.Throttled(wait=60, detail=str(error)) from None
        job.refresh_from_db()  # without a broker it is already built
        data = ExportSerializer(job, context={"request": request}).data
        return Response(data, status=202, headers={"Location": data["url"]})


class ExportView(ApiView):
    """An export found by id, if the caller may read its project (404 otherwise)."""

    def get_job(self):
        job = ExportJob.objects.select_related("project").filter(pk=self.kwargs["pk"]).first()
        if job is not None:
            self.kwargs["project"] = job.project.slug
            try:
                self.get_project()
            except (exceptions.NotFound, exceptions.PermissionDenied):
                job = None  # a token for other projects learns nothing either
        if job is None:
            raise exceptions.NotFound(f"There is no export {self.kwargs['pk']} you may see.")
        return job


class ExportDetail(ExportView):
    """An export's status and progress."""

    serializer_class = ExportSerializer

    @extend_schema(responses=responses({200: ExportSerializer}, 404))
    def get(self, request, pk):
        return Response(ExportSerializer(self.get_job(), context={"request": request}).data)


class ExportDownload(ExportView):
    """The report file (409 until the export is done), streamed from the file storage: 410
    when the storage lost it, 503 (with Retry-After) also when the storage does not answer.
    A POST, with no body: each download is recorded in the export's history, and no GET
    changes anything."""

    # Downloading reads the project; recording it changes none of its documentation.
    needs = ApiView.needs | {"POST": VIEW}

    @extend_schema(
        request=None,
        parameters=[
            OpenApiParameter(
                "X-Content-SHA256",
                str,
                OpenApiParameter.HEADER,
                response=[200],
                description="The file's SHA-256, as in the export's sha256.",
            )
        ],
        responses=responses(
            {
                (200, content_type.split(";")[0]): OpenApiResponse(
                    OpenApiTypes.OBJECT if format == "json" else OpenApiTypes.BINARY,
                    description="The report, in the export's format (a JSON bundle for json).",
                )
                for format, content_type in CONTENT_TYPES.items()
            },
            404,
            409,
            410,
        ),
    )
    def post(self, request, pk):
        job = self.get_job()
        if job.status == ExportJob.Status.FAILED:
            raise NotReady(f"Export {job.pk} failed: {job.last_error}")
        if job.status != ExportJob.Status.DONE:
            raise NotReady(f"Export {job.pk} is {job.status} ({job.progress}%); try again later.")
        try:
            handle = open_for_download(job, actor=self.actor())
        except FileNotFoundError:
            raise Gone(f"The file of export {job.pk} is gone; ask for a new export.") from None
        except storage.Unavailable:
            raise StorageUnavailable(
                f"The file storage does not answer, so export {job.pk} cannot be sent now; "
                "try again in a minute."
            ) from None
        response = FileResponse(
            handle, as_attachment=True, filename=job.filename,
            content_type=CONTENT_TYPES[job.format],
        )  # fmt: skip
        response["X-Content-SHA256"] = job.sha256
        return response


GZIP = "application/gzip"


class FileMissing(exceptions.APIException):
    status_code = 409
    default_code = "file_missing"


class MarkdownTree(ApiView):
    """The project's documentation as Markdown files with YAML front matter, and the
    pages' attachments, in a gzipped tar archive: the tree ``python manage.py
    export_markdown`` writes (wiki.doctree), to keep beside the code."""

    @extend_schema(
        operation_id="projects_markdown_tree",
        responses=responses({(200, GZIP): OpenApiResponse(OpenApiTypes.BINARY)}, 404)
        | {
            409: OpenApiResponse(
                ErrorSerializer, description="An attachment's bytes are missing from the storage."
            )
        },
    )
    def get(self, request, project):
        project = self.get_project()
        try:
            tree = doctree.archive(project)
        except doctree.MissingFile as error:
            raise FileMissing(f"{error} Run verify_audit.") from None
        name = f"{project.slug}-docs.tar.gz"
        return FileResponse(tree, as_attachment=True, filename=name, content_type=GZIP)


MARKDOWN = "text/markdown"
CARD = "The card: a README.md for huggingface, JSON for model-card-toolkit."


class ModelCard(ApiView):
    """The project's model card, made now from its documentation and latest succeeded
    training run (wiki.modelcards): ``format=huggingface`` a Hugging Face README.md (YAML
    metadata with a model-index of the run's metrics, then the pages as sections),
    ``format=model-card-toolkit`` Model Card Toolkit JSON (schema 0.0.2). Both name the
    mlwiki version, each page's revision and the audit chain head they were made from."""

    content_negotiation_class = FormatIsAParameter

    @extend_schema(
        operation_id="projects_model_card",
        parameters=[
            OpenApiParameter(
                "format", str, enum=modelcards.FORMATS, required=True,
                description="The card's format.",
            )
        ],
        responses=responses(
            {
                (200, MARKDOWN): OpenApiResponse(OpenApiTypes.STR, description=CARD),
                (200, "application/json"): OpenApiResponse(OpenApiTypes.OBJECT, description=CARD),
            },
            400,
            404,
        ),
    )  # fmt: skip
    def get(self, request, project):
        project = self.get_project()
        chosen = self.query({"format"}).choice("format", modelcards.FORMATS)
        if chosen is None:
            choices = " or ".join(f"format={name}" for name in modelcards.FORMATS)
            raise exceptions.ValidationError({"format": [f"Missing: give {choices}."]})
        source = modelcards.read(project)
        if chosen == modelcards.HUGGINGFACE:
            response = HttpResponse(
                modelcards.huggingface(source), content_type=f"{MARKDOWN}; charset=utf-8"
            )
            name = "README.md"
        else:
            card = modelcards.model_card_toolkit(source)
            response = JsonResponse(card, json_dumps_params={"ensure_ascii": False, "indent": 2})
            name = f"{project.slug}-model-card.json"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
