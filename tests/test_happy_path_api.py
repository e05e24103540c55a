"""One study travels from a site to a signed report, through the REST API, on real components."""

import pytest
from django.urls import reverse

from studies.models import Study
from tests.helpers import api_client, wait_for
from tests.paths import CT_HEAD

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.orthanc]


def _send_ct(client, n=3, priority="urgent"):
    files = [open(CT_HEAD / f"{i:02d}.dcm", "rb") for i in range(1, n + 1)]
    try:
        return client.post(
            reverse("api_upload"),
            {"files": files, "indication": "Traumatisme crânien, GCS 13", "priority": priority},
            format="multipart",
        )
    finally:
        for f in files:
            f.close()


def test_it_carries_a_study_from_site_to_signed_report(
    celery_worker, tech_a, tech_b, radiologist, orthanc_server
):
    tech = api_client(tech_a)
    answer = _send_ct(tech)
    assert answer.status_code == 201, answer.content
    verdicts = answer.json()["verdicts"]
    assert [v["outcome"] for v in verdicts] == ["stored"] * 3
    study = Study.objects.get()
    assert study.site == tech_a.site and study.priority == "urgent"
    assert study.modality == "CT" and study.instances.count() == 3
    assert study.received_at is not None
    # In the archive, really (the session's archive may hold other slices of this CT from other tests).
    archived = {
        i["MainDicomTags"]["SOPInstanceUID"]
        for i in orthanc_server.client().study_instances(study.orthanc_id)
    }
    assert set(study.instances.values_list("sop_instance_uid", flat=True)) <= archived

    # The worker moves it to the reading queue.
    wait_for(lambda: Study.objects.get(pk=study.pk).status == "queued")

    dr = api_client(radiologist)
    listed = dr.get(reverse("api_studies")).json()["results"]
    assert [s["id"] for s in listed] == [study.pk]
    instance = study.instances.first()
    preview = dr.get(reverse("api_preview", args=[study.pk, instance.pk]))
    assert preview.status_code == 200 and preview.content[8:12] == b"WEBP"

    assert dr.post(reverse("api_claim", args=[study.pk])).status_code == 200
    signed = dr.put(
        reverse("api_report", args=[study.pk]),
        {"findings": "Pas d'hématome intracrânien.", "conclusion": "Scanner normal.", "sign": True},
        format="json",
    )
    assert signed.status_code == 200, signed.content
    assert signed.json()["signed_at"]
    assert Study.objects.get(pk=study.pk).status == "reported"

    # The site sees the signed report, as JSON and PDF; opening it marks it delivered.
    report = tech.get(reverse("api_report", args=[study.pk]))
    assert report.json()["conclusion"] == "Scanner normal."
    pdf = tech.get(reverse("api_report_pdf", args=[study.pk]))
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert Study.objects.get(pk=study.pk).status == "delivered"

    # Another site sees nothing of it.
    other = api_client(tech_b)
    assert other.get(reverse("api_studies")).json()["results"] == []
    for name in ("api_study", "api_report", "api_report_pdf"):
        assert other.get(reverse(name, args=[study.pk])).status_code == 404
    assert other.get(reverse("api_preview", args=[study.pk, instance.pk])).status_code == 404


def test_it_stores_a_resent_file_once_and_says_so(tech_a):
    tech = api_client(tech_a)
    first = _send_ct(tech, n=1)
    again = _send_ct(tech, n=1)
    assert first.json()["verdicts"][0]["outcome"] == "stored"
    assert again.json()["verdicts"][0]["outcome"] == "duplicate"
    assert Study.objects.get().instances.count() == 1


def test_a_second_radiologist_cannot_take_a_claimed_study(tech_a, radiologist, radiologist_2):
    _send_ct(api_client(tech_a), n=1)
    study = Study.objects.get()
    assert api_client(radiologist).post(reverse("api_claim", args=[study.pk])).status_code == 200
    assert api_client(radiologist_2).post(reverse("api_claim", args=[study.pk])).status_code == 409
    refused = api_client(radiologist_2).put(
        reverse("api_report", args=[study.pk]), {"conclusion": "x", "sign": True}, format="json"
    )
    assert refused.status_code == 403


def test_technicians_cannot_read_and_radiologists_cannot_upload(tech_a, radiologist):
    _send_ct(api_client(tech_a), n=1)
    study = Study.objects.get()
    assert api_client(tech_a).post(reverse("api_claim", args=[study.pk])).status_code == 403
    assert _send_ct(api_client(radiologist), n=1).status_code == 403


def test_the_api_needs_credentials_and_publishes_its_schema(client, tech_a):
    assert client.get(reverse("api_studies")).status_code in (401, 403)
    schema = api_client(tech_a).get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/studies/upload/" in schema.content
