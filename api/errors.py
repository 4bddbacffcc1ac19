"""Every API error is JSON that says what is wrong, with the right status.

Body: ``{"status": 400, "detail": "metrics: 'auc' must be a finite number.",
"errors": {"metrics": ["'auc' must be a finite number."]}}``; ``errors`` (per field) only
for invalid input.
"""

from io import BytesIO

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from wiki.services import EditConflict
from wiki.services.idempotency import KeyReused
from wiki.services.records import RecordConflict

MAX_BODY_BYTES = 1024 * 1024


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = f"The request body is over {MAX_BODY_BYTES // 1024} KiB."


class PreconditionRequired(exceptions.APIException):
    status_code = status.HTTP_428_PRECONDITION_REQUIRED
    default_detail = (
        "Send If-Match with the revision you started from (the ETag of your GET), "
        'e.g. If-Match: "3".'
    )


class LimitedJSONParser(JSONParser):
    """JSON, refused with 413 past MAX_BODY_BYTES, whatever Content-Length claims."""

    def parse(self, stream, media_type=None, parser_context=None):
        request = parser_context["request"]
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise PayloadTooLarge
        if stream is None:
            return super().parse(stream, media_type, parser_context)
        body = stream.read(MAX_BODY_BYTES + 1)
        if len(body) > MAX_BODY_BYTES:
            raise PayloadTooLarge
        return super().parse(BytesIO(body), media_type, parser_context)


def _flatten(errors, prefix=""):
    """[(field path, message)] of a DRF error structure (dicts, lists, strings)."""
    if isinstance(errors, dict):
        return [
            pair for key, value in errors.items() for pair in _flatten(value, f"{prefix}{key}.")
        ]
    if isinstance(errors, list):
        if all(isinstance(e, str) for e in errors):
            return [(prefix.rstrip("."), str(e)) for e in errors]
        return [pair for i, value in enumerate(errors) for pair in _flatten(value, f"{prefix}{i}.")]
    return [(prefix.rstrip("."), str(errors))]


def _body(status_code, detail, errors=None):
    body = {"status": status_code, "detail": detail}
    if errors is not None:
        body["errors"] = errors
    return body


def exception_handler(exc, context):
    """DRF's handler, with domain exceptions mapped and one body shape for all errors."""
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    elif isinstance(exc, EditConflict):
        current = exc.current
        response = Response(
            _body(
                412,
                f"Revision {current.revision} is current; your If-Match names another. "
                "GET it again, apply your change, and send its ETag.",
            ),
            status=412,
        )
        response["ETag"] = f'"{current.revision}"'
        return response
    elif isinstance(exc, RecordConflict):
        return Response(_body(409, str(exc)), status=409)
    elif isinstance(exc, KeyReused):
        return Response(
            _body(
                422,
                "This Idempotency-Key was already used for a different request; "
                "use a new key for a new record.",
            ),
            status=422,
        )
    elif isinstance(exc, Http404) and not exc.args:
        exc = exceptions.NotFound("Not found.")

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        pairs = _flatten(response.data)
        summary = " ".join(f"{field}: {message}" if field else message for field, message in pairs)
        response.data = _body(response.status_code, summary or "Invalid input.", response.data)
    else:
        detail = response.data.get("detail", "") if isinstance(response.data, dict) else ""
        response.data = _body(response.status_code, str(detail))
    return response
