"""Reports on real PostgreSQL and Orthanc: templates, the editor and its autosave, signing with a
confirmation step, the site's pages, the PDF, amendments and addenda as versions, the API."""

from __future__ import annotations

import io

import pytest
from django.urls import reverse
from pypdf import PdfReader

from reports.models import CriticalCategory, Report, ReportExport, ReportVersion
from reports.services import amend_report, choose_template, save_report, version_signed
from studies import lifecycle
from studies.lifecycle import Transition
from studies.models import Study
from tests.helpers import api_client, send_chest, send_ct

pytestmark = [pytest.mark.django_db, pytest.mark.orthanc]

PATIENT = {"PatientName": "COULIBALY^Awa", "PatientBirthDate": "19800315", "StudyDate": "20220314"}


def _claimed_chest(tech, radiologist, tmp_path, **tags) -> Study:
    study = send_chest(tech, tmp_path, BodyPartExamined="CHEST", **{**PATIENT, **tags})
    return lifecycle.transition(study, Transition.CLAIM, actor=radiologist)


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_the_template_follows_modality_and_body_part(tech_a, radiologist, tmp_path):
    chest = send_chest(tech_a, tmp_path, BodyPartExamined="CHEST")
    head = send_ct(tech_a, tmp_path, n=1)
    Study.objects.filter(pk=head.pk).update(body_part="HEAD")
    abdomen = Study(modality="CT", body_part="ABDOMEN")
    other = Study(modality="MR", body_part="KNEE")
    assert choose_template(chest).code == "cr-dx-thorax"
    assert choose_template(Study.objects.get(pk=head.pk)).code == "ct-tete"
    assert choose_template(abdomen).code == "ct-abdomen"
    assert choose_template(other).code == "generique"
    assert choose_template(Study(modality="DX", body_part="thorax")).code == "cr-dx-thorax"


def test_the_editor_starts_from_the_template_and_the_sites_indication(tech_a, radiologist, tmp_path, client):
    study = _claimed_chest(tech_a, radiologist, tmp_path)
    client.force_login(radiologist)
    page = client.get(reverse("read", args=[study.pk])).content.decode()
    # The four sections in the order French radiologists write them.
    order = [page.index(f'name="{n}"') for n in ("indication", "technique", "findings", "conclusion")]
    assert order == sorted(order)
    assert "Toux, fièvre" in page.split('name="indication"', 1)[1].split("</textarea>", 1)[0]
    assert "Radiographie thoracique de face" in page and "Parenchyme pulmonaire" in page
    assert 'id="report-saved"' in page and "reports/autosave.js" in page

    # Switching to English applies the template's English text to what was not touched.
    template = choose_template(study)
    client.post(
        reverse("report_edit", args=[study.pk]),
        {"template": template.pk, "language": "en", "apply_template": "1"},
    )
    report = Report.objects.get(study=study)
    assert report.language == "en" and report.technique.startswith("Frontal chest radiograph")
    assert report.findings.startswith("Lungs:") and report.indication == "Toux, fièvre"


def test_autosave_keeps_the_draft_and_says_when(tech_a, radiologist, radiologist_2, tmp_path, client):
    study = _claimed_chest(tech_a, radiologist, tmp_path)
    client.force_login(radiologist)
    answer = client.post(
        reverse("report_edit", args=[study.pk]),
        {"findings": "Opacité basale droite.", "conclusion": ""},
        HTTP_X_JOLIBA_AUTOSAVE="1",
    )
    assert answer.status_code == 200 and answer.json()["saved"] is True
    assert answer.json()["message"].startswith("Brouillon enregistré à ")
    report = Report.objects.get(study=study)
    assert report.findings == "Opacité basale droite." and not report.is_signed
    assert report.technique.startswith("Radiographie thoracique")  # not posted: kept as it was
    # Somebody who does not hold the study: a clear refusal, in French, nothing written.
    client.force_login(radiologist_2)
    refused = client.post(
        reverse("report_edit", args=[study.pk]), {"findings": "x"}, HTTP_X_JOLIBA_AUTOSAVE="1"
    )
    assert refused.status_code == 403 and "Prenez d'abord" in refused.json()["message"]
    assert Report.objects.get(study=study).findings == "Opacité basale droite."


def test_signing_asks_for_confirmation_then_the_site_sees_it(tech_a, tech_b, radiologist, tmp_path, client):
    study = _claimed_chest(tech_a, radiologist, tmp_path)
    client.force_login(radiologist)
    edit = reverse("report_edit", args=[study.pk])
    answer = client.post(
        edit,
        {
            "findings": "Opacité alvéolaire du lobe inférieur droit.",
            "conclusion": "Pneumopathie lobaire inférieure droite.",
            "critical_category": "",
            "sign": "1",
        },
    )
    assert answer.status_code == 302 and answer.url == reverse("report_sign", args=[study.pk])
    study.refresh_from_db()
    assert study.status == "in_reading" and not Report.objects.get(study=study).is_signed
    confirm = client.get(answer.url).content.decode()
    assert "Pneumopathie lobaire inférieure droite." in confirm and 'name="confirm"' in confirm
    assert 'name="accept_ai"' not in confirm  # nothing came from the AI

    unconfirmed = client.post(answer.url, {})
    assert unconfirmed.status_code == 200 and not Report.objects.get(study=study).is_signed
    signed = client.post(answer.url, {"confirm": "on"})
    assert signed.status_code == 302
    study.refresh_from_db()
    assert study.status == "reported"
    version = ReportVersion.objects.get(report__study=study)
    assert version.number == 1 and version.kind == "original"
    assert version.provenance["findings"] == "radiologist" and version.ai_accepted_by is None
    assert version.technique.startswith("Radiographie thoracique") and version.indication == "Toux, fièvre"
    assert ReportExport.objects.get(version=version).state == "pending"  # written with the signature

    # A signed report is immutable: no update of a version, and the editor's post is refused.
    version.conclusion = "autre"
    with pytest.raises(ValueError, match="never changes"):
        version.save()
    client.post(edit, {"findings": "autre", "conclusion": "autre", "save": "1"})
    assert ReportVersion.objects.get(report__study=study).findings.startswith("Opacité alvéolaire")

    client.force_login(tech_a)
    detail = client.get(reverse("study_detail", args=[study.pk])).content.decode()
    assert reverse("report", args=[study.pk]) in detail and "Délai de lecture" in detail
    page = client.get(reverse("report", args=[study.pk])).content.decode()
    assert "Pneumopathie lobaire inférieure droite." in page and "COULIBALY Awa" in page
    assert Study.objects.get(pk=study.pk).status == "delivered"
    client.force_login(tech_b)
    assert client.get(reverse("report", args=[study.pk])).status_code == 404
    assert client.get(reverse("report_pdf", args=[study.pk])).status_code == 404


def test_the_pdf_is_small_and_written_for_people(site_a, tech_a, radiologist, tmp_path, client):
    site_a.phone = "+223 21 52 00 00"
    site_a.save()
    radiologist.last_name = "Diarra"
    radiologist.save()
    study = _claimed_chest(tech_a, radiologist, tmp_path, AccessionNumber="KY-2022-0314")
    save_report(
        study=study,
        author=radiologist,
        findings="Épanchement pleural gauche de moyenne abondance.",
        conclusion="Pleurésie gauche.",
        critical_category=CriticalCategory.URGENT,
        sign=True,
    )
    client.force_login(tech_a)
    answer = client.get(reverse("report_pdf", args=[study.pk]))
    assert answer.status_code == 200 and answer["Content-Type"] == "application/pdf"
    data = answer.content
    assert len(data) <= 50 * 1024, len(data)
    text = pdf_text(data)
    for expected in (
        "Hôpital de Kayes",
        "Kayes",
        "+223 21 52 00 00",
        "COULIBALY Awa",
        "15/03/1980",
        "14/03/2022",
        "KY-2022-0314",
        "Toux, fièvre",
        "Épanchement pleural gauche",
        "Pleurésie gauche.",
        "Résultat critique",
        "Dr Dr_A Diarra",
        "Médecin radiologue",
        "Version 1",
    ):
        assert expected in text, expected
    for raw in ("COULIBALY^Awa", "20220314", "19800315"):
        assert raw not in text
    reader = PdfReader(io.BytesIO(data))
    images = [img for page in reader.pages for img in page.images]
    assert len(images) == 1 and 500 < len(images[0].data) < 20_000  # one small key image


def test_an_amendment_keeps_the_first_version_and_the_site_sees_the_latest(
    tech_a, radiologist, radiologist_2, tmp_path, client
):
    study = _claimed_chest(tech_a, radiologist, tmp_path)
    save_report(study=study, author=radiologist, findings="Pas d'anomalie.", conclusion="Normal.", sign=True)
    client.force_login(tech_a)
    client.get(reverse("report", args=[study.pk]))
    assert Study.objects.get(pk=study.pk).status == "delivered"

    signals = []
    version_signed.connect(lambda **kw: signals.append(kw), weak=False, dispatch_uid="t-amend")
    try:
        with pytest.raises(Exception, match="motif"):
            amend_report(study=study, author=radiologist, kind="amendment", reason=" ", sections={})
        with pytest.raises(Exception, match="signataire"):
            amend_report(
                study=study, author=radiologist_2, kind="addendum", reason="Relecture", addendum="Vu."
            )
        client.force_login(radiologist)
        form = client.get(reverse("report_amend", args=[study.pk])).content.decode()
        assert "Pas d&#x27;anomalie." in form or "Pas d'anomalie." in form
        answer = client.post(
            reverse("report_amend", args=[study.pk]),
            {
                "kind": "amendment",
                "reason": "Relecture : nodule apical droit méconnu",
                "indication": "Toux, fièvre",
                "findings": "Nodule apical droit de 12 mm.",
                "conclusion": "Nodule pulmonaire apical droit : scanner thoracique conseillé.",
                "critical_category": "significant",
                "confirm": "on",
            },
        )
        assert answer.status_code == 302, answer.content.decode()[-2000:]
    finally:
        version_signed.disconnect(dispatch_uid="t-amend")
    study.refresh_from_db()
    assert study.status == "reported"  # the site has a new version to open
    assert [e.transition for e in study.history][-2:] == ["deliver", "amend"]
    first, second = ReportVersion.objects.filter(report__study=study).order_by("number")
    assert (first.number, first.kind, first.conclusion) == (1, "original", "Normal.")
    assert (second.number, second.kind, second.critical_category) == (2, "amendment", "significant")
    assert ReportExport.objects.filter(version__report__study=study).count() == 2
    assert not signals  # sent on commit only; this test's transaction never commits

    # An addendum through the API: the text is added, the sections stay.
    added = api_client(radiologist).put(
        reverse("api_report", args=[study.pk]),
        {"kind": "addendum", "reason": "Comparaison", "addendum": "Nodule stable depuis 2021."},
        format="json",
    )
    assert added.status_code == 200, added.content
    assert [v["kind"] for v in added.json()["versions"]] == ["original", "amendment", "addendum"]

    client.force_login(tech_a)
    page = client.get(reverse("report", args=[study.pk])).content.decode()
    assert "Nodule pulmonaire apical droit" in page and "Nodule stable depuis 2021." in page
    assert "Versions précédentes" in page and "Normal." in page  # the first one is still there
    assert Study.objects.get(pk=study.pk).status == "delivered"
    detail = client.get(reverse("study_detail", args=[study.pk])).content.decode()
    assert "v1" in detail and "v3" in detail and "Relecture : nodule apical droit méconnu" in detail
    api = api_client(tech_a).get(reverse("api_report", args=[study.pk])).json()
    assert api["version"] == 3 and api["conclusion"].startswith("Nodule pulmonaire apical droit")
    assert "draft" not in api  # a site never sees a draft
    text = pdf_text(client.get(reverse("report_pdf", args=[study.pk])).content)
    assert "Version 3" in text and "Addendum" in text and "Nodule stable depuis 2021." in text
    old = pdf_text(client.get(reverse("report_pdf", args=[study.pk]) + "?version=1").content)
    assert "Normal." in old and "Nodule" not in old


def test_the_api_keeps_working_and_refuses_bad_input(tech_a, radiologist, tmp_path):
    study = _claimed_chest(tech_a, radiologist, tmp_path)
    dr = api_client(radiologist)
    url = reverse("api_report", args=[study.pk])
    bad = dr.put(url, {"conclusion": "x", "critical_category": "someday"}, format="json")
    assert bad.status_code == 400 and "critical_category" in bad.json()
    draft = dr.put(url, {"findings": "Cœur normal.", "conclusion": "RAS."}, format="json")
    assert draft.status_code == 200 and draft.json()["draft"]["findings"] == "Cœur normal."
    assert draft.json()["signed_at"] is None
    signed = dr.put(url, {"sign": True}, format="json")
    assert signed.status_code == 200 and signed.json()["signed_at"]
    assert signed.json()["versions"][0]["turnaround_seconds"] >= 0
    again = dr.put(url, {"conclusion": "autre", "sign": True}, format="json")
    assert again.status_code == 403  # signed: only a new version, with its reason
    no_reason = dr.put(url, {"kind": "amendment", "conclusion": "autre"}, format="json")
    assert no_reason.status_code == 400


def test_a_reopened_study_is_signed_again_as_a_new_version_with_a_reason(
    tech_a, radiologist, tmp_path, client
):
    study = _claimed_chest(tech_a, radiologist, tmp_path)
    save_report(study=study, author=radiologist, findings="Normal.", conclusion="Normal.", sign=True)
    lifecycle.transition(study, Transition.REOPEN)  # new images reached the archive
    lifecycle.transition(study, Transition.CLAIM, actor=radiologist)
    client.force_login(radiologist)
    page = client.get(reverse("read", args=[study.pk])).content.decode()
    assert "déjà été signé" in page
    confirm = reverse("report_sign", args=[study.pk])
    client.post(reverse("report_edit", args=[study.pk]), {"conclusion": "Fracture costale.", "sign": "1"})
    refused = client.post(confirm, {"confirm": "on"}).content.decode()
    assert "dites pourquoi" in refused and ReportVersion.objects.filter(report__study=study).count() == 1
    client.post(confirm, {"confirm": "on", "reason": "Incidence complémentaire reçue"})
    versions = list(ReportVersion.objects.filter(report__study=study).order_by("number"))
    assert [(v.kind, v.conclusion) for v in versions] == [
        ("original", "Normal."),
        ("amendment", "Fracture costale."),
    ]
    assert Study.objects.get(pk=study.pk).status == "reported"


def test_a_radiologist_sees_the_draft_a_site_does_not(tech_a, radiologist, tmp_path, client):
    study = _claimed_chest(tech_a, radiologist, tmp_path)
    save_report(study=study, author=radiologist, findings="Brouillon en cours.", conclusion="")
    client.force_login(radiologist)
    page = client.get(reverse("report", args=[study.pk])).content.decode()
    assert "brouillon" in page and "Brouillon en cours." in page
    client.force_login(tech_a)
    assert client.get(reverse("report", args=[study.pk])).status_code == 404
    assert "Brouillon en cours." not in client.get(reverse("study_detail", args=[study.pk])).content.decode()
