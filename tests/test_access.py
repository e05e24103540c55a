"""studies.access as a table: each rule, for each persona (technician of site A, of site B,
a radiologist holding the study, one not holding it, one competent only for CT, one reading only
for site B, one without a reading profile, an admin, an inactive radiologist). The study is a
CR of site A unless said otherwise."""

from __future__ import annotations

import pytest
from django.http import Http404

from accounts.models import Modality, ReaderProfile
from studies import access
from studies.models import Status, Study

pytestmark = pytest.mark.django_db

PERSONAS = [
    "tech_a",
    "tech_b",
    "holder",
    "other",
    "ct_only",
    "site_b_only",
    "no_profile",
    "admin",
    "inactive",
]
READERS = ["holder", "other"]  # those who may read a CR of site A


def _radiologist(django_user_model, username, *, modalities=None, sites=(), all_sites=False, active=True):
    user = django_user_model.objects.create_user(
        username=username, password="x", role="radiologist", is_active=active
    )
    if modalities is not None:
        profile = ReaderProfile.objects.create(user=user, modalities=modalities, all_sites=all_sites)
        profile.sites.set(sites)
    return user


@pytest.fixture
def people(tech_a, tech_b, radiologist, radiologist_2, admin_user, site_b, django_user_model):
    return {
        "tech_a": tech_a,
        "tech_b": tech_b,
        "holder": radiologist,
        "other": radiologist_2,
        "ct_only": _radiologist(django_user_model, "ct", modalities=["CT"], all_sites=True),
        "site_b_only": _radiologist(
            django_user_model, "sikasso_reader", modalities=list(Modality.values), sites=[site_b]
        ),
        "no_profile": _radiologist(django_user_model, "new"),
        "admin": admin_user,
        "inactive": _radiologist(
            django_user_model, "gone", modalities=list(Modality.values), all_sites=True, active=False
        ),
    }


def _study(site, status, assigned=None, modality="CR"):
    n = Study.objects.count() + 1
    return Study.objects.create(
        orthanc_id=f"a{n}",
        study_instance_uid=f"1.9.{n}",
        site=site,
        status=status,
        assigned_to=assigned,
        modality=modality,
    )


def _row(rule, people, **kw) -> list[str]:
    return [p for p in PERSONAS if rule(people[p], **kw)]


def test_who_sees_a_study_of_site_a(people, site_a):
    study = _study(site_a, Status.QUEUED)
    assert _row(lambda u: access.may_see_study(u, study), people) == ["tech_a", *READERS, "admin"]
    for name in ("tech_b", "ct_only", "site_b_only", "no_profile", "inactive"):
        with pytest.raises(Http404):
            access.get_study_for_user(people[name], study.pk)
    assert access.get_study_for_user(people["tech_a"], study.pk) == study
    with pytest.raises(Http404):
        access.get_study_for_user(people["admin"], "not-a-number")


def test_competence_and_site_rights_decide_which_studies_a_radiologist_sees(people, site_a, site_b):
    ct_a = _study(site_a, Status.QUEUED, modality="CT")
    cr_b = _study(site_b, Status.QUEUED, modality="CR")
    photo_b = _study(site_b, Status.QUEUED, modality="")  # a film photo: counts as "OT"
    unknown_sender = _study(None, Status.QUEUED, modality="CT")
    assert _row(lambda u: access.may_see_study(u, ct_a), people) == ["tech_a", *READERS, "ct_only", "admin"]
    assert _row(lambda u: access.may_see_study(u, cr_b), people) == [
        "tech_b",
        *READERS,
        "site_b_only",
        "admin",
    ]
    assert _row(lambda u: access.may_see_study(u, photo_b), people) == [
        "tech_b",
        *READERS,
        "site_b_only",
        "admin",
    ]
    # A study from an unknown sender: only those who read for every site.
    assert _row(lambda u: access.may_see_study(u, unknown_sender), people) == [*READERS, "ct_only", "admin"]
    # The filter and the per-study test are one rule.
    for name in PERSONAS:
        user = people[name]
        if user.is_radiologist:
            for study in (ct_a, cr_b, photo_b, unknown_sender):
                assert access.may_read_study(user, study) == access.may_see_study(user, study), (name, study)


def test_who_sends_for_which_site(people, site_a, site_b):
    assert _row(lambda u: access.may_send_for_site(u), people) == ["tech_a", "tech_b"]
    assert _row(lambda u: access.may_send_for_site(u, site_a.pk), people) == ["tech_a"]
    assert _row(lambda u: access.may_see_sending(u, site_id=site_b.pk), people) == ["tech_b", "admin"]


def test_who_reads_claims_signs_releases_hands_over_and_reassigns(people, site_a, radiologist):
    complete = _study(site_a, Status.QUEUED)
    arriving = _study(site_a, Status.ARRIVING)
    held = _study(site_a, Status.IN_READING, assigned=radiologist)
    radiologists = ["holder", "other", "ct_only", "site_b_only", "no_profile"]
    assert _row(access.may_read_studies, people) == radiologists
    assert _row(lambda u: access.may_read_study(u, complete), people) == READERS
    assert _row(lambda u: access.may_claim(u, complete), people) == READERS
    assert _row(lambda u: access.may_claim(u, arriving), people) == []  # never while arriving
    assert _row(lambda u: access.may_claim(u, held), people) == []  # held: its reader resumes it
    assert _row(lambda u: access.may_sign_reports(u, held), people) == ["holder"]
    assert _row(lambda u: access.may_sign_reports(u, complete), people) == []  # claim first
    assert _row(lambda u: access.may_release(u, held), people) == ["holder", "admin"]
    assert _row(lambda u: access.may_hand_over(u, held), people) == ["holder"]
    assert _row(lambda u: access.may_reassign(u, held), people) == ["admin"]
    assert _row(lambda u: access.may_see_team_load(u), people) == [*radiologists, "admin"]
    assert _row(access.may_reassign_studies, people) == ["admin"]


def test_who_asks_gives_and_sees_a_second_opinion(people, site_a, radiologist, radiologist_2):
    held = _study(site_a, Status.IN_READING, assigned=radiologist)
    assert _row(lambda u: access.may_ask_opinion(u, held), people) == ["holder"]
    for asked in ("other", "ct_only"):  # the colleague asked answers, if they may read it
        asked_of = people[asked].pk
        assert _row(lambda u, a=asked_of: access.may_answer_opinion(u, held, asked_of_id=a), people) == (
            ["other"] if asked == "other" else []
        )
    ids = {"asked_by_id": radiologist.pk, "asked_of_id": radiologist_2.pk}
    assert _row(lambda u: access.may_see_opinion(u, held, **ids), people) == ["holder", "other", "admin"]


def test_who_may_say_two_records_are_one_patient(people, site_a, site_b):
    here, there = _study(site_a, Status.QUEUED), _study(site_b, Status.REPORTED)
    assert _row(lambda u: access.may_link_patients(u, here, there), people) == [*READERS, "admin"]


def test_who_sees_reports_and_ai_output(people, site_a):
    study = _study(site_a, Status.REPORTED)
    assert _row(lambda u: access.may_see_report(u, study, signed=True), people) == [
        "tech_a",
        *READERS,
        "admin",
    ]
    assert _row(lambda u: access.may_see_report(u, study, signed=False), people) == [*READERS, "admin"]
    assert _row(lambda u: access.opening_delivers_report(u, study), people) == ["tech_a"]
    # AI output of the studies they may see (may_see_ai_output is about the role; the study
    # itself is only ever reached through studies_visible_to).
    assert _row(access.may_see_ai_output, people) == [
        "holder",
        "other",
        "ct_only",
        "site_b_only",
        "no_profile",
        "admin",
    ]


def test_rights_are_read_once_per_request_and_again_when_asked(people, site_a):
    study = _study(site_a, Status.QUEUED, modality="MR")
    user = people["ct_only"]
    assert not access.may_read_study(user, study)
    ReaderProfile.objects.filter(user=user).update(modalities=["CT", "MR"])
    assert not access.may_read_study(user, study)  # cached on this user object (one request)
    assert access.may_read_study(user, study, fresh=True)  # the lifecycle reads it fresh
    assert access.may_read_study(user, study)
