"""Follow Orthanc's changes feed, so that every instance in the archive is known to the platform:
studies that reach Orthanc by other routes (C-STORE from a modality, a peer's push), and files a
site sent whose sending died between the archive and the platform.

- NewInstance: the instance is recorded at once (its study `arriving`), attributed to its
  sender when a sending announced it (ingest.InstanceIntent), else to the site of the modality.
- NewStudy: the study is watched until Orthanc says it is stable (`IsStable` of /studies/{id}),
  so a StableStudy change lost with an Orthanc restart does not leave it arriving forever.
- StableStudy: every instance of the study is recorded, and the study announced complete —
  unless a sending of it is still under way, whose own route announces it.

The cursor is a row: each batch of changes is handled in the transaction that moves the
cursor, and every step is an idempotent upsert, so a restart neither misses nor doubles.
"""

from __future__ import annotations

import hashlib
import logging

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Site
from audit.api import record
from orthanc.client import Change, OrthancClient, OrthancError
from reports.dicom_objects import is_platform_report
from studies.archive import get_archive
from studies.models import Source, Study
from studies.selectors import known_study, study_of_instance
from studies.services import Arrival, InstanceConflict, attribute_to_sender, mark_complete, record_instance

from . import quota
from .dicom_check import FACT_TAGS
from .models import ArchiveRefusal, ArrivingArchiveStudy, ChangesCursor
from .services import arrival_of, intent_for, note_recorded_by_feed, sender_still_sending

log = logging.getLogger(__name__)
BATCH = 50


def orthanc_study_id(patient_id: str, study_instance_uid: str) -> str:
    """Orthanc's identifier of a study: SHA-1 of "PatientID|StudyInstanceUID", in 5 groups.

    (Orthanc Book, "Orthanc identifiers".) Always checked against the archive before use.
    """
    digest = hashlib.sha1(f"{patient_id}|{study_instance_uid}".encode()).hexdigest()
    return "-".join(digest[i : i + 8] for i in range(0, 40, 8))


class _Batch:
    """What one batch learns from Orthanc, so a study is asked about once per batch."""

    def __init__(self, client: OrthancClient) -> None:
        self.client = client
        self.studies: dict[str, bool] = {}
        self.sites: dict[str, int | None] = {}

    def study_exists(self, study_id: str) -> bool:
        if study_id not in self.studies:
            try:
                self.client.study(study_id)
                self.studies[study_id] = True
            except OrthancError as exc:
                if exc.status != 404:
                    raise
                self.studies[study_id] = False
        return self.studies[study_id]

    def site_of(self, instance_id: str) -> int | None:
        """The site whose modality (DICOM AE title) stored this instance, if any."""
        return self.sender_of(instance_id)[0]

    def sender_of(self, instance_id: str) -> tuple[int | None, str]:
        """(site, calling AE title) of the modality that stored this instance."""
        aet = self.client.instance_metadata(instance_id).get("RemoteAET", "")
        if aet not in self.sites:
            site = Site.objects.filter(dicom_aet=aet).values_list("pk", flat=True).first() if aet else None
            self.sites[aet] = site
        return self.sites[aet], aet


def _arrival(batch: _Batch, sop_instance_uid: str, instance_id: str):
    """(Arrival, intent) for an instance: its sender's if a sending announced it."""
    intent = intent_for(sop_instance_uid)
    if intent is not None:
        return arrival_of(intent.submission), intent
    return Arrival(site_id=batch.site_of(instance_id), source=Source.ARCHIVE), None


def _over_budget(batch: _Batch, facts: dict, instance_id: str, site_id: int) -> bool:
    """C-STORE from a site's modality: the instance is charged to the site's daily budget
    (ingest.quota), like any upload. Past it, the instance is removed from the archive and
    refused with a verdict the site's administrators see (ingest.ArchiveRefusal)."""
    try:
        size = int(batch.client.instance(instance_id).get("FileSize") or 0)
    except OrthancError as exc:
        if exc.status == 404:
            return True  # deleted since: nothing to record
        raise
    if quota.admit_archive_instance(site_id, size):
        return False
    _site, aet = batch.sender_of(instance_id)
    log.warning("instance %s from %s refused: its site's daily budget is spent", instance_id, aet or "?")
    batch.client.delete_instance(instance_id)
    refusal = ArchiveRefusal.objects.create(
        site_id=site_id,
        calling_aet=aet[:16],
        study_instance_uid=facts["StudyInstanceUID"][:64],
        sop_instance_uid=facts["SOPInstanceUID"][:64],
        size=size,
        code="archive_daily_budget",
        params={"limit_mb": max(1, quota.daily_budget() // 1024**2)},
    )
    record(
        "archive.instance_refused",
        obj=refusal,
        outcome="denied",
        detail={"site": site_id, "calling_aet": aet[:16], "size": size, "code": refusal.code},
    )
    return True


def _record(batch: _Batch, facts: dict, instance_id: str, study_id: str) -> Study | None:
    sop_uid = facts["SOPInstanceUID"]
    arrival, intent = _arrival(batch, sop_uid, instance_id)
    if intent is None and arrival.site_id is not None and quota.daily_budget():
        # Straight from a modality (no sending announced it), and new to the platform: charged.
        if study_of_instance(sop_uid) is None and _over_budget(batch, facts, instance_id, arrival.site_id):
            return None
    try:
        recorded = record_instance(
            facts=facts,
            orthanc_instance_id=instance_id,
            orthanc_study_id=study_id,
            arrival=arrival,
            complete=False,
        )
    except InstanceConflict:
        log.warning("archive instance %s reuses another study's SOP Instance UID", instance_id)
        return None
    if intent is not None:
        attribute_to_sender(recorded.study, arrival)
        if recorded.instance_created:
            note_recorded_by_feed(intent)
    return recorded.study


def record_new_instance(batch: _Batch, instance_id: str) -> Study | None:
    """Record an instance Orthanc just stored, its study arriving (idempotent)."""
    try:
        tags = batch.client.instance_tags(instance_id)
    except OrthancError as exc:
        if exc.status == 404:  # deleted since
            return None
        raise
    if is_platform_report(tags):  # the platform's own report (PDF, SR): not an image to read
        return None
    facts = {k: v[:200] for k in FACT_TAGS if isinstance(v := tags.get(k), str) and v}
    study_uid, sop_uid = facts.get("StudyInstanceUID"), facts.get("SOPInstanceUID")
    if not study_uid or not sop_uid:
        return None
    owner = study_of_instance(sop_uid)
    if owner is not None:
        if owner == study_uid:  # recorded already (by its sending, most often)
            intent = intent_for(sop_uid)
            if intent is not None:
                known = known_study(study_uid)
                if known is not None and known.site_id is None:
                    attribute_to_sender(Study.objects.get(pk=known.pk), arrival_of(intent.submission))
        return None
    study_id = orthanc_study_id(tags.get("PatientID", "") or "", study_uid)
    if not batch.study_exists(study_id):  # not the id we thought: the study's watch records it
        return None
    study = _record(batch, facts, instance_id, study_id)
    _watch(study_id, study_uid)
    return study


def record_stable_study(client: OrthancClient, orthanc_study_id: str, batch: _Batch | None = None):
    """Make sure the platform knows this archived study and every instance of it."""
    batch = batch or _Batch(client)
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
    reports = {s["ID"] for s in series if is_platform_report(s["MainDicomTags"])}
    base = {**study_info.get("PatientMainDicomTags", {}), **study_info["MainDicomTags"]}
    study = None
    for inst in instances:
        if inst["ParentSeries"] in reports:
            continue
        facts = {
            **base,
            **inst["MainDicomTags"],
            "SeriesInstanceUID": series_uid.get(inst["ParentSeries"], ""),
            "Modality": series_modality.get(inst["ParentSeries"], ""),
        }
        if not facts.get("SOPInstanceUID") or not facts.get("StudyInstanceUID"):
            continue
        study = _record(batch, facts, inst["ID"], orthanc_study_id) or study
    return study


def complete_archive_study(client: OrthancClient, orthanc_study_id: str, batch: _Batch | None = None) -> bool:
    """Record a stable study and announce it complete; False while a sending of it goes on."""
    study = record_stable_study(client, orthanc_study_id, batch)
    if study is None:
        return True
    if sender_still_sending(study.study_instance_uid):
        _watch(orthanc_study_id, study.study_instance_uid)  # asked again until the sending is over
        return False
    mark_complete(study)
    return True


def _watch(orthanc_study_id: str, study_instance_uid: str = "") -> None:
    watch, created = ArrivingArchiveStudy.objects.get_or_create(
        orthanc_study_id=orthanc_study_id, defaults={"study_instance_uid": study_instance_uid}
    )
    if not created and study_instance_uid and not watch.study_instance_uid:
        ArrivingArchiveStudy.objects.filter(pk=watch.pk).update(study_instance_uid=study_instance_uid)


def complete_stable_studies(client: OrthancClient, *, now=None) -> int:
    """Ask Orthanc about the watched studies (the least recently asked first, a batch per run);
    complete those it says are stable."""
    now = now or timezone.now()
    due = ArrivingArchiveStudy.objects.order_by(F("checked_at").asc(nulls_first=True), "first_seen_at")
    batch = _Batch(client)
    completed = 0
    for watch in due[:BATCH]:
        if watch.study_instance_uid and sender_still_sending(watch.study_instance_uid):
            ArrivingArchiveStudy.objects.filter(pk=watch.pk).update(checked_at=now)
            continue
        try:
            stable = client.study(watch.orthanc_study_id).get("IsStable", True)
        except OrthancError as exc:
            if exc.status != 404:
                raise
            watch.delete()  # gone from the archive
            continue
        if stable and complete_archive_study(client, watch.orthanc_study_id, batch):
            watch.delete()
            completed += 1
        else:
            ArrivingArchiveStudy.objects.filter(pk=watch.pk).update(checked_at=now)
    return completed


def _handle(batch: _Batch, change: Change) -> None:
    if change.change_type == "NewInstance":
        record_new_instance(batch, change.resource_id)
    elif change.change_type == "NewStudy":
        _watch(change.resource_id)
    elif change.change_type == "StableStudy":
        if complete_archive_study(batch.client, change.resource_id, batch):
            ArrivingArchiveStudy.objects.filter(orthanc_study_id=change.resource_id).delete()


def _locked_cursor() -> ChangesCursor | None:
    return ChangesCursor.objects.select_for_update(skip_locked=True).filter(name="orthanc").first()


def follow_changes(
    client: OrthancClient | None = None,
    *,
    max_batches: int | None = None,
) -> int:
    """Handle the changes after the stored cursor, then the watched studies; returns how many
    changes were read.

    Only one runner at a time: a second one finds the cursor locked and returns at once.
    """
    client = client or get_archive()
    ChangesCursor.objects.get_or_create(name="orthanc")
    handled = batches = 0
    while max_batches is None or batches < max_batches:
        with transaction.atomic():
            cursor = _locked_cursor()
            if cursor is None:
                return handled
            page = client.changes(cursor.last_seq, BATCH)
            batch = _Batch(client)
            for change in page.changes:
                _handle(batch, change)
                handled += 1
            if page.changes:
                cursor.last_seq = page.last
                cursor.save(update_fields=["last_seq", "updated_at"])
        batches += 1
        if page.done or not page.changes:
            break
    with transaction.atomic():
        if _locked_cursor() is not None:
            complete_stable_studies(client)
    return handled
