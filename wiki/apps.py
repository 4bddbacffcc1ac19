from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class WikiConfig(AppConfig):
    name = "wiki"
    verbose_name = "Wiki"

    def ready(self):
        from wiki import (
            checks,  # noqa: F401  (registers the system checks)
            signals,
        )

        signals.connect()


class WikiAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin, with the wiki's admin site (superusers only)."""

    default = False  # installed by its path; "wiki" means WikiConfig
    default_site = "wiki.admin_site.WikiAdminSite"
