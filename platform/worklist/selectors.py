from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone

from accounts.models import User
from preread.models import PreRead
from preread.selectors import with_current_preread
from studies import access
from studies.models import Status, Study, StudyEvent

from .ranking import CaseFactors, Rank, order_cases

# On the worklist: complete studies not yet reported, and those still arriving (shown, never
# claimable: studies.access.CLAIMABLE decides that).
WORKLIST_STATUSES = (Status.ARRIVING, Status.RECEIVED, Status.QUEUED, Status.IN_READING)


@dataclass(frozen=True)
class Case:
    """One row of a radiologist's worklist: the study, why it is where it is, what they may do."""

    study: Study
    waiting_since: datetime
    ai: PreRead | None
    rank: Rank
    may_claim: bool
    held: bool  # this radiologist is reading it

    @property
    def pk(self) -> int:
        return self.study.pk


def with_waiting_since(studies: QuerySet[Study]) -> QuerySet[Study]:
    """Annotate `waiting_since`: when the study last became complete (from its history)."""
    entered = StudyEvent.objects.filter(study=OuterRef("pk"), to_status=Status.RECEIVED).order_by("-at")
    return studies.annotate(waiting_since=Subquery(entered.values("at")[:1]))


def factors_of(study: Study, waiting_since: datetime, ai: PreRead | None) -> CaseFactors:
    scored = ai is not None and ai.is_scored
    return CaseFactors(
        priority=study.priority,
        waiting_since=waiting_since,
        ai_urgency=ai.urgency if ai is not None and scored else None,
        ai_critical=bool(ai is not None and scored and ai.critical_flags),
    )


def worklist_for(user: User, *, now: datetime | None = None) -> list[Case]:
    """Open studies, most pressing first (see worklist/ranking.py), each with its rank (the
    score and its factors), its current pre-read and what this radiologist may do with it.

    Ranked in Python: the score depends on now, and a worklist holds tens to a few hundred cases.
    """
    studies = with_current_preread(
        with_waiting_since(
            access.studies_visible_to(user)
            .filter(status__in=WORKLIST_STATUSES)
            .select_related("site", "assigned_to")
        )
    )
    rows = []
    for study in studies:
        current = getattr(study, "current_prereads", [])
        ai = current[0] if current else None
        since = getattr(study, "waiting_since", None) or study.created_at
        rows.append((study, since, ai))
    ranked = order_cases(
        rows,
        lambda row: factors_of(*row),
        now=now or timezone.now(),
        weights=settings.WORKLIST_WEIGHTS,
        sla_minutes=settings.WORKLIST_SLA_MINUTES,
    )
    return [
        Case(
            study=study,
            waiting_since=since,
            ai=ai,
            rank=rank,
            may_claim=access.may_claim(user, study),
            held=access.holds(user, study),
        )
        for (study, since, ai), rank in ranked
    ]
