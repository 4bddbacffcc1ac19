"""The admin site: for superusers only.

Project roles are enforced in the wiki itself; the admin's own model permissions would
bypass them, so nobody else gets in. Kept apart from wiki/admin.py, which registers the
models on it (the site must exist before that module is imported).
"""

from django.contrib import admin


class WikiAdminSite(admin.AdminSite):
    site_header = "mlwiki administration"

    def has_permission(self, request):
        return request.user.is_active and request.user.is_superuser
