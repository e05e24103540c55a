from django import forms
from django.utils.translation import gettext_lazy as _

from .models import NotificationSettings


class NotificationSettingsForm(forms.ModelForm):
    class Meta:
        model = NotificationSettings
        fields = ["language", "sms_enabled", "email_enabled", "report_ready", "quiet_start", "quiet_end"]
        widgets = {
            "quiet_start": forms.TimeInput(attrs={"type": "time"}),
            "quiet_end": forms.TimeInput(attrs={"type": "time"}),
        }


class PhoneForm(forms.Form):
    phone = forms.CharField(label=_("téléphone"), max_length=32)


class ConfirmCodeForm(forms.Form):
    code = forms.CharField(label=_("code reçu par SMS"), max_length=8)
