"""Finalisation: a complete transfer's file checked, stored and recorded, once, with a verdict.

Idempotent: the same instance sent twice is stored once and reported as a duplicate. In two
transactions, so that the sender's intent is committed before the archive sees a byte:

1. lock the transfer, check its SHA-256, unpack (bundle) or wrap (photo) it, run the bounded
   checker, write the intents (ingest.services.check_and_intend) — commit;
2. lock it again, store in Orthanc, record, write the verdicts and finalise it — commit.

A process killed anywhere leaves the transfer COMPLETE (the lock goes with its connection) and
the next finaliser (task retry, sweep, status request) starts again; one killed between Orthanc's
store and step 2's commit leaves an intent, so the changes feed attributes the instance to its
sender even if nobody finalises it again. Every transfer ends with a verdict: an input nothing
can process is refused as `unprocessable`, never retried for ever, never a 500.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from pathlib import Path

from django.db import DatabaseError, transaction
from django.utils import timezone

from ingest.services import (
    ArchiveUnavailable,
    Checked,
    IncomingFile,
    check_and_intend,
    refused_file,
    settle,
    store_checked,
    work_dir,
)
from ingest.verdicts import Code, Outcome

from . import bundles, spool
from .manifests import settle_manifest
from .models import StudyManifest, Transfer
from .photo import PhotoRefused, wrap_photo
from .previews import keep_preview
from .refusals import UploadRefused

log = logging.getLogger(__name__)


class Finalised(StrEnum):
    DONE = "done"  # the transfer has its verdict (given now)
    NOTHING = "nothing"  # nothing waiting: finalised before, expired, unknown
    BUSY = "busy"  # another process holds it: ask again soon, do not drop it
    ARCHIVE_DOWN = "archive_down"  # kept complete, with its bytes, for a later attempt


def finalise_transfer(transfer_id) -> Finalised:
    """Check the whole file's SHA-256, then validate, store and record it; once."""
    try:
        with work_dir("final-") as work:
            return _finalise(transfer_id, work)
    except ArchiveUnavailable as exc:
        # Acknowledged bytes are never refused for the archive's fault: step 2 is rolled back
        # whole, the transfer stays COMPLETE with its file, and a retry stores it.
        log.warning("archive unavailable while finalising transfer %s: %s", transfer_id, exc)
        return Finalised.ARCHIVE_DOWN
    except DatabaseError:
        raise  # the database, not the file: nothing can be recorded now; the transfer waits
    except Exception:
        log.exception("transfer %s could not be processed: refused as unprocessable", transfer_id)
        return _give_up(transfer_id)


def finalise_waiting(*, manifest: StudyManifest | None = None) -> int:
    """Finalise COMPLETE transfers nobody is working on (after a crash, or without a worker).

    Each on its own: one that fails is logged and the others still go through.
    """
    rows = Transfer.objects.filter(state=Transfer.State.COMPLETE)
    if manifest is not None:
        rows = rows.filter(submission_id=manifest.submission_id)
    done = 0
    for pk in rows.order_by("created_at").values_list("pk", flat=True):
        try:
            done += finalise_transfer(pk) == Finalised.DONE
        except Exception:
            log.exception("finalising transfer %s failed; the next sweep tries again", pk)
    return done


def _locked(transfer_id) -> Transfer | Finalised:
    transfer = (
        Transfer.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("submission__manifest")
        .filter(pk=transfer_id, state=Transfer.State.COMPLETE)
        .first()
    )
    if transfer is not None:
        return transfer
    waiting = Transfer.objects.filter(pk=transfer_id, state=Transfer.State.COMPLETE).exists()
    return Finalised.BUSY if waiting else Finalised.NOTHING


def _finalise(transfer_id, work: Path) -> Finalised:
    with transaction.atomic():
        transfer = _locked(transfer_id)
        if isinstance(transfer, Finalised):
            return transfer
        if transfer.kind == Transfer.Kind.PREVIEW:
            # Kept apart, never sent to the archive: not one of the study's images.
            _finish(transfer, *_keep_preview(transfer, work))
            checked = None
        else:
            checked = _check_or_refuse(transfer, work)
    if checked is None:
        _settle(transfer)
        return Finalised.DONE
    return _store(transfer_id, checked)


def _keep_preview(transfer: Transfer, work: Path) -> tuple[str, str, dict]:
    path = spool.part_path(transfer.pk)
    if not path.exists():
        return Outcome.REFUSED, "gone", {}
    if transfer.sha256 and spool.sha256_of(path, transfer.length) != transfer.sha256:
        return Outcome.REFUSED, "sha256_mismatch", {}
    return keep_preview(transfer, path, work)


def _check_or_refuse(transfer: Transfer, work: Path) -> list[Checked] | None:
    try:
        return _check(transfer, work)
    except UploadRefused as refused:  # the file as a whole: altered, not a photo, a bad bundle
        _finish(transfer, Outcome.REFUSED, refused.code, refused.params)
        return None


def _store(transfer_id, checked: list[Checked]) -> Finalised:
    # The intents are committed: now the archive may see the files.
    with transaction.atomic():
        transfer = _locked(transfer_id)
        if isinstance(transfer, Finalised):
            return transfer
        verdicts = store_checked(submission=transfer.submission, checked=checked, archive_down_raises=True)
        outcomes = {v.outcome for v in verdicts}
        outcome = outcomes.pop() if len(outcomes) == 1 else Outcome.MIXED
        one = verdicts[0] if len(verdicts) == 1 else None
        _finish(transfer, outcome, one.code if one else "", one.params if one else {})
    _settle(transfer)
    return Finalised.DONE


def _give_up(transfer_id) -> Finalised:
    with transaction.atomic():
        transfer = _locked(transfer_id)
        if isinstance(transfer, Finalised):
            return transfer
        _finish(transfer, Outcome.REFUSED, Code.UNPROCESSABLE, {})
    _settle(transfer)
    return Finalised.DONE


def _finish(transfer: Transfer, outcome: str, code: str, params: dict) -> None:
    transfer.outcome, transfer.code, transfer.params = outcome, code, params
    transfer.state, transfer.finalised_at = Transfer.State.FINALISED, timezone.now()
    transfer.save()
    transfer_id = transfer.pk
    transaction.on_commit(lambda: spool.remove(transfer_id))


def _settle(transfer: Transfer) -> None:
    """A transfer of a manifest completes its study when the manifest settles; one without
    a manifest is the whole sending."""
    manifest = transfer.manifest
    if manifest is not None:
        settle_manifest(manifest)
    else:
        settle(transfer.submission)


# --- step 1: what the file holds ------------------------------------------------------------


def _check(transfer: Transfer, work: Path) -> list[Checked]:
    path = spool.part_path(transfer.pk)
    if not path.exists():
        raise UploadRefused(410, "gone")
    if transfer.sha256 and spool.sha256_of(path, transfer.length) != transfer.sha256:
        raise UploadRefused(400, "sha256_mismatch")
    files = _files_of(transfer, path, work)
    listed = _listed(transfer)
    checked: list[Checked | None] = [None] * len(files)
    to_check = []
    for i, incoming in enumerate(files):
        if transfer.kind == Transfer.Kind.BUNDLE and bundles.is_zip(incoming.path):
            checked[i] = refused_file(incoming, "bundle_nested")  # never unpacked: no nesting
            continue
        if listed is not None:
            incoming = IncomingFile(
                name=incoming.name,
                path=incoming.path,
                sha256=incoming.sha256 or spool.sha256_of(incoming.path),
            )
            if incoming.sha256 not in listed:
                log.warning("bundle member not listed in its manifest refused (transfer %s)", transfer.pk)
                checked[i] = refused_file(incoming, "not_in_manifest")
                continue
        to_check.append((i, incoming))
    results = check_and_intend(
        submission=transfer.submission, files=[f for _, f in to_check], work=work / "checked"
    )
    for (i, _incoming), result in zip(to_check, results, strict=True):
        checked[i] = result
    return [c for c in checked if c is not None]


def _listed(transfer: Transfer) -> set[str] | None:
    """SHA-256 of a bundle's announced members, when its manifest gives one for each.

    A manifest that only counts files cannot say which member is a stranger: None.
    """
    if transfer.kind != Transfer.Kind.BUNDLE:
        return None
    manifest = transfer.manifest
    if manifest is None or not manifest.expected:
        return None
    listed = {e.get("sha256", "").lower() for e in manifest.expected}
    return None if "" in listed else listed


def _files_of(transfer: Transfer, path: Path, work: Path) -> list[IncomingFile]:
    name = transfer.filename or f"{transfer.pk}.dcm"
    if transfer.kind == Transfer.Kind.BUNDLE:
        return _unbundle(transfer, path, work)
    if transfer.kind == Transfer.Kind.PHOTO:
        try:
            wrapped = wrap_photo(path, transfer.metadata, work / "photo.dcm")
        except PhotoRefused as exc:
            raise UploadRefused(400, exc.code, **exc.params) from None
        return [IncomingFile(name=name, path=wrapped)]
    # _check has just checked the whole file against this SHA-256 (when one was sent).
    return [IncomingFile(name=name, path=path, sha256=transfer.sha256)]


def _unbundle(transfer: Transfer, path: Path, work: Path) -> list[IncomingFile]:
    """Unpack a bundle of small instances, once uploads.bundles has checked it whole (entries,
    overlaps, declared total against the limits and the site's room); the bytes written are
    counted as they go."""
    members = bundles.inspect(path, site_id=transfer.submission.site_id, bundle_length=transfer.length)
    return [
        IncomingFile(name=member.name or target.name, path=target)
        for member, target in bundles.extract(path, members, work)
    ]
