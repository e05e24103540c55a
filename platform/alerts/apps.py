from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"
    verbose_name = "Alertes"

    def ready(self) -> None:
        from studies.lifecycle import event_recorded

        from .triggers import on_event_recorded

        # In the event's transaction: the alert rows commit or roll back with the move.
        event_recorded.connect(on_event_recorded, dispatch_uid="alerts.on_event_recorded")
