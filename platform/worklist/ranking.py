"""The worklist order as a pure function: factors of a case + now → a score and its reasons.

score = ai × AI urgency (0..1)
      + priority × clinical level (STAT 1, urgent 0.5, routine 0)
      + sla × share of the priority's SLA already used (0..1)
      + overdue × share of the SLA overrun (unbounded: a late case keeps climbing)
      + waiting_per_hour × hours waited (unbounded: nothing starves)

A fresh case scores at most ai + priority (2 by default) while a waiting one grows without bound,
so every case eventually overtakes every newcomer. Weights and SLAs come from settings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from django.utils.translation import gettext as _

from studies.models import Priority

CLINICAL_LEVEL: dict[str, float] = {Priority.STAT: 1.0, Priority.URGENT: 0.5, Priority.ROUTINE: 0.0}
DEFAULT_SLA_MINUTES: dict[str, float] = {Priority.STAT: 30, Priority.URGENT: 120, Priority.ROUTINE: 1440}
DEFAULT_WEIGHTS = {"ai": 1.0, "priority": 1.0, "sla": 0.5, "overdue": 2.0, "waiting_per_hour": 0.01}


@dataclass(frozen=True)
class CaseFactors:
    priority: str
    waiting_since: datetime
    ai_urgency: float | None = None
    ai_critical: bool = False


@dataclass(frozen=True)
class Rank:
    score: float
    ai: float
    clinical: float
    sla: float
    overdue: float
    waiting: float
    minutes_waited: float
    minutes_left: float  # before the SLA; negative once late
    factors: CaseFactors

    def explain(self) -> list[str]:
        """Why the case is where it is, in a few words per factor (shown in small text)."""
        f = self.factors
        parts = []
        if f.ai_urgency is not None:
            parts.append(_("IA %(u).2f") % {"u": f.ai_urgency} + (" (!)" if f.ai_critical else ""))
        else:
            parts.append(_("IA —"))
        label = Priority(f.priority).label if f.priority in Priority.values else f.priority
        parts.append(_("priorité %(p)s") % {"p": label})
        if self.minutes_left >= 0:
            parts.append(_("délai restant %(d)s") % {"d": duration(self.minutes_left)})
        else:
            parts.append(_("en retard de %(d)s") % {"d": duration(-self.minutes_left)})
        parts.append(_("attente %(d)s") % {"d": duration(self.minutes_waited)})
        parts.append(_("score %(s).2f") % {"s": self.score})
        return parts


def duration(minutes: float) -> str:
    """12 min, 2 h 05, 3 j: how the worklist says a wait or a delay (worklist.js says it the same way)."""
    minutes = int(minutes)
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest:02d}" if hours < 48 else f"{hours // 24} j"


def rank_case(
    factors: CaseFactors,
    *,
    now: datetime,
    weights: Mapping[str, float] | None = None,
    sla_minutes: Mapping[str, float] | None = None,
) -> Rank:
    w = {**DEFAULT_WEIGHTS, **(weights or {})}
    slas: dict[str, float] = {**DEFAULT_SLA_MINUTES, **(sla_minutes or {})}
    sla = max(float(slas.get(factors.priority, slas[Priority.ROUTINE])), 1.0)
    waited = max((now - factors.waiting_since).total_seconds() / 60, 0.0)
    used = waited / sla
    urgency = min(max(factors.ai_urgency or 0.0, 0.0), 1.0)
    parts = {
        "ai": w["ai"] * urgency,
        "clinical": w["priority"] * CLINICAL_LEVEL.get(factors.priority, 0.0),
        "sla": w["sla"] * min(used, 1.0),
        "overdue": w["overdue"] * max(used - 1.0, 0.0),
        "waiting": w["waiting_per_hour"] * waited / 60,
    }
    return Rank(
        score=sum(parts.values()), minutes_waited=waited, minutes_left=sla - waited, factors=factors, **parts
    )


T = TypeVar("T")


def order_cases(
    cases: Iterable[T],
    factors_of: Callable[[T], CaseFactors],
    *,
    now: datetime,
    weights: Mapping[str, float] | None = None,
    sla_minutes: Mapping[str, float] | None = None,
) -> list[tuple[T, Rank]]:
    """Cases with their rank, most pressing first; ties go to the longest waiting."""
    ranked = [(c, rank_case(factors_of(c), now=now, weights=weights, sla_minutes=sla_minutes)) for c in cases]
    ranked.sort(key=lambda cr: (-cr[1].score, cr[1].factors.waiting_since))
    return ranked
