"""The coordinator's dashboard and the CSV export of each of its tables: admins only
(studies.access.may_see_dashboard; anyone else gets 404). Figures only, no patient data."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.decorators import login_required
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from accounts.models import Site
from audit.api import record
from studies import access
from studies.models import Priority

from . import charts, figures
from .figures import Table
from .periods import Period, PeriodForm

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet would run these as formulas


def visible_sites(user: access.Person) -> QuerySet[Site]:
    """The sites this admin may see on the dashboard (access.may_see_dashboard, per site)."""
    return Site.objects.filter(pk__in=[s.pk for s in Site.objects.all() if access.may_see_dashboard(user, s)])


@dataclass
class Dashboard:
    period: Period
    sites: list[Site]
    tables: dict[str, Table]
    per_day: list[tuple[str, float]]


def build(sites: list[Site], period: Period, now: datetime) -> Dashboard:
    cases = figures.signed_cases(sites, period)
    links, outages = figures.links(sites, period, cases, now)
    tables = [
        figures.activity(sites, period),
        figures.turnaround(sites, cases),
        figures.backlog(sites, now),
        figures.readers(sites, cases),
        links,
        outages,
        figures.ai_agreement(sites, cases, moved=figures.moved_up_by_ai(cases)),
        figures.shadow_agreement(sites, cases),
    ]
    per_day = [(d.strftime("%d/%m"), float(n)) for d, n in figures.received_per_day(sites, period)]
    return Dashboard(period, sites, {t.name: t for t in tables}, per_day)


def _short(priority: str) -> str:
    """A priority's name short enough for a chart's label column."""
    return "STAT" if priority == Priority.STAT else str(Priority(priority).label)


def _request_dashboard(request: HttpRequest) -> tuple[PeriodForm, Dashboard]:
    if not access.may_see_dashboard(request.user):
        raise Http404
    allowed = visible_sites(request.user)
    form = PeriodForm(request.GET or None, sites=allowed)
    chosen = form.chosen_site()
    sites = [chosen] if chosen is not None else list(allowed)
    now = timezone.now()
    return form, build(sites, form.period(now), now)


@require_GET
@login_required
def index(request: HttpRequest) -> HttpResponse:
    form, board = _request_dashboard(request)
    t = board.tables
    turnaround_all = [r for r in t["turnaround"].rows if r["all_sites"]]
    context = {
        "form": form,
        "board": board,
        "tables": t,
        "query": request.GET.urlencode(),
        "chart_per_day": charts.columns(
            board.per_day,
            title=_("Examens reçus par jour"),
            label_every=max(len(board.per_day) // 8, 1),
        ),
        "chart_turnaround": charts.bars(
            [(_short(r["priority"]), r["median_min"], r["sla_min"]) for r in turnaround_all],
            title=_("Délai médian par priorité, et délai cible"),
            unit="min",
            second_label=_("cible"),
        ),
        "chart_budget": charts.bars(
            [(r["site"], r["mb_month"], r["budget_mb"]) for r in t["links"].rows],
            title=_("Données ce mois-ci, et forfait"),
            unit=_("Mo"),
            second_label=_("forfait"),
        ),
    }
    return render(request, "dashboard/index.html", context)


def safe_cell(value: object) -> str:
    """A cell no spreadsheet runs as a formula (OWASP CSV injection); a negative number stays one."""
    text = "" if value is None else str(value)
    if isinstance(value, int | float):
        return text
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


@require_GET
@login_required
def export(request: HttpRequest, table: str) -> HttpResponse:
    form, board = _request_dashboard(request)
    if table not in board.tables:
        raise Http404
    chosen = board.tables[table]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([code for code, _label in chosen.columns])
    for cells in chosen.cells():
        writer.writerow([safe_cell(c) for c in cells])
    record("dashboard.exported", request=request, detail={"table": table, "query": request.GET.urlencode()})
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    first, last = board.period.first_day, board.period.last_day
    response["Content-Disposition"] = (
        f'attachment; filename="joliba-{table}-{first:%Y%m%d}-{last:%Y%m%d}.csv"'
    )
    return response
