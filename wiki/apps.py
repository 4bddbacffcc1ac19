from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class WikiConfig(AppConfig):
    name = "wiki"
    verbose_name = "Wiki"

    def ready(self):
        from django.contrib.auth.models import update_last_login
        from django.contrib.auth.signals import user_logged_in
        from simple_history.signals import (
            post_create_historical_record,
            pre_create_historical_record,
        )

        from wiki import checks  # noqa: F401  (registers the system checks)
        from wiki.audit import append
        from wiki.history import record_login, stamp_revision
        from wiki.search import index

        pre_create_historical_record.connect(stamp_revision, dispatch_uid="wiki.stamp_revision")
        post_create_historical_record.connect(append, dispatch_uid="wiki.audit_append")
        post_create_historical_record.connect(index, dispatch_uid="wiki.search_index")
        # Users have history (and a chain); a login is not a change of the user to keep.
        user_logged_in.disconnect(update_last_login, dispatch_uid="update_last_login")
        user_logged_in.connect(record_login, dispatch_uid="wiki.record_login")


class WikiAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin, with the wiki's admin site (superusers only)."""

    default = False  # installed by its path; "wiki" means WikiConfig
    default_site = "wiki.admin_site.WikiAdminSite"
