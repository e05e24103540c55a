from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PrereadConfig(AppConfig):
    name = "preread"
    verbose_name = _("Pré-lecture IA")

    def ready(self) -> None:
        # studies announces status changes; the pre-read listens (studies never imports it).
        from studies.lifecycle import status_changed

        from .services import on_status_changed

        status_changed.connect(on_status_changed, dispatch_uid="preread.on_status_changed")
