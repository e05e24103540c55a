"""tus 1.0.0 endpoint: core, creation, checksum, termination and expiration.

    POST   /api/v1/uploads/            create (Upload-Length, Upload-Metadata)  → 201 Location
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

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from studies.models import Priority

from . import services
from .auth import sending_user
from .models import Manifest, TusUpload
from .services import UploadRefused

log = logging.getLogger(__name__)

TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,checksum,termination,expiration"
CHECKSUMS = {"sha1": "sha1", "sha256": "sha256", "md5": "md5"}


def _tus(response: HttpResponse, upload: TusUpload | None = None) -> HttpResponse:
    response["Tus-Resumable"] = TUS_VERSION
    response["Cache-Control"] = "no-store"
    if upload is not None:
        response["Upload-Offset"] = str(upload.offset)
        response["Upload-Length"] = str(upload.length)
        if upload.state == TusUpload.State.RECEIVING:
            response["Upload-Expires"] = format_datetime(upload.expires_at, usegmt=True)
        if upload.outcome:
            # Non-identifying verdict for the agent, so it need not ask again.
            response["Joliba-Outcome"] = upload.outcome
            response["Joliba-Code"] = upload.code
    return response


def _refusal(exc: UploadRefused) -> HttpResponse:
    body = json.dumps({"code": exc.code, "reason": exc.reason}, ensure_ascii=False)
    return _tus(HttpResponse(body, status=exc.status, content_type="application/json"))


def _decode_metadata(header: str) -> dict[str, str]:
    metadata = {}
    for pair in filter(None, (p.strip() for p in header.split(","))):
        key, _sep, value = pair.partition(" ")
        try:
            metadata[key] = base64.b64decode(value, validate=True).decode("utf-8") if value else ""
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise UploadRefused(400, "bad_metadata", _("Métadonnées d'envoi illisibles.")) from exc
    return metadata


def _method(request: HttpRequest) -> str:
    return request.META.get("HTTP_X_HTTP_METHOD_OVERRIDE", request.method).upper()


def _preflight(request: HttpRequest):
    """Version check and authentication common to every tus request but OPTIONS."""
    if request.META.get("HTTP_TUS_RESUMABLE") != TUS_VERSION:
        response = _tus(HttpResponse(status=412))
        response["Tus-Version"] = TUS_VERSION
        return None, response
    user = sending_user(request)
    if user is None:
        return None, _refusal(UploadRefused(401, "unauthenticated", _("Identification requise.")))
    return user, None


def _options() -> HttpResponse:
    response = _tus(HttpResponse(status=204))
    response["Tus-Version"] = TUS_VERSION
    response["Tus-Extension"] = EXTENSIONS
    response["Tus-Max-Size"] = str(services.max_upload_bytes())
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
            raise UploadRefused(400, "defer_unsupported", _("La taille du fichier doit être connue."))
        try:
            length = int(request.META.get("HTTP_UPLOAD_LENGTH", ""))
        except ValueError as exc:
            raise UploadRefused(400, "bad_length", _("Taille de fichier manquante.")) from exc
        metadata = _decode_metadata(request.META.get("HTTP_UPLOAD_METADATA", ""))
        upload = services.create_upload(user=user, length=length, metadata=metadata)
    except UploadRefused as exc:
        return _refusal(exc)
    response = _tus(HttpResponse(status=201), upload)
    response["Location"] = request.build_absolute_uri(f"{request.path.rstrip('/')}/{upload.pk}/")
    return response


def _own_upload(user, upload_id) -> TusUpload:
    upload = TusUpload.objects.filter(pk=upload_id, site_id=user.site_id).first()
    if upload is None:
        raise UploadRefused(404, "not_found", _("Envoi inconnu."))
    if upload.state in (TusUpload.State.EXPIRED, TusUpload.State.TERMINATED):
        raise UploadRefused(410, "gone", _("Envoi expiré ou annulé : recommencez ce fichier."))
    return upload


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
        upload = _own_upload(user, upload_id)
        if method == "HEAD":
            return _tus(HttpResponse(status=200), upload)
        if method == "DELETE":
            services.terminate_upload(upload)
            return _tus(HttpResponse(status=204))
        if method == "PATCH":
            return _patch(request, upload)
    except UploadRefused as exc:
        return _refusal(exc)
    return _tus(HttpResponse(status=405))


def _patch(request: HttpRequest, upload: TusUpload) -> HttpResponse:
    if request.content_type != "application/offset+octet-stream":
        raise UploadRefused(415, "bad_content_type",
                            _("Type de contenu attendu : application/offset+octet-stream."))
    try:
        offset = int(request.META.get("HTTP_UPLOAD_OFFSET", ""))
    except ValueError as exc:
        raise UploadRefused(400, "bad_offset", _("Position manquante.")) from exc
    checksum = None
    if request.META.get("HTTP_UPLOAD_CHECKSUM"):
        algo, _sep, value = request.META["HTTP_UPLOAD_CHECKSUM"].partition(" ")
        if algo not in CHECKSUMS:
            raise UploadRefused(400, "bad_checksum_algorithm",
                                _("Algorithme de somme de contrôle non pris en charge."))
        try:
            checksum = (CHECKSUMS[algo], base64.b64decode(value, validate=True))
        except binascii.Error as exc:
            raise UploadRefused(400, "bad_checksum", _("Somme de contrôle illisible.")) from exc
    content_length = request.META.get("CONTENT_LENGTH")
    services.receive_chunk(
        upload=upload, offset=offset, read=request.read,
        content_length=int(content_length) if content_length else None, checksum=checksum,
    )
    upload.refresh_from_db()
    return _tus(HttpResponse(status=204), upload)


def status(request: HttpRequest, upload_id) -> HttpResponse:
    user = sending_user(request)
    if user is None:
        return JsonResponse({"code": "unauthenticated"}, status=401)
    upload = TusUpload.objects.filter(pk=upload_id, site_id=user.site_id).first()
    if upload is None:
        return JsonResponse({"code": "not_found"}, status=404)
    if upload.state == TusUpload.State.COMPLETE:
        services.finalise_upload(upload.pk)  # nobody on it (crash, no worker): do it now
        upload.refresh_from_db()
    return JsonResponse({
        "id": str(upload.pk), "state": upload.state, "offset": upload.offset, "length": upload.length,
        "outcome": upload.outcome, "code": upload.code, "reason": upload.reason,
        "manifest": str(upload.manifest_id) if upload.manifest_id else None,
    })


@csrf_exempt
def manifests(request: HttpRequest) -> HttpResponse:
    """POST: announce a study (idempotent on the client's id). GET ?id=: what is still missing."""
    user = sending_user(request)
    if user is None:
        return JsonResponse({"code": "unauthenticated"}, status=401)
    if not services.can_send(user):
        return JsonResponse({"code": "forbidden"}, status=403)
    if request.method == "GET":
        manifest = Manifest.objects.filter(
            pk=services.parse_uuid(request.GET.get("id", "")), upload__site_id=user.site_id).first()
        if manifest is None:
            return JsonResponse({"code": "not_found"}, status=404)
        return JsonResponse(services.manifest_status(manifest))
    if request.method != "POST":
        return JsonResponse({"code": "method"}, status=405)
    try:
        data = json.loads(request.body or b"{}")
        expected = [
            {"sop_instance_uid": str(e["sop_instance_uid"])[:64], "sha256": str(e.get("sha256", ""))[:64],
             "size": int(e.get("size", 0))}
            for e in data.get("instances", [])
        ]
        priority = data.get("priority", Priority.ROUTINE)
        if priority not in Priority.values:
            raise ValueError("priority")
        manifest, created = services.open_manifest(
            user=user, manifest_id=services.parse_uuid(str(data["id"])) if data.get("id") else None,
            study_instance_uid=str(data.get("study_instance_uid", ""))[:64], priority=priority,
            indication=str(data.get("indication", ""))[:2000], expected=expected,
            expected_files=int(data.get("files", 0) or 0),
        )
    except (ValueError, KeyError, TypeError):
        return JsonResponse({"code": "bad_manifest", "reason": _("Manifeste illisible.")}, status=400)
    except UploadRefused as exc:
        return JsonResponse({"code": exc.code, "reason": exc.reason}, status=exc.status)
    return JsonResponse(services.manifest_status(manifest), status=201 if created else 200)
