"""A study's life as one state machine: every change of status goes through transition().

    event       from                          to           who
    arrive      (new), returned               arriving     the platform (first file of an announced study)
    receive     (new), arriving, returned     received     the platform (study complete)
    queue       received                      queued       the platform (pre-read done, or no model)
    claim       received, queued              in_reading   a radiologist who may read it, nobody else holds
    assign      received, queued              in_reading   the platform (push mode), to one who may read it
    release     in_reading                    queued       the radiologist holding it, or an admin
    expire      in_reading                    queued       the platform: held past the claim timeout
    hand_over   in_reading                    in_reading   its holder, to a colleague who may read it
    reassign    in_reading                    in_reading   an admin, to another who may read it
    sign        in_reading                    reported     the radiologist holding it
    return      in_reading                    returned     the radiologist holding it (not diagnostic)
    deliver     reported                      delivered    a technician of the site opens the report
    amend       reported, delivered           reported     the radiologist who signed it (new version)
    reopen      reported, delivered           received     the platform (images after the report)

Each move is a conditional UPDATE (of two radiologists claiming at once, one wins), an event row
with its time and actor, and — once committed — the `status_changed` signal for the apps that
act on it (the pre-read starts on `receive`; alerts will hang here too).

A move that gives a study to a radiologist (claim, assign, hand_over, reassign) first locks that
radiologist's user row, then counts the studies they hold: every such move for one radiologist
is serialised, so their limit in hand (accounts.ReaderProfile.max_in_hand) holds under any
concurrency. Lock order is always user row, then study row (both FOR NO KEY UPDATE).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
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
    ASSIGN = "assign"
    RELEASE = "release"
    EXPIRE = "expire"
    HAND_OVER = "hand_over"
    REASSIGN = "reassign"
    SIGN = "sign"
    RETURN = "return"
    DELIVER = "deliver"
    REOPEN = "reopen"
    AMEND = "amend"


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
    Transition.ASSIGN: Rule(access.CLAIMABLE, Status.IN_READING, None),
    Transition.RELEASE: Rule((Status.IN_READING,), Status.QUEUED, access.may_release),
    Transition.EXPIRE: Rule((Status.IN_READING,), Status.QUEUED, None),
    Transition.HAND_OVER: Rule((Status.IN_READING,), Status.IN_READING, access.may_hand_over),
    Transition.REASSIGN: Rule((Status.IN_READING,), Status.IN_READING, _may_reassign),
    Transition.SIGN: Rule((Status.IN_READING,), Status.REPORTED, access.may_sign_reports),
    Transition.RETURN: Rule((Status.IN_READING,), Status.RETURNED, access.may_sign_reports),
    Transition.DELIVER: Rule((Status.REPORTED,), Status.DELIVERED, access.opening_delivers_report),
    Transition.REOPEN: Rule(CLOSED, Status.RECEIVED, None),
    # A new signed version (amendment, addendum): back to reported, so the site opens it again.
    # (Its caller, reports.services.amend_report, holds the study's row lock while it asks.)
    Transition.AMEND: Rule(CLOSED, Status.REPORTED, access.may_amend_report),
}

REFUSALS = {
    "not_allowed_now": _("Cette action n'est pas possible dans l'état actuel de l'examen."),
    "not_permitted": _("Vous n'avez pas le droit de faire cela sur cet examen."),
    "taken": _("Cet examen est déjà lu par un confrère."),
    "no_assignee": _("Choisissez un autre radiologue, qui lit cette modalité pour ce site."),
    "full": _(
        "Vous avez déjà le nombre maximal d'examens en lecture : signez-en un ou remettez-le dans la liste."
    ),
    "assignee_full": _("Ce radiologue a déjà le nombre maximal d'examens en lecture."),
    "not_overdue": _("Cet examen n'a pas dépassé le délai de lecture."),
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


# Moves that give the study to a radiologist: to whom (the actor claims, others name an assignee).
GIVES = (Transition.CLAIM, Transition.ASSIGN, Transition.HAND_OVER, Transition.REASSIGN)


def transition(
    study: Study,
    event: str,
    *,
    actor: User | None = None,
    assignee: User | None = None,
    reason_code: str = "",
    now: datetime | None = None,
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
    receiver: User | None = None
    if event == Transition.CLAIM:
        guard &= Q(assigned_to__isnull=True) | Q(assigned_to=actor)
        changes["assigned_to"] = assignee = receiver = actor
    elif event == Transition.ASSIGN:
        if assignee is None or not access.may_read_study(assignee, study, fresh=True):
            raise TransitionRefused("no_assignee")
        guard &= Q(assigned_to__isnull=True)
        changes["assigned_to"] = receiver = assignee
    elif event in (Transition.HAND_OVER, Transition.REASSIGN):
        if (
            assignee is None
            or assignee.pk == study.assigned_to_id
            or not access.may_read_study(assignee, study, fresh=True)
        ):
            raise TransitionRefused("no_assignee")
        guard &= Q(assigned_to=study.assigned_to_id)
        changes["assigned_to"] = receiver = assignee
    elif event == Transition.EXPIRE:
        guard &= Q(~Exists(_held_since(claim_deadline(now))))
        assignee = None
    if event == Transition.RETURN and reason_code not in ReturnReason.values:
        raise TransitionRefused("no_reason")  # the site must know what to do differently
    if event in (Transition.SIGN, Transition.RETURN, Transition.HAND_OVER):
        guard &= Q(assigned_to=actor)
    if event in (Transition.RELEASE, Transition.EXPIRE, Transition.RETURN, Transition.REOPEN):
        changes["assigned_to"] = None  # back in the pool (a signed study keeps its reader)

    with transaction.atomic():
        if receiver is not None:
            _check_room(receiver, yourself=event == Transition.CLAIM)
        locked = Study.objects.select_for_update(no_key=True).filter(pk=study.pk)
        before = locked.values_list("status", flat=True).first()
        if before is None or not Study.objects.filter(guard, pk=study.pk).update(**changes):
            if event == Transition.EXPIRE and before == Status.IN_READING:
                raise TransitionRefused("not_overdue")
            raise TransitionRefused("taken" if event == Transition.CLAIM else "not_allowed_now")
        _record(study, event, before, rule.target, actor=actor, assignee=assignee, reason_code=reason_code)
    study.refresh_from_db()
    return study


def _check_room(receiver: User, *, yourself: bool) -> None:
    """Lock the radiologist's row, then count what they hold: the limit in hand, race-free.
    FOR NO KEY UPDATE: it serialises the moves that give this radiologist a case, yet does not
    block rows that merely reference them (an event naming them as actor takes a key-share
    lock; FOR UPDATE would make a hand-over away from them wait on their own claim)."""
    User.objects.select_for_update(no_key=True).filter(pk=receiver.pk).values_list("pk").first()
    limit = access.reading_rights(receiver, fresh=True).max_in_hand
    if in_hand(receiver.pk) >= limit:
        raise TransitionRefused("full" if yourself else "assignee_full")


def in_hand(user_id: int) -> int:
    """How many studies this radiologist is reading now."""
    return Study.objects.filter(status=Status.IN_READING, assigned_to_id=user_id).count()


def claim_deadline(now: datetime | None = None) -> datetime:
    """A study held since before this moment is overdue (ASSIGNMENT_CLAIM_TIMEOUT_MINUTES)."""
    return (now or timezone.now()) - timedelta(minutes=settings.ASSIGNMENT_CLAIM_TIMEOUT_MINUTES)


def _held_since(deadline: datetime) -> QuerySet[StudyEvent]:
    """Events that gave the study to its holder (claim, assignment, hand-over...) after `deadline`."""
    return StudyEvent.objects.filter(study=OuterRef("pk"), to_status=Status.IN_READING, at__gt=deadline)


def expire_overdue_claims(*, now: datetime | None = None) -> list[int]:
    """Return to the queue every study held longer than the timeout (actor: the platform); the
    holder's clock starts when the study was last given to them. Returns the studies' ids."""
    if settings.ASSIGNMENT_CLAIM_TIMEOUT_MINUTES <= 0:
        return []  # disabled by the deployment
    deadline = claim_deadline(now)
    overdue = Study.objects.filter(status=Status.IN_READING).exclude(Exists(_held_since(deadline)))
    expired = []
    for study in overdue.only("pk", "status", "assigned_to_id"):
        try:
            transition(study, Transition.EXPIRE, reason_code="claim_timeout", now=now)
        except TransitionRefused:
            continue  # signed, released or given again meanwhile: nothing to do
        expired.append(study.pk)
    return expired


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
