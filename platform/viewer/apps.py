from django.apps import AppConfig


class ViewerConfig(AppConfig):
    """The reading page's image viewer: renditions made at ingest and the bytes behind them."""

    name = "viewer"
