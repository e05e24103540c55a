"""The worklist as queries: the order of worklist/ranking.py computed by the database.

The score depends on `now`, so it cannot be stored; it is a few arithmetic operations per row
over two index lookups (the last `received` event, the current pre-read), so PostgreSQL ranks
10,000 open cases and returns one page of them; Python then builds the rows of that page only
(with ranking.rank_case, the reference, for the "why it is here" line).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Case as SqlCase
from django.db.models import (
    Count,
    DateTimeField,
    Exists,
    Expression,
    F,
    FloatField,
    Func,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Greatest, Least
from django.utils import timezone

from accounts.models import User
from preread.models import Outcome, PreRead
from preread.selectors import with_current_preread
from studies import access
from studies.models import Priority, Status, Study, StudyEvent

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

    @property
    def pk(self) -> int:
        return self.study.pk

    @property
    def alerting(self) -> bool:
        """STAT or flagged critical by the AI: announced when it appears (worklist.js)."""
        return self.study.priority == Priority.STAT or self.rank.factors.ai_critical


# --- The score as SQL -----------------------------------------------------------------------------


class Epoch(Func):
    """Seconds in an interval, as a float (PostgreSQL; julianday arithmetic on SQLite)."""

    output_field = FloatField()
    template = "CAST(EXTRACT(EPOCH FROM %(expressions)s) AS double precision)"

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # On SQLite a datetime difference is already a number of microseconds (Django's emulation).
        return self.as_sql(compiler, connection, template="(%(expressions)s) / 1000000.0", **extra)


def _f(x: float) -> Value:
    return Value(float(x), output_field=FloatField())


def _settings() -> tuple[dict[str, float], dict[str, float]]:
    weights = {**DEFAULT_WEIGHTS, **settings.WORKLIST_WEIGHTS}
    slas = {**DEFAULT_SLA_MINUTES, **settings.WORKLIST_SLA_MINUTES}
    return weights, slas


def _time_terms(since: Expression | F, priority_sla: Any, now: datetime, w: Mapping[str, float]) -> Any:
    """sla × min(used, 1) + overdue × max(used − 1, 0) + waiting_per_hour × hours waited, where
    used = minutes waited / the priority's SLA (ranking.rank_case, term for term)."""
    waited = Greatest(Epoch(Value(now, output_field=DateTimeField()) - since) / _f(60.0), _f(0.0))
    used = waited / priority_sla
    return (
        _f(w["sla"]) * Least(used, _f(1.0))
        + _f(w["overdue"]) * Greatest(used - _f(1.0), _f(0.0))
        + _f(w["waiting_per_hour"]) * waited / _f(60.0)
    )


def _sla_case(slas: Mapping[str, float]) -> SqlCase:
    """The SLA in minutes of the row's priority (at least 1, as in ranking.rank_case)."""
    routine = max(float(slas[Priority.ROUTINE]), 1.0)
    return SqlCase(
        *[When(priority=p, then=_f(max(float(v), 1.0))) for p, v in slas.items() if p != Priority.ROUTINE],
        default=_f(routine),
        output_field=FloatField(),
    )


def _current_scored_preread() -> QuerySet[PreRead]:
    # Served by the partial unique index one_current_preread (study) WHERE is_current.
    return PreRead.objects.filter(study=OuterRef("pk"), is_current=True, status=Outcome.SCORED)


def _received_events() -> QuerySet[StudyEvent]:
    # Served by the index (study, to_status, at), read backwards.
    return StudyEvent.objects.filter(study=OuterRef("pk"), to_status=Status.RECEIVED).order_by("-at")


def with_score(studies: QuerySet[Study], *, now: datetime) -> QuerySet[Study]:
    """Annotate `score`: ranking.rank_case's score, computed by the database at `now`.

    The time terms are computed inside the subquery that finds the last `received` event, so
    that lookup runs once per row (an annotation used three times would be three subqueries);
    a study with no such event (still arriving) waits since its creation, as in Python.
    """
    w, slas = _settings()
    clinical = SqlCase(
        *[When(priority=p, then=_f(level)) for p, level in CLINICAL_LEVEL.items() if level],
        default=_f(0.0),
        output_field=FloatField(),
    )
    urgency = Least(
        Greatest(Coalesce(Subquery(_current_scored_preread().values("urgency")[:1]), _f(0.0)), _f(0.0)),
        _f(1.0),
    )
    from_event = Subquery(
        _received_events()
        .annotate(terms=_time_terms(F("at"), OuterRef("sla_minutes"), now, w))
        .values("terms")[:1],
        output_field=FloatField(),
    )
    from_creation = _time_terms(F("created_at"), F("sla_minutes"), now, w)
    return studies.alias(sla_minutes=_sla_case(slas)).annotate(
        score=_f(w["ai"]) * urgency + _f(w["priority"]) * clinical + Coalesce(from_event, from_creation)
    )


def with_waiting_since(studies: QuerySet[Study]) -> QuerySet[Study]:
    """Annotate `waiting_since`: when the study last became complete (from its history)."""
    return studies.annotate(
        waiting_since=Coalesce(Subquery(_received_events().values("at")[:1]), F("created_at"))
    )


def open_studies(user: User) -> QuerySet[Study]:
    """What this user's worklist is made of (before filters)."""
    return access.studies_visible_to(user).filter(status__in=WORKLIST_STATUSES)


def ranked(studies: QuerySet[Study], *, now: datetime) -> QuerySet[Study]:
    """Most pressing first; ties go to the longest waiting, then the oldest study."""
    return with_waiting_since(with_score(studies, now=now)).order_by("-score", "waiting_since", "pk")


# --- Rows ------------------------------------------------------------------------------------------


def factors_of(study: Study, waiting_since: datetime, ai: PreRead | None) -> CaseFactors:
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
    for study in studies:
        current = getattr(study, "current_prereads", [])
        ai = current[0] if current else None
        since = study.waiting_since  # type: ignore[attr-defined]  # annotated
        rank = rank_case(factors_of(study, since, ai), now=now, weights=w, sla_minutes=slas)
        cases.append(
            Case(
                study=study,
                waiting_since=since,
                ai=ai,
                rank=rank,
                may_claim=access.may_claim(user, study),
                held=access.holds(user, study),
                deadline=now + timedelta(minutes=rank.minutes_left),
            )
        )
    return cases


def _load(pks: list[int]) -> list[Study]:
    """The studies of `pks`, in that order, with what a row shows."""
    studies = with_current_preread(
        with_waiting_since(Study.objects.filter(pk__in=pks).select_related("site", "assigned_to"))
    )
    by_pk = {s.pk: s for s in studies}
    return [by_pk[pk] for pk in pks if pk in by_pk]


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
) -> WorklistPage:
    """One page of the worklist, ranked by the database. `studies` is the filtered base
    (open_studies(user) and the worklist's filters); the page number is clamped to what exists."""
    now = now or timezone.now()
    base = open_studies(user) if studies is None else studies
    total = base.count()
    pages = max((total + per_page - 1) // per_page, 1)
    number = min(max(page, 1), pages)
    start = (number - 1) * per_page
    pks = list(ranked(base, now=now).values_list("pk", flat=True)[start : start + per_page])
    return WorklistPage(
        cases=_rows(user, _load(pks), now=now),
        total=total,
        number=number,
        pages=pages,
        alerts=alerts(base),
    )


def alerts(studies: QuerySet[Study], *, limit: int = 20) -> list[Study]:
    """The newest open STAT or AI-critical cases not yet taken, whatever page they rank on: the
    ones the page announces when they appear."""
    critical = _current_scored_preread().exclude(critical_flags=[])
    return list(
        studies.filter(status__in=access.CLAIMABLE, assigned_to__isnull=True)
        .filter(Q(priority=Priority.STAT) | Exists(critical))
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
        ranked(open_studies(user).filter(pk=study.pk), now=now).values("score", "waiting_since").first()  # type: ignore[misc]
    )
    if here is not None:
        s, since = here["score"], here["waiting_since"]
        order = order.filter(
            Q(score__lt=s)
            | Q(score=s, waiting_since__gt=since)
            | Q(score=s, waiting_since=since, pk__gt=study.pk)
        )
    return list(order.select_related("site")[:n])


def load_per_radiologist() -> list[User]:
    """Active radiologists with `in_hand`: how many studies each is reading now, most first."""
    return list(
        User.objects.filter(role=User.Role.RADIOLOGIST, is_active=True)
        .annotate(in_hand=Count("assigned_studies", filter=Q(assigned_studies__status=Status.IN_READING)))
        .order_by("-in_hand", "last_name", "username")
    )


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
        since = study.waiting_since  # type: ignore[attr-defined]  # annotated
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
