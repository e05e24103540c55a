"""Push mode: the platform gives each waiting case to the least-loaded competent radiologist on
shift. Least loaded: fewest cases in hand, then fewest given in the last 24 h (so the same few
do not read everything), then the oldest account. A case nobody on shift may take stays in the
shared queue, where any radiologist who may read it can still claim it."""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.db.models import Case, IntegerField, Value, When
from django.utils import timezone

from studies import access, lifecycle
from studies.lifecycle import Transition, TransitionRefused
from studies.models import Priority, Study

from .load import Load, on_shift_ids, radiologists, team_load

log = logging.getLogger(__name__)

URGENCY = Case(
    When(priority=Priority.STAT, then=Value(0)),
    When(priority=Priority.URGENT, then=Value(1)),
    default=Value(2),
    output_field=IntegerField(),
)


def push_mode() -> bool:
    return settings.ASSIGNMENT_MODE == "push"


def waiting_cases() -> list[Study]:
    """Complete cases nobody holds, the most pressing first (clinical priority, then age)."""
    return list(
        Study.objects.filter(status__in=access.CLAIMABLE, assigned_to__isnull=True)
        .annotate(urgency=URGENCY)
        .order_by("urgency", "created_at", "pk")
    )


def least_loaded(study: Study, loads: list[Load]) -> Load | None:
    fit = [load for load in loads if load.has_room and access.may_read_study(load.user, study)]
    return min(fit, key=lambda load: (load.in_hand, load.given_lately, load.user.pk), default=None)


def assign_waiting_cases(*, now: datetime | None = None) -> list[tuple[int, int]]:
    """Give every waiting case to a radiologist on shift; returns (study id, radiologist id)
    pairs. Safe to run twice at once: each assignment is the lifecycle's atomic move."""
    now = now or timezone.now()
    loads = team_load(radiologists().filter(pk__in=on_shift_ids(now)), now=now)
    given: list[tuple[int, int]] = []
    for study in waiting_cases():
        load = least_loaded(study, loads)
        if load is None:
            continue  # nobody on shift may take it now: it waits in the shared queue
        try:
            lifecycle.transition(study, Transition.ASSIGN, assignee=load.user)
        except TransitionRefused as refused:
            if refused.code == "assignee_full":  # filled meanwhile (a claim of their own)
                load.in_hand = load.limit
            continue
        load.in_hand += 1
        load.given_lately += 1
        given.append((study.pk, load.user.pk))
    if given:
        log.info("push mode: %d case(s) assigned", len(given))
    return given
