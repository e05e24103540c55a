"""A signed report goes back into Orthanc with its study: an Encapsulated PDF and a Basic Text SR
under the same StudyInstanceUID, UTF-8, durable (a row written with the signature, a task, a
sweep), and never taken by the changes feed for new images (which would reopen the study)."""

from __future__ import annotations

import io
from datetime import timedelta

import pydicom
import pytest
from django.utils import timezone

from ingest.changes_feed import complete_archive_study, follow_changes
from reports.dicom_objects import BASIC_TEXT_SR, ENCAPSULATED_PDF, is_platform_report
from reports.export import deliver_export, deliver_pending_exports
from reports.models import ReportExport
from reports.services import amend_report, save_report
from studies import lifecycle
from studies.lifecycle import Transition
from studies.models import Study
from tests.helpers import api_client, send_chest, wait_for
from tests.test_ingest_intent import start_feed_at_the_present

pytestmark = pytest.mark.orthanc

FINDINGS = "Épanchement pleural gauche ; cœur de taille normale."


def _signed(tech, radiologist, tmp_path) -> Study:
    study = send_chest(tech, tmp_path, PatientName="COULIBALY^Awa", PatientID="KY-0042")
    lifecycle.transition(study, Transition.CLAIM, actor=radiologist)
    save_report(
        study=study,
        author=radiologist,
        findings=FINDINGS,
        conclusion="Pleurésie gauche.",
        critical_category="urgent",
        sign=True,
    )
    return Study.objects.get(pk=study.pk)


def _report_objects(client, study: Study) -> dict[str, pydicom.Dataset]:
    """The study's instances in Orthanc that are report objects, by SOP Instance UID."""
    found = {}
    for inst in client.study_instances(study.orthanc_id):
        ds = pydicom.dcmread(io.BytesIO(client.instance_file(inst["ID"])))
        if ds.SOPClassUID in (ENCAPSULATED_PDF, BASIC_TEXT_SR):
            found[ds.SOPInstanceUID] = ds
    return found


def _texts(ds: pydicom.Dataset) -> list[str]:
    return [item.TextValue for c in ds.ContentSequence for item in c.ContentSequence if "TextValue" in item]


@pytest.mark.django_db
def test_the_signed_report_is_in_orthanc_with_the_study_and_does_not_reopen_it(
    tech_a, radiologist, orthanc_server, tmp_path
):
    study = _signed(tech_a, radiologist, tmp_path)
    export = ReportExport.objects.get(version__report__study=study)
    client = orthanc_server.client()
    start_feed_at_the_present(client)
    assert deliver_export(export.pk) is True
    export.refresh_from_db()
    assert export.state == "done" and export.attempts == 1

    objects = _report_objects(client, study)
    pdf, sr = objects[export.pdf_sop_instance_uid], objects[export.sr_sop_instance_uid]
    for ds in (pdf, sr):
        assert ds.StudyInstanceUID == study.study_instance_uid
        assert ds.SpecificCharacterSet == "ISO_IR 192"
        assert ds.PatientID == "KY-0042" and str(ds.PatientName) == "COULIBALY^Awa"
        assert is_platform_report({"Manufacturer": ds.Manufacturer, "SOPClassUID": ds.SOPClassUID})
    assert pdf.SOPClassUID == ENCAPSULATED_PDF and pdf.Modality == "DOC"
    assert pdf.MIMETypeOfEncapsulatedDocument == "application/pdf"
    document = bytes(pdf.EncapsulatedDocument)[: pdf.EncapsulatedDocumentLength]
    assert document.startswith(b"%PDF") and len(document) <= 50 * 1024
    assert sr.SOPClassUID == BASIC_TEXT_SR and sr.Modality == "SR"
    assert sr.CompletionFlag == "COMPLETE" and sr.VerificationFlag == "VERIFIED"
    assert sr.ConceptNameCodeSequence[0].CodeValue == "18748-4"
    texts = _texts(sr)
    assert FINDINGS in texts and "Pleurésie gauche." in texts and "Toux, fièvre" in texts
    assert "Dr_A" in str(sr.VerifyingObserverSequence[0].VerifyingObserverName)
    assert "Résultat critique : urgent — à communiquer en quelques heures" in texts

    # The changes feed sees both new instances, and knows them as the platform's own report.
    instances_before = study.instances.count()
    follow_changes(client)
    complete_archive_study(client, study.orthanc_id)  # the stable-study path too
    study.refresh_from_db()
    assert study.status == "reported" and study.instances.count() == instances_before
    assert "reopen" not in [e.transition for e in study.history]


@pytest.mark.django_db
def test_an_amendment_is_a_new_pair_of_objects_that_points_to_the_first(
    tech_a, radiologist, orthanc_server, tmp_path
):
    study = _signed(tech_a, radiologist, tmp_path)
    amend_report(
        study=study,
        author=radiologist,
        kind="amendment",
        reason="Côté corrigé",
        sections={"findings": "Épanchement pleural droit.", "conclusion": "Pleurésie droite."},
    )
    first, second = ReportExport.objects.filter(version__report__study=study).order_by("version__number")
    for export in (first, second):
        deliver_export(export.pk)
    objects = _report_objects(orthanc_server.client(), study)
    assert len(objects) == 4
    old_sr, new_sr = objects[first.sr_sop_instance_uid], objects[second.sr_sop_instance_uid]
    assert "Pleurésie gauche." in _texts(old_sr) and "Pleurésie droite." in _texts(new_sr)
    assert new_sr.SeriesInstanceUID == old_sr.SeriesInstanceUID and new_sr.InstanceNumber == 2
    ref = new_sr.PredecessorDocumentsSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert ref.ReferencedSOPInstanceUID == first.sr_sop_instance_uid
    # Delivered twice (a task redelivered): Orthanc keeps one copy.
    deliver_export(second.pk)
    assert len(_report_objects(orthanc_server.client(), study)) == 4


@pytest.mark.django_db
def test_the_sweep_finishes_exports_whose_task_was_lost_and_survives_the_archive_down(
    tech_a, radiologist, orthanc_server, tmp_path, settings
):
    # This test's tasks go to a queue nobody reads: the message is as good as flushed.
    study = _signed(tech_a, radiologist, tmp_path)
    export = ReportExport.objects.get(version__report__study=study)
    assert deliver_pending_exports() == 0  # too recent: its task may still come
    later = timezone.now() + timedelta(minutes=5)

    settings.ORTHANC_URL = "http://127.0.0.1:9"  # the archive is away
    assert deliver_pending_exports(now=later) == 0
    export.refresh_from_db()
    assert export.state == "failed" and export.attempts == 1 and "Orthanc" in export.last_error

    settings.ORTHANC_URL = orthanc_server.url
    assert deliver_pending_exports(now=later + timedelta(minutes=5)) == 1
    export.refresh_from_db()
    assert export.state == "done" and export.attempts == 2 and export.last_error == ""
    assert export.sr_sop_instance_uid in _report_objects(orthanc_server.client(), study)


@pytest.mark.django_db(transaction=True)
def test_the_worker_exports_a_report_signed_through_the_api(celery_worker, tech_a, radiologist, tmp_path):
    study = send_chest(tech_a, tmp_path)
    wait_for(lambda: Study.objects.get(pk=study.pk).status == "queued", timeout=60)
    dr = api_client(radiologist)
    assert dr.post(f"/api/v1/studies/{study.pk}/claim/").status_code == 200
    signed = dr.put(
        f"/api/v1/studies/{study.pk}/report/",
        {"findings": FINDINGS, "conclusion": "Pleurésie gauche.", "sign": True},
        format="json",
    )
    assert signed.status_code == 200, signed.content
    export = wait_for(
        lambda: ReportExport.objects.filter(version__report__study=study, state="done").first(), timeout=60
    )
    assert export.attempts == 1
    assert Study.objects.get(pk=study.pk).status == "reported"
