"""Retention: what the platform deletes, and when (settings RETENTION_*, in days; 0 keeps forever).

- incomplete uploads: the bytes and the typed metadata of transfers expired or cancelled for
  RETENTION_INCOMPLETE_UPLOAD_DAYS (the uploads app already expires stale ones);
- spooled files: anything under INGEST_SPOOL_DIR not touched for RETENTION_SPOOL_DAYS that no open
  transfer owns (work folders a killed process left);
- rejected files: the verdict rows of refused files (their names may say who the patient is) after
  RETENTION_REJECTED_DAYS — the bytes of a refused file are never kept;
- renditions of delivered studies: after RETENTION_RENDITIONS_DAYS (default 0: kept), the viewer's
  renditions of a study delivered that long ago (the archive keeps the DICOM);
- de-identified exports: the ZIPs under PRIVACY_EXPORT_DIR after RETENTION_DEID_EXPORT_DAYS.

Never purged by the platform: the studies and the archive (a medical record), the signed reports,
and the audit trail (append-only; its retention is the deployment's decision, outside the app).
"""

from __future__ import annotations

import shutil
import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.api import record
from ingest.models import FileVerdict
from studies.models import Status, Study
from uploads import spool
from uploads.models import Transfer
from viewer import storage
from viewer.models import Rendition, State, ViewerImage


def _days(name: str) -> int:
    return int(getattr(settings, name, 0) or 0)


def _cutoff(days: int):
    return timezone.now() - timedelta(days=days)


def purge_incomplete_uploads() -> int:
    days = _days("RETENTION_INCOMPLETE_UPLOAD_DAYS")
    if not days:
        return 0
    closed = (Transfer.State.EXPIRED, Transfer.State.TERMINATED)
    count = 0
    for transfer in Transfer.objects.filter(state__in=closed, updated_at__lt=_cutoff(days)).exclude(
        filename="", metadata={}
    ):
        spool.remove(transfer.pk)
        Transfer.objects.filter(pk=transfer.pk).update(filename="", metadata={})
        count += 1
    for transfer_id in Transfer.objects.filter(state__in=closed, updated_at__lt=_cutoff(days)).values_list(
        "pk", flat=True
    ):
        if spool.part_path(transfer_id).exists():
            spool.remove(transfer_id)
            count += 1
    return count


def purge_spool() -> int:
    days = _days("RETENTION_SPOOL_DAYS")
    root = Path(settings.INGEST_SPOOL_DIR)
    if not days or not root.is_dir():
        return 0
    limit = time.time() - days * 86400
    open_parts = {
        spool.part_path(pk).name
        for pk in Transfer.objects.filter(state__in=Transfer.OPEN_STATES).values_list("pk", flat=True)
    }
    count = 0
    for folder in (root, root / "tus"):
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            if entry.name == "tus" and folder == root or entry.name in open_parts:
                continue
            try:
                newest = max([entry.stat().st_mtime] + [p.stat().st_mtime for p in entry.rglob("*")])
            except OSError:
                continue
            if newest >= limit:
                continue
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            count += 1
    return count


def purge_rejected() -> int:
    days = _days("RETENTION_REJECTED_DAYS")
    if not days:
        return 0
    deleted, _ = FileVerdict.objects.filter(
        outcome=FileVerdict.Outcome.REFUSED, created_at__lt=_cutoff(days)
    ).delete()
    return deleted


def purge_renditions() -> int:
    days = _days("RETENTION_RENDITIONS_DAYS")
    if not days:
        return 0
    cutoff = _cutoff(days)
    studies = Study.objects.filter(status=Status.DELIVERED, events__to_status=Status.DELIVERED).distinct()
    due = [s.pk for s in studies if (s.delivered_at or timezone.now()) < cutoff]
    renditions = Rendition.objects.filter(instance__study_id__in=due)
    digests = set(renditions.values_list("digest", flat=True))
    with transaction.atomic():
        count = renditions.count()
        renditions.delete()
        # The viewer must not make them again: the study is closed, the archive has the images.
        ViewerImage.objects.filter(instance__study_id__in=due).update(
            state=State.FAILED, error_code="retention_purged"
        )
    still_used = set(Rendition.objects.filter(digest__in=digests).values_list("digest", flat=True))
    for digest in digests - still_used:
        storage.path_of(digest).unlink(missing_ok=True)
    return count


def purge_deid_exports() -> int:
    days = _days("RETENTION_DEID_EXPORT_DAYS")
    folder = Path(settings.PRIVACY_EXPORT_DIR)
    if not days or not folder.is_dir():
        return 0
    limit = time.time() - days * 86400
    count = 0
    for entry in folder.iterdir():
        if entry.is_file() and entry.stat().st_mtime < limit:
            entry.unlink(missing_ok=True)
            count += 1
    return count


def purge() -> dict[str, int]:
    counts = {
        "incomplete_uploads": purge_incomplete_uploads(),
        "spool": purge_spool(),
        "rejected_files": purge_rejected(),
        "renditions": purge_renditions(),
        "deid_exports": purge_deid_exports(),
    }
    record("retention.purged", detail=counts)
    return counts
