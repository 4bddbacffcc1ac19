"""What every API view shares: login handling, the project in the URL, actors, If-Match,
and exactly-once record writes."""

import re

from rest_framework import exceptions, generics
from rest_framework.response import Response

from api.auth import Scope, request_token
from api.errors import PreconditionRequired
from wiki.history import Actor, Source
from wiki.models import Project
from wiki.services.idempotency import fingerprint, run_once, valid_key

_ETAG_RE = re.compile(r'^(?:W/)?"?(\d{1,18})"?$')


class ApiView(generics.GenericAPIView):
    """Base of the API's views. ``scopes`` maps a method to the token scope it needs."""

    scopes = {"GET": Scope.READ, "HEAD": Scope.READ, "OPTIONS": Scope.READ}

    def actor(self):
        return Actor(user=self.request.user, source=Source.API, token=request_token(self.request))

    def get_project(self):
        """The project named in the URL: 404 if unknown, 403 if the token may not use it."""
        if not hasattr(self, "_project"):
            slug = self.kwargs["project"]
            project = next(iter(Project.objects.filter(slug=slug).order_by()[:1]), None)
            if project is None:
                raise exceptions.NotFound(f"There is no project '{slug}'.")
            token = request_token(self.request)
            if token is not None and not token.allows_project(slug):
                raise exceptions.PermissionDenied(f"This token is not valid for project '{slug}'.")
            self._project = project
        return self._project


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
            {"If-Match": [f'Expected a revision ETag such as "3", got {value[:40]!r}.']}
        )
    return int(match.group(1))


def with_etag(response, revision):
    response["ETag"] = f'"{revision}"'
    return response


def idempotent(view, project, write, status):
    """Respond with ``write()``'s data, running it at most once per Idempotency-Key.

    A replay of the same request answers 200 with the first response's body; the same
    key on a different request is a 422 (KeyReused, see api.errors).
    """
    request = view.request
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return Response(write(), status=status)
    if not valid_key(key):
        raise exceptions.ValidationError(
            {"Idempotency-Key": ["Use 1 to 255 printable ASCII characters."]}
        )
    request_print = fingerprint(request.method, request.path, request.data)
    _, data, replayed = run_once(project, key, request_print, lambda: (status, write()))
    if not replayed:
        return Response(data, status=status)
    response = Response(data, status=200)
    response["Idempotent-Replayed"] = "true"
    return response
