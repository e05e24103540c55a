from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class UploadsConfig(AppConfig):
    name = "uploads"
    verbose_name = _("Envois reprenables")

    def ready(self) -> None:
        from ingest import quota

        from .spool_usage import OpenTransfers

        quota.register_open_uploads(OpenTransfers())  # the quota counts what these uploads hold
