"""Receive files from a site, in two steps that a crash cannot merge:

1. `check_and_intend`: validate each file in a bounded child process, decide what can be refused
   before the archive sees anything (another site's study, a study already reported, a SOP
   Instance UID that belongs to another study), and write the sender's intent for the rest.
   The caller commits here: from now on, whatever route meets these instances in Orthanc
   (this sending, its retry, the changes feed after a crash) knows who sent them and why.
2. `store_checked`: store each file in Orthanc, record it (studies.services.record_instance) and
   give it its FileVerdict.

`settle` then says the sending is over and announces its studies complete.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from accounts.models import Site, User
from orthanc.client import OrthancError
from studies.archive import get_archive
from studies.lifecycle import CLOSED
from studies.models import Source, Study
from studies.selectors import KnownStudy, known_studies, lossy_stand_in, studies_of_instances
from studies.services import Arrival, InstanceConflict, attribute_to_sender, mark_complete, record_instance

from .models import FileVerdict, InstanceIntent, Submission
from .validation import Limits, Verdict, check_files
from .verdicts import Code, Outcome

log = logging.getLogger(__name__)


class ArchiveUnavailable(RuntimeError):
    """Orthanc could not be reached (or failed); the caller keeps the file and retries later."""


@dataclass(frozen=True)
class IncomingFile:
    name: str
    path: Path
    sha256: str = ""  # when the caller has already computed (and checked) it: not read twice


@dataclass
class Checked:
    """One file after step 1: what goes to the archive, or why it does not."""

    incoming: IncomingFile
    size: int
    sha256: str
    verdict: Verdict | None = None
    refusal: tuple[str, dict] | None = None  # (code, params) decided before the archive
    facts: dict = field(default_factory=dict)

    @property
    def sop_instance_uid(self) -> str:
        return self.facts.get("SOPInstanceUID", "")


def refused_file(incoming: IncomingFile, code: str, **params: object) -> Checked:
    """A file its caller refuses before checking it (e.g. a bundle member nobody announced)."""
    return Checked(
        incoming=incoming,
        size=incoming.path.stat().st_size,
        sha256=incoming.sha256 or _sha256(incoming.path),
        refusal=(code, params),
    )


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _limits() -> Limits:
    return Limits(
        memory_bytes=settings.INGEST_CHILD_MEMORY_BYTES,
        cpu_seconds=settings.INGEST_CHILD_CPU_SECONDS,
        max_file_bytes=settings.INGEST_MAX_FILE_BYTES,
        pool_size=settings.INGEST_VALIDATOR_POOL_SIZE,
        files_per_child=settings.INGEST_VALIDATOR_FILES_PER_CHILD,
    )


def arrival_of(submission: Submission) -> Arrival:
    """The sender's intent, as the studies app takes it."""
    return Arrival(
        site_id=submission.site_id,
        sender_id=submission.sender_id,
        priority=submission.priority,
        indication=submission.indication,
        source=Source.UPLOAD,
        expected_instances=submission.expected_instances,
    )


@contextmanager
def work_dir(prefix: str = "check-") -> Iterator[Path]:
    """Where checked copies wait between the two steps; removed afterwards."""
    settings.INGEST_SPOOL_DIR.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=settings.INGEST_SPOOL_DIR))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- the plain form and the API: one request brings the whole study -------------------------


def receive_submission(
    *, site: Site, sender: User, files: list[IncomingFile], indication: str, priority: str
) -> Submission:
    """Check, store and record every file; each gets a verdict, none is dropped silently.

    Runs in autocommit (no surrounding transaction), so the intents of step 1 are durable
    before step 2 stores anything.
    """
    submission = Submission.objects.create(site=site, sender=sender, indication=indication, priority=priority)
    with work_dir() as work:
        checked = check_and_intend(submission=submission, files=files, work=work)
        store_checked(submission=submission, checked=checked)
    settle(submission)
    return submission


# --- step 1 ----------------------------------------------------------------------------------


def check_and_intend(*, submission: Submission, files: list[IncomingFile], work: Path) -> list[Checked]:
    """Validate `files` and write the sender's intent for each one that will go to the archive.

    The caller must commit before store_checked: the intent has to outlive a crash between the
    archive and the record.
    """
    verdicts = check_files([f.path for f in files], work, _limits()) if files else []
    checked = [
        Checked(
            incoming=incoming,
            size=incoming.path.stat().st_size,
            sha256=incoming.sha256 or _sha256(incoming.path),
            verdict=verdict,
            facts=verdict.facts,
            refusal=None if verdict.ok else (verdict.code, verdict.params),
        )
        for incoming, verdict in zip(files, verdicts, strict=True)
    ]
    accepted = [c for c in checked if c.refusal is None]
    refusals = refusals_before_archive(site_id=submission.site_id, facts=[c.facts for c in accepted])
    for item, refusal in zip(accepted, refusals, strict=True):
        item.refusal = refusal
    InstanceIntent.objects.bulk_create(
        [
            InstanceIntent(
                submission=submission,
                study_instance_uid=c.facts["StudyInstanceUID"],
                sop_instance_uid=c.sop_instance_uid,
            )
            for c in checked
            if c.refusal is None
        ],
        ignore_conflicts=True,  # a retried step 1 writes nothing twice
    )
    return checked


def refusal_before_archive(*, site_id: int, facts: dict) -> tuple[str, dict] | None:
    """What the platform already knows that forbids storing this file, as (code, params)."""
    return refusals_before_archive(site_id=site_id, facts=[facts])[0]


def refusals_before_archive(*, site_id: int, facts: list[dict]) -> list[tuple[str, dict] | None]:
    """refusal_before_archive for each of a sending's files, asked of the database together."""
    if not facts:
        return []
    owners = studies_of_instances(f["SOPInstanceUID"] for f in facts)
    studies = known_studies(f["StudyInstanceUID"] for f in facts)
    return [
        _refusal(site_id, f, owners.get(f["SOPInstanceUID"]), studies.get(f["StudyInstanceUID"]))
        for f in facts
    ]


def _refusal(
    site_id: int, facts: dict, owner: str | None, known: KnownStudy | None
) -> tuple[str, dict] | None:
    if owner is not None and owner != facts["StudyInstanceUID"]:
        # Stored, it would be an image of nothing: Orthanc keeps it, no study points to it.
        return Code.SOP_UID_CONFLICT, {}
    if known is None:
        return None
    if known.site_id not in (None, site_id):
        return Code.OTHER_SITE, {}
    if known.status in CLOSED and owner is None and not _replaces_stand_in(site_id=site_id, facts=facts):
        # A new image after the report: by upload it is a new study, or a call to the centre
        # (the archive route reopens the study instead: studies.services does it).
        return Code.STUDY_CLOSED, {}
    return None


def _replaces_stand_in(*, site_id: int, facts: dict) -> bool:
    """A lossless original of a lossy stand-in this site sent: it takes its place, even after the
    report (which says it was signed on lossy images)."""
    return facts.get("LossyImageCompression", "") != "01" and (
        lossy_stand_in(
            study_instance_uid=facts["StudyInstanceUID"],
            sop_instance_uid=facts["SOPInstanceUID"],
            site_id=site_id,
        )
        is not None
    )


# --- step 2 ----------------------------------------------------------------------------------


def store_checked(
    *, submission: Submission, checked: list[Checked], archive_down_raises: bool = False
) -> list[FileVerdict]:
    """Store, record and give a verdict to every checked file of `submission`.

    Instances are recorded with complete=False: the study is announced complete by `settle`
    (or, for a manifest, when the manifest settles). With archive_down_raises the caller holds
    the bytes durably and retries: an unreachable archive raises ArchiveUnavailable (roll back
    the caller's transaction) instead of refusing the file.
    """
    archive = get_archive()
    arrival = arrival_of(submission)
    rows = []
    for item in checked:
        row = FileVerdict(
            submission=submission,
            filename=item.incoming.name[:255],
            size=item.size,
            sha256=item.sha256,
            sop_instance_uid=item.sop_instance_uid[:64],
        )
        rows.append(row)
        if item.refusal is not None:
            code, params = item.refusal
            _refuse(row, code, **params)
            continue
        verdict = item.verdict  # a file without a refusal has the checker's verdict and clean copy
        assert verdict is not None and verdict.clean_path is not None
        try:
            stored = archive.store_instance(verdict.clean_path.read_bytes())
        except OrthancError as exc:
            if _rejects_the_file(exc.status):
                # Orthanc read the file and said no: trying again would get the same answer.
                log.warning("archive rejected a checked file (HTTP %s)", exc.status)
                InstanceIntent.objects.filter(
                    submission=submission, sop_instance_uid=item.sop_instance_uid
                ).delete()
                _refuse(row, Code.ARCHIVE_REJECTED, status=exc.status)
                continue
            log.warning("archive unavailable: %s", exc)
            if archive_down_raises:
                raise ArchiveUnavailable(str(exc)) from exc
            # The intent stays: if the file did land (a timeout after the store), the changes
            # feed attributes it to this sender.
            _refuse(row, Code.ARCHIVE_UNAVAILABLE)
            continue
        try:
            recorded = record_instance(
                facts=item.facts,
                orthanc_instance_id=stored.orthanc_id,
                orthanc_study_id=stored.study_id,
                arrival=arrival,
                complete=False,
            )
        except InstanceConflict:  # taken by another study since step 1
            log.warning(
                "instance %s stored but its SOP Instance UID belongs to another study", stored.orthanc_id
            )
            _refuse(row, Code.SOP_UID_CONFLICT)
            continue
        study = recorded.study
        attribute_to_sender(study, arrival)  # a study first seen from the archive gets its site
        if recorded.instance_created or _recorded_for_us_by_the_feed(submission, item.sop_instance_uid):
            row.outcome = Outcome.STORED
            row.code = verdict.code
        else:
            row.outcome, row.code = Outcome.DUPLICATE, Code.DUPLICATE
        row.study = study
        row.save()
    return rows


def _recorded_for_us_by_the_feed(submission: Submission, sop_instance_uid: str) -> bool:
    """The changes feed met this sending's file in the archive first (after a crash, or in a
    race) and recorded it: it is this sending's file, stored once, not a duplicate — unless
    the sending already has it (the same file sent twice)."""
    return (
        InstanceIntent.objects.filter(
            submission=submission, sop_instance_uid=sop_instance_uid, recorded_by_feed_at__isnull=False
        ).exists()
        and not submission.verdicts.filter(
            sop_instance_uid=sop_instance_uid, outcome__in=(Outcome.STORED, Outcome.DUPLICATE)
        ).exists()
    )


def _rejects_the_file(status: int | None) -> bool:
    """Orthanc answered, and its answer is about the file (not about us, nor about its load)."""
    return status is not None and 400 <= status < 500 and status not in (401, 403, 404, 407, 408, 429)


def _refuse(row: FileVerdict, code: str, **params: object) -> None:
    row.outcome, row.code, row.params = Outcome.REFUSED, code, params
    row.save()


# --- the end of a sending ----------------------------------------------------------------------


def settle(submission: Submission) -> bool:
    """Every file of `submission` has its verdict: its studies are complete (once)."""
    if not Submission.objects.filter(pk=submission.pk, settled_at=None).update(settled_at=timezone.now()):
        return False  # settled already, by a concurrent finaliser
    study_ids = set(submission.verdicts.exclude(study=None).values_list("study_id", flat=True))
    for study in Study.objects.filter(pk__in=study_ids).order_by("pk"):
        mark_complete(study)
    return True


# --- what the changes feed asks ---------------------------------------------------------------


def intent_for(sop_instance_uid: str) -> InstanceIntent | None:
    """The first intent written for this instance (by any sending)."""
    return (
        InstanceIntent.objects.select_related("submission")
        .filter(sop_instance_uid=sop_instance_uid)
        .order_by("pk")
        .first()
    )


def note_recorded_by_feed(intent: InstanceIntent) -> None:
    InstanceIntent.objects.filter(pk=intent.pk, recorded_by_feed_at=None).update(
        recorded_by_feed_at=timezone.now()
    )


def sender_still_sending(study_instance_uid: str) -> bool:
    """A sending of this study is under way: its own route says when the study is complete."""
    return InstanceIntent.objects.filter(
        Q(study_instance_uid=study_instance_uid),
        submission__in=Submission.objects.filter(Submission.open_filter()),
    ).exists()


def forget_old_intents(*, older_than: timedelta) -> int:
    """Intents of settled sendings serve the audit a while, then go."""
    cutoff = timezone.now() - older_than
    deleted, _ = InstanceIntent.objects.filter(
        created_at__lt=cutoff, submission__settled_at__isnull=False
    ).delete()
    return deleted
