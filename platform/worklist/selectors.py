"""The worklist as queries: the order of worklist/ranking.py computed by the database.

The score depends on `now`, so it cannot be stored; it is a few arithmetic operations per row
on the study's own columns (its ranking facts, kept by worklist/facts.py), read from a partial
index of the open studies, so PostgreSQL ranks 10,000 open cases and returns one page of them;
Python then builds the rows of that page only (with ranking.rank_case, the reference, for the
"why it is here" line). worklist_ranked_in_python() is the old way, kept as the reference.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import (
    F,
    FloatField,
    Func,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import User
from preread.models import PreRead, ProvisionalPreRead
from preread.provisional import provisional_for
from preread.selectors import with_current_preread
from studies import access
from studies.models import Priority, Status, Study, StudyEvent
from uploads.arrival import ArrivalProgress, arrival_progress

from .ranking import (
    CLINICAL_LEVEL,
    DEFAULT_SLA_MINUTES,
    DEFAULT_WEIGHTS,
    CaseFactors,
    Rank,
    order_cases,
    rank_case,
)

# On the worklist: complete studies not yet reported, and those still arriving (shown, never
# claimable: studies.access.CLAIMABLE decides that).
WORKLIST_STATUSES = (Status.ARRIVING, Status.RECEIVED, Status.QUEUED, Status.IN_READING)
PAGE_SIZE = 50


@dataclass(frozen=True)
class Case:
    """One row of a radiologist's worklist: the study, why it is where it is, what they may do."""

    study: Study
    waiting_since: datetime
    ai: PreRead | None
    rank: Rank
    may_claim: bool
    held: bool  # this radiologist is reading it
    deadline: datetime | None = None  # when the priority's SLA runs out
    # A study still arriving: its bytes so far (uploads.arrival) and its previews' provisional
    # pre-read (preread.provisional), shown and labelled as such.
    arrival: ArrivalProgress | None = None
    provisional: ProvisionalPreRead | None = None

    @property
    def pk(self) -> int:
        return self.study.pk

    @property
    def why(self) -> dict[str, str]:
        """rank.explain() by name, for the row (a dict: templates look names up fastest)."""
        return dict(zip(("ai", "priority", "sla", "wait", "score"), self.rank.explain(), strict=True))

    @property
    def alerting(self) -> bool:
        """STAT or flagged critical by the AI: announced when it appears (worklist.js)."""
        return self.study.priority == Priority.STAT or self.rank.factors.ai_critical


# --- The score as SQL -----------------------------------------------------------------------------


def _settings() -> tuple[dict[str, float], dict[str, float]]:
    weights = {**DEFAULT_WEIGHTS, **settings.WORKLIST_WEIGHTS}
    slas = {**DEFAULT_SLA_MINUTES, **settings.WORKLIST_SLA_MINUTES}
    return weights, slas


class Score(Func):
    """ranking.rank_case's score as one SQL expression over the study's own columns, at `now`:

        waited = GREATEST(seconds(now − COALESCE(waiting_since, created_at)) / 60, 0)
        used   = waited / (CASE priority WHEN 'stat' THEN 30 WHEN 'urgent' THEN 120 ELSE 1440 END)
        score  = ai × LEAST(GREATEST(COALESCE(ai_urgency, 0), 0), 1)
               + priority × (CASE priority WHEN 'stat' THEN 1 WHEN 'urgent' THEN 0.5 ELSE 0 END)
               + sla × LEAST(used, 1) + overdue × GREATEST(used − 1, 0) + waiting_per_hour × waited / 60

    (weights and SLAs from settings, as in Python). Written as SQL text rather than a tree of
    Greatest/Least/Case objects: the same SQL, but Django builds and copies that tree on every
    request (about 250 expression copies), which cost more than PostgreSQL's ranking itself.
    Every number is a float8 parameter: an untyped 1.0 is a numeric, ten times slower.
    """

    output_field = FloatField()

    def __init__(self, *, now: datetime, weights: Mapping[str, float], slas: Mapping[str, float]) -> None:
        super().__init__(F("priority"), F("ai_urgency"), Coalesce(F("waiting_since"), F("created_at")))
        self.now, self.weights, self.slas = now, dict(weights), dict(slas)

    def _by_priority(self, priority: str, values: Mapping[str, float], default: float) -> tuple[str, list]:
        whens, params = [], []
        for name, value in values.items():
            whens.append("WHEN %s THEN %s")
            params += [name, float(value)]
        return f"(CASE {priority} {' '.join(whens)} ELSE %s END)", [*params, float(default)]

    def _sql(self, compiler: Any, connection: Any, *, seconds: str, least: str, greatest: str) -> Any:
        w = self.weights
        (priority, p0), (urgency, p1), (since, p2) = (
            compiler.compile(e) for e in self.get_source_expressions()
        )
        slas = {p: max(float(v), 1.0) for p, v in self.slas.items()}
        sla_sql, sla_params = self._by_priority(priority, slas, slas[Priority.ROUTINE])
        level_sql, level_params = self._by_priority(priority, CLINICAL_LEVEL, 0.0)
        now = connection.ops.adapt_datetimefield_value(self.now)
        waited = f"{greatest}({seconds.format(now='%s', since=since)} / 60.0, 0.0)"
        waited_params = [now, *p2]
        used, used_params = f"({waited} / {sla_sql})", [*waited_params, *sla_params]
        sql = (
            f"(%s * {least}({greatest}(COALESCE({urgency}, 0.0), 0.0), 1.0)"
            f" + %s * {level_sql}"
            f" + %s * {least}({used}, 1.0)"
            f" + %s * {greatest}({used} - 1.0, 0.0)"
            f" + %s * {waited} / 60.0)"
        )
        params = [
            float(w["ai"]), *p1,
            float(w["priority"]), *p0, *level_params,
            float(w["sla"]), *used_params,
            float(w["overdue"]), *used_params,
            float(w["waiting_per_hour"]), *waited_params,
        ]  # fmt: skip
        return sql, params

    # The project runs on PostgreSQL, and on SQLite for the quickstart.
    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        sql, params = self._sql(
            compiler,
            connection,
            seconds="date_part('epoch', {now}::timestamptz - {since})",  # date_part: a float8
            least="LEAST",
            greatest="GREATEST",
        )
        return _typed(sql, params), params

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # SQLite: MIN/MAX of several values are its LEAST/GREATEST; julianday() gives days.
        return self._sql(
            compiler,
            connection,
            seconds="((julianday({now}) - julianday({since})) * 86400.0)",
            least="MIN",
            greatest="MAX",
        )


def _typed(sql: str, params: list) -> str:
    """Cast each float parameter to float8 (PostgreSQL would read a bound 1.0 as a numeric)."""
    parts = sql.split("%s")
    out = [parts[0]]
    for param, rest in zip(params, parts[1:], strict=True):
        out.append("%s::float8" if isinstance(param, float) else "%s")
        out.append(rest)
    return "".join(out)


def with_score(studies: QuerySet[Study], *, now: datetime) -> QuerySet[Study]:
    """Annotate `since` (when the case started waiting) and `score` (ranking.rank_case's, by the
    database at `now`) from the study's own columns: its ranking facts, see worklist/facts.py."""
    w, slas = _settings()
    return studies.annotate(
        since=Coalesce(F("waiting_since"), F("created_at")), score=Score(now=now, weights=w, slas=slas)
    )


def with_waiting_since(studies: QuerySet[Study]) -> QuerySet[Study]:
    """Annotate `since` from the history itself (the truth the ranking facts copy)."""
    entered = StudyEvent.objects.filter(study=OuterRef("pk"), to_status=Status.RECEIVED).order_by("-at")
    return studies.annotate(since=Coalesce(Subquery(entered.values("at")[:1]), F("created_at")))


def open_studies(user: User) -> QuerySet[Study]:
    """What this user's worklist is made of (before filters)."""
    return access.studies_visible_to(user).filter(status__in=WORKLIST_STATUSES)


def ranked(studies: QuerySet[Study], *, now: datetime) -> QuerySet[Study]:
    """Most pressing first; ties go to the longest waiting, then the oldest study."""
    return with_score(studies, now=now).order_by("-score", "since", "pk")


# --- Rows ------------------------------------------------------------------------------------------


def factors_of(study: Study, waiting_since: datetime, ai: PreRead | None) -> CaseFactors:
    """The factors from the study's pre-read itself (the reference path)."""
    scored = ai is not None and ai.is_scored
    return CaseFactors(
        priority=study.priority,
        waiting_since=waiting_since,
        ai_urgency=ai.urgency if ai is not None and scored else None,
        ai_critical=bool(ai is not None and scored and ai.critical_flags),
    )


def _rows(user: User, studies: list[Study], *, now: datetime) -> list[Case]:
    w, slas = _settings()
    cases = []
    arriving = [s for s in studies if s.status == Status.ARRIVING]
    progress = arrival_progress([s.study_instance_uid for s in arriving], now=now) if arriving else {}
    provisional = provisional_for([s.pk for s in arriving]) if arriving else {}
    for study in studies:
        current = getattr(study, "current_prereads", [])
        ai = current[0] if current else None
        since = study.waiting_since or study.created_at
        factors = CaseFactors(study.priority, since, study.ai_urgency, study.ai_critical)
        rank = rank_case(factors, now=now, weights=w, sla_minutes=slas)
        cases.append(
            Case(
                study=study,
                waiting_since=since,
                ai=ai,
                rank=rank,
                may_claim=access.may_claim(user, study),
                held=access.holds(user, study),
                deadline=now + timedelta(minutes=rank.minutes_left),
                arrival=progress.get(study.study_instance_uid),
                provisional=provisional.get(study.pk),
            )
        )
    return cases


def _load(pks: list[int]) -> list[Study]:
    """The studies of `pks`, in that order, with what a row shows (the pre-read without its drafts)."""
    current = PreRead.objects.filter(is_current=True).defer("draft_fr", "draft_en")
    studies = (
        Study.objects.filter(pk__in=pks)
        .select_related("site", "assigned_to")
        .only(*ROW_FIELDS)
        .prefetch_related(Prefetch("prereads", queryset=current, to_attr="current_prereads"))
    )
    by_pk = {s.pk: s for s in studies}
    return [by_pk[pk] for pk in pks if pk in by_pk]


def _load_ranked(studies: QuerySet[Study], *, now: datetime) -> list[Study]:
    """`studies` in their rank order (scored again: 50 rows), with what a row shows."""
    current = PreRead.objects.filter(is_current=True).defer("draft_fr", "draft_en")
    return list(
        ranked(studies, now=now)
        .select_related("site", "assigned_to")
        .only(*ROW_FIELDS)
        .prefetch_related(Prefetch("prereads", queryset=current, to_attr="current_prereads"))
    )


# What a row reads of a study (worklist/rows.py), its site and its reader: nothing more is fetched.
ROW_FIELDS = (
    "site__code", "assigned_to__username", "assigned_to__first_name", "assigned_to__last_name",
    "assigned_to__role", "assigned_to__is_active", "priority", "status", "modality", "description",
    "patient_name", "indication", "created_at", "waiting_since", "ai_urgency", "ai_critical",
    "study_instance_uid",
)  # fmt: skip


@dataclass(frozen=True)
class WorklistPage:
    cases: list[Case]
    total: int
    number: int  # 1-based
    pages: int
    alerts: list[Study] = field(default_factory=list)

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages


def worklist_page(
    user: User,
    studies: QuerySet[Study] | None = None,
    *,
    page: int = 1,
    per_page: int = PAGE_SIZE,
    now: datetime | None = None,
    claims_matter: bool = True,
) -> WorklistPage:
    """One page of the worklist, ranked by the database. `studies` is the filtered base
    (open_studies(user) and the worklist's filters); the page number is clamped to what exists.
    `claims_matter`: the filters read status or holder, so a claim can change the list."""
    now = now or timezone.now()
    base = open_studies(user) if studies is None else studies
    order = _cached_order(base, now=now, claims_matter=claims_matter)
    total = base.count() if order is None else len(order)
    pages = max((total + per_page - 1) // per_page, 1)
    number = min(max(page, 1), pages)
    start = (number - 1) * per_page
    if order is None:
        # One round trip: the page's keys ranked from the index (a subquery), then those rows.
        page_pks = ranked(base, now=now).values("pk")[start : start + per_page]
        studies_shown = _load_ranked(Study.objects.filter(pk__in=page_pks), now=now)
    else:
        studies_shown = _load(order[start : start + per_page])
    return WorklistPage(
        cases=_rows(user, studies_shown, now=now),
        total=total,
        number=number,
        pages=pages,
        alerts=alerts(base),
    )


# Where an event takes a study that changes the worklist's order or membership (see lifecycle).
MEMBERSHIP_MOVES = (Status.ARRIVING, Status.RECEIVED, Status.REPORTED, Status.RETURNED, Status.DELIVERED)


def _cached_order(base: QuerySet[Study], *, now: datetime, claims_matter: bool) -> list[int] | None:
    """The whole ranked order of `base`, shared for WORKLIST_RANK_CACHE_SECONDS (5 s) by every
    request asking for the same list (a night's radiologists mostly look at the same one), or
    None when that cache is off. The key holds the query, the weights, the time slot and the
    newest study, event, pre-read and provisional pre-read ids, so a new case, a case leaving
    the list or an arriving case's provisional score shows at once;
    the rows themselves (status, holder, pre-read, countdowns) are always read fresh."""
    ttl = settings.WORKLIST_RANK_CACHE_SECONDS
    if ttl <= 0:
        return None
    study, event, preread, provisional = (
        m._meta.db_table for m in (Study, StudyEvent, PreRead, ProvisionalPreRead)
    )
    # Claims and releases neither add nor remove a case nor change a score: unless the list
    # is filtered on status or holder, only the moves in and out of the list count.
    moves = "" if claims_matter else f" WHERE to_status IN ({', '.join(['%s'] * len(MEMBERSHIP_MOVES))})"
    with connection.cursor() as cursor:  # index lookups, one round trip
        cursor.execute(
            f'SELECT (SELECT MAX(id) FROM "{study}"), (SELECT MAX(id) FROM "{event}"{moves}), '
            f'(SELECT MAX(id) FROM "{preread}"), (SELECT MAX(id) FROM "{provisional}")',
            [] if claims_matter else list(MEMBERSHIP_MOVES),
        )
        newest = cursor.fetchone()
    try:
        sql, params = base.values("pk").query.sql_with_params()
    except EmptyResultSet:  # a list that can hold nothing (e.g. a radiologist with no rights)
        return []
    slot = int(now.timestamp() // ttl)
    key_text = json.dumps([sql, [str(p) for p in params], _settings(), slot, newest], default=str)
    key = "worklist-order-" + hashlib.sha256(key_text.encode()).hexdigest()
    order = cache.get(key)
    if order is None:
        order = list(ranked(base, now=now).values_list("pk", flat=True))
        cache.set(key, order, timeout=ttl * 2)
    return order


def alerts(studies: QuerySet[Study], *, limit: int = 20) -> list[Study]:
    """The newest open STAT or AI-critical cases not yet taken, whatever page they rank on: the
    ones the page announces when they appear."""
    return list(
        studies.filter(status__in=access.CLAIMABLE, assigned_to__isnull=True)
        .filter(Q(priority=Priority.STAT) | Q(ai_critical=True))
        .select_related("site")
        .order_by("-pk")
        .only("pk", "site__code")[:limit]
    )


def worklist_for(user: User, *, now: datetime | None = None) -> list[Case]:
    """The whole worklist, most pressing first (tests and small deployments; pages use worklist_page)."""
    now = now or timezone.now()
    pks = list(ranked(open_studies(user), now=now).values_list("pk", flat=True))
    return _rows(user, _load(pks), now=now)


def next_cases(user: User, study: Study, n: int = 3) -> list[Study]:
    """The next `n` cases after `study` in this radiologist's order that they may read (claimable
    by them or held by them), for prefetching their previews. After the top of the list when
    `study` is no longer on it."""
    now = timezone.now()
    readable = open_studies(user).filter(
        Q(status__in=access.CLAIMABLE, assigned_to__isnull=True)
        | Q(status__in=(*access.CLAIMABLE, Status.IN_READING), assigned_to=user)
    )
    order = ranked(readable.exclude(pk=study.pk), now=now)
    here: dict[str, Any] | None = (
        ranked(open_studies(user).filter(pk=study.pk), now=now).values("score", "since").first()  # type: ignore[misc]
    )
    if here is not None:
        s, since = here["score"], here["since"]
        order = order.filter(
            Q(score__lt=s) | Q(score=s, since__gt=since) | Q(score=s, since=since, pk__gt=study.pk)
        )
    return list(order.select_related("site")[:n])


# --- The peer: the old ranking in Python (kept for the equivalence test and the benchmark) ---------


def worklist_ranked_in_python(user: User, *, now: datetime | None = None) -> list[Case]:
    """Every open study loaded and ranked in Python by ranking.order_cases (the pre-SQL way)."""
    now = now or timezone.now()
    w, slas = _settings()
    studies = with_current_preread(
        with_waiting_since(open_studies(user).select_related("site", "assigned_to"))
    )
    rows = []
    for study in studies:
        current = getattr(study, "current_prereads", [])
        since = study.since  # type: ignore[attr-defined]  # annotated
        rows.append((study, since, current[0] if current else None))
    ordered = order_cases(rows, lambda row: factors_of(*row), now=now, weights=w, sla_minutes=slas)
    return [
        Case(
            study=study,
            waiting_since=since,
            ai=ai,
            rank=rank,
            may_claim=access.may_claim(user, study),
            held=access.holds(user, study),
        )
        for (study, since, ai), rank in ordered
    ]
