"""Receive files from a site: validate each in a bounded process, store, record the study."""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from accounts.models import Site, User
from orthanc.client import OrthancError
from studies.archive import get_archive
from studies.models import Source
from studies.selectors import known_study
from studies.services import Arrival, InstanceConflict, mark_complete, record_instance

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


def ingest_upload(
    *, site: Site, user: User, files: list[IncomingFile], indication: str, priority: str
) -> Upload:
    """Check, store and record every file; each gets a verdict, none is dropped silently."""
    upload = Upload.objects.create(site=site, user=user, indication=indication, priority=priority)
    ingest_files(upload=upload, files=files)
    return upload


def ingest_files(
    *, upload: Upload, files: list[IncomingFile], announce: bool = True, archive_down_raises: bool = False,
    expected_instances: int | None = None,
) -> list[FileVerdict]:
    """Check, store and record files that belong to an upload; returns their verdicts.

    With announce=False the caller decides when the study counts as received (for example
    when every instance of a manifest has arrived) and calls studies.services.mark_complete.
    """
    site, user = upload.site, upload.user
    indication, priority = upload.indication, upload.priority
    rows: list[FileVerdict] = []
    archive = get_archive()
    settings.INGEST_SPOOL_DIR.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="check-", dir=settings.INGEST_SPOOL_DIR))
    arrival = Arrival(site_id=site.pk, sender_id=user.pk, priority=priority, indication=indication,
                      source=Source.UPLOAD, expected_instances=expected_instances)
    touched = {}
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
            known = known_study(verdict.facts["StudyInstanceUID"])
            if known is not None and known.site_id not in (None, site.pk):
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
            try:
                recorded = record_instance(
                    facts=verdict.facts, orthanc_instance_id=stored.orthanc_id,
                    orthanc_study_id=stored.study_id, arrival=arrival, complete=False,
                )
            except InstanceConflict:
                row.outcome, row.code = FileVerdict.Outcome.REFUSED, "sop_uid_conflict"
                row.reason = "Identifiant d'instance déjà utilisé par un autre examen."
                row.save()
                continue
            study, instance_created = recorded.study, recorded.instance_created
            touched[study.pk] = study
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
        for pk in sorted(touched):
            mark_complete(touched[pk])
    return rows
