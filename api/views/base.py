"""What every API view shares: login handling, the project in the URL, actors, If-Match,
and exactly-once record writes."""

import re
from types import SimpleNamespace

from django.core.exceptions import PermissionDenied
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import exceptions, generics
from rest_framework.mixins import ListModelMixin
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response

from api.auth import Scope, request_token
from api.errors import ErrorSerializer, PreconditionRequired
from api.fields import AwareDateTimeField
from api.idempotency import fingerprint, run_once, valid_key
from wiki import access, as_of
from wiki.access import EDIT, VIEW
from wiki.history import Actor, Source
from wiki.models import Project

_ETAG_RE = re.compile(r'^"?(\d{1,18})"?$')


class Filters:
    """A request's query parameters, checked: only the ``known`` ones, each once (those
    ``repeatable`` any number of times), no NUL.

    A misspelt filter must not silently return everything, nor an empty one (a pipeline's
    unset variable): both are a 400.
    """

    def __init__(self, request, known, repeatable=()):
        params = request.query_params
        errors = {}
        for name in params:
            values = params.getlist(name)
            if name not in known:
                takes = ", ".join(sorted(known)) or "none"
                errors[name] = [f"Unknown parameter; known here: {takes}."]
            elif len(values) > 1 and name not in repeatable:
                errors[name] = ["Given more than once."]
            elif any("\x00" in value for value in values):
                errors[name] = ["Must not contain NUL (\\x00) characters."]
        if errors:
            raise exceptions.ValidationError(errors)
        self.params = params

    def text(self, name):
        value = self.params.get(name)
        if value == "":
            raise exceptions.ValidationError(
                {name: ["Empty: give a value, or leave the parameter out."]}
            )
        return value

    def texts(self, name):
        """Every value of a repeatable parameter (none empty)."""
        values = self.params.getlist(name)
        if "" in values:
            raise exceptions.ValidationError({name: ["Empty: give a value, or leave it out."]})
        return values

    def choice(self, name, choices):
        value = self.text(name)
        if value is not None and value not in choices:
            raise exceptions.ValidationError({name: [f"Must be one of: {', '.join(choices)}."]})
        return value

    def time(self, name):
        value = self.text(name)
        if value is None:
            return None
        try:
            return AwareDateTimeField().to_internal_value(value)
        except exceptions.ValidationError as error:
            raise exceptions.ValidationError({name: error.detail}) from None


class FormatIsAParameter(DefaultContentNegotiation):
    """DRF reads ``?format=`` as the name of a renderer (and answers 404 for one it has
    not): in views that use this, it is their own parameter (a card's format, CSV), so
    the errors are still JSON."""

    settings = SimpleNamespace(URL_FORMAT_OVERRIDE=None)


class ApiView(generics.GenericAPIView):
    """Base of the API's views. ``scopes`` maps a method to the token scope it needs,
    ``needs`` to the right in the project (wiki.access) the caller's user needs."""

    scopes = {"GET": Scope.READ, "HEAD": Scope.READ}
    needs = {"GET": VIEW, "HEAD": VIEW}
    # OPTIONS would describe forms of a browsable API this one does not serve: the OpenAPI
    # schema describes it. Without it here, it is neither served nor listed in Allow.
    http_method_names = [m for m in generics.GenericAPIView.http_method_names if m != "options"]

    def query(self, known=()):
        """The query's parameters, checked (Filters): ``known`` ones, and a list's paging."""
        paging = self.paginator.query_parameters if isinstance(self, ListModelMixin) else set()
        return Filters(self.request, set(known) | paging)

    def moment(self):
        """The moment ``?as_of=`` names (wiki.as_of), None without one: 400 naming as_of
        for a value that is none, 404 for a deployment or model version not there."""
        if not hasattr(self, "_moment"):
            value = self.request.query_params.get(as_of.PARAMETER)
            try:
                self._moment = None if value is None else as_of.parse(self.get_project(), value)
            except as_of.UnknownRecord as error:
                raise exceptions.NotFound(f"as_of: {error.messages[0]}") from None
        return self._moment

    def actor(self):
        return Actor(user=self.request.user, source=Source.API, token=request_token(self.request))

    def get_project(self):
        """The project named in the URL: 404 if unknown (or invisible to the user), 403 if
        the token may not use it or the user's role does not allow the method."""
        if not hasattr(self, "_project"):
            try:
                self._project = access.project_for(
                    self.request.user,
                    self.kwargs["project"],
                    self.needs.get(self.request.method, EDIT),
                    token=request_token(self.request),
                )
            except Project.DoesNotExist as error:
                raise exceptions.NotFound(str(error)) from None
            except PermissionDenied as error:
                raise exceptions.PermissionDenied(str(error)) from None
        return self._project


AS_OF = OpenApiParameter(
    "as_of",
    str,
    description="Read the documentation as it stood at a moment. "
    + as_of.HELP
    + " A moment in the future or before the project existed is a 400; a deployment or "
    "model version the project does not have, a 404.",
)


def if_match_revision(request):
    """The revision an If-Match header names; None for '*'. 428 without it, 400 if garbled."""
    header = request.headers.get("If-Match")
    if header is None:
        raise PreconditionRequired
    value = header.strip()
    if value == "*":
        return None
    match = _ETAG_RE.match(value)
    if not match:
        raise exceptions.ValidationError(
            {"If-Match": [f'Expected the ETag of your GET, such as "3", got {value[:40]!r}.']}
        )
    return int(match.group(1))


def with_etag(response, revision):
    response["ETag"] = f'"{revision}"'
    return response


def _created(data, status):
    """The response to a write; a 201 says where the new object is."""
    headers = {"Location": data["url"]} if status == 201 and "url" in data else None
    return Response(data, status=status, headers=headers)


def idempotent(view, project, write, status, identity=None):
    """Respond with ``write()``'s data, running it at most once per Idempotency-Key.

    A replay of the same request answers 200 with the first response's body; the same
    key on a different request is a 422 (KeyReused, see api.errors). What makes two
    requests the same is their method, path and body, or what ``identity()`` returns
    (JSON) when the body's bytes vary between retries (a multipart boundary).
    """
    request = view.request
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return _created(write(), status)
    if not valid_key(key):
        raise exceptions.ValidationError(
            {"Idempotency-Key": ["Use 1 to 255 printable ASCII characters."]}
        )
    body = request.data if identity is None else identity()
    request_print = fingerprint(request.method, request.path, body)
    _, data, replayed = run_once(project, key, request_print, lambda: (status, write()))
    if replayed:
        return Response(data, status=200, headers={"Idempotent-Replayed": "true"})
    return _created(data, status)


_ERROR_MEANINGS = {
    400: "Invalid input or filters; `errors` names each field.",
    401: "No token, or an unknown, revoked or expired one.",
    403: "The token lacks the scope, or is not valid for this project.",
    404: "No such project or object.",
    409: "A change the record's life cycle does not allow, a duplicate, or an export not done.",
    410: "The export's file is gone from storage.",
    412: "If-Match names a revision that is no longer current (ETag: the current one).",
    413: "The body is over 1 MiB.",
    415: "The body is not JSON.",
    422: "The Idempotency-Key was used before for a different request.",
    428: "If-Match is missing.",
    429: "Too many requests for this token; Retry-After says when to retry.",
    503: "The database is unavailable for a moment; what was sent may not have been saved. "
    "Retry-After says when to retry (an Idempotency-Key makes a record's retry safe).",
}
# Filter values in the schema: an empty one is refused (Filters.text).
TEXT = {"type": "string", "minLength": 1}
TIME = {"type": "string", "format": "date-time"}
# A list's 400 and 404 say more: what its query may hold, and that pages end.
_LIST_MEANINGS = {
    400: "A query parameter is refused: one this list does not take (a misspelt filter "
    "must not return everything), one given twice or empty, a value not among the allowed "
    "ones, a page or page_size out of range, or a cursor not from this list; `errors` "
    "names it.",
    404: "No such project, or a page number past the last page.",
}
REPLAYED = OpenApiParameter(
    "Idempotent-Replayed", str, OpenApiParameter.HEADER, response=[200],
    description="true when this answers a retry (same Idempotency-Key and body).",
)  # fmt: skip
LOCATION = OpenApiParameter(
    "Location", str, OpenApiParameter.HEADER, response=[201], description="The new object."
)
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key", str, OpenApiParameter.HEADER,
    description="Makes the write retry-safe: a replay with the same key and body returns "
    "the first response (with status 200) and changes nothing; the same key with another "
    "body is a 422. Keys are per project: 1 to 255 printable ASCII characters.",
)  # fmt: skip
IF_MATCH = OpenApiParameter(
    "If-Match", str, OpenApiParameter.HEADER, required=True,
    description='The ETag (revision) you read, e.g. "3"; "*" to skip the check.',
)  # fmt: skip


def responses(ok, *errors, replay=None):
    """OpenAPI responses: ``ok`` is {status: serializer}; errors by status code."""
    documented = dict(ok)
    if replay is not None:
        documented[200] = OpenApiResponse(replay, description="A replay of an earlier write.")
    common = {401, 403, 429, 503}
    for code in sorted(common | set(errors)):
        documented[code] = OpenApiResponse(ErrorSerializer, description=_ERROR_MEANINGS[code])
    return documented


def list_responses(serializer, *errors):
    """OpenAPI responses of a list of ``serializer``: a page of them, 400, 404 and ``errors``."""
    documented = responses({200: serializer(many=True)}, 400, 404, *errors)
    for code, meaning in _LIST_MEANINGS.items():
        documented[code] = OpenApiResponse(ErrorSerializer, description=meaning)
    return documented
