from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class UploadsConfig(AppConfig):
    name = "uploads"
    verbose_name = _("Envois reprenables")

    def ready(self) -> None:
        from ingest import quota
        from studies.lifecycle import status_changed

        from .previews import on_status_changed
        from .spool_usage import OpenTransfers

        quota.register_open_uploads(OpenTransfers())  # the quota counts what these uploads hold
        # A study complete: its previews' pixels are no longer needed (studies never imports us).
        status_changed.connect(on_status_changed, dispatch_uid="uploads.previews.on_status_changed")
