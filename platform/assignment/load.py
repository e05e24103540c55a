"""Who is on shift, how loaded each radiologist is, and which colleagues may take a study."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from accounts.models import User
from studies import access
from studies.lifecycle import GIVES, Transition
from studies.models import Status, Study, StudyEvent

# "Read lately" for fairness: what each radiologist was given and signed over this window.
RECENT = timedelta(hours=24)


@dataclass
class Load:
    """One radiologist's load now: cases in hand against their limit, and lately."""

    user: User
    in_hand: int
    limit: int
    given_lately: int  # cases claimed, assigned, handed over or reassigned to them in RECENT
    signed_lately: int
    on_shift: bool

    @property
    def has_room(self) -> bool:
        return self.in_hand < self.limit


def radiologists() -> QuerySet[User]:
    return User.objects.filter(role=User.Role.RADIOLOGIST, is_active=True).order_by("last_name", "username")


def on_shift_ids(now: datetime | None = None) -> set[int]:
    now = now or timezone.now()
    return set(
        radiologists()
        .filter(shifts__starts_at__lte=now, shifts__ends_at__gt=now)
        .values_list("pk", flat=True)
    )


def team_load(users: QuerySet[User] | None = None, *, now: datetime | None = None) -> list[Load]:
    """The load of each active radiologist (or of `users`), in three queries."""
    now = now or timezone.now()
    users = (
        (users if users is not None else radiologists())
        .select_related("reader_profile")
        .prefetch_related("reader_profile__sites")
        .annotate(holding=Count("assigned_studies", filter=Q(assigned_studies__status=Status.IN_READING)))
    )
    since = now - RECENT
    given = dict(
        StudyEvent.objects.filter(transition__in=GIVES, at__gte=since, assignee__isnull=False)
        .values_list("assignee")
        .annotate(n=Count("pk"))
        .values_list("assignee", "n")
    )
    signed = dict(
        StudyEvent.objects.filter(transition=Transition.SIGN, at__gte=since, actor__isnull=False)
        .values_list("actor")
        .annotate(n=Count("pk"))
        .values_list("actor", "n")
    )
    shift = on_shift_ids(now)
    return [
        Load(
            user=u,
            in_hand=u.holding,  # type: ignore[attr-defined]
            limit=access.reading_rights(u).max_in_hand,
            given_lately=given.get(u.pk, 0),
            signed_lately=signed.get(u.pk, 0),
            on_shift=u.pk in shift,
        )
        for u in users
    ]


def colleagues_for(study: Study, *, besides: User | None = None) -> list[Load]:
    """Radiologists who may read this study (other than `besides`), least loaded first: whom it
    may be handed over or reassigned to, or asked for a second opinion."""
    loads = [
        load
        for load in team_load()
        if (besides is None or load.user.pk != besides.pk) and access.may_read_study(load.user, study)
    ]
    return sorted(loads, key=lambda load: (load.in_hand, load.given_lately, load.user.pk))
