"""The worklist's filters and case-code search: GET parameters, so they work without JavaScript,
can be bookmarked, and the refresh script asks for the same list by reusing the query string."""

from __future__ import annotations

from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from accounts.models import Site, User
from studies.models import Priority, Study

from .selectors import WORKLIST_STATUSES

# The modalities a teleradiology site sends; anything else is still listed, unfiltered.
MODALITIES = ("CR", "DX", "CT", "MR", "US", "MG", "XA", "RF", "NM", "PT", "OT")


class WorklistFilters(forms.Form):
    q = forms.CharField(label=_("Code d'examen"), required=False, max_length=60)
    site = forms.ModelChoiceField(
        Site.objects.all(), label=_("Site"), required=False, to_field_name="code", empty_label=_("Tous")
    )
    modality = forms.ChoiceField(
        label=_("Modalité"), required=False, choices=[("", _("Toutes"))] + [(m, m) for m in MODALITIES]
    )
    priority = forms.ChoiceField(
        label=_("Priorité"), required=False, choices=[("", _("Toutes")), *Priority.choices]
    )
    status = forms.ChoiceField(
        label=_("Statut"),
        required=False,
        choices=[("", _("Tous"))] + [(s.value, s.label) for s in WORKLIST_STATUSES],
    )
    mine = forms.BooleanField(label=_("Mes examens en lecture"), required=False)

    def clean_q(self) -> tuple[str | None, int] | None:
        text = self.cleaned_data["q"].strip()
        if not text:
            return None
        parsed = Study.parse_case_code(text)
        if parsed is None:
            raise forms.ValidationError(_("Code d'examen non reconnu (exemple : KAYES-1234)."))
        return parsed

    def apply(self, studies: QuerySet[Study], user: User) -> QuerySet[Study]:
        """`studies` narrowed by the valid filters (an invalid one is shown as an error, ignored)."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        if parsed := data.get("q"):
            site_code, pk = parsed
            studies = studies.filter(pk=pk)
            if site_code is not None:
                studies = studies.filter(site__code__iexact=site_code)
        if site := data.get("site"):
            studies = studies.filter(site=site)
        if modality := data.get("modality"):
            studies = studies.filter(modality=modality)
        if priority := data.get("priority"):
            studies = studies.filter(priority=priority)
        if status := data.get("status"):
            studies = studies.filter(status=status)
        if data.get("mine"):
            studies = studies.filter(assigned_to=user)
        return studies

    @property
    def follows_claims(self) -> bool:
        """A claim or a release can change which cases these filters keep."""
        data = getattr(self, "cleaned_data", {})
        return bool(data.get("status") or data.get("mine"))

    @property
    def active(self) -> bool:
        return any(self.data.get(name) for name in self.fields)
