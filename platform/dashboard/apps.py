from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """The coordinator's dashboard: per site and period figures, link health, AI against readers."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "dashboard"
