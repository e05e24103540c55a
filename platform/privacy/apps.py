from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    """De-identified exports, retention, the patient export, the burned-in annotation flag."""

    name = "privacy"
    verbose_name = "Protection des données"

    def ready(self) -> None:
        # studies announces new instances; privacy listens (studies never imports it).
        from studies.services import instance_recorded

        from .receivers import on_instance_recorded

        instance_recorded.connect(on_instance_recorded, dispatch_uid="privacy.on_instance_recorded")
