from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView

from api.urls import not_found
from api.views.docs import ApiDocs
from frontend.views import accounts

handler500 = "api.errors.server_error"

urlpatterns = [
    path("accounts/login/", accounts.LoginView.as_view(), name="login"),
    # Break-glass: the password form even with LOCAL_LOGIN=false (then superusers only).
    path("accounts/login/local/", accounts.LoginView.as_view(break_glass=True), name="login-local"),
    path("accounts/oidc/start/", accounts.SignInStart.as_view(), name="oidc-start"),
    path("accounts/oidc/callback/", accounts.SignInCallback.as_view(), name="oidc-callback"),
    path("accounts/logout/", accounts.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password/",
        auth_views.PasswordChangeView.as_view(template_name="frontend/password_change.html"),
        name="password_change",
    ),
    path(
        "accounts/password/done/",
        auth_views.PasswordChangeDoneView.as_view(
            template_name="frontend/password_change_done.html"
        ),
        name="password_change_done",
    ),
    path("admin/", admin.site.urls),
    path("api/v1/", include("api.urls")),
    # DRF views authenticate themselves (401 in JSON for API clients; DRF exempts them
    # from LoginRequiredMiddleware); the docs are a page for browsers: log in first.
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "api/docs/",
        login_required(ApiDocs.as_view(url_name="api-schema")),
        name="api-docs",
    ),
    re_path(r"^api/", not_found),
    path("", include("frontend.urls")),
]
