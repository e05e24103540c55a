"""The state of resumable transfers: create, receive a chunk, terminate, expire.

Views and tasks come through here (finalisation: uploads.finalisation; manifests:
uploads.manifests). Who may touch a transfer is decided by studies.access.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from accounts.models import User
from ingest import quota
from ingest.models import Submission
from studies.access import may_see_sending, may_send_for_site
from studies.models import Priority

from . import spool, tasks  # tasks imports this module too: use tasks.x at call time
from .models import StudyManifest, Transfer
from .refusals import UploadRefused

log = logging.getLogger(__name__)


def max_upload_bytes() -> int:
    return quota.max_file_bytes()


def site_quota_bytes() -> int:
    return quota.spool_quota()


def expiry_delay() -> timedelta:
    # Long enough for a site whose link is down over a weekend to resume.
    return timedelta(seconds=settings.UPLOADS_EXPIRE_SECONDS)


def idle_creation_delay() -> timedelta:
    # An upload that never received a byte holds a slot for this long only.
    return timedelta(seconds=settings.UPLOADS_IDLE_CREATION_SECONDS)


def parse_uuid(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def transfer_for(user: User, transfer_id: str, *, to_send: bool) -> Transfer:
    """The transfer if `user` may see it (`to_send`: may also add bytes or cancel it); else 404."""
    transfer = Transfer.objects.select_related("submission").filter(pk=transfer_id).first()
    if transfer is None:
        raise UploadRefused(404, "not_found")
    site_id = transfer.submission.site_id
    allowed = may_send_for_site(user, site_id) if to_send else may_see_sending(user, site_id=site_id)
    if not allowed:
        raise UploadRefused(404, "not_found")  # another site's: do not confirm it exists
    return transfer


def create_transfer(*, user: User, length: int, metadata: dict[str, str]) -> Transfer:
    site_id = user.site_id
    if site_id is None or not may_send_for_site(user):
        raise UploadRefused(403, "forbidden")
    if length < 0:
        raise UploadRefused(400, "bad_length")
    if length > max_upload_bytes():
        raise UploadRefused(413, "file_too_large", limit_mb=max_upload_bytes() // 1024**2)
    kind = metadata.get("kind", Transfer.Kind.DICOM)
    if kind not in Transfer.Kind.values:
        raise UploadRefused(400, "bad_kind")
    manifest = None
    if metadata.get("manifest"):
        manifest_id = parse_uuid(metadata["manifest"])
        if manifest_id is not None:
            manifest = (
                StudyManifest.objects.select_related("submission")
                .filter(pk=manifest_id, submission__site_id=site_id)
                .first()
            )
        if manifest is None:
            raise UploadRefused(400, "unknown_manifest")
    sha = metadata.get("sha256", "").lower()
    if sha and (len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha)):
        raise UploadRefused(400, "bad_sha256")
    expire_stale_transfers(site_id=site_id)  # a slot idle too long is free again before we count
    with transaction.atomic():
        # Two creations must not both squeeze under the quota: they queue on the site's row.
        quota.lock_site(site_id)
        # The room is counted on bytes received, never on declared lengths: a creation that
        # sends nothing holds nothing (and expires soon: UPLOADS_IDLE_CREATION_SECONDS).
        quota.check_creation(site_id, user, length)
        if manifest is not None:
            submission = manifest.submission
        else:
            priority = metadata.get("priority")
            submission = Submission.objects.create(
                site_id=site_id,
                sender=user,
                priority=priority if priority in Priority.values else Priority.ROUTINE,
                indication=metadata.get("indication", "")[:2000],
            )
        transfer = Transfer.objects.create(
            submission=submission,
            kind=kind,
            length=length,
            filename=Path(metadata.get("filename", "")).name[:255],
            sha256=sha,
            metadata=metadata,
            expires_at=timezone.now() + idle_creation_delay(),
        )
        spool.create_part(transfer.pk)
    if length == 0:
        _mark_complete(transfer)
    return transfer


@dataclass(frozen=True)
class ChunkResult:
    offset: int
    complete: bool


def receive_chunk(
    *,
    transfer: Transfer,
    offset: int,
    read,
    content_length: int | None,
    checksum: tuple[str, bytes] | None = None,
) -> ChunkResult:
    """Append a PATCH body at `offset`. Acknowledged bytes are on disk before this returns."""
    if transfer.state != Transfer.State.RECEIVING:
        if transfer.offset == transfer.length and offset == transfer.length:
            return ChunkResult(transfer.offset, True)  # a retried final PATCH: already have it all
        raise UploadRefused(409 if transfer.is_open else 410, "not_receiving")
    if offset != transfer.offset:
        raise UploadRefused(409, "offset_mismatch")
    room = transfer.length - offset
    if content_length is not None and content_length > room:
        raise UploadRefused(413, "past_end")
    limit = room if content_length is None else content_length
    path = spool.part_path(transfer.pk)
    if not path.exists():
        raise UploadRefused(410, "gone")
    site_id = transfer.submission.site_id
    # The bytes count against the site's quota as they arrive: held while this request writes,
    # then by the committed offset. Room for them, and the day's budget, are checked first.
    with quota.reserved(
        site_id, limit, route="tus", check=lambda: quota.check_chunk(site_id, transfer.pk, offset, limit)
    ):
        spool.truncate(path, offset)  # bytes a killed process wrote but never acknowledged
        digest = hashlib.new(checksum[0]) if checksum else None
        checkpoint = None if checksum else (lambda n: _advance(transfer.pk, offset + n))
        written, whole = spool.append_from(path, offset, read, limit, digest, checkpoint)
        quota.charge(site_id, written)
    if checksum and digest is not None and (not whole or digest.digest() != checksum[1]):
        # tus checksum: the request's bytes are all-or-nothing; the offset does not move.
        raise UploadRefused(460, "checksum_mismatch")
    _advance(transfer.pk, offset + written)
    transfer.refresh_from_db()
    complete = transfer.offset == transfer.length
    if complete:
        _mark_complete(transfer)
    return ChunkResult(transfer.offset, complete)


def _advance(transfer_id, new_offset: int) -> None:
    # Greatest(): a stale request finishing late never moves the offset backwards.
    # Bytes received: the long expiry (a link down over a weekend); none yet: the short one.
    delay = expiry_delay() if new_offset > 0 else idle_creation_delay()
    Transfer.objects.filter(pk=transfer_id, state=Transfer.State.RECEIVING).update(
        offset=Greatest(F("offset"), new_offset),
        expires_at=timezone.now() + delay,
        updated_at=timezone.now(),
    )


def _mark_complete(transfer: Transfer) -> None:
    if Transfer.objects.filter(pk=transfer.pk, state=Transfer.State.RECEIVING).update(
        state=Transfer.State.COMPLETE
    ):
        transfer_id = str(transfer.pk)
        transaction.on_commit(lambda: tasks.finalise_transfer.delay(transfer_id))
    transfer.refresh_from_db()


def terminate_transfer(transfer: Transfer) -> None:
    if transfer.state == Transfer.State.RECEIVING:
        Transfer.objects.filter(pk=transfer.pk, state=Transfer.State.RECEIVING).update(
            state=Transfer.State.TERMINATED
        )
        spool.remove(transfer.pk)
        return
    raise UploadRefused(409, "not_receiving")


def expire_stale_transfers(now=None, *, site_id: int | None = None) -> int:
    """Close transfers nobody resumed in time (or that never received a byte within
    UPLOADS_IDLE_CREATION_SECONDS) and give their disk and their slot back."""
    now = now or timezone.now()
    rows = Transfer.objects.filter(state=Transfer.State.RECEIVING, expires_at__lt=now)
    if site_id is not None:
        rows = rows.filter(submission__site_id=site_id)
    stale = list(rows.values_list("pk", flat=True))
    expired = 0
    for pk in stale:
        if Transfer.objects.filter(pk=pk, state=Transfer.State.RECEIVING, expires_at__lt=now).update(
            state=Transfer.State.EXPIRED
        ):
            spool.remove(pk)
            expired += 1
    if expired:
        log.info("expired %d stale transfers", expired)
    return expired
