from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.urls import register_converter
from django.urls.converters import StringConverter


class TextConverter(StringConverter):
    """``<text:name>``: like ``<str:…>``, but a NUL character (``%00``) is no match (a
    404), never a value that PostgreSQL would refuse with an error."""

    regex = "[^/\x00]+"


class WikiConfig(AppConfig):
    name = "wiki"
    verbose_name = "Wiki"

    def ready(self):
        from wiki import (
            checks,  # noqa: F401  (registers the system checks)
            signals,
        )

        signals.connect()
        register_converter(TextConverter, "text")


class WikiAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin, with the wiki's admin site (superusers only)."""

    default = False  # installed by its path; "wiki" means WikiConfig
    default_site = "wiki.admin_site.WikiAdminSite"
