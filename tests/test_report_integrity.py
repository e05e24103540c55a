"""The clinical record's integrity, enforced by PostgreSQL itself (reports.models triggers): a
signed version is never updated nor deleted, even in raw SQL; only an active radiologist signs,
whoever connects (technician, admin, an AI worker's or any other service account); AI text is
signed only with the signer's acceptance; an unaccepted AI draft never reaches the signed
version, its PDF or the SMS."""

from __future__ import annotations

import io
import json

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from pypdf import PdfReader

from accounts.models import User
from alerts import outbox
from preread.models import PreRead
from reports.models import Report, ReportVersion, VersionKind
from reports.pdf import report_pdf
from reports.services import ai_draft_of, amend_report, save_report
from studies import lifecycle
from studies.lifecycle import Transition
from tests.alerts_support import critical_preread, new_study

pytestmark = pytest.mark.django_db

FIELDS = dict(
    indication="Toux",
    technique="Thorax de face",
    findings="Poumons clairs.",
    conclusion="Normal.",
    language="fr",
    critical_category="",
)


@pytest.fixture
def signed(site_a, tech_a, radiologist):
    study = new_study(site_a, uploader=tech_a)
    lifecycle.transition(study, Transition.CLAIM, actor=radiologist)
    report = save_report(
        study=study, author=radiologist, conclusion="Normal.", findings="Poumons clairs.", sign=True
    )
    return report.latest


def _refused(callable_, *args, **kwargs):
    with pytest.raises(DatabaseError) as caught, transaction.atomic():
        callable_(*args, **kwargs)
    return str(caught.value)


def _sql(statement: str, params=()):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


def test_a_signed_version_refuses_update_and_delete_even_in_raw_sql(signed):
    pk = signed.pk
    message = _refused(_sql, "UPDATE reports_reportversion SET conclusion = 'Changé.' WHERE id = %s", [pk])
    assert "Cannot update" in message or "signed_version_immutable" in message
    _refused(_sql, "DELETE FROM reports_reportversion WHERE id = %s", [pk])
    # The ORM's bulk paths reach the same wall (the model's save() refuses before it).
    _refused(ReportVersion.objects.filter(pk=pk).update, conclusion="Changé.")
    _refused(ReportVersion.objects.filter(pk=pk).delete)
    with pytest.raises(ValueError):
        signed.save()
    signed.refresh_from_db()
    assert signed.conclusion == "Normal." and ReportVersion.objects.filter(pk=pk).count() == 1


def test_an_amendment_is_a_new_version_with_a_reason(signed, radiologist):
    study = signed.report.study
    with pytest.raises(ValidationError):
        amend_report(
            study=study,
            author=radiologist,
            kind=VersionKind.AMENDMENT,
            reason="  ",
            sections={"conclusion": "Nodule apical droit."},
        )
    version = amend_report(
        study=study,
        author=radiologist,
        kind=VersionKind.AMENDMENT,
        reason="Relecture",
        sections={"conclusion": "Nodule apical droit."},
    )
    assert (version.number, version.reason) == (2, "Relecture")
    assert ReportVersion.objects.get(pk=signed.pk).conclusion == "Normal."  # the original unchanged
    # The database's own rule too: a version after the first without a reason is refused.
    _refused(_create, signed.report, radiologist, {"number": 3, "kind": VersionKind.AMENDMENT, "reason": ""})


def _create(report: Report, author: User, extra: dict | None = None, **overrides) -> ReportVersion:
    values = dict(
        report=report,
        number=1,
        kind=VersionKind.ORIGINAL,
        author=author,
        author_name="X",
        signed_at=timezone.now(),
        provenance={},
        **FIELDS,
    )
    values.update(extra or {}, **overrides)
    return ReportVersion.objects.create(**values)


@pytest.fixture
def draft(site_a, tech_a, radiologist):
    study = new_study(site_a, uploader=tech_a)
    lifecycle.transition(study, Transition.CLAIM, actor=radiologist)
    return save_report(study=study, author=radiologist, conclusion="Normal.")


def _service_users(tech_a, admin_user):
    ai_worker = User.objects.create_user(username="ai-worker", password="x", role="admin")
    service = User.objects.create_user(username="svc-preread", password="x", role="service")
    ex_radiologist = User.objects.create_user(
        username="dr_gone", password="x", role="radiologist", is_active=False
    )
    return {
        "technician": tech_a,
        "admin": admin_user,
        "ai worker": ai_worker,
        "service": service,
        "inactive radiologist": ex_radiologist,
    }


def test_only_an_active_radiologist_signs_through_the_orm(draft, tech_a, admin_user, radiologist):
    for who, user in _service_users(tech_a, admin_user).items():
        message = _refused(_create, draft, user)
        assert "not an active radiologist" in message, who
    assert not ReportVersion.objects.filter(report=draft).exists()
    assert _create(draft, radiologist).number == 1  # the same row by a radiologist is accepted


def test_only_an_active_radiologist_signs_in_raw_sql(draft, tech_a, admin_user, radiologist):
    insert = """INSERT INTO reports_reportversion (report_id, number, kind, reason, addendum, author_id,
        author_name, author_title, signed_at, provenance, indication, technique, findings, conclusion,
        language, critical_category) VALUES (%s, 1, 'original', '', '', %s, 'X', '', now(), '{}',
        '', '', '', 'Normal.', 'fr', '')"""
    for who, user in _service_users(tech_a, admin_user).items():
        assert "not an active radiologist" in _refused(_sql, insert, [draft.pk, user.pk]), who
    # A radiologist who is then demoted signs nothing more (the check reads the account now).
    radiologist.role = "technician"
    radiologist.site = tech_a.site
    radiologist.save()
    assert "not an active radiologist" in _refused(_sql, insert, [draft.pk, radiologist.pk])
    assert not ReportVersion.objects.filter(report=draft).exists()


def test_the_services_refuse_a_non_radiologist_before_the_database(draft, tech_a, admin_user):
    for user in (tech_a, admin_user):
        with pytest.raises(PermissionDenied):
            save_report(study=draft.study, author=user, conclusion="Normal.", sign=True)


def test_ai_text_needs_the_signers_own_acceptance_at_the_database(draft, radiologist, radiologist_2):
    ai = {"provenance": {"findings": "ai:demo-cxr 1", "conclusion": "radiologist"}}
    assert "acceptance" in _refused(_create, draft, radiologist, ai)
    assert "acceptance" in _refused(_create, draft, radiologist, {**ai, "ai_accepted_by": radiologist_2})
    version = _create(draft, radiologist, {**ai, "ai_accepted_by": radiologist})
    assert version.ai_accepted_by == radiologist


AI_FINDINGS = "Opacité alvéolaire lobaire inférieure droite évoquant une pneumopathie franche."


def test_an_unaccepted_ai_draft_never_reaches_the_signed_version_pdf_or_sms(
    site_a, tech_a, radiologist, settings, tmp_path
):
    """The AI proposed findings; the radiologist did not accept them and wrote their own. The
    signed version, its PDF and the critical-finding SMS to the site carry none of the AI's words."""
    settings.ALERTS_SMS_BACKEND = "file"
    settings.ALERTS_SMS_FILE = tmp_path / "sms.txt"
    settings.ALERTS_QUIET_HOURS = ""
    site_a.phone = "+22321000000"
    site_a.save()
    study = new_study(site_a, uploader=tech_a)
    critical_preread(study)  # the AI's pre-read, with its draft findings as the pre-read app stores them
    PreRead.objects.filter(study=study).update(
        draft_fr=f"Brouillon IA — demo-cxr 1 — à vérifier\n{AI_FINDINGS}"
    )
    lifecycle.transition(study, Transition.CLAIM, actor=radiologist)
    assert ai_draft_of(study) is not None and ai_draft_of(study).text("fr") == AI_FINDINGS
    # The draft starts with the AI's text; signing it unaccepted is refused and signs nothing.
    save_report(study=study, author=radiologist, findings=AI_FINDINGS, conclusion="Pneumopathie.")
    with pytest.raises(ValidationError):
        save_report(
            study=study, author=radiologist, conclusion="Pneumopathie.", sign=True, critical_category="urgent"
        )
    assert not ReportVersion.objects.filter(report__study=study).exists()
    # The radiologist rewrites the findings and signs without accepting anything.
    own = "Syndrome interstitiel bilatéral, sans foyer systématisé."
    report = save_report(
        study=study,
        author=radiologist,
        findings=own,
        conclusion="Syndrome interstitiel.",
        sign=True,
        critical_category="urgent",
    )
    version = report.latest
    assert version.provenance["findings"] == "radiologist" and version.ai_accepted_by is None
    signed_text = " ".join(getattr(version, f) for f in ("indication", "technique", "findings", "conclusion"))
    pdf_text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(report_pdf(report, version))).pages)
    assert "Syndrome interstitiel" in pdf_text  # the PDF is read back, and holds the signed words
    outbox.drain()
    sms = [json.loads(line) for line in settings.ALERTS_SMS_FILE.read_text().splitlines()]
    assert sms, "the urgent finding was sent to the site by SMS"
    bodies = " ".join(json.dumps(m, ensure_ascii=False) for m in sms)
    for words in ("Opacité alvéolaire", "pneumopathie franche", "lobaire inférieure"):
        assert words not in signed_text and words not in pdf_text and words not in bodies
    assert "proposé par l'IA" not in pdf_text  # no AI note: nothing of the AI was signed
