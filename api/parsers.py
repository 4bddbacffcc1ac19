"""Request bodies: JSON, at most 1 MiB (4 MiB where metric series are posted) and 32 levels
deep; YAML only for pipeline specs; multipart only for uploads.

Kept apart from api.errors: DRF loads parsers while importing its views, which api.errors
imports.
"""

import json

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, ValidationError
from rest_framework import exceptions, status
from rest_framework.parsers import BaseParser, JSONParser, MultiPartParser

from wiki import attachments as files
from wiki import pipelines
from wiki.models.base import too_deep

MAX_BODY_BYTES = 1024 * 1024
# 10,000 series points (wiki.series: one call's most) with timestamps are about 1 MB as
# compact JSON, twice that pretty-printed.
SERIES_MAX_BODY_BYTES = 4 * 1024 * 1024
# A batch of records (api.views.batches): 1,000 runs of about 10 KiB each, with room.
BATCH_MAX_BODY_BYTES = 16 * 1024 * 1024


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = f"The request body is over {MAX_BODY_BYTES // 1024} KiB."


def _read(stream, parser_context, max_bytes):
    """The request body, refused with 413 past ``max_bytes`` (whatever Content-Length
    claims): never more than the limit and a byte is read."""
    declared = parser_context["request"].META.get("CONTENT_LENGTH") or "0"
    too_large = PayloadTooLarge(f"The request body is over {max_bytes // 1024} KiB.")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    body = stream.read(max_bytes + 1) if stream is not None else b""
    if len(body) > max_bytes:
        raise too_large
    return body


class LimitedJSONParser(JSONParser):
    """JSON, refused with 413 past MAX_BODY_BYTES (whatever Content-Length claims) and
    with 400 past MAX_JSON_DEPTH levels.

    NaN and Infinity literals are read as numbers, so that the field holding one is named
    by validation ("metrics: 'auc' must be a finite number") rather than refused whole.
    """

    MAX_JSON_DEPTH = 32
    max_bytes = MAX_BODY_BYTES

    def parse(self, stream, media_type=None, parser_context=None):
        body = _read(stream, parser_context, self.max_bytes)
        nested = f"The JSON is nested more than {self.MAX_JSON_DEPTH} levels deep."
        try:
            data = json.loads(body.decode("utf-8"), parse_constant=float)
        except RecursionError:
            raise exceptions.ParseError(nested) from None
        except (ValueError, UnicodeDecodeError) as error:
            raise exceptions.ParseError(f"The body is not valid JSON: {error}") from None
        if too_deep(data, self.MAX_JSON_DEPTH):
            raise exceptions.ParseError(nested)
        return data


class SeriesJSONParser(BaseParser):
    """LimitedJSONParser's JSON for posts that may carry a run's metric series (a training
    run, its series), up to SERIES_MAX_BODY_BYTES.

    Not a JSONParser: DRF reads the whole body of those through Django first, whose
    DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MiB) would refuse these bodies with a bare 400; this
    one reads the stream itself, never more than the limit and a byte.
    """

    media_type = "application/json"
    MAX_JSON_DEPTH = LimitedJSONParser.MAX_JSON_DEPTH
    max_bytes = SERIES_MAX_BODY_BYTES
    parse = LimitedJSONParser.parse


class BatchJSONParser(BaseParser):
    """LimitedJSONParser's JSON for batches of records, up to BATCH_MAX_BODY_BYTES (read
    from the stream, as SeriesJSONParser does)."""

    media_type = "application/json"
    MAX_JSON_DEPTH = LimitedJSONParser.MAX_JSON_DEPTH
    max_bytes = BATCH_MAX_BODY_BYTES
    parse = LimitedJSONParser.parse


class YAMLParser(BaseParser):
    """YAML (a pipeline spec as the kfp compiler writes it), up to MAX_BODY_BYTES: the list
    of its documents, read safely by wiki.pipelines.load_yaml (no Python objects, no
    aliases, bounded depth)."""

    media_type = "application/yaml"

    def parse(self, stream, media_type=None, parser_context=None):
        body = _read(stream, parser_context, MAX_BODY_BYTES)
        try:
            return pipelines.load_yaml(body.decode("utf-8"))
        except UnicodeDecodeError as error:
            raise exceptions.ParseError(f"The body is not UTF-8 text: {error}") from None
        except ValidationError as error:
            raise exceptions.ParseError(" ".join(error.messages)) from None


# What a multipart body may hold beside the file: boundaries, part headers, the short
# fields (a name, a change reason of at most 1,000 characters).
MULTIPART_ENVELOPE_BYTES = 64 * 1024


def check_upload_length(request):
    """413 before anything is read when Content-Length says the upload is larger than a
    file may be (ATTACHMENT_MAX_BYTES) with its envelope. The body read is never longer
    than Content-Length, so this bounds what a client can make the server spool."""
    declared = request.META.get("CONTENT_LENGTH") or "0"
    limit = settings.ATTACHMENT_MAX_BYTES
    if declared.isdigit() and int(declared) > limit + MULTIPART_ENVELOPE_BYTES:
        raise PayloadTooLarge(
            f"The upload is over the limit of {files.limit_text()} per file "
            f"(Content-Length: {declared})."
        )


class UploadParser(MultiPartParser):
    """multipart/form-data, for file uploads (the view checks the length first, see
    check_upload_length). Django's own limits on the parts (too many files or fields, the
    fields too long) are a 400 or 413 naming them, not an error page."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RequestDataTooBig as error:
            raise PayloadTooLarge(f"The form's fields are too long: {error}") from None
        except SuspiciousOperation as error:
            raise exceptions.ParseError(f"The multipart body is refused: {error}") from None
