"""One middleware records every read of patient data, from one table of URL names.

A new route that shows a study, an image or a report is audited by adding one line to ROUTES.
The outcome is the response's: 2xx (and 304) ok; 401, 403, 404 denied (an object the user may not
see answers 404: that is a refusal, recorded as such); a redirect of a signed-out user to the
login page denied; another redirect is not recorded (the page it leads to records itself);
5xx and any other 4xx failed.

Images are fetched one per frame (renditions, previews, overlays): "study.images_viewed" is
recorded at most once per user, study and outcome every AUDIT_IMAGES_VIEWED_MINUTES (Django's
cache decides: shared between processes when CACHES is Redis, per process with the local-memory
cache). An original DICOM file downloaded ("image.downloaded") is recorded every time.

It also gives each request its id (X-Request-ID from the proxy when it is a sane token, else a new
one) and makes the request known to audit.api.record for signal receivers deep in services.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

from .api import ObjectRef, current_request, record
from .receivers import flush_pending_login

log = logging.getLogger("joliba.audit")


@dataclass(frozen=True)
class Route:
    action: str
    once_per_window: bool = False  # per frame: once per user, study and outcome per window


VIEWED = Route("study.viewed")
IMAGES = Route("study.images_viewed", once_per_window=True)

# URL name (as resolved: namespace:name) → what reading it means. GET and HEAD only: the writes
# (claims, signatures...) are recorded by the services' signals, once, whatever the route.
ROUTES: dict[str, Route] = {
    "study_detail": VIEWED,  # /studies/<pk>/
    "read": VIEWED,  # /worklist/<pk>/read/ (the reading page)
    "consult": VIEWED,  # /worklist/<pk>/consult/ (read-only: a prior)
    "api_study": VIEWED,  # /api/v1/studies/<pk>/
    "report": Route("report.viewed"),  # /studies/<pk>/report/
    "api_report": Route("report.viewed"),  # /api/v1/studies/<pk>/report/
    "report_pdf": Route("report.pdf_downloaded"),  # /studies/<pk>/report.pdf
    "api_report_pdf": Route("report.pdf_downloaded"),  # /api/v1/studies/<pk>/report.pdf
    "instance_preview": IMAGES,  # /studies/<pk>/images/<i>/preview.webp
    "api_preview": IMAGES,  # /api/v1/studies/<pk>/images/<i>/preview.webp
    "viewer_rendition": IMAGES,  # /studies/<pk>/images/<i>/r/<name>.webp
    "ai_heatmap": IMAGES,  # /worklist/<pk>/images/<i>/heatmap.png
    "viewer_original": Route("image.downloaded"),  # /studies/<pk>/images/<i>/original.dcm
}
READS = ("GET", "HEAD")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def outcome_of(status: int, *, signed_in: bool) -> str | None:
    if 200 <= status < 300 or status == 304:
        return "ok"
    if status in (401, 403, 404):
        return "denied"
    if 300 <= status < 400:
        return None if signed_in else "denied"  # a signed-out user is sent to the login page
    return "failed"


class AuditMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.META.get("HTTP_X_REQUEST_ID", "")
        request.audit_request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex  # type: ignore[attr-defined]
        token = current_request.set(request)
        try:
            response = self.get_response(request)
            try:
                flush_pending_login(request)
                self.record_read(request, response)
            except Exception:  # never into the response
                log.exception("audit: could not record %s", request.path)
            return response
        finally:
            current_request.reset(token)

    def record_read(self, request: HttpRequest, response: HttpResponse) -> None:
        match = request.resolver_match
        route = ROUTES.get(match.view_name) if match is not None else None
        if route is None or match is None or request.method not in READS:
            return
        user = getattr(request, "user", None)
        signed_in = bool(getattr(user, "is_authenticated", False))
        outcome = outcome_of(response.status_code, signed_in=signed_in)
        if outcome is None:
            return
        study_id = match.kwargs.get("pk")
        if route.once_per_window:
            minutes = float(getattr(settings, "AUDIT_IMAGES_VIEWED_MINUTES", 10))
            key = f"audit:images:{getattr(user, 'pk', None) or '-'}:{study_id}:{outcome}"
            if minutes > 0 and not cache.add(key, 1, timeout=minutes * 60):
                return  # already recorded for this user, study and outcome in this window
        detail: dict[str, Any] = {"status": response.status_code}
        for name in ("instance_pk", "name"):
            if name in match.kwargs:
                detail["instance" if name == "instance_pk" else "rendition"] = match.kwargs[name]
        record(route.action, request=request, obj=_study_ref(study_id), outcome=outcome, detail=detail)


def _study_ref(study_id: Any) -> Any:
    """The study a route names (its case code as label), or its bare id when there is none."""
    from studies.models import Study

    if study_id is None:
        return None
    study = Study.objects.select_related("site").filter(pk=study_id).first()
    return study if study is not None else ObjectRef("studies.study", str(study_id)[:64], f"#{study_id}")
