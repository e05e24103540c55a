"""Store a signed version in Orthanc with its study: an Encapsulated PDF and a Basic Text SR.

The row (ReportExport) was written with the signature; this module finishes it. Storing is
idempotent (the UIDs are fixed in the row: Orthanc answers AlreadyStored to a retry), so the
task may run twice, and the periodic sweep finishes rows a lost message left pending.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from orthanc.client import OrthancError
from studies.archive import get_archive

from . import dicom_objects
from .labels import CRITICAL, words
from .models import SECTIONS, ExportState, ReportExport, ReportVersion
from .pdf import report_pdf

log = logging.getLogger(__name__)

RETRY_AFTER = timedelta(minutes=2)  # the sweep leaves a row alone this long after a try
STUDY_TAGS = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate",
    "StudyTime", "AccessionNumber", "StudyID", "StudyDescription", "ReferringPhysicianName",
)  # fmt: skip


def _study_tags(version: ReportVersion) -> dict[str, str]:
    """The study's identity as the archive holds it (so both objects land in the same Orthanc
    study: Orthanc keys a study by PatientID and StudyInstanceUID)."""
    study = version.report.study
    info = get_archive().study(study.orthanc_id)
    found = {**info.get("PatientMainDicomTags", {}), **info.get("MainDicomTags", {})}
    tags = {k: str(found.get(k, "")) for k in STUDY_TAGS}
    tags["StudyInstanceUID"] = study.study_instance_uid
    return tags


def report_objects(export: ReportExport) -> tuple[bytes, bytes]:
    """(encapsulated PDF, Basic Text SR) of the export's version."""
    version = export.version
    report = version.report
    study = report.study
    w = words(version.language)
    previous = (
        ReportExport.objects.filter(version__report=report, version__number__lt=version.number)
        .order_by("-version__number")
        .values_list("sr_sop_instance_uid", flat=True)
        .first()
    )
    author = version.author
    obj = dicom_objects.ReportObject(
        study_tags=_study_tags(version),
        version_number=version.number,
        kind=version.kind,
        signed_at=timezone.localtime(version.signed_at),
        author_name=version.author_name,
        author_pn=f"{author.last_name}^{author.first_name}" if author.last_name else version.author_name,
        institution=study.site.name if study.site else study.institution,
        title=f"{w['title']} — v{version.number}",
        language=version.language,
        predecessor=(dicom_objects.series_uid(study.study_instance_uid, "sr"), previous)
        if previous
        else None,
    )
    sections = [(name, getattr(version, name), version.ai_note(name)) for name in SECTIONS]
    if version.critical_category:  # said in the conclusion's comment, in the report's language
        grades = CRITICAL["en" if version.language == "en" else "fr"]
        critical = f"{w['critical']} : {grades[version.critical_category]}"
        name, text, note = sections[-1]
        sections[-1] = (name, text, "\n".join(filter(None, [note, critical])))
    for earlier in report.versions.filter(number__lte=version.number, kind="addendum"):
        sections.append(("addendum", earlier.addendum, earlier.ai_note("addendum")))
    pdf = dicom_objects.encapsulated_pdf(
        obj, report_pdf(report, version), sop_instance_uid=export.pdf_sop_instance_uid
    )
    sr = dicom_objects.basic_text_sr(obj, sop_instance_uid=export.sr_sop_instance_uid, sections=sections)
    return pdf, sr


def deliver_export(export_id: int) -> bool:
    """Store one pending export in Orthanc; True once it is there. Raises OrthancError (after
    recording it) so the task's retry policy decides what next."""
    with transaction.atomic():
        export = (
            ReportExport.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("version__report__study__site", "version__author")
            .filter(pk=export_id)
            .first()
        )
        if export is None:  # being delivered by another worker right now
            return False
        if export.state == ExportState.DONE:
            return True
        export.attempts += 1
        export.tried_at = timezone.now()
        try:
            client = get_archive()
            for data in report_objects(export):
                client.store_instance(data)
        except OrthancError as exc:
            export.state = ExportState.FAILED
            export.last_error = str(exc)[:2000]
            export.save(update_fields=["attempts", "tried_at", "state", "last_error"])
            log.warning("report export %s failed (attempt %s)", export.pk, export.attempts)
            failed = exc
        else:
            export.state = ExportState.DONE
            export.done_at = timezone.now()
            export.last_error = ""
            export.save(update_fields=["attempts", "tried_at", "state", "done_at", "last_error"])
            return True
    raise failed


def deliver_pending_exports(*, now=None, limit: int = 20) -> int:
    """The sweep: every export not done whose last try (if any) is old enough; returns how many
    reached Orthanc. The database is the record of what is owed, never the broker."""
    now = now or timezone.now()
    due = (
        ReportExport.objects.exclude(state=ExportState.DONE)
        .filter(
            Q(tried_at__isnull=True, created_at__lt=now - RETRY_AFTER) | Q(tried_at__lt=now - RETRY_AFTER)
        )
        .order_by("created_at")
        .values_list("pk", flat=True)
    )
    delivered = 0
    for export_id in list(due)[:limit]:
        try:
            delivered += deliver_export(export_id)
        except OrthancError:
            break  # the archive is away: the next sweep tries again
    return delivered
