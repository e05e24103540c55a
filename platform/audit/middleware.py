"""One middleware records every read of patient data, from one table of URL names.

A new route that shows a study, an image or a report is audited by adding one line to ROUTES
(a write whose refusals should be on record: one line to REFUSED_WRITES).
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

# Writes whose success the services' signals record (one row, whatever the route): here only
# their refusals and failures answered with an error status (another site's study: 404; a claim
# lost to a colleague: 409), which no signal sees. A page that answers a refusal with a redirect
# and a message leaves no row.
REFUSED_WRITES: dict[str, str] = {
    "claim": "case.claimed",
    "api_claim": "case.claimed",
    "release": "case.released",
    "api_release": "case.released",
    "hand_over": "case.handed_over",
    "api_hand_over": "case.handed_over",
    "reassign": "case.reassigned",
    "api_reassign": "case.reassigned",
    "return_study": "case.returned",
    "api_return": "case.returned",
    "report_edit": "report.written",
    "report_sign": "report.signed",
    "api_report": "report.written",
    "report_amend": "report.amended",
}
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
        if match is None:
            return
        user = getattr(request, "user", None)
        signed_in = bool(getattr(user, "is_authenticated", False))
        outcome = outcome_of(response.status_code, signed_in=signed_in)
        if request.method not in READS:
            action = REFUSED_WRITES.get(match.view_name)
            if action is not None and outcome in ("denied", "failed"):
                self.record_refused_write(request, response, action, outcome, match.kwargs.get("pk"))
            return
        route = ROUTES.get(match.view_name)
        if route is None or outcome is None:
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

    def record_refused_write(
        self, request: HttpRequest, response: HttpResponse, action: str, outcome: str, study_id: Any
    ) -> None:
        detail: dict[str, Any] = {"status": response.status_code}
        data = getattr(response, "data", None)  # a DRF answer says why: {"code": "taken", ...}
        if isinstance(data, dict) and isinstance(data.get("code"), str):
            detail["code"] = data["code"][:40]
        record(action, request=request, obj=_study_ref(study_id), outcome=outcome, detail=detail)


def _study_ref(study_id: Any) -> Any:
    """The study a route names (its case code as label), or its bare id when there is none."""
    from studies.models import Study

    if study_id is None:
        return None
    study = Study.objects.select_related("site").filter(pk=study_id).first()
    return study if study is not None else ObjectRef("studies.study", str(study_id)[:64], f"#{study_id}")
