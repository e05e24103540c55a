"""The audit trail's page (search, newest first, keyset pages) and its CSV export: admins only.

Looking at the trail is itself on the trail ("audit.viewed", "audit.exported", with the filters).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import datetime, time, timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from accounts.models import Site
from studies import access
from studies.models import Study

from .api import record
from .models import AuditEvent, Outcome

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet would run these as formulas


class AuditFilters(forms.Form):
    start = forms.DateField(label=_("Du"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label=_("Au"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    actor = forms.CharField(label=_("Identifiant"), required=False, max_length=150)
    action = forms.CharField(
        label=_("Action"), required=False, max_length=64, help_text=_("Début du code : login, study.viewed…")
    )
    outcome = forms.ChoiceField(label=_("Résultat"), required=False, choices=[("", "—"), *Outcome.choices])
    case = forms.CharField(label=_("Examen ou objet"), required=False, max_length=120)
    site = forms.ModelChoiceField(label=_("Site"), required=False, queryset=Site.objects.all())
    address = forms.GenericIPAddressField(label=_("Adresse du client"), required=False)

    def events(self) -> QuerySet[AuditEvent]:
        """The filtered rows, newest first (only the fields that are valid filter)."""
        data = self.cleaned_data if self.is_bound and hasattr(self, "cleaned_data") else {}
        rows = AuditEvent.objects.all()
        zone = timezone.get_current_timezone()
        if data.get("start"):
            rows = rows.filter(at__gte=datetime.combine(data["start"], time.min, tzinfo=zone))
        if data.get("end"):
            day_after = data["end"] + timedelta(days=1)
            rows = rows.filter(at__lt=datetime.combine(day_after, time.min, tzinfo=zone))
        if data.get("actor"):
            rows = rows.filter(actor_username__iexact=data["actor"].strip())
        if data.get("action"):
            rows = rows.filter(action__startswith=data["action"].strip().lower())
        if data.get("outcome"):
            rows = rows.filter(outcome=data["outcome"])
        if data.get("case"):
            rows = rows.filter(_object_q(data["case"].strip()))
        if data.get("site"):
            rows = rows.filter(site_id=data["site"].pk)
        if data.get("address"):
            rows = rows.filter(client_address=data["address"])
        return rows.order_by("-at", "-id")

    def summary(self) -> dict[str, str]:
        """The filters used, for the audit row of this search (names and codes, no patient data)."""
        data = getattr(self, "cleaned_data", {})
        return {k: str(v.pk if isinstance(v, Site) else v) for k, v in data.items() if v not in (None, "")}


def _object_q(text: str) -> Q:
    """A case code (KAYES-1234, 1234) names the study and everything of it; else a label."""
    q = Q(object_label__iexact=text) | Q(object_label__istartswith=f"{text} ")
    parsed = Study.parse_case_code(text)
    if parsed is not None:
        site, number = parsed
        study = Q(object_type="studies.study", object_id=str(number))
        if site:
            study &= Q(object_label__iexact=f"{site}-{number}")
        q |= study
    return q


def _admin(request: HttpRequest) -> None:
    if not access.may_see_audit(request.user):
        raise Http404


def _cursor(text: str) -> tuple[datetime, int] | None:
    """The keyset cursor "<iso time>_<id>" of the last row shown; None when absent or garbled."""
    at, _sep, pk = text.rpartition("_")
    try:
        when = datetime.fromisoformat(at)
        return (when, int(pk)) if timezone.is_aware(when) else None
    except ValueError:
        return None


@require_GET
@login_required
def events(request: HttpRequest) -> HttpResponse:
    _admin(request)
    filters = AuditFilters(request.GET or None)
    valid = filters.is_valid() if filters.is_bound else True
    rows = filters.events() if valid else AuditEvent.objects.none()
    after = _cursor(request.GET.get("after", ""))
    if after is not None:
        rows = rows.filter(Q(at__lt=after[0]) | Q(at=after[0], id__lt=after[1]))
    size = settings.AUDIT_PAGE_SIZE
    page = list(rows[: size + 1])
    more = len(page) > size
    page = page[:size]
    sites = dict(Site.objects.values_list("pk", "code"))
    query = request.GET.copy()
    query.pop("after", None)
    next_query = None
    if more:
        last = page[-1]
        query["after"] = f"{last.at.isoformat()}_{last.pk}"
        next_query = query.urlencode()
        query.pop("after")
    record("audit.viewed", request=request, detail={"filters": filters.summary() if valid else {}})
    return render(
        request,
        "audit/events.html",
        {
            "filters": filters,
            "events": [(e, sites.get(e.site_id or 0, "")) for e in page],
            "next_query": next_query,
            "export_query": query.urlencode(),
            "first_page": after is None,
        },
    )


class _Echo:
    """A file-like sink for csv.writer: each row comes straight back to be streamed."""

    def write(self, value: str) -> str:
        return value


def safe_cell(value: Any) -> str:
    """A cell no spreadsheet runs as a formula (OWASP CSV injection): prefixed with a quote."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


COLUMNS = [
    "at", "action", "outcome", "actor", "role", "client_address", "object_type", "object_id",
    "object", "site", "method", "path", "request_id", "detail", "spooled",
]  # fmt: skip


def _csv_rows(rows: QuerySet[AuditEvent], sites: dict[int, str]) -> Iterator[str]:
    import json

    writer = csv.writer(_Echo())
    yield writer.writerow(COLUMNS)
    for e in rows.iterator(chunk_size=1000):
        cells = [
            timezone.localtime(e.at).isoformat(), e.action, e.outcome, e.actor_username, e.actor_role,
            e.client_address, e.object_type, e.object_id, e.object_label, sites.get(e.site_id or 0, ""),
            e.request_method, e.request_path, e.request_id,
            json.dumps(e.detail, ensure_ascii=False, sort_keys=True), int(e.spooled),
        ]  # fmt: skip
        yield writer.writerow([safe_cell(c) for c in cells])


@require_GET
@login_required
def export(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    _admin(request)
    filters = AuditFilters(request.GET or None)
    if filters.is_bound and not filters.is_valid():
        return render(
            request,
            "audit/events.html",
            {"filters": filters, "events": [], "next_query": None, "export_query": "", "first_page": True},
            status=400,
        )
    record("audit.exported", request=request, detail={"filters": filters.summary()})
    sites = dict(Site.objects.values_list("pk", "code"))
    lines = _csv_rows(filters.events(), sites)
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="joliba-audit-{stamp}.csv"'
    response["Cache-Control"] = "private, no-store"
    return response
