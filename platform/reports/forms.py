from django import forms
from django.utils.translation import gettext_lazy as _

from .models import Abnormality, CriticalCategory, Language, ReportTemplate, VersionKind

CRITICAL_CHOICES = [("", _("Aucun résultat critique")), *CriticalCategory.choices]
ABNORMALITY_CHOICES = [("", _("Non précisé")), *Abnormality.choices]


def _text(label, rows: int, max_length: int) -> forms.CharField:
    return forms.CharField(
        label=label, widget=forms.Textarea(attrs={"rows": rows}), required=False, max_length=max_length
    )


class ReportForm(forms.Form):
    """The draft, as the reading page's editor posts it (every field optional: a post that
    leaves one out leaves that part of the draft as it was)."""

    template = forms.ModelChoiceField(
        label=_("Modèle"), queryset=ReportTemplate.objects.filter(active=True), required=False
    )
    language = forms.ChoiceField(label=_("Langue du compte rendu"), choices=Language.choices, required=False)
    indication = _text(_("Indication"), 2, 2000)
    technique = _text(_("Technique"), 3, 5000)
    findings = _text(_("Résultats"), 10, 20000)
    conclusion = _text(_("Conclusion"), 4, 5000)
    critical_category = forms.ChoiceField(
        label=_("Résultat critique"), choices=CRITICAL_CHOICES, required=False
    )
    abnormality = forms.ChoiceField(label=_("Normal ou anormal"), choices=ABNORMALITY_CHOICES, required=False)


class SignForm(forms.Form):
    """The confirmation step before a signature (a page of its own: it works without JS)."""

    confirm = forms.BooleanField(label=_("Je confirme signer ce compte rendu, qui sera envoyé au site."))
    accept_ai = forms.BooleanField(
        label=_("J'ai relu et j'accepte le texte proposé par l'IA : il devient mon compte rendu."),
        required=False,
    )
    reason = forms.CharField(label=_("Motif de la nouvelle version"), required=False, max_length=2000)


class AmendForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("Nouvelle version"),
        choices=[
            (VersionKind.AMENDMENT, _("Rectificatif (le texte est corrigé)")),
            (VersionKind.ADDENDUM, _("Addendum (un texte est ajouté)")),
        ],
        widget=forms.RadioSelect,
    )
    reason = forms.CharField(label=_("Motif"), max_length=2000)
    indication = _text(_("Indication"), 2, 2000)
    technique = _text(_("Technique"), 3, 5000)
    findings = _text(_("Résultats"), 8, 20000)
    conclusion = _text(_("Conclusion"), 4, 5000)
    addendum = _text(_("Texte de l'addendum"), 4, 5000)
    critical_category = forms.ChoiceField(
        label=_("Résultat critique"), choices=CRITICAL_CHOICES, required=False
    )
    confirm = forms.BooleanField(
        label=_("Je confirme signer cette nouvelle version, qui sera envoyée au site.")
    )
    accept_ai = forms.BooleanField(
        label=_("J'ai relu et j'accepte le texte proposé par l'IA : il devient mon compte rendu."),
        required=False,
    )
