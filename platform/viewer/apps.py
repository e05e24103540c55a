from django.apps import AppConfig


class ViewerConfig(AppConfig):
    """The reading page's image viewer: renditions made at ingest and the bytes behind them."""

    name = "viewer"

    def ready(self) -> None:
        # studies announces new instances; the viewer listens (studies never imports it).
        from studies.services import instance_recorded

        from .services import on_instance_recorded

        instance_recorded.connect(on_instance_recorded, dispatch_uid="viewer.on_instance_recorded")
