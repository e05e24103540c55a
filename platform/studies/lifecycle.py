"""A study's life as one state machine: every change of status goes through transition().

    event       from                          to           who
    arrive      (new), returned               arriving     the platform (first file of an announced study)
    receive     (new), arriving, returned     received     the platform (study complete)
    queue       received                      queued       the platform (pre-read done, or no model)
    claim       received, queued              in_reading   a radiologist; nobody else holds it
    release     in_reading                    queued       the radiologist holding it, or an admin
    reassign    in_reading                    in_reading   an admin, to another radiologist
    sign        in_reading                    reported     the radiologist holding it
    return      in_reading                    returned     the radiologist holding it (not diagnostic)
    deliver     reported                      delivered    a technician of the site opens the report
    reopen      reported, delivered           received     the platform (images after the report)

Each move is a conditional UPDATE (of two radiologists claiming at once, one wins), an event row
with its time and actor, and — once committed — the `status_changed` signal for the apps that
act on it (the pre-read starts on `receive`; alerts will hang here too).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import User

from . import access
from .models import ReturnReason, Status, Study, StudyEvent


class Transition:
    ARRIVE = "arrive"
    RECEIVE = "receive"
    QUEUE = "queue"
    CLAIM = "claim"
    RELEASE = "release"
    REASSIGN = "reassign"
    SIGN = "sign"
    RETURN = "return"
    DELIVER = "deliver"
    REOPEN = "reopen"


NEW = ""  # a study being created has no status yet
# Reported: an upload adds nothing more to it; images reaching it through the archive reopen it.
CLOSED = (Status.REPORTED, Status.DELIVERED)


@dataclass(frozen=True)
class Rule:
    sources: tuple[str, ...]
    target: str
    # None: only the platform itself (actor=None) may do it.
    who: Callable[[User, Study], bool] | None


def _may_reassign(user: User, study: Study) -> bool:
    return access.may_reassign(user, study)


RULES: dict[str, Rule] = {
    Transition.ARRIVE: Rule((NEW, Status.RETURNED), Status.ARRIVING, None),
    Transition.RECEIVE: Rule((NEW, Status.ARRIVING, Status.RETURNED), Status.RECEIVED, None),
    Transition.QUEUE: Rule((Status.RECEIVED,), Status.QUEUED, None),
    Transition.CLAIM: Rule(access.CLAIMABLE, Status.IN_READING, access.may_claim),
    Transition.RELEASE: Rule((Status.IN_READING,), Status.QUEUED, access.may_release),
    Transition.REASSIGN: Rule((Status.IN_READING,), Status.IN_READING, _may_reassign),
    Transition.SIGN: Rule((Status.IN_READING,), Status.REPORTED, access.may_sign_reports),
    Transition.RETURN: Rule((Status.IN_READING,), Status.RETURNED, access.may_sign_reports),
    Transition.DELIVER: Rule((Status.REPORTED,), Status.DELIVERED, access.opening_delivers_report),
    Transition.REOPEN: Rule(CLOSED, Status.RECEIVED, None),
}

REFUSALS = {
    "not_allowed_now": _("Cette action n'est pas possible dans l'état actuel de l'examen."),
    "not_permitted": _("Vous n'avez pas le droit de faire cela sur cet examen."),
    "taken": _("Cet examen est déjà lu par un confrère."),
    "no_assignee": _("Choisissez un radiologue."),
    "no_reason": _("Dites pourquoi les images ne sont pas diagnostiques."),
}


class TransitionRefused(Exception):
    """The move is not allowed (wrong state, wrong person, lost a race); `code` says which."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code

    @property
    def message(self) -> str:
        return str(REFUSALS[self.code])


# Sent after commit: sender=Study, study_id, transition, to_status.
status_changed = Signal()
# Sent inside the transaction, right after the StudyEvent row: sender=Study, study, event (the
# StudyEvent). What a receiver writes commits or rolls back with the move (the alerts outbox);
# a receiver that raises refuses the move.
event_recorded = Signal()


def transition(
    study: Study,
    event: str,
    *,
    actor: User | None = None,
    assignee: User | None = None,
    reason_code: str = "",
) -> Study:
    """Move `study` by `event`, or raise TransitionRefused; returns the study as it now is."""
    rule = RULES[event]
    if rule.who is None:
        if actor is not None:
            raise TransitionRefused("not_permitted")
    elif actor is None or not rule.who(actor, study):
        fresh = Study.objects.filter(pk=study.pk).values("status", "assigned_to_id").first()
        if event == Transition.CLAIM and fresh and fresh["assigned_to_id"] not in (None, actor and actor.pk):
            raise TransitionRefused("taken")
        if fresh and fresh["status"] not in rule.sources:
            raise TransitionRefused("not_allowed_now")
        raise TransitionRefused("not_permitted")

    changes: dict[str, object] = {"status": rule.target}
    guard = Q(status__in=rule.sources)
    if event == Transition.CLAIM:
        guard &= Q(assigned_to__isnull=True) | Q(assigned_to=actor)
        changes["assigned_to"] = assignee = actor
    elif event == Transition.REASSIGN:
        if assignee is None or not access.may_read_studies(assignee):
            raise TransitionRefused("no_assignee")
        guard &= Q(assigned_to=study.assigned_to_id)
        changes["assigned_to"] = assignee
    if event == Transition.RETURN and reason_code not in ReturnReason.values:
        raise TransitionRefused("no_reason")  # the site must know what to do differently
    if event in (Transition.SIGN, Transition.RETURN):
        guard &= Q(assigned_to=actor)
    if event in (Transition.RELEASE, Transition.RETURN, Transition.REOPEN):
        changes["assigned_to"] = None  # back in the pool (a signed study keeps its reader)

    with transaction.atomic():
        locked = Study.objects.select_for_update().filter(pk=study.pk)
        before = locked.values_list("status", flat=True).first()
        if before is None or not Study.objects.filter(guard, pk=study.pk).update(**changes):
            raise TransitionRefused("taken" if event == Transition.CLAIM else "not_allowed_now")
        _record(study, event, before, rule.target, actor=actor, assignee=assignee, reason_code=reason_code)
    study.refresh_from_db()
    return study


def create_study(*, event: str, **fields: object) -> Study:
    """Create a study in its first state (arriving or received) with its first event."""
    rule = RULES[event]
    if NEW not in rule.sources:
        raise ValueError(f"a study cannot start by {event}")
    with transaction.atomic():
        study = Study.objects.create(status=rule.target, **fields)
        _record(study, event, NEW, rule.target)
    return study


def _record(
    study: Study,
    event: str,
    before: str,
    after: str,
    *,
    actor: User | None = None,
    assignee: User | None = None,
    reason_code: str = "",
) -> None:
    row = StudyEvent.objects.create(
        study_id=study.pk,
        transition=event,
        from_status=before,
        to_status=after,
        actor=actor,
        assignee=assignee,
        reason_code=reason_code,
        at=timezone.now(),
    )
    event_recorded.send(Study, study=study, event=row)
    study_id = study.pk
    transaction.on_commit(
        lambda: status_changed.send(Study, study_id=study_id, transition=event, to_status=after)
    )
