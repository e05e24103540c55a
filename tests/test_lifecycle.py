"""The study's lifecycle as a table: every (event, state, person) either moves the study as the
table in studies/lifecycle.py says, with an event row, or is refused with a code."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from studies import lifecycle
from studies.lifecycle import RULES, Transition, TransitionRefused
from studies.models import Status, Study, StudyEvent

pytestmark = pytest.mark.django_db

ALL_STATES = [s.value for s in Status]


def _study(site, status: str, assigned=None) -> Study:
    n = Study.objects.count() + 1
    return Study.objects.create(
        orthanc_id=f"o{n}", study_instance_uid=f"1.2.3.{n}", site=site, status=status, assigned_to=assigned
    )


# (event, from, who) → the state reached, or the refusal code. "holder" is the radiologist the
# study is assigned to; "other" a second radiologist; "system" means no actor (the platform).
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
    (Transition.RELEASE, Status.IN_READING, "holder"): Status.QUEUED,
    (Transition.RELEASE, Status.IN_READING, "admin"): Status.QUEUED,
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
PEOPLE = ["system", "holder", "other", "admin", "tech_a", "tech_b"]


@pytest.fixture
def people(tech_a, tech_b, radiologist, radiologist_2, admin_user):
    return {
        "system": None,
        "holder": radiologist,
        "other": radiologist_2,
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
            kwargs = {"assignee": people["other"]} if event == Transition.REASSIGN else {}
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
