from datetime import datetime

from django.conf import settings
from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone

from accounts.models import User
from preread.selectors import with_current_preread
from studies.access import studies_visible_to
from studies.models import Status, Study, StudyEvent

from .ranking import CaseFactors, order_cases

# On the worklist: complete studies not yet reported, and those still arriving (shown, never
# claimable: studies.access.CLAIMABLE decides that).
WORKLIST_STATUSES = (Status.ARRIVING, Status.RECEIVED, Status.QUEUED, Status.IN_READING)


def with_waiting_since(studies: QuerySet[Study]) -> QuerySet[Study]:
    """Annotate `waiting_since`: when the study last became complete (from its history)."""
    entered = StudyEvent.objects.filter(study=OuterRef("pk"), to_status=Status.RECEIVED).order_by("-at")
    return studies.annotate(waiting_since=Subquery(entered.values("at")[:1]))


def factors_of(study: Study) -> CaseFactors:
    ai = study.ai
    return CaseFactors(
        priority=study.priority,
        waiting_since=study.waiting_since or study.created_at,
        ai_urgency=ai.urgency if ai is not None and ai.is_scored else None,
        ai_critical=bool(ai is not None and ai.is_scored and ai.critical_flags),
    )


def worklist_for(user: User, *, now: datetime | None = None) -> list[Study]:
    """Open studies, most pressing first (see worklist/ranking.py); each carries `.rank` (the
    score and its factors) and `.ai` (its current pre-read or None).

    Ranked in Python: the score depends on now, and a worklist holds tens to a few hundred cases.
    """
    studies = with_current_preread(with_waiting_since(
        studies_visible_to(user).filter(status__in=WORKLIST_STATUSES).select_related("site", "assigned_to")
    ))
    for study in studies:
        study.ai = study.current_prereads[0] if study.current_prereads else None
    ranked = order_cases(
        list(studies), factors_of, now=now or timezone.now(),
        weights=settings.WORKLIST_WEIGHTS, sla_minutes=settings.WORKLIST_SLA_MINUTES,
    )
    for study, rank in ranked:
        study.rank = rank
    return [study for study, _ in ranked]
