"""Receive files from a site: validate each in a bounded process, store, record the study."""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction

from accounts.models import Site, User
from orthanc.client import OrthancError, StoredInstance
from studies.models import Instance, Study
from studies.services import study_received

from .archive import get_archive
from .models import FileVerdict, Upload
from .validation import Limits, check_files

log = logging.getLogger(__name__)


class ArchiveUnavailable(RuntimeError):
    """Orthanc could not store a checked file; the caller keeps the file and retries later."""


@dataclass(frozen=True)
class IncomingFile:
    name: str
    path: Path
    sha256: str = ""  # when the caller has already computed (and checked) it: not read twice


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _limits() -> Limits:
    return Limits(
        memory_bytes=settings.INGEST_CHILD_MEMORY_BYTES,
        cpu_seconds=settings.INGEST_CHILD_CPU_SECONDS,
        max_file_bytes=settings.INGEST_MAX_FILE_BYTES,
    )


def study_facts(facts: dict) -> dict:
    """Study fields from the DICOM facts of one of its instances."""
    return {
        "patient_name": facts.get("PatientName", "")[:200],
        "patient_id": facts.get("PatientID", "")[:64],
        "patient_sex": facts.get("PatientSex", "")[:16],
        "patient_birth_date": facts.get("PatientBirthDate", "")[:8],
        "accession_number": facts.get("AccessionNumber", "")[:64],
        "modality": facts.get("Modality", "")[:64],
        "body_part": facts.get("BodyPartExamined", "")[:64],
        "description": facts.get("StudyDescription", "")[:200],
        "study_date": facts.get("StudyDate", "")[:8],
        "institution": facts.get("InstitutionName", "")[:200],
    }


def record_instance(
    *, stored: StoredInstance, facts: dict, defaults: dict
) -> tuple[Study, bool, bool]:
    """Upsert the study and the instance rows. Returns (study, study_created, instance_created).

    Idempotent: the same instance recorded twice (a retried upload, the changes feed
    catching up) leaves one row.
    """
    study, study_created = Study.objects.get_or_create(
        study_instance_uid=facts["StudyInstanceUID"],
        defaults={"orthanc_id": stored.study_id, **study_facts(facts), **defaults},
    )
    number = facts.get("InstanceNumber", "")
    _, instance_created = Instance.objects.get_or_create(
        sop_instance_uid=facts["SOPInstanceUID"],
        defaults={
            "study": study,
            "series_instance_uid": facts.get("SeriesInstanceUID", ""),
            "orthanc_id": stored.orthanc_id,
            "instance_number": int(number) if number.lstrip("-").isdigit() else None,
            "modality": facts.get("Modality", "")[:16],
            "lossy": facts.get("LossyImageCompression", "") == "01",
            "lossy_ratio": facts.get("LossyImageCompressionRatio", "")[:64],
            "lossy_method": facts.get("LossyImageCompressionMethod", "")[:64],
        },
    )
    return study, study_created, instance_created


def ingest_upload(
    *, site: Site, user: User, files: list[IncomingFile], indication: str, priority: str
) -> Upload:
    """Check, store and record every file; each gets a verdict, none is dropped silently."""
    upload = Upload.objects.create(site=site, user=user, indication=indication, priority=priority)
    ingest_files(upload=upload, files=files)
    return upload


def ingest_files(
    *, upload: Upload, files: list[IncomingFile], announce: bool = True, archive_down_raises: bool = False
) -> list[FileVerdict]:
    """Check, store and record files that belong to an upload; returns their verdicts.

    With announce=False the caller decides when the study counts as received (for example
    when every instance of a manifest has arrived) and calls studies.services.study_received.
    """
    site, user = upload.site, upload.user
    indication, priority = upload.indication, upload.priority
    rows: list[FileVerdict] = []
    archive = get_archive()
    settings.INGEST_SPOOL_DIR.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="check-", dir=settings.INGEST_SPOOL_DIR))
    new_studies: set[int] = set()
    try:
        verdicts = check_files([f.path for f in files], work, _limits())
        for incoming, verdict in zip(files, verdicts, strict=True):
            row = FileVerdict(
                upload=upload, filename=incoming.name[:255], size=incoming.path.stat().st_size,
                sha256=incoming.sha256 or _sha256(incoming.path), code=verdict.code,
                reason=verdict.reason,
                sop_instance_uid=verdict.facts.get("SOPInstanceUID", ""),
            )
            rows.append(row)
            if not verdict.ok:
                row.outcome = FileVerdict.Outcome.REFUSED
                row.save()
                continue
            owner = (
                Study.objects.filter(study_instance_uid=verdict.facts["StudyInstanceUID"])
                .values_list("site_id", flat=True).first()
            )
            if owner is not None and owner != site.pk:
                row.outcome, row.code = FileVerdict.Outcome.REFUSED, "other_site"
                row.reason = "Cet examen a déjà été envoyé par un autre site."
                row.save()
                continue
            try:
                stored = archive.store_instance(verdict.clean_path.read_bytes())
            except OrthancError as exc:
                log.warning("archive refused a checked file: %s", exc)
                if archive_down_raises:  # the caller holds the bytes durably and will retry
                    raise ArchiveUnavailable(str(exc)) from exc
                row.outcome, row.code = FileVerdict.Outcome.REFUSED, "archive_unavailable"
                row.reason = "L'archive n'a pas pu enregistrer ce fichier ; renvoyez-le."
                row.save()
                continue
            with transaction.atomic():
                study, created, instance_created = record_instance(
                    stored=stored, facts=verdict.facts,
                    defaults={"site": site, "uploaded_by": user, "indication": indication,
                              "priority": priority, "source": Study.Source.UPLOAD},
                )
            if created:
                new_studies.add(study.pk)
            duplicate = not instance_created  # the platform already had it; Orthanc kept one copy
            row.outcome = FileVerdict.Outcome.DUPLICATE if duplicate else FileVerdict.Outcome.STORED
            if duplicate:
                row.code, row.reason = "duplicate", "Déjà reçu : ce fichier n'a pas été stocké deux fois."
            elif verdict.repaired:
                row.reason = "Accepté ; en-tête DICOM (File Meta) ajouté."
            row.study = study
            row.save()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if announce:
        for pk in sorted(new_studies):
            study_received(Study.objects.get(pk=pk))
    return rows
