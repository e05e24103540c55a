"""The study's lifecycle as a table: every (event, state, person) either moves the study as the
table in studies/lifecycle.py says, with an event row, or is refused with a code. Then the rules
a table cannot show: the limit in hand, who a study may be given to, the claim timeout."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import ReaderProfile
from studies import lifecycle
from studies.lifecycle import RULES, Transition, TransitionRefused
from studies.models import Status, Study, StudyEvent

pytestmark = pytest.mark.django_db

ALL_STATES = [s.value for s in Status]


def _study(site, status: str, assigned=None, modality: str = "CR") -> Study:
    n = Study.objects.count() + 1
    return Study.objects.create(
        orthanc_id=f"o{n}",
        study_instance_uid=f"1.2.3.{n}",
        site=site,
        status=status,
        assigned_to=assigned,
        modality=modality,
    )


# (event, from, who) → the state reached, or the refusal code. "holder" is the radiologist the
# study is assigned to; "other" a second radiologist; "outsider" a radiologist who may not read
# it (CT only, for site B); "system" means no actor (the platform). Moves that give the study to
# someone (assign, hand_over, reassign) give it to "other".
ALLOWED = {
    (Transition.ARRIVE, Status.RETURNED, "system"): Status.ARRIVING,
    (Transition.RECEIVE, Status.ARRIVING, "system"): Status.RECEIVED,
    (Transition.RECEIVE, Status.RETURNED, "system"): Status.RECEIVED,
    (Transition.QUEUE, Status.RECEIVED, "system"): Status.QUEUED,
    # Any radiologist claims a complete study nobody holds ("holder" holds nothing yet here).
    (Transition.CLAIM, Status.RECEIVED, "holder"): Status.IN_READING,
    (Transition.CLAIM, Status.RECEIVED, "other"): Status.IN_READING,
    (Transition.CLAIM, Status.QUEUED, "holder"): Status.IN_READING,
    (Transition.CLAIM, Status.QUEUED, "other"): Status.IN_READING,
    (Transition.ASSIGN, Status.RECEIVED, "system"): Status.IN_READING,
    (Transition.ASSIGN, Status.QUEUED, "system"): Status.IN_READING,
    (Transition.RELEASE, Status.IN_READING, "holder"): Status.QUEUED,
    (Transition.RELEASE, Status.IN_READING, "admin"): Status.QUEUED,
    (Transition.EXPIRE, Status.IN_READING, "system"): Status.QUEUED,  # no claim event: overdue
    (Transition.HAND_OVER, Status.IN_READING, "holder"): Status.IN_READING,
    (Transition.REASSIGN, Status.IN_READING, "admin"): Status.IN_READING,
    (Transition.SIGN, Status.IN_READING, "holder"): Status.REPORTED,
    (Transition.RETURN, Status.IN_READING, "holder"): Status.RETURNED,
    (Transition.DELIVER, Status.REPORTED, "tech_a"): Status.DELIVERED,
    (Transition.REOPEN, Status.REPORTED, "system"): Status.RECEIVED,
    (Transition.REOPEN, Status.DELIVERED, "system"): Status.RECEIVED,
    # A new signed version (amendment, addendum) by the radiologist who signed the report.
    (Transition.AMEND, Status.REPORTED, "holder"): Status.REPORTED,
    (Transition.AMEND, Status.DELIVERED, "holder"): Status.REPORTED,
}
PEOPLE = ["system", "holder", "other", "outsider", "admin", "tech_a", "tech_b"]
GIVES_TO_OTHER = (Transition.ASSIGN, Transition.HAND_OVER, Transition.REASSIGN)


@pytest.fixture
def outsider(django_user_model, site_b):
    user = django_user_model.objects.create_user(username="dr_ct", password="x", role="radiologist")
    profile = ReaderProfile.objects.create(user=user, modalities=["CT"])
    profile.sites.add(site_b)
    return user


@pytest.fixture
def people(tech_a, tech_b, radiologist, radiologist_2, admin_user, outsider):
    return {
        "system": None,
        "holder": radiologist,
        "other": radiologist_2,
        "outsider": outsider,
        "admin": admin_user,
        "tech_a": tech_a,
        "tech_b": tech_b,
    }


def test_the_table_in_the_docstring_is_the_table_in_the_code():
    doc = lifecycle.__doc__ or ""
    for event, rule in RULES.items():
        line = next(li for li in doc.splitlines() if li.strip().startswith(event + " "))
        assert rule.target in line, (event, line)
        for source in rule.sources:
            assert (source or "(new)") in line, (event, source, line)


@pytest.mark.parametrize("event", list(RULES))
def test_every_event_from_every_state_by_every_person(event, people, site_a, radiologist):
    for state in ALL_STATES:
        for who in PEOPLE:
            holder = radiologist if state in (Status.IN_READING, Status.REPORTED, Status.DELIVERED) else None
            study = _study(site_a, state, assigned=holder)
            expected = ALLOWED.get((event, state, who))
            kwargs = {"assignee": people["other"]} if event in GIVES_TO_OTHER else {}
            if event == Transition.RETURN:
                kwargs = {"reason_code": "motion"}
            if expected is None:
                with pytest.raises(TransitionRefused) as refused:
                    lifecycle.transition(study, event, actor=people[who], **kwargs)
                assert refused.value.code in lifecycle.REFUSALS
                assert Study.objects.get(pk=study.pk).status == state, (event, state, who)
                assert not StudyEvent.objects.filter(study=study).exists()
                continue
            lifecycle.transition(study, event, actor=people[who], **kwargs)
            study.refresh_from_db()
            assert study.status == expected, (event, state, who)
            (row,) = StudyEvent.objects.filter(study=study)
            assert (row.transition, row.from_status, row.to_status) == (event, state, expected)
            assert row.actor == people[who] and row.at is not None
            if event in GIVES_TO_OTHER:
                assert study.assigned_to == people["other"] and row.assignee == people["other"]
            elif event == Transition.CLAIM:
                assert study.assigned_to == people[who] and row.assignee == people[who]


def test_claiming_sets_the_reader_releasing_and_returning_clear_it(
    site_a, radiologist, radiologist_2, admin_user
):
    study = _study(site_a, Status.QUEUED)
    lifecycle.transition(study, Transition.CLAIM, actor=radiologist)
    assert study.assigned_to == radiologist
    with pytest.raises(TransitionRefused) as taken:
        lifecycle.transition(study, Transition.CLAIM, actor=radiologist_2)
    assert taken.value.code == "taken"
    lifecycle.transition(study, Transition.REASSIGN, actor=admin_user, assignee=radiologist_2)
    assert study.assigned_to == radiologist_2
    assert StudyEvent.objects.filter(study=study).last().assignee == radiologist_2
    with pytest.raises(TransitionRefused) as wrong:
        lifecycle.transition(study, Transition.SIGN, actor=radiologist)  # no longer the reader
    assert wrong.value.code == "not_permitted"
    lifecycle.transition(study, Transition.RETURN, actor=radiologist_2, reason_code="motion")
    assert study.assigned_to is None and study.status == Status.RETURNED
    assert StudyEvent.objects.filter(study=study).last().reason_code == "motion"


def test_a_study_cannot_be_created_mid_life(site_a):
    with pytest.raises(ValueError):
        lifecycle.create_study(event=Transition.CLAIM, orthanc_id="x", study_instance_uid="1.2")
    study = lifecycle.create_study(
        event=Transition.ARRIVE, orthanc_id="x", study_instance_uid="1.2", site=site_a
    )
    assert study.status == Status.ARRIVING
    assert [(e.transition, e.from_status) for e in study.history] == [("arrive", "")]


@pytest.mark.django_db(transaction=True)
def test_of_two_radiologists_claiming_at_once_one_wins(site_a, radiologist, radiologist_2):
    study = _study(site_a, Status.QUEUED)
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def claim(user) -> None:
        barrier.wait()
        try:
            lifecycle.transition(Study.objects.get(pk=study.pk), Transition.CLAIM, actor=user)
            outcomes[user.username] = "won"
        except TransitionRefused as exc:
            outcomes[user.username] = exc.code
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(u,)) for u in (radiologist, radiologist_2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes.values()) == ["taken", "won"]
    assert StudyEvent.objects.filter(study=study, transition="claim").count() == 1


def _limit(user, n: int) -> None:
    ReaderProfile.objects.filter(user=user).update(max_in_hand=n)


def test_a_radiologist_never_holds_more_than_their_limit(site_a, radiologist, radiologist_2, admin_user):
    _limit(radiologist, 2)
    first, second, third = (_study(site_a, Status.QUEUED) for _ in range(3))
    lifecycle.transition(first, Transition.CLAIM, actor=radiologist)
    lifecycle.transition(second, Transition.CLAIM, actor=radiologist)
    with pytest.raises(TransitionRefused) as full:
        lifecycle.transition(third, Transition.CLAIM, actor=radiologist)
    assert full.value.code == "full" and Study.objects.get(pk=third.pk).status == Status.QUEUED
    # Nobody gives them a third either: not a colleague, not an admin, not the platform.
    lifecycle.transition(third, Transition.CLAIM, actor=radiologist_2)
    for event, actor in ((Transition.HAND_OVER, radiologist_2), (Transition.REASSIGN, admin_user)):
        with pytest.raises(TransitionRefused) as refused:
            lifecycle.transition(third, event, actor=actor, assignee=radiologist)
        assert refused.value.code == "assignee_full"
    fourth = _study(site_a, Status.QUEUED)
    with pytest.raises(TransitionRefused) as refused:
        lifecycle.transition(fourth, Transition.ASSIGN, assignee=radiologist)
    assert refused.value.code == "assignee_full"
    lifecycle.transition(first, Transition.RELEASE, actor=radiologist)  # room again
    lifecycle.transition(third, Transition.HAND_OVER, actor=radiologist_2, assignee=radiologist)
    assert Study.objects.get(pk=third.pk).assigned_to == radiologist


def test_a_study_is_only_given_to_someone_who_may_read_it(site_a, radiologist, admin_user, outsider, tech_a):
    held = _study(site_a, Status.IN_READING, assigned=radiologist)
    waiting = _study(site_a, Status.QUEUED)
    for event, study, actor, assignee in (
        (Transition.HAND_OVER, held, radiologist, outsider),  # not competent for CR at site A
        (Transition.HAND_OVER, held, radiologist, radiologist),  # to oneself
        (Transition.HAND_OVER, held, radiologist, tech_a),
        (Transition.HAND_OVER, held, radiologist, None),
        (Transition.REASSIGN, held, admin_user, outsider),
        (Transition.ASSIGN, waiting, None, outsider),
        (Transition.ASSIGN, waiting, None, None),
    ):
        with pytest.raises(TransitionRefused) as refused:
            lifecycle.transition(study, event, actor=actor, assignee=assignee)
        assert refused.value.code == "no_assignee", (event, assignee)
    with pytest.raises(TransitionRefused) as refused:
        lifecycle.transition(waiting, Transition.CLAIM, actor=outsider)
    assert refused.value.code == "not_permitted"
    assert not StudyEvent.objects.exists()


def test_a_claim_held_past_the_timeout_returns_to_the_queue_with_a_trace(site_a, radiologist, settings):
    settings.ASSIGNMENT_CLAIM_TIMEOUT_MINUTES = 30
    late, recent, handed = (_study(site_a, Status.QUEUED) for _ in range(3))
    for study in (late, recent, handed):
        lifecycle.transition(study, Transition.CLAIM, actor=radiologist)
    # The clock is the event that gave the study to its holder.
    StudyEvent.objects.filter(study__in=[late, handed]).update(at=timezone.now() - timedelta(minutes=31))
    with pytest.raises(TransitionRefused) as refused:
        lifecycle.transition(recent, Transition.EXPIRE)
    assert refused.value.code == "not_overdue"
    # A hand-over restarts the clock for the new holder.
    lifecycle.transition(handed, Transition.RELEASE, actor=radiologist)
    lifecycle.transition(handed, Transition.CLAIM, actor=radiologist)
    assert lifecycle.expire_overdue_claims() == [late.pk]
    late.refresh_from_db()
    assert (late.status, late.assigned_to) == (Status.QUEUED, None)
    trace = late.history[-1]
    assert (trace.transition, trace.from_status, trace.to_status) == ("expire", "in_reading", "queued")
    assert trace.actor is None and trace.reason_code == "claim_timeout"
    assert Study.objects.get(pk=recent.pk).status == Status.IN_READING
    # An hour later both others are overdue; with the timeout at 0 nothing ever expires.
    settings.ASSIGNMENT_CLAIM_TIMEOUT_MINUTES = 0
    assert lifecycle.expire_overdue_claims(now=timezone.now() + timedelta(hours=1)) == []
    settings.ASSIGNMENT_CLAIM_TIMEOUT_MINUTES = 30
    expired = lifecycle.expire_overdue_claims(now=timezone.now() + timedelta(hours=1))
    assert sorted(expired) == sorted([recent.pk, handed.pk])


def test_an_expiry_that_loses_to_a_signature_changes_nothing(site_a, radiologist, settings):
    settings.ASSIGNMENT_CLAIM_TIMEOUT_MINUTES = 30
    study = _study(site_a, Status.QUEUED)
    lifecycle.transition(study, Transition.CLAIM, actor=radiologist)
    stale = Study.objects.get(pk=study.pk)  # what the sweep read
    lifecycle.transition(study, Transition.SIGN, actor=radiologist)
    with pytest.raises(TransitionRefused) as refused:
        lifecycle.transition(stale, Transition.EXPIRE, now=timezone.now() + timedelta(hours=1))
    assert refused.value.code == "not_allowed_now"
    assert Study.objects.get(pk=study.pk).status == Status.REPORTED
