from django.apps import AppConfig


class WikiConfig(AppConfig):
    name = "wiki"
    verbose_name = "Wiki"

    def ready(self):
        from simple_history.signals import pre_create_historical_record

        from wiki import checks  # noqa: F401  (registers the system checks)
        from wiki.history import stamp_revision

        pre_create_historical_record.connect(stamp_revision, dispatch_uid="wiki.stamp_revision")
