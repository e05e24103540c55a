from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PrereadConfig(AppConfig):
    name = "preread"
    verbose_name = _("Pré-lecture IA")
