"""Every API error is JSON that says what is wrong, with the right status.

Body: ``{"status": 400, "detail": "metrics: 'auc' must be a finite number.",
"errors": {"metrics": ["'auc' must be a finite number."]}}``; ``errors`` (per field) only
for invalid input, nested by index or key for list and object fields
(``{"checks": {"0": {"name": ["This field is required."]}}}``).
"""

import logging
import sys

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.views import csrf, defaults
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from api.idempotency import KeyReused
from wiki import metrics
from wiki.middleware import DATABASE_RETRY_AFTER
from wiki.services import EditConflict
from wiki.services.pages import TreeConflict
from wiki.services.records import RecordConflict
from wiki.services.templates import PlanChanged

logger = logging.getLogger(__name__)

# What the database raises while it is unreachable, restarting, or locked (SQLite): worth
# a retry, so the client is told 503 with Retry-After rather than 500.
UNAVAILABLE = (OperationalError, InterfaceError)
UNAVAILABLE_DETAIL = (
    "The database is unavailable for a moment. Retry in a few seconds: what you sent may "
    "not have been saved (an Idempotency-Key makes the retry of a record safe)."
)


class FieldErrors(serializers.DictField):
    """What is wrong, by field: see FieldErrorsSchema."""


class FieldErrorsSchema(OpenApiSerializerFieldExtension):
    """FieldErrors in the schema: recursive, as the errors of lists and objects nest."""

    target_class = FieldErrors

    def get_name(self):
        return "FieldErrors"

    def map_serializer_field(self, auto_schema, direction):
        messages = {"type": "array", "items": {"type": "string"}}
        return {
            "type": "object",
            "description": "By field name: its messages, or, for a list or an object, an "
            "object of this same shape by item index or key, e.g. "
            '`{"checks": {"0": {"name": ["This field is required."]}}}`.',
            "additionalProperties": {
                "oneOf": [messages, {"$ref": "#/components/schemas/FieldErrors"}]
            },
        }


class ErrorSerializer(serializers.Serializer):
    """Every error: its status, what is wrong, and for invalid input the fields."""

    status = serializers.IntegerField()
    detail = serializers.CharField()
    errors = FieldErrors(required=False)


class PreconditionRequired(exceptions.APIException):
    status_code = status.HTTP_428_PRECONDITION_REQUIRED
    default_detail = (
        "Send If-Match with the revision you started from (the ETag of your GET), "
        'e.g. If-Match: "3".'
    )


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


def summary(errors):
    """One line naming each field of a DRF error structure and what is wrong with it."""
    pairs = _flatten(errors)
    return " ".join(f"{field}: {message}" if field else message for field, message in pairs)


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
    elif isinstance(exc, PlanChanged):
        body = _body(409, str(exc))
        body["plan_digest"] = exc.plan.digest
        return Response(body, status=409)
    elif isinstance(exc, TreeConflict):
        body = _body(409, str(exc))
        body["conflicts"] = [
            {"path": path, "page": page.slug, "revision": page.revision}
            for path, page, _ in exc.conflicts
        ]
        return Response(body, status=409)
    elif isinstance(exc, KeyReused):
        return Response(
            _body(
                422,
                "This Idempotency-Key was already used for a different request; "
                "use a new key for a new record.",
            ),
            status=422,
        )
    elif isinstance(exc, UNAVAILABLE):
        logger.warning("Database unavailable: %s: %s", type(exc).__name__, exc)
        metrics.DATABASE_ERRORS.labels(type(exc).__name__).inc()
        response = Response(_body(503, UNAVAILABLE_DETAIL), status=503)
        response["Retry-After"] = DATABASE_RETRY_AFTER
        return response
    elif isinstance(exc, Http404) and not exc.args:
        exc = exceptions.NotFound("Not found.")
    elif isinstance(exc, exceptions.UnsupportedMediaType):
        view = context.get("view")
        types = [parser.media_type for parser in view.get_parsers()] if view else []
        accepted = " or ".join(types or ["application/json"])
        exc = exceptions.UnsupportedMediaType(
            "", f"{exc.detail} Send it with Content-Type: {accepted}."
        )

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        detail = summary(response.data)
        response.data = _body(response.status_code, detail or "Invalid input.", response.data)
    else:
        detail = response.data.get("detail", "") if isinstance(response.data, dict) else ""
        response.data = _body(response.status_code, str(detail))
    return response


def _is_api(request):
    return request.path.startswith("/api/")


def server_error(request):
    """handler500: JSON under /api/ (clients parse it), the HTML page elsewhere; a 503
    with Retry-After when the database is unavailable (raised before any view ran, say
    while loading the session), so that clients and people know to retry."""
    error = sys.exc_info()[1]
    if isinstance(error, UNAVAILABLE):
        metrics.DATABASE_ERRORS.labels(type(error).__name__).inc()
        if _is_api(request):
            response = JsonResponse(_body(503, UNAVAILABLE_DETAIL), status=503)
        else:
            response = render(request, "503.html", status=503)
        response["Retry-After"] = DATABASE_RETRY_AFTER
        return response
    if _is_api(request):
        detail = "Something went wrong on our side; it has been logged. Retry later."
        return JsonResponse(_body(500, detail), status=500)
    return defaults.server_error(request)


def csrf_failure(request, reason=""):
    """CSRF_FAILURE_VIEW: a browser session posting to the API without its CSRF token."""
    if _is_api(request):
        detail = (
            f"CSRF check failed ({reason}). Browser sessions send the X-CSRFToken header; "
            "pipelines authenticate with 'Authorization: Token <key>' instead."
        )
        return JsonResponse(_body(403, detail), status=403)
    return csrf.csrf_failure(request, reason)
