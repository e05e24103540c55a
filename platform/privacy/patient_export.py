"""Everything the platform holds about one patient, for the patient's right of access (Loi
n°2013-015, docs/privacy.md): every study with its facts and history, every signed report version
(JSON and its PDF), every alert sent about them, the verdicts of the files that carried them, and
the audit events about their studies. One ZIP; recorded as "patient.exported".

A patient is found by the Patient ID of their studies (optionally within one site: IDs are the
sites' own, two hospitals may give the same number to two people)."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from alerts.models import Alert
from audit.api import record
from ingest.models import FileVerdict
from reports.models import SECTIONS, ReportVersion
from studies.models import Study

STUDY_FIELDS = (
    "id",
    "study_instance_uid",
    "patient_name",
    "patient_id",
    "patient_sex",
    "patient_birth_date",
    "accession_number",
    "modality",
    "body_part",
    "description",
    "study_date",
    "institution",
    "indication",
    "priority",
    "status",
    "source",
    "created_at",
)


def studies_of(patient_id: str, site_id: int | None = None) -> QuerySet[Study]:
    studies = Study.objects.filter(patient_id=patient_id.strip()).exclude(patient_id="")
    if site_id is not None:
        studies = studies.filter(site_id=site_id)
    return studies.select_related("site").order_by("pk")


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _study(study: Study) -> dict[str, Any]:
    data = {name: _iso(getattr(study, name)) for name in STUDY_FIELDS}
    data["site"] = study.site.code if study.site else None
    data["case_code"] = study.case_code
    data["events"] = [
        {
            "transition": e.transition,
            "from": e.from_status,
            "to": e.to_status,
            "at": _iso(e.at),
            "actor": e.actor.username if e.actor else None,
            "reason_code": e.reason_code,
        }
        for e in study.events.select_related("actor")
    ]
    data["instances"] = [
        {
            "sop_instance_uid": i.sop_instance_uid,
            "series_instance_uid": i.series_instance_uid,
            "modality": i.modality,
            "lossy": i.lossy,
        }
        for i in study.instances.all()
    ]
    return data


def _version(version: ReportVersion) -> dict[str, Any]:
    data: dict[str, Any] = {name: getattr(version, name) for name in SECTIONS}
    data.update(
        number=version.number,
        kind=version.kind,
        reason=version.reason,
        addendum=version.addendum,
        language=version.language,
        critical_category=version.critical_category,
        author=version.author_name,
        signed_at=_iso(version.signed_at),
        provenance=version.provenance,
        ai_accepted_by=version.ai_accepted_by.username if version.ai_accepted_by else None,
    )
    return data


def _alert(alert: Alert) -> dict[str, Any]:
    return {
        "kind": alert.kind,
        "category": alert.category,
        "channel": alert.channel,
        "recipient_role": alert.recipient_role,
        "address": alert.address,
        "status": alert.status,
        "created_at": _iso(alert.created_at),
        "sent_at": _iso(alert.sent_at),
        "delivered_at": _iso(alert.delivered_at),
        "acked_at": _iso(alert.acked_at),
        "params": alert.params,
    }


def _verdict(verdict: FileVerdict) -> dict[str, Any]:
    return {
        "filename": verdict.filename,
        "size": verdict.size,
        "sha256": verdict.sha256,
        "outcome": verdict.outcome,
        "code": verdict.code,
        "reason": str(verdict.reason),
        "sop_instance_uid": verdict.sop_instance_uid,
        "at": _iso(verdict.created_at),
    }


def _audit_events(study: Study) -> list[dict[str, Any]]:
    """The audit trail's events about a study."""
    from audit.api import events_about

    return [{k: _iso(v) for k, v in e.items()} for e in events_about(study)]


def build(patient_id: str, *, site_id: int | None = None) -> tuple[bytes, int]:
    """The ZIP (bytes) and how many studies it holds."""
    from reports.pdf import report_pdf

    studies = list(studies_of(patient_id, site_id))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        summary = []
        for study in studies:
            data = _study(study)
            report = getattr(study, "report", None)
            versions = list(report.versions.select_related("ai_accepted_by")) if report else []
            data["report_versions"] = [_version(v) for v in versions]
            for version in versions:
                assert report is not None  # versions come from it
                zf.writestr(f"study-{study.pk}/report-v{version.number}.pdf", report_pdf(report, version))
            data["alerts"] = [_alert(a) for a in Alert.objects.filter(study=study)]
            data["upload_verdicts"] = [_verdict(v) for v in FileVerdict.objects.filter(study=study)]
            data["audit_events"] = _audit_events(study)
            zf.writestr(
                f"study-{study.pk}/study.json", json.dumps(data, indent=2, ensure_ascii=False, default=str)
            )
            summary.append({"study": study.pk, "case_code": study.case_code, "versions": len(versions)})
        zf.writestr(
            "patient.json",
            json.dumps(
                {
                    "patient_id": patient_id,
                    "site_id": site_id,
                    "studies": summary,
                    "exported_at": timezone.now().isoformat(),
                    "note": "Images are in the archive (Orthanc); ask for a copy of them separately.",
                },
                indent=2,
                ensure_ascii=False,
            ),
        )
    return out.getvalue(), len(studies)


def export_patient(
    patient_id: str, *, site_id: int | None = None, actor: Any = None, request: Any = None
) -> tuple[bytes, int]:
    data, count = build(patient_id, site_id=site_id)
    # No patient ID in the detail: the studies' count says enough, the actor says who.
    record("patient.exported", request=request, actor=actor, detail={"studies": count, "site_id": site_id})
    return data, count
