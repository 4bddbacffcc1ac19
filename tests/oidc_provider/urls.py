"""The test provider's routes: django-oauth-toolkit under /o/, its login form, and
/testing/, through which a test changes what the provider says (a user's groups, the
lifetime and issuer of the next ID tokens)."""

import json

from django.contrib.auth import views as auth_views
from django.contrib.auth.models import Group, User
from django.http import JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.settings import oauth2_settings


class Validator(OAuth2Validator):
    """Claims a company's provider sends: a user name, the e-mail and the groups."""

    oidc_claim_scope = OAuth2Validator.oidc_claim_scope | {"groups": "profile"}

    def get_additional_claims(self, request):
        user = request.user
        return {
            "preferred_username": user.username,
            "email": user.email,
            "given_name": user.first_name,
            "groups": sorted(user.groups.values_list("name", flat=True)),
        }


@csrf_exempt
def testing(request):
    """POST {"user": name, "groups": [...]} or {"id_token_seconds": n} or {"issuer": url}."""
    change = json.loads(request.body)
    if "user" in change:
        user = User.objects.get(username=change["user"])
        user.groups.set([Group.objects.get_or_create(name=name)[0] for name in change["groups"]])
    if "id_token_seconds" in change:
        oauth2_settings.ID_TOKEN_EXPIRE_SECONDS = change["id_token_seconds"]
    if "issuer" in change:
        oauth2_settings.OIDC_ISS_ENDPOINT = change["issuer"]
    return JsonResponse({"ok": True})


urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view()),
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
    path("testing/", testing),
]
