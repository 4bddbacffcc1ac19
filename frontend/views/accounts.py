"""Logging in and out: the password form, single sign-on through the company's OpenID
Connect provider (wiki.oidc), and the break-glass page for superusers."""

import contextlib

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.decorators import method_decorator
from mozilla_django_oidc.views import (
    OIDCAuthenticationCallbackView,
    OIDCAuthenticationRequestView,
)

from wiki import oidc
from wiki.services.sso import SignInRefused

STALE_SIGN_IN = SignInRefused(
    "The sign-in could not be completed",
    "This sign-in was not started in this browser, or was already used. Please start again.",
    status=400,
)


# What a provider's error code (OAuth 2.0, OpenID Connect) means to the person signing in.
PROVIDER_ERRORS = {
    "access_denied": "You, or the provider, declined to sign in to mlwiki.",
    "login_required": "The provider needs you to sign in there first. Please start again.",
    "consent_required": "The provider needs your consent for mlwiki. Please start again.",
    "interaction_required": "The provider needs you to confirm something. Please start again.",
    "temporarily_unavailable": "The provider is busy. Try again in a few minutes.",
    "server_error": (
        "The provider could not sign you in to mlwiki. Try again, or tell your administrator."
    ),
}


def client_address(request):
    """The address a login comes from, for its throttling (django-axes). Each of the
    TRUSTED_PROXY_COUNT proxies appends the address it was reached from to
    X-Forwarded-For, so the one the outermost saw is that many entries from the right; what
    stands further left was written by the client. Without proxies, the connection's."""
    count = settings.TRUSTED_PROXY_COUNT
    forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    if count and len(forwarded) >= count and forwarded[-count]:
        return forwarded[-count]
    return request.META.get("REMOTE_ADDR")


def refused(request, refusal):
    return render(
        request,
        "frontend/sso_refused.html",
        {"title": refusal.title, "message": str(refusal)},
        status=refusal.status,
    )


class PasswordLoginForm(AuthenticationForm):
    """The password form; with LOCAL_LOGIN=false, only superusers get in with it."""

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        if not settings.LOCAL_LOGIN and not user.is_superuser:
            # The same answer as a wrong password: a right one is not confirmed.
            raise self.get_invalid_login_error()


@method_decorator(login_not_required, name="dispatch")
class LoginView(auth_views.LoginView):
    """The login page: "Sign in with <provider>" when single sign-on is on, and the
    password form unless LOCAL_LOGIN=false (``break_glass``: always the form)."""

    form_class = PasswordLoginForm
    template_name = "frontend/login.html"
    redirect_authenticated_user = True
    break_glass = False

    def get_context_data(self, **kwargs):
        if oidc.enabled():
            # Known before the page goes out, the provider's endpoints are in its
            # Content-Security-Policy (the button's form leads there); a provider that
            # does not answer is said so when the button is pressed.
            with contextlib.suppress(SignInRefused):
                oidc.discovery()
        return super().get_context_data(
            sso=oidc.enabled(),
            provider_name=settings.OIDC_PROVIDER_NAME,
            password_form=settings.LOCAL_LOGIN or self.break_glass,
            break_glass=self.break_glass,
            **kwargs,
        )


@method_decorator(login_not_required, name="dispatch")
class SignInStart(OIDCAuthenticationRequestView):
    """Sends the browser to the provider (with state, nonce and PKCE kept in the session).
    A POST from the login page's button: it writes the session, which no GET may do."""

    http_method_names = ["post"]
    get_settings = staticmethod(oidc.endpoint_settings)

    def __init__(self, **kwargs):
        # Not the parent's, which asks the provider for its endpoints at construction.
        super(OIDCAuthenticationRequestView, self).__init__(**kwargs)
        self.OIDC_RP_CLIENT_ID = settings.OIDC_CLIENT_ID

    @property
    def OIDC_OP_AUTH_ENDPOINT(self):  # noqa: N802 - the parent's name
        return oidc.discovery()["authorization_endpoint"]

    def post(self, request):
        if not oidc.enabled():
            raise Http404("Single sign-on is not configured.")
        try:
            return self.get(request)
        except SignInRefused as refusal:
            return refused(request, refusal)


@method_decorator(login_not_required, name="dispatch")
class SignInCallback(OIDCAuthenticationCallbackView):
    """Where the provider sends the browser back: the code is exchanged and the ID token
    checked (wiki.oidc.Backend); a refusal is a page saying why, never a 500."""

    get_settings = staticmethod(oidc.endpoint_settings)

    def get(self, request):
        if not oidc.enabled():
            raise Http404("Single sign-on is not configured.")
        try:
            return super().get(request)
        except SignInRefused as refusal:
            return refused(request, refusal)
        except SuspiciousOperation:  # a state this browser's session does not hold
            return refused(request, STALE_SIGN_IN)

    def login_failure(self):
        error = self.request.GET.get("error")
        if error:  # the provider said no (access_denied, …)
            # Its words are not shown: anyone could put text of their own on this page
            # with a link.
            return refused(
                self.request,
                SignInRefused(
                    "The sign-in was not completed",
                    PROVIDER_ERRORS.get(error, PROVIDER_ERRORS["server_error"]),
                    status=403,
                ),
            )
        return refused(self.request, STALE_SIGN_IN)


class LogoutView(auth_views.LogoutView):
    """Ends the session here and, for a single sign-on session, at the provider too when
    it offers RP-initiated logout (its end_session_endpoint)."""

    def post(self, request, *args, **kwargs):
        id_token = request.session.get("oidc_id_token")
        response = super().post(request, *args, **kwargs)
        if id_token and oidc.enabled():
            back = request.build_absolute_uri(reverse("login"))
            provider_logout = oidc.logout_url(id_token, back)
            if provider_logout:
                return HttpResponseRedirect(provider_logout)
        return response
