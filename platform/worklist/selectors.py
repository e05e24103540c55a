from django.conf import settings
from django.utils import timezone

from accounts.models import User
from preread.selectors import with_current_preread
from studies.access import studies_visible_to
from studies.models import OPEN_STATUSES, Study

from .ranking import CaseFactors, order_cases


def factors_of(study: Study) -> CaseFactors:
    return CaseFactors(
        priority=study.priority,
        waiting_since=study.received_at or study.created_at,
        ai_urgency=study.ai_urgency,
        ai_critical=study.ai_critical,
    )


def worklist_for(user: User, *, now=None) -> list[Study]:
    """Open studies, most pressing first (see worklist/ranking.py); each carries `.rank` (the
    score and its factors) and `.ai` (its current pre-read or None).

    Ranked in Python: the score depends on now, and a worklist holds tens to a few hundred cases.
    """
    studies = with_current_preread(
        studies_visible_to(user).filter(status__in=OPEN_STATUSES).select_related("site", "assigned_to")
    )
    ranked = order_cases(
        studies, factors_of, now=now or timezone.now(),
        weights=settings.WORKLIST_WEIGHTS, sla_minutes=settings.WORKLIST_SLA_MINUTES,
    )
    for study, rank in ranked:
        study.rank = rank
        study.ai = study.current_prereads[0] if study.current_prereads else None
    return [study for study, _ in ranked]
