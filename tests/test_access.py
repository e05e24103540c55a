"""studies.access as a table: each rule, for each persona (technician of site A, of site B,
a radiologist holding the study, one not holding it, an admin, an inactive radiologist)."""

from __future__ import annotations

import pytest
from django.http import Http404

from studies import access
from studies.models import Status, Study

pytestmark = pytest.mark.django_db

PERSONAS = ["tech_a", "tech_b", "holder", "other", "admin", "inactive"]


@pytest.fixture
def people(tech_a, tech_b, radiologist, radiologist_2, admin_user, django_user_model):
    gone = django_user_model.objects.create_user(
        username="gone", password="x", role="radiologist", is_active=False
    )
    return {
        "tech_a": tech_a,
        "tech_b": tech_b,
        "holder": radiologist,
        "other": radiologist_2,
        "admin": admin_user,
        "inactive": gone,
    }


def _study(site, status, assigned=None):
    n = Study.objects.count() + 1
    return Study.objects.create(
        orthanc_id=f"a{n}", study_instance_uid=f"1.9.{n}", site=site, status=status, assigned_to=assigned
    )


def _row(rule, people, **kw) -> list[str]:
    return [p for p in PERSONAS if rule(people[p], **kw)]


def test_who_sees_a_study_of_site_a(people, site_a):
    study = _study(site_a, Status.QUEUED)
    assert _row(lambda u: access.may_see_study(u, study), people) == ["tech_a", "holder", "other", "admin"]
    for name in ("tech_b", "inactive"):
        with pytest.raises(Http404):
            access.get_study_for_user(people[name], study.pk)
    assert access.get_study_for_user(people["tech_a"], study.pk) == study
    with pytest.raises(Http404):
        access.get_study_for_user(people["admin"], "not-a-number")


def test_who_sends_for_which_site(people, site_a, site_b):
    assert _row(lambda u: access.may_send_for_site(u), people) == ["tech_a", "tech_b"]
    assert _row(lambda u: access.may_send_for_site(u, site_a.pk), people) == ["tech_a"]
    assert _row(lambda u: access.may_see_sending(u, site_id=site_b.pk), people) == ["tech_b", "admin"]


def test_who_reads_claims_signs_releases_and_reassigns(people, site_a, radiologist):
    complete = _study(site_a, Status.QUEUED)
    arriving = _study(site_a, Status.ARRIVING)
    held = _study(site_a, Status.IN_READING, assigned=radiologist)
    assert _row(access.may_read_studies, people) == ["holder", "other"]
    assert _row(lambda u: access.may_claim(u, complete), people) == ["holder", "other"]
    assert _row(lambda u: access.may_claim(u, arriving), people) == []  # never while arriving
    assert _row(lambda u: access.may_claim(u, held), people) == []  # held: its reader resumes it
    assert _row(lambda u: access.may_sign_reports(u, held), people) == ["holder"]
    assert _row(lambda u: access.may_sign_reports(u, complete), people) == []  # claim first
    assert _row(lambda u: access.may_release(u, held), people) == ["holder", "admin"]
    assert _row(lambda u: access.may_reassign(u, held), people) == ["admin"]


def test_who_sees_reports_and_ai_output(people, site_a):
    study = _study(site_a, Status.REPORTED)
    assert _row(lambda u: access.may_see_report(u, study, signed=True), people) == [
        "tech_a",
        "holder",
        "other",
        "admin",
    ]
    assert _row(lambda u: access.may_see_report(u, study, signed=False), people) == [
        "holder",
        "other",
        "admin",
    ]
    assert _row(lambda u: access.opening_delivers_report(u, study), people) == ["tech_a"]
    assert _row(access.may_see_ai_output, people) == ["holder", "other", "admin"]
