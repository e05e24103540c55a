"""The viewer's three answers: the manifest, rendition bytes, the original DICOM. Each goes through
studies.access: 404 for whoever may not see the study, anonymous included (no redirect to the login
page for a URL a script or an <img> asks for). None hands out an Orthanc URL."""

from __future__ import annotations

import re

from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_GET, require_safe

from joliba.security import cache_privately
from studies import access
from studies.models import Instance

from . import storage
from .manifest import study_manifest
from .models import Rendition

NAME = re.compile(r"^(preview|full)-(\d{1,6})-([0-9a-f]{16})$")


@require_GET
def manifest(request: HttpRequest, pk: int) -> HttpResponse:
    study = access.get_study_for_user(request.user, pk)
    return JsonResponse(study_manifest(study, request.user))


@require_safe
def rendition(request: HttpRequest, pk: int, instance_pk: int, name: str) -> HttpResponseBase:
    """Rendition bytes at an immutable URL (the digest is in the name): cached by this browser only,
    for a reading session (joliba.security.cache_privately; logout clears the cache), and access is
    checked on every request that reaches the server."""
    study = access.get_study_for_user(request.user, pk)
    found = NAME.match(name)
    if found is None:
        raise Http404
    kind, frame, digest = found.group(1), int(found.group(2)), found.group(3)
    row = get_object_or_404(Rendition, instance_id=instance_pk, instance__study=study, kind=kind, frame=frame)
    if not row.digest.startswith(digest):  # an old name: those bytes are no longer this frame
        raise Http404
    try:
        data = storage.path_of(row.digest).open("rb")
    except OSError:
        raise Http404 from None
    response = FileResponse(data, content_type="image/webp")
    cache_privately(response, immutable=True)
    # WebP is compressed already: keep GZipMiddleware away (it skips what has an encoding) and
    # keep the Content-Length the browser shows progress with.
    response["Content-Encoding"] = "identity"
    return response


@require_safe
def original(request: HttpRequest, pk: int, instance_pk: int) -> HttpResponseBase:
    """The archived DICOM file, streamed from Orthanc, as a download for an external viewer."""
    from orthanc.client import OrthancError
    from studies.archive import get_archive

    study = access.get_study_for_user(request.user, pk)
    instance = get_object_or_404(Instance, pk=instance_pk, study=study)
    try:
        chunks = get_archive().instance_file_chunks(instance.orthanc_id)
    except OrthancError:
        raise Http404 from None
    response = StreamingHttpResponse(chunks, content_type="application/dicom")
    # Named by primary keys only: no patient data in a file name either.
    response["Content-Disposition"] = f'attachment; filename="joliba-{study.pk}-{instance.pk}.dcm"'
    response["Cache-Control"] = "no-store"
    return response
