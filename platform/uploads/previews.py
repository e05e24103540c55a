"""The preview a site agent sends first for each series: kept apart from the study's images.

A preview (siteagent/preview.py: ≤ 384 px, lossy JPEG, the original's header facts) is checked
by the same bounded checker as any file, then kept here (uploads.Preview), never stored in the
archive: it is not one of the study's images, never counted or shown as one. It announces the
study (« en cours d'arrivée ») if its first image has not landed yet, and starts the
provisional pre-read of a study still arriving (preread.provisional).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction

from ingest.changes_feed import orthanc_study_id
from ingest.services import arrival_of, refusal_before_archive
from ingest.validation import Limits, check_files
from ingest.verdicts import Code, Outcome
from studies.services import announce_study

from .models import Preview, Transfer

if TYPE_CHECKING:
    from preread.models import ProvisionalPreRead

log = logging.getLogger(__name__)

# An agent's preview weighs 10–60 kB; anything much larger is not one (and its bytes live in a row).
PREVIEW_MAX_BYTES = 1024 * 1024


def keep_preview(transfer: Transfer, path: Path, work: Path) -> tuple[str, str, dict]:
    """Check and keep a received preview; (outcome, code, params) for its transfer.

    Called inside the finaliser's transaction (the transfer row locked): the preview row, the
    announced study and the transfer's verdict commit together; the provisional pre-read is
    queued once they have.
    """
    if transfer.length > PREVIEW_MAX_BYTES:
        return Outcome.REFUSED, Code.PREVIEW_TOO_LARGE, {"limit_kb": PREVIEW_MAX_BYTES // 1024}
    limits = Limits(
        memory_bytes=settings.INGEST_CHILD_MEMORY_BYTES,
        cpu_seconds=settings.INGEST_CHILD_CPU_SECONDS,
        max_file_bytes=PREVIEW_MAX_BYTES,
    )
    verdict = check_files([path], work / "preview", limits)[0]
    if not verdict.ok:
        return Outcome.REFUSED, verdict.code, verdict.params
    facts = dict(verdict.facts)
    study_uid = facts["StudyInstanceUID"]
    manifest = transfer.manifest
    if manifest is not None and manifest.study_instance_uid and manifest.study_instance_uid != study_uid:
        return Outcome.REFUSED, Code.PREVIEW_OTHER_STUDY, {}
    submission = transfer.submission
    refusal = refusal_before_archive(site_id=submission.site_id, facts=facts)
    if refusal is not None:
        return Outcome.REFUSED, refusal[0], refusal[1]
    assert verdict.clean_path is not None
    data = verdict.clean_path.read_bytes()
    study = announce_study(
        facts=facts,
        orthanc_study_id=orthanc_study_id(facts.get("PatientID", ""), study_uid),
        arrival=arrival_of(submission),
    )
    preview, created = Preview.objects.get_or_create(
        transfer=transfer,
        defaults={
            "submission": submission,
            "study_instance_uid": study_uid,
            "source_sop_instance_uid": _source_uid(verdict.clean_path),
            "sha256": transfer.sha256,
            "data": data,
            "facts": facts,
        },
    )
    if created and study.is_arriving:
        preview_id, study_id = preview.pk, study.pk
        transaction.on_commit(lambda: _queue_provisional(preview_id, study_id))
    return Outcome.STORED, Code.PREVIEW_KEPT, {}


def _queue_provisional(preview_id: int, study_id: int) -> None:
    from .tasks import preread_preview

    preread_preview.delay(preview_id, study_id)


def score_provisionally(preview_id: int, study_id: int) -> ProvisionalPreRead | None:
    """The provisional pre-read of a study still arriving, from this preview (the task's body);
    None when there is nothing to score (preread.provisional.score_preview says when)."""
    from preread.provisional import score_preview  # the worker only: it loads the models

    data = Preview.objects.filter(pk=preview_id).values_list("data", flat=True).first()
    if data is None:  # the preview gone
        return None
    return score_preview(preview_id=preview_id, study_id=study_id, data=bytes(data))


def _source_uid(path: Path) -> str:
    """The original the preview stands for (its Source Image Sequence), or ""."""
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        return str(ds.SourceImageSequence[0].ReferencedSOPInstanceUID)[:64]
    except Exception:  # an older agent's preview names no source: nothing to link
        return ""


def previews_of(study_instance_uid: str) -> list[Preview]:
    return list(Preview.objects.filter(study_instance_uid=study_instance_uid).defer("data"))


def forget_pixels(study_instance_uid: str) -> int:
    """The study is complete: its previews' images go (the full images are in; nothing reads a
    preview of a complete study). The rows stay, as the record the provisional pre-read cites."""
    return Preview.objects.filter(study_instance_uid=study_instance_uid).exclude(data=b"").update(data=b"")


def on_status_changed(sender: object, *, study_id: int, transition: str, to_status: str, **_: object) -> None:
    from studies.models import Status, Study

    if to_status == Status.RECEIVED:
        uid = Study.objects.filter(pk=study_id).values_list("study_instance_uid", flat=True).first()
        if uid:
            forget_pixels(uid)
