"""Single sign-on with the company's OpenID Connect provider (mozilla-django-oidc).

The authorization code flow with PKCE, ``state`` and ``nonce`` is mozilla-django-oidc's;
what it leaves out is done here: the endpoints come from the issuer's discovery document,
and the ID token is checked fully (RS256 signature against the provider's JWKS, issuer,
audience, expiry, nonce). The account and its roles are wiki.services.sso's.
"""

import logging
from urllib.parse import urlencode, urlsplit

import jwt
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import SuspiciousOperation
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import import_from_settings

from wiki.services.sso import SignInRefused, sign_in

logger = logging.getLogger(__name__)

# The provider's discovery documents, by issuer: read once per process.
_discovered = {}

PROVIDER_DOWN = "The sign-in provider does not answer"
NOT_VALID = "The sign-in could not be verified"


def enabled():
    return bool(settings.OIDC_ISSUER)


def discovery():
    """The issuer's /.well-known/openid-configuration, fetched at its first use and kept
    (a failed fetch is not kept: the next sign-in tries again)."""
    issuer = settings.OIDC_ISSUER
    document = _discovered.get(issuer)
    if document is not None:
        return document
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        response = requests.get(url, timeout=settings.OIDC_TIMEOUT)
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as error:
        logger.warning("OpenID Connect discovery at %s failed: %s", url, error)
        raise SignInRefused(
            PROVIDER_DOWN, "Try again in a few minutes, or tell your administrator.", status=503
        ) from None
    needed = ["authorization_endpoint", "token_endpoint", "jwks_uri"]
    if document.get("issuer") != issuer or not all(document.get(name) for name in needed):
        logger.error("%s is not the discovery document of issuer %s", url, issuer)
        raise SignInRefused(
            PROVIDER_DOWN, "The provider's configuration does not match OIDC_ISSUER.", status=503
        )
    _discovered[issuer] = document
    return document


def form_origins():
    """Where the login and logout forms may lead (their answers redirect to the provider):
    the issuer's origin, and those of its authorization and end-session endpoints once
    discovery has named them (never asked here: a page does not wait on the provider)."""
    urls = [settings.OIDC_ISSUER]
    document = _discovered.get(settings.OIDC_ISSUER) or {}
    urls += [document.get("authorization_endpoint"), document.get("end_session_endpoint")]
    return sorted({f"{p.scheme}://{p.netloc}" for p in map(urlsplit, filter(None, urls))})


# mozilla-django-oidc's names for the settings mlwiki names otherwise.
OURS = {
    "OIDC_RP_CLIENT_ID": "OIDC_CLIENT_ID",
    "OIDC_RP_CLIENT_SECRET": "OIDC_CLIENT_SECRET",
    "OIDC_RP_SCOPES": "OIDC_SCOPES",
}


def endpoint_settings(name, *default):
    """mozilla-django-oidc's settings, with the endpoints from discovery."""
    if name in OURS:
        return getattr(settings, OURS[name])
    endpoints = {
        "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
        "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
        "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
        "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
    }
    if name in endpoints:
        return discovery().get(endpoints[name])
    return import_from_settings(name, *default)


def logout_url(id_token, post_logout_redirect_uri):
    """Where to send the browser to end the provider's session too (RP-initiated logout),
    or None when the provider offers no end_session_endpoint (or cannot be asked)."""
    try:
        end_session = discovery().get("end_session_endpoint")
    except SignInRefused:
        return None
    if not end_session:
        return None
    query = {
        "post_logout_redirect_uri": post_logout_redirect_uri,
        "client_id": settings.OIDC_CLIENT_ID,
    }
    if id_token:
        query["id_token_hint"] = id_token
    return f"{end_session}?{urlencode(query)}"


class Backend(OIDCAuthenticationBackend):
    """Signs in the person the provider vouches for; only the sign-in callback calls it
    (its ``nonce`` argument keeps password logins away from it)."""

    get_settings = staticmethod(endpoint_settings)

    def __init__(self):
        # Not the parent's: it reads the endpoints, which would ask the provider at every
        # password login. Here they are read when a sign-in needs them.
        self.UserModel = get_user_model()
        self.OIDC_RP_SIGN_ALGO = "RS256"
        self.OIDC_RP_IDP_SIGN_KEY = None

    OIDC_OP_TOKEN_ENDPOINT = property(lambda self: discovery()["token_endpoint"])
    OIDC_OP_USER_ENDPOINT = property(lambda self: discovery().get("userinfo_endpoint"))
    OIDC_OP_JWKS_ENDPOINT = property(lambda self: discovery()["jwks_uri"])
    OIDC_RP_CLIENT_ID = property(lambda self: endpoint_settings("OIDC_RP_CLIENT_ID"))
    OIDC_RP_CLIENT_SECRET = property(lambda self: endpoint_settings("OIDC_RP_CLIENT_SECRET"))

    def authenticate(self, request, *, nonce, code_verifier=None):
        try:
            return super().authenticate(request, nonce=nonce, code_verifier=code_verifier)
        except requests.HTTPError as error:
            # The provider refused the code (used twice, expired, another client's).
            status = error.response.status_code if error.response is not None else None
            logger.warning("The provider refused to exchange a sign-in code (HTTP %s)", status)
            raise SignInRefused(
                NOT_VALID, "The provider did not confirm this sign-in. Please start again.", 400
            ) from None
        except requests.RequestException as error:
            logger.warning("The sign-in provider could not be reached: %s", error)
            raise SignInRefused(
                PROVIDER_DOWN, "Try again in a few minutes, or tell your administrator.", 503
            ) from None

    def verify_token(self, token, **kwargs):
        """The ID token's claims, once its signature, issuer, audience, times and nonce
        are checked; SignInRefused saying which check failed."""
        try:
            key = self.retrieve_matching_jwk(token)
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=settings.OIDC_CLIENT_ID,
                issuer=settings.OIDC_ISSUER,
                leeway=settings.OIDC_LEEWAY,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise SignInRefused(
                NOT_VALID, "The provider's token has expired. Please sign in again."
            ) from None
        except jwt.InvalidIssuerError:
            raise SignInRefused(
                NOT_VALID, "The token was issued by another provider than this wiki's."
            ) from None
        except jwt.InvalidAudienceError:
            raise SignInRefused(NOT_VALID, "The token was issued to another application.") from None
        except (jwt.InvalidTokenError, SuspiciousOperation, KeyError):
            raise SignInRefused(
                NOT_VALID, "The token is not signed by the provider's keys."
            ) from None
        if claims.get("nonce") != kwargs.get("nonce"):
            raise SignInRefused(
                NOT_VALID, "The token does not belong to this sign-in (nonce). Please start again."
            )
        return claims

    def get_userinfo(self, access_token, id_token, payload):
        """The ID token's claims, completed by the user info endpoint when there is one."""
        claims = dict(payload)
        if self.OIDC_OP_USER_ENDPOINT:
            info = super().get_userinfo(access_token, id_token, payload)
            if info.get("sub") != payload["sub"]:
                raise SignInRefused(
                    NOT_VALID, "The provider described another user than it signed in."
                )
            claims.update({k: v for k, v in info.items() if k not in ("iss", "aud", "sub")})
        return claims

    def get_or_create_user(self, access_token, id_token, payload):
        return sign_in(settings.OIDC_ISSUER, self.get_userinfo(access_token, id_token, payload))
