"""Resumable uploads: create, receive bytes, finalise into the ingest pipeline, expire.

Views and tasks come through here. Finalising is idempotent: the same instance sent twice is
stored once and reported as a duplicate; a process killed mid-way leaves the upload COMPLETE,
and the next finalise (task, sweep or status request) does the work again from the start.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import uuid
import zipfile
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from accounts.models import User
from ingest.models import FileVerdict, Upload
from ingest.services import ArchiveUnavailable, IncomingFile, ingest_files
from studies.models import Priority, Study
from studies.selectors import instances_in_archive
from studies.services import mark_complete

from . import spool
from .models import Manifest, TusUpload

log = logging.getLogger(__name__)

MAX_BUNDLE_MEMBERS = 2000


def max_upload_bytes() -> int:
    return settings.UPLOADS_MAX_BYTES


def site_quota_bytes() -> int:
    return settings.UPLOADS_SITE_QUOTA_BYTES


def expiry_delay() -> timedelta:
    # Long enough for a site whose link is down over a weekend to resume.
    return timedelta(seconds=settings.UPLOADS_EXPIRE_SECONDS)


class UploadRefused(Exception):
    """A request the server will not honour; `status` is the HTTP answer, `reason` is French."""

    def __init__(self, status: int, code: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.code, self.reason = status, code, reason


def can_send(user: User) -> bool:
    return bool(user.is_authenticated and user.site_id and (user.is_technician or user.is_joliba_admin))


# --- manifests -----------------------------------------------------------------------------


def open_manifest(
    *, user: User, manifest_id: str | None, study_instance_uid: str = "", priority: str = Priority.ROUTINE,
    indication: str = "", expected: list[dict] | None = None, expected_files: int = 0,
) -> tuple[Manifest, bool]:
    """Create the manifest of a study, or return the one this site already sent under that id."""
    if manifest_id:
        found = Manifest.objects.select_related("upload").filter(pk=manifest_id).first()
        if found is not None:
            if found.upload.site_id != user.site_id:
                raise UploadRefused(404, "not_found", "Manifeste inconnu.")
            return found, False
    expected = expected or []
    with transaction.atomic():
        upload = Upload.objects.create(
            site_id=user.site_id, user=user, indication=indication, priority=priority
        )
        kwargs = {"pk": manifest_id} if manifest_id else {}
        manifest = Manifest.objects.create(
            upload=upload, study_instance_uid=study_instance_uid, expected=expected,
            expected_files=expected_files or len(expected), **kwargs,
        )
    return manifest, True


def manifest_status(manifest: Manifest) -> dict:
    """What the centre has of a study: settled or not, which instances are still missing."""
    finalise_waiting(manifest=manifest)
    manifest.refresh_from_db()
    expected = [e["sop_instance_uid"] for e in manifest.expected]
    have = _in_archive(expected)
    verdicts = list(manifest.upload.verdicts.values(
        "filename", "outcome", "code", "reason", "sop_instance_uid"))
    return {
        "id": str(manifest.pk),
        "complete": manifest.completed_at is not None,
        "missing": [uid for uid in expected if uid not in have],
        "study": manifest.upload.verdicts.exclude(study=None).values_list("study_id", flat=True).first(),
        "verdicts": verdicts,
        "open_uploads": manifest.files.filter(state__in=TusUpload.OPEN_STATES).count(),
    }


def _in_archive(sop_uids) -> set[str]:
    return instances_in_archive(list(sop_uids))


def settle_manifest(manifest: Manifest) -> bool:
    """Announce the study once every listed instance is in the archive (or refused with a reason)."""
    if manifest.completed_at is not None:
        return True
    if manifest.expected:
        expected = {e["sop_instance_uid"] for e in manifest.expected}
        have = _in_archive(expected)
        refused = set(manifest.upload.verdicts.filter(outcome=FileVerdict.Outcome.REFUSED)
                      .values_list("sop_instance_uid", flat=True))
        settled = expected <= (have | refused)
    else:
        finished = manifest.files.filter(state=TusUpload.State.FINALISED).exclude(
            kind=TusUpload.Kind.PREVIEW).count()
        settled = manifest.expected_files > 0 and finished >= manifest.expected_files
    if not settled:
        return False
    # Conditional update: two finalisers settling at once announce the study once.
    if not Manifest.objects.filter(pk=manifest.pk, completed_at=None).update(completed_at=timezone.now()):
        return True
    study_ids = set(manifest.upload.verdicts.exclude(study=None).values_list("study_id", flat=True))
    for study in Study.objects.filter(pk__in=study_ids):
        mark_complete(study)
    return True


# --- tus uploads ---------------------------------------------------------------------------


def create_upload(*, user: User, length: int, metadata: dict[str, str]) -> TusUpload:
    if not can_send(user):
        raise UploadRefused(403, "forbidden", "Seul un technicien d'un site peut envoyer des examens.")
    if length < 0:
        raise UploadRefused(400, "bad_length", "Taille de fichier invalide.")
    if length > max_upload_bytes():
        raise UploadRefused(413, "too_large", "Fichier trop volumineux pour être envoyé.")
    kind = metadata.get("kind", TusUpload.Kind.DICOM)
    if kind not in TusUpload.Kind.values:
        raise UploadRefused(400, "bad_kind", "Type d'envoi inconnu.")
    manifest = None
    if metadata.get("manifest"):
        manifest = Manifest.objects.filter(
            pk=parse_uuid(metadata["manifest"]), upload__site_id=user.site_id).first()
        if manifest is None:
            raise UploadRefused(400, "unknown_manifest", "Manifeste inconnu pour ce site.")
    sha = metadata.get("sha256", "").lower()
    if sha and (len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha)):
        raise UploadRefused(400, "bad_sha256", "Empreinte SHA-256 invalide.")
    with transaction.atomic():
        # Lock the site's open uploads so two creations cannot both squeeze under the quota.
        open_rows = TusUpload.objects.select_for_update().filter(
            site_id=user.site_id, state__in=TusUpload.OPEN_STATES)
        in_use = sum(open_rows.values_list("length", flat=True))
        if in_use + length > site_quota_bytes():
            raise UploadRefused(
                413, "quota", "Quota d'envoi du site atteint : attendez la fin des envois en cours."
            )
        upload = TusUpload.objects.create(
            site_id=user.site_id, user=user, manifest=manifest, kind=kind, length=length,
            filename=Path(metadata.get("filename", "")).name[:255], sha256=sha, metadata=metadata,
            expires_at=timezone.now() + expiry_delay(),
        )
        spool.create_part(upload.pk)
    if length == 0:
        _mark_complete(upload)
    return upload


def parse_uuid(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


@dataclass(frozen=True)
class ChunkResult:
    offset: int
    complete: bool


def receive_chunk(
    *, upload: TusUpload, offset: int, read, content_length: int | None,
    checksum: tuple[str, bytes] | None = None,
) -> ChunkResult:
    """Append a PATCH body at `offset`. Acknowledged bytes are on disk before this returns."""
    if upload.state != TusUpload.State.RECEIVING:
        if upload.offset == upload.length and offset == upload.length:
            return ChunkResult(upload.offset, True)  # a retried final PATCH: already have it all
        raise UploadRefused(409 if upload.is_open else 410, "not_receiving", "Cet envoi est clos.")
    if offset != upload.offset:
        raise UploadRefused(409, "offset_mismatch", "Décalage inattendu : reprenez à la position du serveur.")
    room = upload.length - offset
    if content_length is not None and content_length > room:
        raise UploadRefused(413, "past_end", "Données au-delà de la taille annoncée.")
    limit = room if content_length is None else content_length
    path = spool.part_path(upload.pk)
    if not path.exists():
        raise UploadRefused(410, "gone", "Données de l'envoi perdues : recommencez ce fichier.")
    spool.truncate(path, offset)  # bytes a killed process wrote but never acknowledged
    digest = hashlib.new(checksum[0]) if checksum else None
    checkpoint = None if checksum else (lambda n: _advance(upload.pk, offset + n))
    written, whole = spool.append_from(path, offset, read, limit, digest, checkpoint)
    if checksum and (not whole or digest.digest() != checksum[1]):
        # tus checksum: the request's bytes are all-or-nothing; the offset does not move.
        raise UploadRefused(460, "checksum_mismatch", "Somme de contrôle du bloc incorrecte : renvoyez-le.")
    _advance(upload.pk, offset + written)
    upload.refresh_from_db()
    complete = upload.offset == upload.length
    if complete:
        _mark_complete(upload)
    return ChunkResult(upload.offset, complete)


def _advance(upload_id, new_offset: int) -> None:
    # Greatest(): a stale request finishing late never moves the offset backwards.
    TusUpload.objects.filter(pk=upload_id, state=TusUpload.State.RECEIVING).update(
        offset=Greatest(F("offset"), new_offset), expires_at=timezone.now() + expiry_delay(),
        updated_at=timezone.now(),
    )


def _mark_complete(upload: TusUpload) -> None:
    if TusUpload.objects.filter(pk=upload.pk, state=TusUpload.State.RECEIVING).update(
        state=TusUpload.State.COMPLETE
    ):
        from .tasks import finalise_upload

        transaction.on_commit(lambda: finalise_upload.delay(str(upload.pk)))
    upload.refresh_from_db()


def terminate_upload(upload: TusUpload) -> None:
    if upload.state == TusUpload.State.RECEIVING:
        TusUpload.objects.filter(pk=upload.pk, state=TusUpload.State.RECEIVING).update(
            state=TusUpload.State.TERMINATED)
        spool.remove(upload.pk)
        return
    raise UploadRefused(409, "not_receiving", "Cet envoi est déjà reçu : il ne peut plus être annulé.")


def finalise_waiting(*, manifest: Manifest | None = None) -> int:
    """Finalise COMPLETE uploads nobody is working on (after a crash, or without a worker)."""
    rows = TusUpload.objects.filter(state=TusUpload.State.COMPLETE)
    if manifest is not None:
        rows = rows.filter(manifest=manifest)
    done = 0
    for pk in rows.values_list("pk", flat=True):
        done += finalise_upload(pk) is not None
    return done


def finalise_upload(upload_id) -> TusUpload | None:
    """Check the whole file's SHA-256, then validate, store and record it; once.

    The row stays locked for the whole work: a second finaliser skips it, and a finaliser
    that dies releases the lock with its connection, leaving the upload COMPLETE for a retry.
    """
    try:
        with transaction.atomic():
            upload = (TusUpload.objects.select_for_update(skip_locked=True)
                      .filter(pk=upload_id, state=TusUpload.State.COMPLETE).first())
            if upload is None:
                return None
            path = spool.part_path(upload.pk)
            if upload.sha256 and spool.sha256_of(path, upload.length) != upload.sha256:
                upload.outcome, upload.code = FileVerdict.Outcome.REFUSED, "sha256_mismatch"
                upload.reason = "Fichier altéré en route (empreinte SHA-256 différente) : renvoyez-le."
            else:
                _ingest(upload, path)
            upload.state, upload.finalised_at = TusUpload.State.FINALISED, timezone.now()
            upload.save()
            transaction.on_commit(lambda: spool.remove(upload.pk))
    except ArchiveUnavailable as exc:
        # Acknowledged bytes are never refused for the archive's fault: the attempt is rolled
        # back whole, the upload stays COMPLETE with its file, and the sweep tries again.
        log.warning("archive unavailable while finalising upload %s: %s", upload_id, exc)
        return None
    if upload.manifest_id:
        with transaction.atomic():
            settle_manifest(Manifest.objects.get(pk=upload.manifest_id))
    return upload


def _ingest(upload: TusUpload, path: Path) -> None:
    manifest = upload.manifest
    if manifest is not None:
        target = manifest.upload
    else:
        meta = upload.metadata
        priority = meta.get("priority") if meta.get("priority") in Priority.values else Priority.ROUTINE
        target = Upload.objects.create(site_id=upload.site_id, user=upload.user, priority=priority,
                                       indication=meta.get("indication", "")[:2000])
    spool_root = Path(settings.INGEST_SPOOL_DIR)
    work = Path(tempfile.mkdtemp(prefix="final-", dir=spool_root))
    try:
        try:
            files = _files_of(upload, path, work)
        except UploadRefused as exc:
            upload.outcome, upload.code, upload.reason = FileVerdict.Outcome.REFUSED, exc.code, exc.reason
            return
        files, verdicts = _refuse_unlisted(upload, target, files)
        if files:
            verdicts += ingest_files(upload=target, files=files, announce=manifest is None,
                                     archive_down_raises=True,
                                     expected_instances=manifest.expected_files or None if manifest else None)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    outcomes = {v.outcome for v in verdicts}
    upload.outcome = outcomes.pop() if len(outcomes) == 1 else "mixed"
    if len(verdicts) == 1:
        upload.code, upload.reason = verdicts[0].code, verdicts[0].reason


def _files_of(upload: TusUpload, path: Path, work: Path) -> list[IncomingFile]:
    name = upload.filename or f"{upload.pk}.dcm"
    if upload.kind == TusUpload.Kind.BUNDLE:
        return _unbundle(upload, path, work)
    if upload.kind == TusUpload.Kind.PHOTO:
        from .photo import PhotoRefused, wrap_photo

        try:
            wrapped = wrap_photo(path, upload.metadata, work / "photo.dcm")
        except PhotoRefused as exc:
            raise UploadRefused(400, exc.code, exc.reason) from None
        return [IncomingFile(name=name, path=wrapped)]
    # finalise_upload has just checked the whole file against this SHA-256 (when one was sent).
    return [IncomingFile(name=name, path=path, sha256=upload.sha256)]


def _unbundle(upload: TusUpload, path: Path, work: Path) -> list[IncomingFile]:
    """Unpack a bundle of small instances (stored zip, no compression: no zip bombs)."""
    try:
        with zipfile.ZipFile(path) as bundle:
            members = [m for m in bundle.infolist() if not m.is_dir()]
            if not members:
                raise UploadRefused(400, "bundle_empty", "Lot vide : aucun fichier à vérifier.")
            if len(members) > MAX_BUNDLE_MEMBERS:
                raise UploadRefused(400, "bundle_too_many", "Lot refusé : trop de fichiers.")
            files = []
            for i, member in enumerate(members):
                if member.compress_type != zipfile.ZIP_STORED or member.file_size > upload.length:
                    raise UploadRefused(400, "bundle_bad_member", "Lot refusé : contenu compressé inattendu.")
                target = work / f"{i:05d}.dcm"  # never trust member names for paths
                with bundle.open(member) as src, target.open("wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
                files.append(IncomingFile(name=Path(member.filename).name[:255] or target.name, path=target))
    except (zipfile.BadZipFile, OSError) as exc:
        raise UploadRefused(400, "bundle_unreadable", "Lot illisible : renvoyez-le.") from exc
    return files


NOT_IN_MANIFEST = (
    "Fichier du lot absent du manifeste de l'examen (empreinte SHA-256 inconnue) : il n'a pas été "
    "stocké. Renvoyez l'examen depuis le poste du site."
)


def _refuse_unlisted(
    upload: TusUpload, target: Upload, files: list[IncomingFile]
) -> tuple[list[IncomingFile], list[FileVerdict]]:
    """Split a bundle's members: those its manifest lists go on, the others get a refusal verdict.

    Checked only when every instance of the manifest carries its SHA-256 (what the site agent
    sends); a manifest that only counts files cannot say which member is a stranger.
    """
    manifest = upload.manifest
    if upload.kind != TusUpload.Kind.BUNDLE or manifest is None or not manifest.expected:
        return files, []
    listed = {e.get("sha256", "").lower() for e in manifest.expected}
    if "" in listed:
        return files, []
    keep, refused = [], []
    for f in files:
        sha = spool.sha256_of(f.path)
        if sha in listed:
            keep.append(replace(f, sha256=sha))
            continue
        log.warning("bundle member not listed in its manifest refused (upload %s)", upload.pk)
        refused.append(FileVerdict.objects.create(
            upload=target, filename=f.name[:255], size=f.path.stat().st_size, sha256=sha,
            outcome=FileVerdict.Outcome.REFUSED, code="not_in_manifest", reason=NOT_IN_MANIFEST,
        ))
    return keep, refused


def expire_stale_uploads(now=None) -> int:
    """Close uploads nobody resumed in time and give their disk back."""
    now = now or timezone.now()
    stale = list(TusUpload.objects.filter(state=TusUpload.State.RECEIVING, expires_at__lt=now)
                 .values_list("pk", flat=True))
    expired = 0
    for pk in stale:
        if TusUpload.objects.filter(pk=pk, state=TusUpload.State.RECEIVING, expires_at__lt=now).update(
            state=TusUpload.State.EXPIRED
        ):
            spool.remove(pk)
            expired += 1
    if expired:
        log.info("expired %d stale uploads", expired)
    return expired
