"""The export of everything held about one patient (privacy.patient_export): every study of theirs
(and no one else's), each signed report version as JSON and PDF, history, alerts sent, upload
verdicts; an admin-only page and a command; audited "patient.exported" without the patient's ID."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from pypdf import PdfReader

from alerts.models import Alert
from ingest.models import FileVerdict, Submission
from ingest.verdicts import Outcome
from privacy import patient_export
from reports.models import VersionKind
from reports.services import amend_report, save_report
from studies import lifecycle
from studies.lifecycle import Transition
from tests.alerts_support import new_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def patient(site_a, site_b, tech_a, radiologist):
    """PID-777 has two studies at site A (one signed then amended, with an alert and a verdict)
    and shares the number with someone at site B; PID-888 is another patient."""
    signed = new_study(site_a, uploader=tech_a)
    lifecycle.transition(signed, Transition.CLAIM, actor=radiologist)
    save_report(
        study=signed, author=radiologist, findings="Foyer basal droit.", conclusion="Pneumopathie.", sign=True
    )
    amend_report(
        study=signed,
        author=radiologist,
        kind=VersionKind.ADDENDUM,
        reason="Précision",
        addendum="Contrôle à 6 semaines.",
    )
    Alert.objects.create(
        kind="report_ready",
        category="routine",
        study=signed,
        chain="c",
        address="+22321000000",
        channel="sms",
        dedupe_key="d1",
        next_attempt_at=signed.created_at,
    )
    submission = Submission.objects.create(site=site_a, sender=tech_a)
    FileVerdict.objects.create(
        submission=submission,
        filename="thorax.dcm",
        size=10,
        sha256="0" * 64,
        outcome=Outcome.STORED,
        code="ok",
        study=signed,
    )
    waiting = new_study(site_a, uploader=tech_a)
    other_site = new_study(site_b)
    stranger = new_study(site_a)
    type(stranger).objects.filter(pk=stranger.pk).update(patient_id="PID-888", patient_name="KONE^Issa")
    return {"signed": signed, "waiting": waiting, "other_site": other_site, "stranger": stranger}


def _zip(data: bytes) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(data))


def test_the_export_holds_everything_about_the_patient_and_nothing_else(patient, site_a):
    data, count = patient_export.build("PID-777", site_id=site_a.pk)
    signed, waiting = patient["signed"], patient["waiting"]
    archive = _zip(data)
    assert count == 2
    assert sorted(archive.namelist()) == sorted(
        [
            "patient.json",
            f"study-{signed.pk}/study.json",
            f"study-{signed.pk}/report-v1.pdf",
            f"study-{signed.pk}/report-v2.pdf",
            f"study-{waiting.pk}/study.json",
        ]
    )
    study = json.loads(archive.read(f"study-{signed.pk}/study.json"))
    assert study["patient_name"] == "DIARRA^AMINATA" and study["case_code"] == signed.case_code
    assert [v["kind"] for v in study["report_versions"]] == ["original", "addendum"]
    assert study["report_versions"][1]["addendum"] == "Contrôle à 6 semaines."
    assert [e["to"] for e in study["events"]] == ["received", "in_reading", "reported", "reported"]
    assert (
        study["alerts"][0]["address"] == "+22321000000"
        and study["upload_verdicts"][0]["filename"] == "thorax.dcm"
    )
    pdf = PdfReader(io.BytesIO(archive.read(f"study-{signed.pk}/report-v2.pdf")))
    assert "Contrôle à 6 semaines" in " ".join(p.extract_text() for p in pdf.pages)
    assert b"KONE" not in data  # another patient's studies are not in it
    # Without a site, the same number at another site comes too (the page lets the admin choose).
    assert patient_export.build("PID-777")[1] == 3
    assert patient_export.build("  ")[1] == 0


def test_the_page_is_for_admins_only_and_audited(
    patient, admin_user, radiologist, tech_a, client, site_a, django_capture_on_commit_callbacks
):
    url = reverse("patient_export")
    for user in (tech_a, radiologist):
        client.force_login(user)
        assert (
            client.get(url).status_code == 404
            and client.post(url, {"patient_id": "PID-777"}).status_code == 404
        )
    client.force_login(admin_user)
    assert client.get(url).status_code == 200
    assert client.post(url, {"patient_id": "NOBODY"}).status_code == 400
    from audit.api import record

    with django_capture_on_commit_callbacks(execute=True):  # the trail writes a success on commit
        record("study.viewed", actor=radiologist, obj=patient["signed"])
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(url, {"patient_id": "PID-777", "site": str(site_a.pk)})
    assert answer.status_code == 200 and answer["Content-Type"] == "application/zip"
    assert answer["Cache-Control"] == "no-store"
    assert len([n for n in _zip(answer.content).namelist() if n.endswith("study.json")]) == 2
    from audit.models import AuditEvent

    audited = list(
        AuditEvent.objects.filter(action="patient.exported").values("outcome", "actor_id", "detail")
    )
    assert [(a["outcome"], a["actor_id"]) for a in audited] == [("ok", admin_user.pk)]
    assert "PID-777" not in str(audited)  # the trail names no patient
    # The export carries the trail's events about the patient's studies: who viewed them.
    study = json.loads(_zip(answer.content).read(f"study-{patient['signed'].pk}/study.json"))
    assert [(e["action"], e["actor_username"]) for e in study["audit_events"]] == [
        ("study.viewed", radiologist.username)
    ]


def test_the_command_writes_the_zip(patient, tmp_path, site_a):
    out = tmp_path / "export.zip"
    call_command(
        "export_patient", "PID-777", "--site", str(site_a.pk), "--out", str(out), stdout=io.StringIO()
    )
    assert "patient.json" in _zip(out.read_bytes()).namelist()
    with pytest.raises(CommandError):
        call_command("export_patient", "NOBODY", "--out", str(tmp_path / "none.zip"))
