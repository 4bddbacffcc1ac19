"""Project-wide middleware: the health check and the headers every response carries."""

import copy
import functools
import uuid

from django.conf import settings
from django.contrib import auth
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.db import DatabaseError, connection
from django.http import HttpResponse
from django.utils.crypto import constant_time_compare
from django.utils.functional import SimpleLazyObject

from wiki import access, oidc
from wiki.history import Actor, Source, request_scope

# Seconds a client is told to wait (Retry-After) while the database does not answer.
DATABASE_RETRY_AFTER = "5"


def content_security_policy(img_src="'self' https:", style_src="'self'", form_action="'self'"):
    """The policy of a page: everything is the app's own, no inline script; images in
    Markdown may come from other https hosts (diagrams)."""
    return "; ".join(
        [
            "default-src 'self'",
            f"img-src {img_src}",
            f"style-src {style_src}",
            "object-src 'none'",
            "base-uri 'self'",
            f"form-action {form_action}",
            "frame-ancestors 'none'",
        ]
    )


CONTENT_SECURITY_POLICY = content_security_policy()


# Browser features no page of the wiki uses, refused to it and to anything it embeds.
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in [
        "accelerometer", "autoplay", "camera", "display-capture", "geolocation", "gyroscope",
        "magnetometer", "microphone", "midi", "payment", "publickey-credentials-get",
        "screen-wake-lock", "usb", "xr-spatial-tracking",
    ]
)  # fmt: skip


class PermissionsPolicyMiddleware:
    """Adds the Permissions-Policy header to every response (first in MIDDLEWARE, so the
    health check and /metrics carry it too)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response


class ContentSecurityPolicyMiddleware:
    """Adds the Content-Security-Policy header unless a view has set its own."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if settings.OIDC_ISSUER:
            # The login and logout forms lead to the provider (browsers check form-action
            # on the redirect a form's answer is, too).
            policy = _policy(tuple(oidc.form_origins()))
        else:
            policy = CONTENT_SECURITY_POLICY
        response.headers.setdefault("Content-Security-Policy", policy)
        return response


@functools.cache
def _policy(provider_origins):
    return content_security_policy(form_action=" ".join(["'self'", *provider_origins]))


class HealthCheckMiddleware:
    """Answers /healthz/ (GET or HEAD) for load balancers and container health checks.

    It sits first in MIDDLEWARE, before host validation and the HTTPS redirect, so a probe
    from inside the container (Host: 127.0.0.1) passes whatever ALLOWED_HOSTS says. It
    reveals nothing but whether the database answers.
    """

    path = "/healthz/"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info != self.path or request.method not in ("GET", "HEAD"):
            return self.get_response(request)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except DatabaseError:
            response = HttpResponse("database unavailable", content_type="text/plain", status=503)
            response["Retry-After"] = DATABASE_RETRY_AFTER
        else:
            response = HttpResponse("ok", content_type="text/plain")
        response["Cache-Control"] = "no-store"
        return response


class RequestIdMiddleware:
    """Gives each request an id, shared by every revision it writes and returned to the
    client as X-Request-ID; writes made outside the services (the admin's user pages) are
    stamped with the request's user and source."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = uuid.uuid4()

        def actor():
            user = request.user if request.user.is_authenticated else None
            path = request.path_info
            if path.startswith("/admin/"):
                return Actor(user, Source.ADMIN)
            return Actor(user, Source.API if path.startswith("/api/") else Source.WEB)

        with request_scope(request_id, actor):
            response = self.get_response(request)
        response["X-Request-ID"] = str(request_id)
        return response


class CachedAuthenticationMiddleware(AuthenticationMiddleware):
    """Django's AuthenticationMiddleware, with the session's user taken from this
    process's cache when it was looked up under the current access version (wiki.access):
    one small query for the version instead of one for the user (and its groups)."""

    def process_request(self, request):
        super().process_request(request)
        request.user = SimpleLazyObject(lambda: _session_user(request))

    def process_view(self, request, view_func, view_args, view_kwargs):
        # Nothing has asked for the user yet (LoginRequiredMiddleware comes next): the
        # project the URL names is read with the access version (access.read_stamp).
        request._mlwiki_project_slug = view_kwargs.get("project")


def _session_user(request):
    if not hasattr(request, "_cached_user"):
        request._cached_user = _cached_session_user(request)
    return request._cached_user


def _cached_session_user(request):
    try:
        user_id = auth._get_user_session_key(request)
        backend = request.session[auth.BACKEND_SESSION_KEY]
    except KeyError:  # nobody logged in: Django's answer, without a query
        return auth.get_user(request)
    version = access.read_stamp(getattr(request, "_mlwiki_project_slug", None), user_id)
    key = ("session-user", backend, user_id)
    user = access.cached(key, version)
    if user is not None:
        session_hash = request.session.get(auth.HASH_SESSION_KEY)
        # As auth.get_user: the session counts only if it carries the password's hash
        # (any other case, the fallback keys included, is left to Django below).
        if session_hash and constant_time_compare(session_hash, user.get_session_auth_hash()):
            return copy.copy(user)
    user = auth.get_user(request)
    if user.is_authenticated:
        access.keep(key, version, copy.copy(user))
    return user
