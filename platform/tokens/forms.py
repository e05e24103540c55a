from __future__ import annotations

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from studies import access

from .service import NAME_MAX_LENGTH


class TechnicianField(forms.ModelChoiceField):
    def label_from_instance(self, obj: User) -> str:  # type: ignore[override]
        site = obj.site.name if obj.site else ""
        return f"{obj.get_full_name() or obj.username} ({obj.username}) · {site}"


class IssueForm(forms.Form):
    name = forms.CharField(
        label=_("Nom"),
        max_length=NAME_MAX_LENGTH,
        help_text=_("Où tourne l'agent, par exemple « Kayes — poste radio 1 »."),
    )
    user = TechnicianField(
        label=_("Compte de l'agent"), queryset=User.objects.none(), help_text=_("Un technicien du site.")
    )

    def __init__(self, *args, manager: User, **kwargs):
        super().__init__(*args, **kwargs)
        technicians = User.objects.filter(role=User.Role.TECHNICIAN, is_active=True).select_related("site")
        allowed = [u.pk for u in technicians if access.may_manage_tokens(manager, u.site)]
        user_field = self.fields["user"]
        assert isinstance(user_field, forms.ModelChoiceField)
        user_field.queryset = User.objects.filter(pk__in=allowed).select_related("site").order_by("username")
        self.fields["days"] = forms.IntegerField(  # the settings as they are now, not at import
            label=_("Valable (jours)"),
            min_value=1,
            max_value=settings.TOKENS_MAX_DAYS,
            initial=settings.TOKENS_DEFAULT_DAYS,
        )
