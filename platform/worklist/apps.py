from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WorklistConfig(AppConfig):
    name = "worklist"
    verbose_name = _("Liste de travail")

    def ready(self) -> None:
        from . import facts

        facts.connect()  # the one writer of the studies' ranking facts
