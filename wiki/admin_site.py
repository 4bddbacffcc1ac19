"""The admin site: for superusers only.

Project roles are enforced in the wiki itself; the admin's own model permissions would
bypass them, so nobody else gets in. Kept apart from wiki/admin.py, which registers the
models on it (the site must exist before that module is imported).
"""

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm


class SuperuserLoginForm(AdminAuthenticationForm):
    """Only superusers log in here: staff who are not would get a session (with
    LOCAL_LOGIN=false, a password login the login page refuses them) and no admin."""

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        if not user.is_superuser:
            raise self.get_invalid_login_error()


class WikiAdminSite(admin.AdminSite):
    site_header = "mlwiki administration"
    login_form = SuperuserLoginForm

    def has_permission(self, request):
        return request.user.is_active and request.user.is_superuser
