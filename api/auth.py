"""Who is calling and what they may do: token authentication, scopes, throttling."""

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.throttling import SimpleRateThrottle

from wiki.models import ApiToken
from wiki.services.tokens import TokenRejected, authenticate_key

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
        try:
            token = authenticate_key(parts[1].decode("ascii"))
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


class TokenRateThrottle(SimpleRateThrottle):
    """Requests per token (per user for browser sessions), at API_THROTTLE_RATE."""

    scope = "api"

    def get_rate(self):
        return settings.API_THROTTLE_RATE

    def get_cache_key(self, request, view):
        token = request_token(request)
        if token is not None:
            ident = f"token-{token.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = f"anon-{self.get_ident(request)}"
        return f"throttle:{self.scope}:{ident}"
