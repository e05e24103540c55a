from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AssignmentConfig(AppConfig):
    """Who reads what: competences, the rota, claims that time out, automatic assignment."""

    name = "assignment"
    verbose_name = _("Attribution des lectures")

    def ready(self) -> None:
        from studies.lifecycle import status_changed

        from .signals import assign_when_claimable

        status_changed.connect(assign_when_claimable, dispatch_uid="assignment.push")
