"""Who is calling and what they may do: token authentication, scopes, throttling."""

import functools
import logging
import time

import redis
from django.conf import settings
from django.core.cache import cache
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.throttling import BaseThrottle

from wiki import breaker
from wiki.models import ApiToken
from wiki.services.tokens import TokenRejected, authenticate_key

logger = logging.getLogger(__name__)

Scope = ApiToken.Scope


class TokenAuthentication(BaseAuthentication):
    """``Authorization: Token <key>`` (or ``Bearer <key>``) with a key from create_token."""

    keywords = (b"token", b"bearer")

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() not in self.keywords:
            return None  # not ours: the session may authenticate the request
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "Malformed Authorization header; send 'Authorization: Token <key>'."
            )
        # The project the URL names is read with the access version (wiki.access).
        context = getattr(request, "parser_context", None) or {}
        slug = (context.get("kwargs") or {}).get("project")
        try:
            token = authenticate_key(parts[1].decode("ascii"), project_slug=slug)
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        except TokenRejected as rejected:
            raise exceptions.AuthenticationFailed(str(rejected)) from None
        return token.user, token

    def authenticate_header(self, request):
        # Makes unauthenticated requests 401 (not 403) with a challenge naming the scheme.
        return 'Token realm="mlwiki"'


class TokenAuthenticationScheme(OpenApiAuthenticationExtension):
    """Describes TokenAuthentication in the OpenAPI schema."""

    target_class = TokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "'Token <key>' (or 'Bearer <key>') with a key from create_token "
            "or the API tokens page.",
        }


def request_token(request):
    """The ApiToken a request was authenticated with, None for a browser session."""
    return request.auth if isinstance(request.auth, ApiToken) else None


class HasScope(BasePermission):
    """Token requests need the scope the view names for the method (``view.scopes``).

    Browser sessions act with their user's rights (every project, for now).
    """

    def has_permission(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return False
        token = request_token(request)
        if token is None:
            return True
        scope = view.scopes.get(request.method, Scope.READ)
        if not token.has_scope(scope):
            raise exceptions.PermissionDenied(f"This token lacks the '{scope}' scope.")
        return True


PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@functools.cache
def _redis():
    """A Redis client for the counters (one per process), None without REDIS_URL. It gives
    up within REDIS_THROTTLE_TIMEOUT: counting must never hold up a request."""
    if not settings.REDIS_URL:
        return None
    timeout = settings.REDIS_THROTTLE_TIMEOUT
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=timeout, socket_connect_timeout=timeout
    )


def _count(key, seconds):
    """Add one to the counter ``key`` (which lives ``seconds``); returns the new count."""
    client = _redis()
    if client is None:  # no Redis: the Django cache (per process)
        try:
            return cache.incr(key)
        except ValueError:  # the window's first request
            return 1 if cache.add(key, 1, timeout=seconds + 1) else cache.incr(key)
    # One round trip: create the counter with its expiry if new (Redis 2.6.12+), count.
    pipe = client.pipeline(transaction=False)
    pipe.set(key, 0, ex=seconds + 1, nx=True)
    pipe.incr(key)
    return pipe.execute()[1]


class TokenRateThrottle(BaseThrottle):
    """At most API_THROTTLE_RATE requests per token (per user for sessions) per window.

    A fixed-window counter shared by all processes through Redis: one increment per
    request, whatever the rate (a sliding log, DRF's default, rewrites a list as long as
    the rate on every request). A client can at most double the rate across a window
    boundary.
    """

    def allow_request(self, request, view):
        allowed, period = settings.API_THROTTLE_RATE.split("/")
        seconds = PERIODS[period[0]]
        now = time.time()
        key = f"mlwiki:throttle:{self.ident(request)}:{int(now // seconds)}"
        # Counting is a safeguard: with Redis down or hung, serve the request, don't fail
        # it, and don't ask Redis again on every request (wiki.breaker).
        server = breaker.of(settings.REDIS_URL)
        if not server.closed:
            return True
        try:
            count = _count(key, seconds)
        except breaker.OUTAGE as error:
            server.failed(error)
            return True
        except redis.RedisError:  # Redis answered, with an error: count nothing, say why
            logger.exception("The API throttle could not count")
            return True
        server.succeeded()
        self.retry_after = seconds - now % seconds
        return count <= int(allowed)

    def wait(self):
        return self.retry_after

    def ident(self, request):
        # Only authenticated requests get here (a request without credentials is a 401).
        token = request_token(request)
        return f"token-{token.pk}" if token is not None else f"user-{request.user.pk}"
