"""Assignment through the pages and the API: who may open and claim (competence and site rights),
release, hand over, admin reassignment, the team's load, second opinions, priors and patient
records judged the same. Real PostgreSQL; moves through the real views."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from accounts.models import ReaderProfile
from assignment.models import PatientLink, SecondOpinion
from reports.models import Report, ReportVersion
from studies import lifecycle
from studies.lifecycle import Transition
from studies.models import Instance, ReturnReason, Status, Study, StudyEvent
from tests.helpers import api_client

pytestmark = pytest.mark.django_db


def _study(site, status=Status.QUEUED, *, modality="CR", assigned=None, **facts) -> Study:
    n = Study.objects.count() + 1
    return Study.objects.create(
        orthanc_id=f"p{n}",
        study_instance_uid=f"1.7.{n}",
        site=site,
        status=status,
        modality=modality,
        assigned_to=assigned,
        **facts,
    )


@pytest.fixture
def ct_reader(django_user_model):
    """Competent for CT only, for every site."""
    user = django_user_model.objects.create_user(
        username="dr_ct", password="x", role="radiologist", first_name="Ct"
    )
    ReaderProfile.objects.create(user=user, modalities=["CT"], all_sites=True)
    return user


@pytest.fixture
def site_b_reader(django_user_model, site_b):
    """Every modality, but reads for site B only."""
    user = django_user_model.objects.create_user(
        username="dr_sik", password="x", role="radiologist", first_name="Sik"
    )
    profile = ReaderProfile.objects.create(user=user, modalities=["CR", "CT", "DX"])
    profile.sites.add(site_b)
    return user


@pytest.mark.parametrize("who", ["ct_reader", "site_b_reader"])
def test_a_radiologist_without_the_competence_or_the_site_can_neither_open_nor_claim(
    who, request, site_a, client
):
    outsider = request.getfixturevalue(who)
    study = _study(site_a, modality="CR")
    instance = Instance.objects.create(
        study=study, sop_instance_uid="1.7.9.1", series_instance_uid="1.7.9", orthanc_id="i1"
    )
    client.force_login(outsider)
    for name, args in (
        ("study_detail", [study.pk]),
        ("read", [study.pk]),
        ("consult", [study.pk]),
        ("instance_preview", [study.pk, instance.pk]),
    ):
        assert client.get(reverse(name, args=args)).status_code == 404, name
    assert client.post(reverse("claim", args=[study.pk])).status_code == 404
    assert f'data-study="{study.pk}"' not in client.get(reverse("worklist")).content.decode()
    api = api_client(outsider)
    assert api.post(reverse("api_claim", args=[study.pk])).status_code == 404
    assert api.get(reverse("api_study", args=[study.pk])).status_code == 404
    assert api.get(reverse("api_preview", args=[study.pk, instance.pk])).status_code == 404
    assert study.pk not in [s["id"] for s in api.get(reverse("api_studies")).json()["results"]]
    study.refresh_from_db()
    assert (study.status, study.assigned_to) == (Status.QUEUED, None)
    assert not StudyEvent.objects.filter(study=study).exists()
    # The same radiologist reads what is theirs: a CT of site B is open to both.
    theirs = _study(request.getfixturevalue("site_b"), modality="CT")
    assert client.get(reverse("study_detail", args=[theirs.pk])).status_code == 200
    assert api.post(reverse("api_claim", args=[theirs.pk])).status_code == 200


def test_a_radiologist_without_a_profile_sees_and_claims_nothing(django_user_model, site_a, client):
    newcomer = django_user_model.objects.create_user(username="new", password="x", role="radiologist")
    study = _study(site_a)
    client.force_login(newcomer)
    assert client.get(reverse("worklist")).status_code == 200  # their (empty) worklist
    assert client.post(reverse("claim", args=[study.pk])).status_code == 404
    assert api_client(newcomer).post(reverse("api_claim", args=[study.pk])).status_code == 404


def test_the_api_says_when_your_hands_are_full(site_a, radiologist):
    ReaderProfile.objects.filter(user=radiologist).update(max_in_hand=1)
    first, second = _study(site_a), _study(site_a)
    api = api_client(radiologist)
    assert api.post(reverse("api_claim", args=[first.pk])).status_code == 200
    full = api.post(reverse("api_claim", args=[second.pk]))
    assert full.status_code == 409 and full.json()["code"] == "full"


def test_the_reading_page_offers_release_hand_over_and_every_return_reason(
    site_a, radiologist, radiologist_2, ct_reader, client
):
    study = _study(site_a)
    lifecycle.transition(study, Transition.CLAIM, actor=radiologist)
    client.force_login(radiologist)
    page = client.get(reverse("read", args=[study.pk])).content.decode()
    assert reverse("release", args=[study.pk]) in page
    assert reverse("hand_over", args=[study.pk]) in page
    hand_over = page[
        page.index('id="hand-over-to"') : page.index("</select>", page.index('id="hand-over-to"'))
    ]
    assert f'value="{radiologist_2.pk}"' in hand_over and f'value="{ct_reader.pk}"' not in hand_over
    assert f'value="{radiologist.pk}"' not in hand_over  # not to oneself
    for value in ("positioning", "exposure", "motion", "wrong_side", "artefact", "coverage"):
        assert f'value="{value}"' in page
    assert "wrong_side" in ReturnReason.values


def test_hand_over_through_the_page_and_the_api(site_a, radiologist, radiologist_2, ct_reader, client):
    study = _study(site_a)
    lifecycle.transition(study, Transition.CLAIM, actor=radiologist)
    client.force_login(radiologist)
    refused = client.post(reverse("hand_over", args=[study.pk]), {"assignee": ct_reader.pk})
    assert refused.status_code == 302 and Study.objects.get(pk=study.pk).assigned_to == radiologist
    client.post(reverse("hand_over", args=[study.pk]), {"assignee": "not-a-number"})
    assert Study.objects.get(pk=study.pk).assigned_to == radiologist
    assert (
        client.post(reverse("hand_over", args=[study.pk]), {"assignee": radiologist_2.pk}).status_code == 302
    )
    study.refresh_from_db()
    assert (study.status, study.assigned_to) == (Status.IN_READING, radiologist_2)
    last = study.history[-1]
    assert (last.transition, last.actor, last.assignee) == ("hand_over", radiologist, radiologist_2)
    # Back through the API; the former holder can no longer pass it on.
    api = api_client(radiologist_2)
    assert (
        api.post(reverse("api_hand_over", args=[study.pk]), {"assignee": radiologist.pk}).status_code == 200
    )
    again = api.post(reverse("api_hand_over", args=[study.pk]), {"assignee": radiologist.pk})
    assert again.status_code == 403 and again.json()["code"] == "not_permitted"
    bad = api_client(radiologist).post(reverse("api_hand_over", args=[study.pk]), {"assignee": ct_reader.pk})
    assert bad.status_code == 400 and bad.json()["code"] == "no_assignee"


def test_an_admin_reassigns_on_a_page_that_shows_the_load(
    site_a, radiologist, radiologist_2, ct_reader, admin_user, client
):
    study = _study(site_a, description="Thorax")
    lifecycle.transition(study, Transition.CLAIM, actor=radiologist)
    client.force_login(admin_user)
    team = client.get(reverse("team_load")).content.decode()
    assert reverse("reassign", args=[study.pk]) in team
    assert re.search(r"Dr_A</td><td>1 / 5<", team), team  # in hand / limit
    form = client.get(reverse("reassign", args=[study.pk])).content.decode()
    assert f'value="{radiologist_2.pk}"' in form and f'value="{ct_reader.pk}"' not in form
    client.post(reverse("reassign", args=[study.pk]), {"assignee": ct_reader.pk})  # not competent
    assert Study.objects.get(pk=study.pk).assigned_to == radiologist
    assert (
        client.post(reverse("reassign", args=[study.pk]), {"assignee": radiologist_2.pk}).status_code == 302
    )
    study.refresh_from_db()
    assert study.assigned_to == radiologist_2 and study.history[-1].transition == "reassign"
    # A radiologist sees the load but cannot reassign.
    client.force_login(radiologist)
    assert client.get(reverse("team_load")).status_code == 200
    client.post(reverse("reassign", args=[study.pk]), {"assignee": radiologist.pk})
    assert Study.objects.get(pk=study.pk).assigned_to == radiologist_2


def test_a_second_opinion_asked_answered_and_seen_without_changing_the_study(
    site_a, radiologist, radiologist_2, ct_reader, client
):
    study = _study(site_a, description="Thorax face")
    lifecycle.transition(study, Transition.CLAIM, actor=radiologist)
    client.force_login(radiologist)
    client.post(reverse("ask_opinion", args=[study.pk]), {"asked_of": ct_reader.pk, "question": "Nodule ?"})
    client.post(reverse("ask_opinion", args=[study.pk]), {"asked_of": radiologist_2.pk, "question": " "})
    assert not SecondOpinion.objects.exists()  # not competent; no question
    client.post(
        reverse("ask_opinion", args=[study.pk]),
        {"asked_of": radiologist_2.pk, "question": "Opacité du lobe moyen ?"},
    )
    (asked,) = SecondOpinion.objects.all()
    # The colleague sees it in their list (and in the header), opens it read-only, answers.
    client.force_login(radiologist_2)
    listing = client.get(reverse("opinions")).content.decode()
    assert reverse("opinion", args=[asked.pk]) in listing and "Seconds avis (1)" in listing
    page = client.get(reverse("opinion", args=[asked.pk])).content.decode()
    assert "Opacité du lobe moyen ?" in page and 'name="answer"' in page
    assert reverse("claim", args=[study.pk]) not in page and reverse("release", args=[study.pk]) not in page
    client.post(reverse("opinion", args=[asked.pk]), {"answer": "Pneumopathie probable."})
    asked.refresh_from_db()
    assert asked.is_answered and asked.answer == "Pneumopathie probable."
    client.post(reverse("opinion", args=[asked.pk]), {"answer": "Changed my mind"})
    asked.refresh_from_db()
    assert asked.answer == "Pneumopathie probable."  # given once
    # Nobody else opens it.
    client.force_login(ct_reader)
    assert client.get(reverse("opinion", args=[asked.pk])).status_code == 404
    # The holder sees the answer on the reading page; the study is still theirs, in reading.
    client.force_login(radiologist)
    assert "Pneumopathie probable." in client.get(reverse("read", args=[study.pk])).content.decode()
    study.refresh_from_db()
    assert (study.status, study.assigned_to) == (Status.IN_READING, radiologist)
    assert [e.transition for e in study.history] == ["claim"]


def test_priors_of_the_same_patient_at_the_same_site_open_read_only_beside(
    site_a, site_b, radiologist, site_b_reader, client
):
    patient = {"patient_id": "K-0042", "patient_name": "COULIBALY^Awa", "patient_sex": "F"}
    old = _study(site_a, Status.REPORTED, study_date="20240105", description="Thorax 2024", **patient)
    report = Report.objects.create(study=old, author=radiologist, findings="RAS", conclusion="RAS")
    ReportVersion.objects.create(
        report=report,
        number=1,
        author=radiologist,
        author_name=radiologist.get_full_name(),
        findings="RAS",
        conclusion="RAS",
        signed_at=old.created_at,
    )
    other_patient = _study(site_a, Status.REPORTED, patient_id="K-0043", description="Autre patient")
    elsewhere = _study(site_b, Status.REPORTED, description="Même ID, autre site", **patient)
    current = _study(site_a, study_date="20260301", **patient)
    lifecycle.transition(current, Transition.CLAIM, actor=radiologist)
    client.force_login(radiologist)
    page = client.get(reverse("read", args=[current.pk])).content.decode()
    assert f'href="{reverse("consult", args=[old.pk])}" target="_blank"' in page
    assert "05/01/2024" in page
    assert "Autre patient" not in page and "Même ID, autre site" not in page
    consult = client.get(reverse("consult", args=[old.pk])).content.decode()
    assert "Consultation (lecture seule)" in consult and reverse("report", args=[old.pk]) in consult
    # Someone who may not read site A's studies cannot open that prior.
    client.force_login(site_b_reader)
    assert client.get(reverse("consult", args=[old.pk])).status_code == 404
    assert elsewhere.pk and other_patient.pk


def test_a_match_across_sites_is_suggested_and_counts_as_prior_once_confirmed(
    site_a, site_b, radiologist, radiologist_2, client
):
    who = {"patient_name": "COULIBALY^Awa", "patient_sex": "F", "patient_birth_date": "19800101"}
    sikasso = _study(site_b, Status.REPORTED, patient_id="S-77", description="Bassin Sikasso", **who)
    namesake = _study(
        site_b, Status.REPORTED, patient_id="S-78", description="Homonyme", **{**who, "patient_sex": "M"}
    )
    third = _study(site_b, patient_id="S-99", description="Troisième", **who)
    kayes = _study(site_a, patient_id="K-1", **who)  # today's study; the others came before
    lifecycle.transition(kayes, Transition.CLAIM, actor=radiologist)
    client.force_login(radiologist)
    page = client.get(reverse("read", args=[kayes.pk])).content.decode()
    judge = reverse("judge_patient", args=[kayes.pk, sikasso.pk])
    assert judge in page and reverse("judge_patient", args=[kayes.pk, namesake.pk]) not in page
    assert reverse("consult", args=[sikasso.pk]) in page  # openable to compare, not yet a prior
    client.post(judge, {"same": "1"})
    (link,) = PatientLink.objects.all()
    assert link.verdict == "same" and link.decided_by == radiologist
    page = client.get(reverse("read", args=[kayes.pk])).content.decode()
    assert judge not in page  # judged: no longer suggested
    priors = page[page.index("Examens antérieurs") :]
    assert "Bassin Sikasso" in priors
    # A second verdict on the same pair is refused; a "different" verdict links nothing.
    client.post(judge, {"same": "0"})
    assert PatientLink.objects.count() == 1
    assert reverse("judge_patient", args=[kayes.pk, third.pk]) in page  # still to be judged
    client.post(reverse("judge_patient", args=[kayes.pk, third.pk]), {"same": "0"})
    page = client.get(reverse("read", args=[kayes.pk])).content.decode()
    assert "Troisième" not in page[page.index("Examens antérieurs") :]
    assert radiologist_2.pk


def test_the_load_page_costs_the_same_few_queries_for_many_radiologists(
    django_user_model, site_a, admin_user, client, django_assert_max_num_queries
):
    for i in range(12):
        user = django_user_model.objects.create_user(username=f"r{i}", password="x", role="radiologist")
        ReaderProfile.objects.create(user=user, modalities=["CR"]).sites.add(site_a)
    client.force_login(admin_user)
    with django_assert_max_num_queries(12):
        page = client.get(reverse("team_load")).content.decode()
    assert page.count("/ 5</td>") == 12
