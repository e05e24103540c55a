"""The dashboard's period and site: a GET form (works without JavaScript), 7/30/90 days or dates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django import forms
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Site

DAYS = (7, 30, 90)
MAX_DAYS = 366  # a longer period is refused: the page must stay quick to compute


@dataclass(frozen=True)
class Period:
    """[start, end) in aware datetimes, and the local days it covers."""

    start: datetime
    end: datetime

    @property
    def first_day(self) -> date:
        return timezone.localtime(self.start).date()

    @property
    def last_day(self) -> date:
        return timezone.localtime(self.end - timedelta(microseconds=1)).date()

    @property
    def days(self) -> list[date]:
        n = (self.last_day - self.first_day).days + 1
        return [self.first_day + timedelta(days=i) for i in range(n)]


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


class PeriodForm(forms.Form):
    days = forms.TypedChoiceField(
        label=_("Période"),
        choices=[(d, _("%(n)s derniers jours") % {"n": d}) for d in DAYS],
        coerce=int,
        required=False,
        initial=30,  # what an unbound form shows is what period() uses
    )
    start = forms.DateField(label=_("Du"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label=_("Au"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    site = forms.ModelChoiceField(label=_("Site"), queryset=Site.objects.none(), required=False)

    def __init__(self, *args: object, sites: QuerySet[Site], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["site"].queryset = sites  # type: ignore[attr-defined]
        self.fields["site"].empty_label = _("Tous les sites")  # type: ignore[attr-defined]

    def clean(self) -> dict:
        data = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        if start and end and end < start:
            raise forms.ValidationError(_("La date de fin précède la date de début."))
        if start and (((end or timezone.localdate()) - start).days + 1) > MAX_DAYS:
            raise forms.ValidationError(_("Choisissez une période d'au plus %(n)s jours.") % {"n": MAX_DAYS})
        return data

    def period(self, now: datetime | None = None) -> Period:
        """The dates when given (whole local days, both included), else the last N days."""
        now = now or timezone.now()
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        if data.get("start"):
            end_day = data.get("end") or timezone.localtime(now).date()
            return Period(_midnight(data["start"]), _midnight(end_day + timedelta(days=1)))
        days = data.get("days") or 30
        return Period(now - timedelta(days=days), now)

    def chosen_site(self) -> Site | None:
        return (self.cleaned_data.get("site") if self.is_bound and self.is_valid() else None) or None
