"""The dashboard's figures, read from the other apps' rows (nothing here writes).

Definitions (docs/dashboard.md says the same for the coordinator):
- received: a study's first `received` event in the period; signed: its first `reported` event;
  turnaround = signed − received; median, and p90 by nearest rank (the smallest turnaround with at
  least 90 % of the cases at or under it);
- SLA: the worklist's reading targets per priority (worklist.ranking.DEFAULT_SLA_MINUTES and
  WORKLIST_SLA_MINUTES): a case is within it when its turnaround is at most that long;
- bytes received: ingest.DailyUsage (every route, per local day); bytes saved: for the instances
  whose manifest declared the size before the agent compressed it (`raw_size`), raw − sent;
- link: throughput = bytes of the site's resumable transfers ÷ the time each was open (first to
  last chunk); an outage window = no byte from the site for DASHBOARD_OUTAGE_MINUTES or more while
  one of its sendings was under way; data used against the monthly prepaid DASHBOARD_DATA_BUDGET_MB;
- AI against the radiologists: the AI's flag (preread.shadow.is_flagged) against the latest signed
  version's answer « normal ou anormal » (a critical category counts as abnormal); cases without
  an answer are counted apart, never guessed. "Moved up": at the moment the case was taken, it
  stood higher in the waiting queue than it would have with every AI urgency removed
  (worklist.ranking.rank_case, the queue rebuilt from the studies' histories).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import BooleanField, Count, ExpressionWrapper, Min, OuterRef, Q, Subquery, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Site, User
from ingest.models import DailyUsage, Submission
from preread.models import Outcome, PreRead, ShadowResult
from preread.shadow import live_flagged_q
from reports.models import Abnormality, ReportVersion
from studies.models import Priority, Status, Study, StudyEvent
from uploads.models import StudyManifest, Transfer
from worklist.ranking import DEFAULT_SLA_MINUTES, DEFAULT_WEIGHTS, CaseFactors, rank_case

from .periods import Period

MB = 1_000_000
OPEN = (Status.ARRIVING, Status.RECEIVED, Status.QUEUED, Status.IN_READING)
WAITING = (Status.RECEIVED, Status.QUEUED)


@dataclass
class Table:
    """One table of the page, and of its CSV export: column codes with their labels, and rows
    of plain values keyed by code."""

    name: str
    title: str
    columns: list[tuple[str, str]]
    rows: list[dict[str, Any]]

    def cells(self) -> list[list[Any]]:
        """The values, as exported (codes, plain numbers)."""
        return [[row.get(code, "") for code, _label in self.columns] for row in self.rows]

    def shown(self) -> list[list[Any]]:
        """The values as the page shows them: a code with its label (`<code>_label`) as the label."""
        return [
            [row.get(f"{code}_label", row.get(code)) for code, _label in self.columns] for row in self.rows
        ]


# --- small arithmetic ------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def p90(values: Sequence[float]) -> float | None:
    """Nearest rank: the smallest value with at least 90 % of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(0.9 * len(ordered)), 1) - 1]


def share(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def _mb(n: int | None) -> float:
    return round((n or 0) / MB, 1)


def _minutes(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def sla_minutes() -> dict[str, float]:
    return {**DEFAULT_SLA_MINUTES, **settings.WORKLIST_SLA_MINUTES}


def monthly_budget_mb(site: Site) -> float:
    """The site's prepaid data per calendar month (0: none set)."""
    budgets = settings.DASHBOARD_DATA_BUDGET_MB
    return float(budgets.get(site.code, budgets.get("*", 0)))


# --- the cases of the period ---------------------------------------------------------------------


@dataclass(frozen=True)
class SignedCase:
    pk: int
    site_id: int
    priority: str
    received: datetime
    signed: datetime
    signer_id: int | None

    @property
    def minutes(self) -> float:
        return (self.signed - self.received).total_seconds() / 60


def _firsts(sites: Iterable[Site]) -> Any:
    return Study.objects.filter(site__in=list(sites)).annotate(
        first_received=Min("events__at", filter=Q(events__to_status=Status.RECEIVED)),
        first_signed=Min("events__at", filter=Q(events__to_status=Status.REPORTED)),
    )


def signed_cases(sites: Iterable[Site], period: Period) -> list[SignedCase]:
    """The studies first signed in the period, with when they were first complete."""
    signer = StudyEvent.objects.filter(study=OuterRef("pk"), to_status=Status.REPORTED).order_by("at", "pk")
    rows = (
        _firsts(sites)
        .filter(first_signed__gte=period.start, first_signed__lt=period.end, first_received__isnull=False)
        .annotate(signer=Subquery(signer.values("actor")[:1]))
        .values_list("pk", "site_id", "priority", "first_received", "first_signed", "signer")
    )
    return [SignedCase(*row) for row in rows]


# --- activity: studies and bytes -------------------------------------------------------------------

ACTIVITY_COLUMNS = [
    ("site", _("Site")),
    ("studies_received", _("Examens reçus")),
    ("mb_received", _("Mo reçus")),
    ("mb_before_compression", _("Mo avant compression (déclarés)")),
    ("mb_sent_compressed", _("Mo envoyés pour ceux-ci")),
    ("mb_saved", _("Mo économisés par la compression")),
    ("saved_pct", _("Économie (%)")),
]


def _days_filter(period: Period) -> Q:
    return Q(day__gte=period.first_day, day__lte=period.last_day)


def activity(sites: Sequence[Site], period: Period) -> Table:
    received = Counter(
        _firsts(sites)
        .filter(first_received__gte=period.start, first_received__lt=period.end)
        .values_list("site_id", flat=True)
    )
    used = dict(
        DailyUsage.objects.filter(_days_filter(period), site__in=sites)
        .values_list("site_id")
        .annotate(total=Sum("bytes"))
        .values_list("site_id", "total")
    )
    raw: dict[int, int] = defaultdict(int)
    sent: dict[int, int] = defaultdict(int)
    manifests = StudyManifest.objects.filter(
        submission__site__in=sites,
        submission__created_at__gte=period.start,
        submission__created_at__lt=period.end,
    ).values_list("submission__site_id", "expected")
    for site_id, expected in manifests.iterator(chunk_size=200):
        for entry in expected or []:
            if isinstance(entry, dict) and entry.get("raw_size"):
                raw[site_id] += int(entry["raw_size"])
                sent[site_id] += int(entry.get("size") or 0)
    rows = []
    for site in sites:
        declared = raw.get(site.pk, 0)
        saved = declared - sent.get(site.pk, 0)
        rows.append(
            {
                "site": site.code,
                "studies_received": received.get(site.pk, 0),
                "mb_received": _mb(used.get(site.pk)),
                "mb_before_compression": _mb(declared) if declared else None,
                "mb_sent_compressed": _mb(sent.get(site.pk)) if declared else None,
                "mb_saved": _mb(saved) if declared else None,
                "saved_pct": round(100 * saved / declared, 1) if declared else None,
                "bytes_saved": saved if declared else None,
            }
        )
    return Table("activity", _("Examens et données reçus"), ACTIVITY_COLUMNS, rows)


def received_per_day(sites: Sequence[Site], period: Period) -> list[tuple[date, int]]:
    """Studies first complete on each local day of the period (all shown sites together)."""
    counts: dict[date, int] = defaultdict(int)
    rows = _firsts(sites).filter(first_received__gte=period.start, first_received__lt=period.end)
    for at in rows.values_list("first_received", flat=True):
        counts[timezone.localtime(at).date()] += 1
    return [(day, counts.get(day, 0)) for day in period.days]


# --- turnaround and SLA ----------------------------------------------------------------------------

TURNAROUND_COLUMNS = [
    ("site", _("Site")),
    ("priority", _("Priorité")),
    ("cases", _("Comptes rendus signés")),
    ("median_min", _("Délai médian (min)")),
    ("p90_min", _("Délai p90 (min)")),
    ("sla_min", _("Délai cible (min)")),
    ("within_sla", _("Dans le délai")),
    ("sla_pct", _("Respect du délai (%)")),
]


def turnaround(sites: Sequence[Site], cases: Sequence[SignedCase]) -> Table:
    """Per priority for all shown sites, then per site and priority (rows with cases only)."""
    slas = sla_minutes()
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    codes = {s.pk: s.code for s in sites}
    for case in cases:
        groups[("*", case.priority)].append(case.minutes)
        groups[(codes.get(case.site_id, "?"), case.priority)].append(case.minutes)
    rows = []
    order = [Priority.STAT, Priority.URGENT, Priority.ROUTINE]
    for site_code in ["*", *codes.values()]:
        for priority in order:
            values = groups.get((site_code, priority), [])
            if not values and site_code != "*":
                continue
            sla = float(slas.get(priority, slas[Priority.ROUTINE]))
            within = sum(1 for v in values if v <= sla)
            rows.append(
                {
                    "site": _("tous") if site_code == "*" else site_code,
                    "priority": priority,
                    "priority_label": str(Priority(priority).label),
                    "cases": len(values),
                    "median_min": _minutes(median(values)),
                    "p90_min": _minutes(p90(values)),
                    "sla_min": sla,
                    "within_sla": within,
                    "sla_pct": share(within, len(values)),
                    "all_sites": site_code == "*",
                }
            )
    return Table(
        "turnaround", _("Délai de lecture (reçu → signé) et respect du délai cible"), TURNAROUND_COLUMNS, rows
    )


# --- backlog ---------------------------------------------------------------------------------------

BACKLOG_COLUMNS = [
    ("site", _("Site")),
    *[(str(s), str(Status(s).label)) for s in OPEN],
    ("total", _("Total non signé")),
    ("oldest_wait_h", _("Plus longue attente (h)")),
]


def backlog(sites: Sequence[Site], now: datetime) -> Table:
    """What is not signed yet, by state, now (the period does not apply)."""
    counts = (
        Study.objects.filter(site__in=sites, status__in=OPEN)
        .values_list("site_id", "status")
        .annotate(n=Count("pk"))
    )
    by_site: dict[int, dict[str, int]] = defaultdict(dict)
    for site_id, status, n in counts.values_list("site_id", "status", "n"):
        by_site[site_id][status] = n
    oldest = dict(
        Study.objects.filter(site__in=sites, status__in=WAITING, waiting_since__isnull=False)
        .values_list("site_id")
        .annotate(first=Min("waiting_since"))
        .values_list("site_id", "first")
    )
    rows = []
    for site in sites:
        states = by_site.get(site.pk, {})
        first = oldest.get(site.pk)
        rows.append(
            {
                "site": site.code,
                **{str(s): states.get(s, 0) for s in OPEN},
                "total": sum(states.values()),
                "oldest_wait_h": round((now - first).total_seconds() / 3600, 1) if first else None,
            }
        )
    return Table("backlog", _("En attente (non signés), maintenant"), BACKLOG_COLUMNS, rows)


# --- load per radiologist --------------------------------------------------------------------------

READERS_COLUMNS = [
    ("radiologist", _("Radiologue")),
    ("signed", _("Signés sur la période")),
    ("median_min", _("Délai médian (min)")),
    ("in_reading", _("En lecture maintenant")),
]


def readers(sites: Sequence[Site], cases: Sequence[SignedCase]) -> Table:
    signed: dict[int, list[float]] = defaultdict(list)
    for case in cases:
        if case.signer_id is not None:
            signed[case.signer_id].append(case.minutes)
    reading = dict(
        Study.objects.filter(site__in=sites, status=Status.IN_READING, assigned_to__isnull=False)
        .values_list("assigned_to")
        .annotate(n=Count("pk"))
        .values_list("assigned_to", "n")
    )
    people = User.objects.filter(pk__in=set(signed) | set(reading)).order_by("last_name", "username")
    rows = [
        {
            "radiologist": u.get_full_name() or u.username,
            "signed": len(signed.get(u.pk, [])),
            "median_min": _minutes(median(signed.get(u.pk, []))),
            "in_reading": reading.get(u.pk, 0),
        }
        for u in people
    ]
    return Table("readers", _("Charge par radiologue"), READERS_COLUMNS, rows)


# --- link health -----------------------------------------------------------------------------------

LINK_COLUMNS = [
    ("site", _("Site")),
    ("throughput_kbps", _("Débit (kbit/s)")),
    ("outages", _("Coupures")),
    ("outage_hours", _("Durée des coupures (h)")),
    ("longest_outage_min", _("Plus longue coupure (min)")),
    ("mb_period", _("Mo sur la période")),
    ("mb_month", _("Mo ce mois-ci")),
    ("budget_mb", _("Forfait mensuel (Mo)")),
    ("budget_pct", _("Forfait consommé (%)")),
    ("median_turnaround_min", _("Délai de lecture médian (min)")),
]
OUTAGE_COLUMNS = [
    ("site", _("Site")),
    ("start", _("Début")),
    ("end", _("Fin")),
    ("minutes", _("Durée (min)")),
]


def _merge(spans: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def outage_windows(
    activity_spans: list[tuple[datetime, datetime]],
    sendings: list[tuple[datetime, datetime | None]],
    *,
    minimum: timedelta,
) -> list[tuple[datetime, datetime]]:
    """Gaps of at least `minimum` between bytes arriving while a sending was under way (created
    before the gap, settled after it or never): the site had something to send and nothing came."""
    merged = _merge(activity_spans)
    gaps = []
    for (_s, gap_start), (gap_end, _e) in zip(merged, merged[1:], strict=False):
        if gap_end - gap_start < minimum:
            continue
        if any(
            created <= gap_start and (settled is None or settled >= gap_end) for created, settled in sendings
        ):
            gaps.append((gap_start, gap_end))
    return gaps


def links(
    sites: Sequence[Site], period: Period, cases: Sequence[SignedCase], now: datetime
) -> tuple[Table, Table]:
    minimum = timedelta(minutes=settings.DASHBOARD_OUTAGE_MINUTES)
    transfers = (
        Transfer.objects.filter(
            submission__site__in=sites, created_at__gte=period.start, created_at__lt=period.end, offset__gt=0
        )
        .values_list("submission__site_id", "offset", "created_at", "updated_at")
        .order_by()
    )
    spans: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    bytes_: dict[int, int] = defaultdict(int)
    seconds: dict[int, float] = defaultdict(float)
    for site_id, offset, created, updated in transfers.iterator(chunk_size=2000):
        spans[site_id].append((created, updated))
        bytes_[site_id] += offset
        seconds[site_id] += max((updated - created).total_seconds(), 1.0)  # one chunk: at least 1 s
    sendings: dict[int, list[tuple[datetime, datetime | None]]] = defaultdict(list)
    for site_id, created, settled in (
        Submission.objects.filter(site__in=sites, created_at__lt=period.end)
        .filter(Q(settled_at__isnull=True) | Q(settled_at__gte=period.start))
        .values_list("site_id", "created_at", "settled_at")
    ):
        sendings[site_id].append((created, settled))
    period_mb = dict(
        DailyUsage.objects.filter(_days_filter(period), site__in=sites)
        .values_list("site_id")
        .annotate(total=Sum("bytes"))
        .values_list("site_id", "total")
    )
    month_start = timezone.localtime(now).date().replace(day=1)
    month_mb = dict(
        DailyUsage.objects.filter(site__in=sites, day__gte=month_start)
        .values_list("site_id")
        .annotate(total=Sum("bytes"))
        .values_list("site_id", "total")
    )
    turnaround_by_site: dict[int, list[float]] = defaultdict(list)
    for case in cases:
        turnaround_by_site[case.site_id].append(case.minutes)
    rows, outage_rows = [], []
    for site in sites:
        windows = outage_windows(spans.get(site.pk, []), sendings.get(site.pk, []), minimum=minimum)
        lengths = [(b - a).total_seconds() / 60 for a, b in windows]
        budget = monthly_budget_mb(site)
        used_month = _mb(month_mb.get(site.pk))
        secs = seconds.get(site.pk, 0.0)
        rows.append(
            {
                "site": site.code,
                "throughput_kbps": round(bytes_[site.pk] * 8 / 1000 / secs, 1) if secs else None,
                "outages": len(windows),
                "outage_hours": round(sum(lengths) / 60, 1),
                "longest_outage_min": round(max(lengths), 1) if lengths else None,
                "mb_period": _mb(period_mb.get(site.pk)),
                "mb_month": used_month,
                "budget_mb": budget or None,
                "budget_pct": round(100 * used_month / budget, 1) if budget else None,
                "median_turnaround_min": _minutes(median(turnaround_by_site.get(site.pk, []))),
            }
        )
        for (a, b), minutes in zip(windows, lengths, strict=True):
            outage_rows.append(
                {
                    "site": site.code,
                    "start": timezone.localtime(a).strftime("%Y-%m-%d %H:%M"),
                    "end": timezone.localtime(b).strftime("%Y-%m-%d %H:%M"),
                    "minutes": round(minutes, 1),
                }
            )
    return (
        Table("links", _("État des liaisons et forfait de données"), LINK_COLUMNS, rows),
        Table("outages", _("Coupures de liaison"), OUTAGE_COLUMNS, outage_rows),
    )


# --- AI against the radiologists -------------------------------------------------------------------

AI_COLUMNS = [
    ("model", _("Modèle")),
    ("version", _("Version")),
    ("site", _("Site")),
    ("cases", _("Cas comparés")),
    ("true_positive", _("Signalés, anormaux")),
    ("false_positive", _("Signalés, normaux")),
    ("true_negative", _("Non signalés, normaux")),
    ("false_negative", _("Non signalés, anormaux")),
    ("sensitivity_pct", _("Sensibilité (%)")),
    ("specificity_pct", _("Spécificité (%)")),
    ("not_stated", _("Sans réponse du radiologue")),
    ("moved_up", _("Remontés par l'IA")),
    ("moved_up_pct", _("Remontés par l'IA (%)")),
]


def _truth() -> tuple[Subquery, Subquery]:
    """The latest signed version's answer and critical category, for rows with a `study`."""
    latest = ReportVersion.objects.filter(report__study=OuterRef("study")).order_by("-number")
    return Subquery(latest.values("abnormality")[:1]), Subquery(latest.values("critical_category")[:1])


def radiologist_says(answer: str | None, critical: str | None) -> bool | None:
    """True: abnormal; False: normal; None: the radiologist did not say."""
    if critical or answer == Abnormality.PRESENT:
        return True
    if answer == Abnormality.ABSENT:
        return False
    return None


@dataclass
class Agreement:
    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0
    unstated: int = 0
    moved_up: int = 0

    def add(self, flagged: bool, truth: bool | None) -> None:
        if truth is None:
            self.unstated += 1
        elif truth:
            self.tp, self.fn = self.tp + flagged, self.fn + (not flagged)
        else:
            self.fp, self.tn = self.fp + flagged, self.tn + (not flagged)

    def row(self) -> dict[str, Any]:
        cases = self.tp + self.fp + self.tn + self.fn
        return {
            "cases": cases,
            "true_positive": self.tp,
            "false_positive": self.fp,
            "true_negative": self.tn,
            "false_negative": self.fn,
            "sensitivity_pct": share(self.tp, self.tp + self.fn),
            "specificity_pct": share(self.tn, self.tn + self.fp),
            "not_stated": self.unstated,
        }


def ai_agreement(sites: Sequence[Site], cases: Sequence[SignedCase], *, moved: set[int]) -> Table:
    """The live models, per version and site, on the cases signed in the period."""
    codes = {s.pk: s.code for s in sites}
    answer, critical = _truth()
    runs = (
        PreRead.objects.filter(is_current=True, status=Outcome.SCORED, study_id__in=[c.pk for c in cases])
        .annotate(
            flag=ExpressionWrapper(live_flagged_q(), output_field=BooleanField()),
            answer=answer,
            critical=critical,
        )
        .values_list(
            "model_name", "model_version", "study__site_id", "study_id", "flag", "answer", "critical"
        )
    )
    groups: dict[tuple[str, str, str], Agreement] = defaultdict(Agreement)
    for name, version, site_id, study_id, flag, answer, critical in runs:
        group = groups[(name, version, codes.get(site_id, "?"))]
        group.add(bool(flag), radiologist_says(answer, critical))
        group.moved_up += study_id in moved
    rows = []
    for (name, version, site), agreement in sorted(groups.items()):
        row = {"model": name, "version": version, "site": site, **agreement.row()}
        compared = row["cases"] + agreement.unstated
        row.update(moved_up=agreement.moved_up, moved_up_pct=share(agreement.moved_up, compared))
        rows.append(row)
    return Table("ai", _("L'IA face aux radiologues (modèles en service)"), AI_COLUMNS, rows)


SHADOW_COLUMNS = [
    ("shadow", _("En observation")),
    *AI_COLUMNS[:11],
]


def shadow_agreement(sites: Sequence[Site], cases: Sequence[SignedCase]) -> Table:
    """The models and thresholds under trial, measured the same way (they never moved a case)."""
    codes = {s.pk: s.code for s in sites}
    answer, critical = _truth()
    results = (
        ShadowResult.objects.filter(status=Outcome.SCORED, study_id__in=[c.pk for c in cases])
        .annotate(answer=answer, critical=critical)
        .values_list(
            "shadow__name", "model_name", "model_version", "study__site_id", "flagged", "answer", "critical"
        )
    )
    groups: dict[tuple[str, str, str, str], Agreement] = defaultdict(Agreement)
    for shadow, name, version, site_id, flagged, answer, critical in results:
        groups[(shadow, name, version, codes.get(site_id, "?"))].add(
            flagged, radiologist_says(answer, critical)
        )
    rows = [
        {"shadow": shadow, "model": name, "version": version, "site": site, **agreement.row()}
        for (shadow, name, version, site), agreement in sorted(groups.items())
    ]
    return Table(
        "shadow", _("Modèles et seuils en observation (sans effet sur la file)"), SHADOW_COLUMNS, rows
    )


def moved_up_by_ai(cases: Sequence[SignedCase]) -> set[int]:
    """The cases (of `cases`) that the AI put higher in the waiting queue than they would have
    stood without it, at the moment they were taken (see the module's docstring)."""
    if not cases:
        return set()
    ids = [c.pk for c in cases]
    taken = dict(
        StudyEvent.objects.filter(study_id__in=ids, to_status=Status.IN_READING)
        .values_list("study_id")
        .annotate(first=Min("at"))
        .values_list("study_id", "first")
    )
    if not taken:
        return set()
    earliest, latest = min(taken.values()), max(taken.values())
    # Every study that could have been waiting then: received before the last claim, and not
    # long gone before the first one (a routine SLA's worth of slack per side).
    horizon = earliest - timedelta(days=30)
    candidates = StudyEvent.objects.filter(to_status=Status.RECEIVED, at__gte=horizon, at__lte=latest)
    events = (
        StudyEvent.objects.filter(study_id__in=candidates.values("study_id"), at__lte=latest)
        .order_by("study_id", "at", "pk")
        .values_list("study_id", "to_status", "at")
    )
    history: dict[int, list[tuple[str, datetime]]] = defaultdict(list)
    for study_id, to_status, at in events:
        history[study_id].append((to_status, at))
    facts = {
        pk: (priority, urgency, critical)
        for pk, priority, urgency, critical in Study.objects.filter(pk__in=list(history)).values_list(
            "pk", "priority", "ai_urgency", "ai_critical"
        )
    }

    def waiting_at(study_id: int, t: datetime) -> datetime | None:
        """When the study started waiting, if it was waiting at t (else None)."""
        status, since = None, None
        for to_status, at in history[study_id]:
            if at > t:
                break
            status = to_status
            if to_status == Status.RECEIVED:
                since = at
        return since if status in WAITING else None

    moved = set()
    for pk, t in taken.items():
        # The queue just before the case was taken: it was waiting then, so were the others.
        before = t - timedelta(microseconds=1)
        queue = []
        for other in history:
            since = waiting_at(other, before)
            if since is not None and other in facts:
                queue.append((other, since))
        if all(other != pk for other, _s in queue):
            continue

        if _position(pk, queue, facts, before, with_ai=True) < _position(
            pk, queue, facts, before, with_ai=False
        ):
            moved.add(pk)
    return moved


def _position(
    pk: int,
    queue: list[tuple[int, datetime]],
    facts: dict[int, tuple[str, float | None, bool]],
    now: datetime,
    *,
    with_ai: bool,
) -> int:
    """How many cases of `queue` stood before `pk` at `now` (the worklist's order, ties to the
    longest waiting), with the AI's urgency or without it for every case."""
    weights = {**DEFAULT_WEIGHTS, **settings.WORKLIST_WEIGHTS}
    slas = sla_minutes()
    keys = {}
    for other, since in queue:
        priority, urgency, critical = facts[other]
        factors = CaseFactors(priority, since, urgency if with_ai else None, bool(critical) and with_ai)
        rank = rank_case(factors, now=now, weights=weights, sla_minutes=slas)
        keys[other] = (-rank.score, since, other)
    mine = keys[pk]
    return sum(1 for key in keys.values() if key < mine)
