"""Follow Orthanc's changes feed so studies that reach the archive by other routes
(C-STORE from a modality, a peer's push) become studies on the platform too.

The cursor is a row: each batch of changes is handled in the transaction that moves the
cursor, and every step is an idempotent upsert, so a restart neither misses nor doubles.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import transaction

from accounts.models import Site
from orthanc.client import Change, OrthancClient, OrthancError
from studies.archive import get_archive
from studies.models import Source, Study
from studies.services import Arrival, InstanceConflict, mark_complete, record_instance

from .models import ChangesCursor

log = logging.getLogger(__name__)
BATCH = 50


def _site_for(client: OrthancClient, instance_id: str) -> Site | None:
    aet = client.instance_metadata(instance_id).get("RemoteAET", "")
    return Site.objects.filter(dicom_aet=aet).first() if aet else None


def record_stable_study(client: OrthancClient, orthanc_study_id: str) -> Study | None:
    """Make sure the platform knows this archived study and every instance of it."""
    try:
        study_info = client.study(orthanc_study_id)
        instances = client.study_instances(orthanc_study_id)
    except OrthancError as exc:
        if exc.status == 404:  # deleted from the archive since: nothing to record
            return None
        raise
    if not instances:
        return None
    series = client.study_series(orthanc_study_id)
    series_uid = {s["ID"]: s["MainDicomTags"].get("SeriesInstanceUID", "") for s in series}
    series_modality = {s["ID"]: s["MainDicomTags"].get("Modality", "") for s in series}
    base = {
        **study_info.get("PatientMainDicomTags", {}),
        **study_info["MainDicomTags"],
    }
    known = Study.objects.filter(study_instance_uid=base.get("StudyInstanceUID", "")).first()
    site = known.site if known else _site_for(client, instances[0]["ID"])
    arrival = Arrival(site_id=site.pk if site else None, source=Source.ARCHIVE)
    study = known
    for inst in instances:
        facts = {
            **base,
            **inst["MainDicomTags"],
            "SeriesInstanceUID": series_uid.get(inst["ParentSeries"], ""),
            "Modality": series_modality.get(inst["ParentSeries"], ""),
        }
        try:
            study = record_instance(
                facts=facts, orthanc_instance_id=inst["ID"], orthanc_study_id=orthanc_study_id,
                arrival=arrival, complete=False,
            ).study
        except InstanceConflict:
            log.warning("archive instance %s reuses another study's SOP Instance UID", inst["ID"])
    if study is not None and known is None:
        study = mark_complete(study)
    return study


def follow_changes(
    client: OrthancClient | None = None,
    *,
    max_batches: int | None = None,
    on_change: Callable[[Change], None] | None = None,
) -> int:
    """Handle the changes after the stored cursor; returns how many were read.

    Only one runner at a time: a second one finds the cursor locked and returns at once.
    """
    client = client or get_archive()
    ChangesCursor.objects.get_or_create(name="orthanc")
    handled = batches = 0
    while max_batches is None or batches < max_batches:
        with transaction.atomic():
            cursor = (
                ChangesCursor.objects.select_for_update(skip_locked=True)
                .filter(name="orthanc").first()
            )
            if cursor is None:
                return handled
            page = client.changes(cursor.last_seq, BATCH)
            for change in page.changes:
                if change.change_type == "StableStudy":
                    record_stable_study(client, change.resource_id)
                if on_change:
                    on_change(change)
                handled += 1
            if page.changes:
                cursor.last_seq = page.last
                cursor.save(update_fields=["last_seq", "updated_at"])
        batches += 1
        if page.done or not page.changes:
            break
    return handled
