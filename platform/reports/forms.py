from django import forms
from django.utils.translation import gettext_lazy as _


class ReportForm(forms.Form):
    findings = forms.CharField(
        label=_("Résultats"), widget=forms.Textarea(attrs={"rows": 10}), required=False, max_length=20000
    )
    conclusion = forms.CharField(
        label=_("Conclusion"), widget=forms.Textarea(attrs={"rows": 4}), required=False, max_length=5000
    )
