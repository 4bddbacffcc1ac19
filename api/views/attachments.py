"""Attachments of pages and records: list and upload (multipart), download (the current
version, or an earlier one by its hash), delete, and the versions of one.

The same three views serve the four kinds of target (``target``, a key of
wiki.models.attachments.TARGETS): a page by its slug, a training run or a deployment by
id, and a model version by its version string, as the API names model versions (they
have no route by id). Uploads need pages:write on pages and records:write on records.
"""

import re
from contextlib import contextmanager

from django.urls import path, reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, mixins, status
from rest_framework.response import Response

from api.auth import Scope
from api.errors import ErrorSerializer
from api.pagination import NumberedPages
from api.parsers import PayloadTooLarge, UploadParser, check_upload_length
from api.serializers import (
    AttachmentSerializer,
    AttachmentUploadSerializer,
    AttachmentVersionSerializer,
)
from api.views.base import (
    IDEMPOTENCY_KEY,
    LOCATION,
    REPLAYED,
    TEXT,
    ApiView,
    idempotent,
    list_responses,
    responses,
)
from api.views.exports import Gone, StorageUnavailable
from wiki import attachments as files
from wiki import storage
from wiki.history import CHANGE_REASON_MAX_LENGTH
from wiki.models import Attachment
from wiki.models.attachments import TARGETS
from wiki.services import attachments

# The URL keyword that names each kind of target, and the field it is looked up by.
LOOKUPS = {
    "page": ("page", "slug"),
    "training_run": ("pk", "pk"),
    "deployment": ("pk", "pk"),
    "model_version": ("version", "version"),
}
SHA256 = re.compile(r"[0-9a-f]{64}")


class UnsupportedType(exceptions.APIException):
    status_code = status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
    default_code = "unsupported_media_type"


def _error(description):
    return OpenApiResponse(ErrorSerializer, description=description)


def _responses(documented, errors):
    """``documented`` (from base.responses) with ``errors`` {status: response} of these
    views' own, by status code."""
    merged = documented | errors
    return dict(sorted(merged.items(), key=lambda item: _status(item[0])))


def _status(key):
    return key[0] if isinstance(key, tuple) else key


STORAGE_DOWN = _error(
    "The database or the file storage is unavailable for a moment; Retry-After says when "
    "to retry (an Idempotency-Key makes an upload's retry safe)."
)


class AttachmentView(ApiView):
    """The target named in the URL, and the scope its writes need."""

    target = None  # a key of TARGETS, given by routes()

    @property
    def scopes(self):
        write = Scope.PAGES_WRITE if self.target == "page" else Scope.RECORDS_WRITE
        return ApiView.scopes | {"POST": write, "DELETE": write}

    def get_target(self):
        """The page or record: 404 if the project has none by that slug, id or version."""
        if not hasattr(self, "_target"):
            project = self.get_project()
            keyword, field = LOOKUPS[self.target]
            value = self.kwargs[keyword]
            model = TARGETS[self.target]
            found = model.objects.filter(project=project, **{field: value}).first()
            shown = value if isinstance(value, int) else f"'{value}'"
            self.shown = f"{model._meta.verbose_name} {shown}"
            if found is None:
                raise exceptions.NotFound(f"{project.name} has no {self.shown}.")
            found.project = project
            self._target = found
        return self._target

    def attachments_url(self):
        """The absolute URL of the target's attachment list (items are under it)."""
        kwargs = {k: v for k, v in self.kwargs.items() if k != "name"}
        url_name = f"api:{self.target.replace('_', '-')}-attachment-list"
        return self.request.build_absolute_uri(reverse(url_name, kwargs=kwargs))

    def get_serializer_context(self):
        return super().get_serializer_context() | {"attachments_url": self.attachments_url()}

    def get_attachment(self, *, deleted_too=False):
        """The attachment named in the URL; a deleted one only if ``deleted_too``."""
        target, name = self.get_target(), self.kwargs["name"]
        found = Attachment.objects.filter(**{self.target: target, "name": name}).first()
        if found is None:
            raise exceptions.NotFound(f"The {self.shown} has no attachment '{name}'.")
        if found.deleted and not deleted_too:
            raise exceptions.NotFound(
                f"'{name}' was deleted from the {self.shown}; its versions are listed at "
                f"{self.attachments_url()}{name}/versions/."
            )
        return found


@contextmanager
def _storage_answering(what):
    """The file storage's outage as a 503 with Retry-After; ``what`` could not be done."""
    try:
        yield
    except storage.Unavailable:
        raise StorageUnavailable(
            f"The file storage does not answer, so {what}; try again in a minute."
        ) from None


def _multipart(request):
    return request.content_type.partition(";")[0].strip().lower() == "multipart/form-data"


class AttachmentList(mixins.ListModelMixin, AttachmentView):
    """The attachments of a page or record, by name. POST uploads a file (multipart/
    form-data: the file in ``file``, optionally ``name`` and ``change_reason``): a new
    name is attached, an existing one gets a new version (the earlier ones stay
    downloadable by their hash), and the same bytes under the same name change nothing.
    Its type is decided from its content; at most ATTACHMENT_MAX_BYTES (25 MB by default).
    """

    serializer_class = AttachmentSerializer
    pagination_class = NumberedPages
    parser_classes = [UploadParser]

    def initial(self, request, *args, **kwargs):
        # Before authentication: a browser session's CSRF check reads the body.
        if request.method == "POST":
            check_upload_length(request)
        super().initial(request, *args, **kwargs)

    def get_queryset(self):
        self.query()
        return attachments.of(self.get_target())

    @extend_schema(responses=list_responses(AttachmentSerializer))
    def get(self, request, **kwargs):
        return self.list(request)

    @extend_schema(
        request={"multipart/form-data": AttachmentUploadSerializer},
        parameters=[IDEMPOTENCY_KEY, REPLAYED, LOCATION],
        responses=_responses(
            responses({201: AttachmentSerializer}, 400, 404, 422, replay=AttachmentSerializer),
            {
                413: _error(
                    "The file is over ATTACHMENT_MAX_BYTES (refused before reading when "
                    "Content-Length says so)."
                ),
                415: _error(
                    "The body is not multipart/form-data, or the file's content is of a "
                    "type not accepted (the message lists those that are)."
                ),
                503: STORAGE_DOWN,
            },
        ),
    )
    def post(self, request, **kwargs):
        target = self.get_target()
        if not _multipart(request):
            raise UnsupportedType(
                "Send the file as multipart/form-data, in the field 'file' (with curl: "
                "-F file=@plot.png)."
            )
        repeated = {
            name: ["Given more than once."]
            for name in request.data
            if len(request.data.getlist(name)) > 1
        }
        if repeated:
            raise exceptions.ValidationError(repeated)
        upload = AttachmentUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        file = upload.validated_data["file"]
        name = upload.validated_data.get("name") or file.name
        reason = upload.validated_data.get("change_reason", "")

        def identity():
            # The bytes by their hash: a retry's multipart boundary differs, its file not.
            return {"sha256": files.digest(file)[0], "name": name, "change_reason": reason}

        def write():
            attachment = attachments.attach(
                target, file, actor=self.actor(), name=name, change_reason=reason
            )
            return self.get_serializer(attachment).data

        try:
            with _storage_answering("the file was not attached"):
                return idempotent(self, target.project, write, status.HTTP_201_CREATED, identity)
        except files.TooLarge as error:
            raise PayloadTooLarge(error.message_dict["file"][0]) from None
        except files.NotAccepted as error:
            raise UnsupportedType(error.message_dict["file"][0]) from None


class AttachmentDetail(AttachmentView):
    """An attachment's bytes, streamed with its type, ``X-Content-Type-Options: nosniff``,
    a sandbox Content-Security-Policy (so an SVG's or an HTML report's scripts never run
    as the wiki) and its SHA-256 as ETag (If-None-Match: 304). DELETE removes it from
    the lists: a new revision; its file and versions are kept."""

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "sha256",
                str,
                pattern=SHA256.pattern,
                description="An earlier version's hash (see versions/): its bytes, even "
                "if the attachment was deleted since.",
            ),
            OpenApiParameter("download", str, enum=["0", "1"], description="1: as a file to save."),
        ],
        responses=_responses(
            responses(
                {
                    (200, "*/*"): OpenApiResponse(
                        OpenApiTypes.BINARY, description="The bytes, in their content type."
                    ),
                    304: OpenApiResponse(description="Not modified (If-None-Match)."),
                },
                400,
                404,
            ),
            {
                410: _error("The bytes are gone from the file storage (verify_audit says so)."),
                503: STORAGE_DOWN,
            },
        ),
    )
    def get(self, request, **kwargs):
        query = self.query({"sha256", "download"})
        wanted = query.text("sha256")
        download = query.choice("download", ["0", "1"]) == "1"
        if wanted is None:
            attachment = self.get_attachment()
            sha256, content_type = attachment.sha256, attachment.content_type
        else:
            sha256 = wanted.lower()
            if not SHA256.fullmatch(sha256):
                raise exceptions.ValidationError(
                    {"sha256": ["64 hexadecimal digits: a version's sha256."]}
                )
            attachment = self.get_attachment(deleted_too=True)
            version = attachments.version(attachment, sha256)
            if version is None:
                raise exceptions.NotFound(
                    f"'{attachment.name}' never had a version with sha256 {sha256}."
                )
            content_type = version.content_type
        unchanged = files.not_modified(request, sha256)
        if unchanged is not None:
            return unchanged
        try:
            with _storage_answering(f"'{attachment.name}' cannot be sent now"):
                return files.serve(sha256, content_type, attachment.name, download=download)
        except FileNotFoundError:
            raise Gone(
                f"The bytes of '{attachment.name}' (sha256 {sha256}) are gone from the file "
                "storage."
            ) from None

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "change_reason",
                TEXT,
                description="Why (kept in the history; at most "
                f"{CHANGE_REASON_MAX_LENGTH} characters).",
            )
        ],  # fmt: skip
        responses=responses({204: None}, 400, 404),
    )
    def delete(self, request, **kwargs):
        query = self.query({"change_reason"})
        attachment = self.get_attachment()
        reason = query.text("change_reason") or ""
        attachments.remove(attachment, actor=self.actor(), change_reason=reason)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AttachmentVersions(mixins.ListModelMixin, AttachmentView):
    """Every version of an attachment, newest first: the rows of its history (which the
    audit chain seals), each with its hash, who, when and why, and where to download it.
    Deleted attachments have theirs too."""

    serializer_class = AttachmentVersionSerializer
    pagination_class = NumberedPages

    def get_queryset(self):
        self.query()
        return attachments.versions(self.get_attachment(deleted_too=True))

    @extend_schema(responses=list_responses(AttachmentVersionSerializer))
    def get(self, request, **kwargs):
        return self.list(request)


def routes(prefix, target):
    """The attachment routes of a ``target`` (a key of TARGETS) whose URL is ``prefix``."""
    name = target.replace("_", "-")
    return [
        path(
            f"{prefix}attachments/",
            AttachmentList.as_view(target=target),
            name=f"{name}-attachment-list",
        ),
        path(
            f"{prefix}attachments/<text:name>/",
            AttachmentDetail.as_view(target=target),
            name=f"{name}-attachment-detail",
        ),
        path(
            f"{prefix}attachments/<text:name>/versions/",
            AttachmentVersions.as_view(target=target),
            name=f"{name}-attachment-versions",
        ),
    ]
