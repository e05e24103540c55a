from django.db.models import Case, IntegerField, QuerySet, Value, When

from accounts.models import User
from studies.access import studies_visible_to
from studies.models import OPEN_STATUSES, PRIORITY_RANK, Study


def worklist_for(user: User) -> QuerySet[Study]:
    """Open studies, most pressing first: clinical priority, then the longest waiting."""
    rank = Case(
        *[When(priority=p, then=Value(r)) for p, r in PRIORITY_RANK.items()],
        default=Value(9), output_field=IntegerField(),
    )
    return (
        studies_visible_to(user)
        .filter(status__in=OPEN_STATUSES)
        .select_related("site", "assigned_to")
        .annotate(priority_rank=rank)
        .order_by("priority_rank", "received_at", "pk")
    )
