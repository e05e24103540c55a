from django.apps import AppConfig


class HealthConfig(AppConfig):
    name = "health"
    verbose_name = "Health"

    def ready(self) -> None:
        from . import heartbeat  # noqa: F401  (connects the worker's heartbeat to worker_ready)
