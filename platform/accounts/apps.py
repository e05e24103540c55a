from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Sites et comptes")

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (audit of failed second-factor codes, login time)
