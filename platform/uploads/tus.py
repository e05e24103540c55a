"""tus 1.0.0 endpoint: core, creation, creation-with-upload, checksum, termination and expiration.

    POST   /api/v1/uploads/            create (Upload-Length, Upload-Metadata)  → 201 Location
                                       with a body (creation-with-upload): its bytes too
    HEAD   /api/v1/uploads/<id>/       offset the server has (resume from here)
    PATCH  /api/v1/uploads/<id>/       append bytes at Upload-Offset            → 204
    DELETE /api/v1/uploads/<id>/       terminate
    GET    /api/v1/uploads/<id>/       JSON status and verdict (Joliba extension)
    POST   /api/v1/uploads/manifests/  announce a study's instances (Joliba extension)

Bytes are written and fsynced before the 204 of a PATCH; the offset lives in the database.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from email.utils import format_datetime

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from ingest.quota import LimitExceeded, check_rate

from . import finalisation, transfers
from . import manifests as study_manifests
from .auth import sending_user
from .models import Transfer
from .refusals import UploadRefused

log = logging.getLogger(__name__)

TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,creation-with-upload,checksum,termination,expiration"
CHECKSUMS = {"sha1": "sha1", "sha256": "sha256", "md5": "md5"}


def _tus(response: HttpResponse, transfer: Transfer | None = None) -> HttpResponse:
    response["Tus-Resumable"] = TUS_VERSION
    response["Cache-Control"] = "no-store"
    if transfer is not None:
        response["Upload-Offset"] = str(transfer.offset)
        response["Upload-Length"] = str(transfer.length)
        if transfer.state == Transfer.State.RECEIVING:
            response["Upload-Expires"] = format_datetime(transfer.expires_at, usegmt=True)
        if transfer.outcome:
            # Non-identifying verdict for the agent, so it need not ask again.
            response["Joliba-Outcome"] = transfer.outcome
            response["Joliba-Code"] = transfer.code
    return response


Refused = UploadRefused | LimitExceeded


def _refusal_body(exc: Refused) -> dict:
    return {"code": exc.code, "reason": exc.reason}  # the reason in the asker's language


def _retry_after(response: HttpResponse, exc: Refused) -> HttpResponse:
    if exc.retry_after is not None:
        response["Retry-After"] = str(max(1, int(exc.retry_after)))
    return response


def _refusal(exc: Refused) -> HttpResponse:
    body = json.dumps(_refusal_body(exc), ensure_ascii=False)
    return _retry_after(_tus(HttpResponse(body, status=exc.status, content_type="application/json")), exc)


def _json_refusal(exc: Refused) -> JsonResponse:
    response = JsonResponse(_refusal_body(exc), status=exc.status)
    _retry_after(response, exc)
    return response


def _decode_metadata(header: str) -> dict[str, str]:
    metadata = {}
    for pair in filter(None, (p.strip() for p in header.split(","))):
        key, _sep, value = pair.partition(" ")
        try:
            metadata[key] = base64.b64decode(value, validate=True).decode("utf-8") if value else ""
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise UploadRefused(400, "bad_metadata") from exc
    return metadata


def _method(request: HttpRequest) -> str:
    # The real method only: an override header would let a GET (no CSRF check) act as a PATCH.
    # joliba.security drops those headers anyway; the page's tus client never sends them.
    return (request.method or "GET").upper()


def _preflight(request: HttpRequest):
    """Version check and authentication common to every tus request but OPTIONS."""
    if request.META.get("HTTP_TUS_RESUMABLE") != TUS_VERSION:
        response = _tus(HttpResponse(status=412))
        response["Tus-Version"] = TUS_VERSION
        return None, response
    user = sending_user(request)
    if user is None:
        return None, _refusal(UploadRefused(401, "unauthenticated"))
    return user, None


def _options() -> HttpResponse:
    response = _tus(HttpResponse(status=204))
    response["Tus-Version"] = TUS_VERSION
    response["Tus-Extension"] = EXTENSIONS
    response["Tus-Max-Size"] = str(transfers.max_upload_bytes())
    response["Tus-Checksum-Algorithm"] = ",".join(CHECKSUMS)
    return response


@csrf_exempt
def uploads(request: HttpRequest) -> HttpResponse:
    if request.method == "OPTIONS":
        return _options()
    if request.method != "POST":
        return _tus(HttpResponse(status=405))
    user, refused = _preflight(request)
    if refused:
        return refused
    try:
        if request.META.get("HTTP_UPLOAD_DEFER_LENGTH"):
            raise UploadRefused(400, "defer_unsupported")
        try:
            length = int(request.META.get("HTTP_UPLOAD_LENGTH", ""))
        except ValueError as exc:
            raise UploadRefused(400, "bad_length") from exc
        metadata = _decode_metadata(request.META.get("HTTP_UPLOAD_METADATA", ""))
        check_rate(request, "upload_create", {"user": user.pk, "site": user.site_id})
        body_length = _body_length(request)
        if body_length and request.content_type != "application/offset+octet-stream":
            raise UploadRefused(415, "bad_content_type")
        transfer = transfers.create_transfer(user=user, length=length, metadata=metadata)
    except (UploadRefused, LimitExceeded) as exc:
        return _refusal(exc)
    if body_length:
        # creation-with-upload: the first bytes came with the creation (a small file: all of
        # them, one request). A refusal of the bytes (quota, past the end) still answers with the
        # Location: the upload exists, the sender resumes it with PATCH from the offset we give.
        try:
            _receive(request, transfer, offset=0, content_length=body_length)
        except (UploadRefused, LimitExceeded) as exc:
            log.info("bytes of a creation refused (%s): upload %s kept at its offset", exc.code, transfer.pk)
        transfer.refresh_from_db()
        if transfer.offset < body_length and transfer.state == Transfer.State.RECEIVING:
            # The body was cut: the sender most likely never got this answer, so it cannot know
            # the upload's address. It expires as an unused creation would, bytes and all.
            _expire_soon(transfer)
    response = _tus(HttpResponse(status=201), transfer)
    response["Location"] = request.build_absolute_uri(f"{request.path.rstrip('/')}/{transfer.pk}/")
    return response


def _live_transfer(user, transfer_id) -> Transfer:
    """A transfer this user may send bytes to (studies.access decides), still open to them."""
    transfer = transfers.transfer_for(user, transfer_id, to_send=True)
    if transfer.state in (Transfer.State.EXPIRED, Transfer.State.TERMINATED):
        raise UploadRefused(410, "gone")
    return transfer


@csrf_exempt
def upload_detail(request: HttpRequest, upload_id) -> HttpResponse:
    method = _method(request)
    if method == "OPTIONS":
        return _options()
    if method == "GET":
        return status(request, upload_id)
    user, refused = _preflight(request)
    if refused:
        return refused
    try:
        transfer = _live_transfer(user, upload_id)
        if method == "HEAD":
            return _tus(HttpResponse(status=200), transfer)
        if method == "DELETE":
            transfers.terminate_transfer(transfer)
            return _tus(HttpResponse(status=204))
        if method == "PATCH":
            return _patch(request, transfer)
    except (UploadRefused, LimitExceeded) as exc:
        return _refusal(exc)
    return _tus(HttpResponse(status=405))


def _expire_soon(transfer: Transfer) -> None:
    Transfer.objects.filter(pk=transfer.pk, state=Transfer.State.RECEIVING).update(
        expires_at=timezone.now() + transfers.idle_creation_delay()
    )


def _body_length(request: HttpRequest) -> int:
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        raise UploadRefused(400, "bad_length") from None


def _patch(request: HttpRequest, transfer: Transfer) -> HttpResponse:
    if request.content_type != "application/offset+octet-stream":
        raise UploadRefused(415, "bad_content_type")
    try:
        offset = int(request.META.get("HTTP_UPLOAD_OFFSET", ""))
    except ValueError as exc:
        raise UploadRefused(400, "bad_offset") from exc
    content_length = request.META.get("CONTENT_LENGTH")
    _receive(request, transfer, offset=offset, content_length=int(content_length) if content_length else None)
    transfer.refresh_from_db()
    return _tus(HttpResponse(status=204), transfer)


def _receive(request: HttpRequest, transfer: Transfer, *, offset: int, content_length: int | None) -> None:
    """The request's body appended at `offset` (PATCH, or a creation's first bytes)."""
    checksum = None
    if request.META.get("HTTP_UPLOAD_CHECKSUM"):
        algo, _sep, value = request.META["HTTP_UPLOAD_CHECKSUM"].partition(" ")
        if algo not in CHECKSUMS:
            raise UploadRefused(400, "bad_checksum_algorithm")
        try:
            checksum = (CHECKSUMS[algo], base64.b64decode(value, validate=True))
        except binascii.Error as exc:
            raise UploadRefused(400, "bad_checksum") from exc
    transfers.receive_chunk(
        transfer=transfer, offset=offset, read=request.read, content_length=content_length, checksum=checksum
    )


def status(request: HttpRequest, upload_id) -> HttpResponse:
    """JSON state and verdict of a transfer; finalises it first if nobody is on it."""
    user = sending_user(request)
    if user is None:
        return _json_refusal(UploadRefused(401, "unauthenticated"))
    try:
        transfer = transfers.transfer_for(user, upload_id, to_send=False)
    except UploadRefused as exc:
        return _json_refusal(exc)
    if transfer.state == Transfer.State.COMPLETE:
        try:
            finalisation.finalise_transfer(transfer.pk)  # nobody on it (crash, no worker): now
        except Exception:  # the answer is the state as it is; the task or the sweep finishes it
            log.exception("finalising transfer %s from a status request failed", transfer.pk)
        transfer.refresh_from_db()
    manifest = transfer.manifest
    return JsonResponse(
        {
            "id": str(transfer.pk),
            "state": transfer.state,
            "offset": transfer.offset,
            "length": transfer.length,
            "outcome": transfer.outcome,
            "code": transfer.code,
            "reason": transfer.reason,
            "manifest": str(manifest.pk) if manifest else None,
        }
    )


@csrf_exempt
def manifests(request: HttpRequest) -> HttpResponse:
    """POST: announce a study (idempotent on the client's id). GET ?id=: what is still missing."""
    user = sending_user(request)
    if user is None:
        return _json_refusal(UploadRefused(401, "unauthenticated"))
    if request.method == "GET":
        try:
            manifest = study_manifests.manifest_for(user, transfers.parse_uuid(request.GET.get("id", "")))
        except UploadRefused as exc:
            return _json_refusal(exc)
        finalisation.finalise_waiting(manifest=manifest)
        if manifest.expected:
            study_manifests.settle_manifest(manifest)  # all of it already there: nothing to wait for
        return JsonResponse(study_manifests.manifest_status(manifest))
    if request.method != "POST":
        return _json_refusal(UploadRefused(405, "method_not_allowed"))
    try:
        posted = study_manifests.parse_manifest(
            study_manifests.read_body(request, settings.UPLOADS_MANIFEST_MAX_BYTES)
        )
        manifest, created = study_manifests.open_manifest(
            user=user,
            manifest_id=posted.manifest_id,
            study_instance_uid=posted.study_instance_uid,
            priority=posted.priority,
            indication=posted.indication,
            expected=posted.expected,
            expected_files=posted.expected_files,
        )
    except UploadRefused as exc:
        return _json_refusal(exc)
    if manifest.expected:
        # A study the archive already has whole is settled now: the agent sends nothing of it.
        study_manifests.settle_manifest(manifest)
    return JsonResponse(study_manifests.manifest_status(manifest), status=201 if created else 200)
