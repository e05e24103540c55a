from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AssignmentConfig(AppConfig):
    """Who reads what: competences, the rota, claims that time out, automatic assignment."""

    name = "assignment"
    verbose_name = _("Attribution des lectures")
