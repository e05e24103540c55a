"""HTTP hardening that Django's SecurityMiddleware and django-csp do not cover (docs/security.md).

- Method-override headers (X-HTTP-Method-Override, X-HTTP-Method, X-Method-Override) are dropped
  before any view: a GET must never be read as a PATCH that skipped the CSRF check.
- Every answer is `Cache-Control: no-store` unless its view marked it privately cacheable with
  `cache_privately` / `@private_cache` (images at content-addressed or per-instance URLs, for the
  length of a reading session). Static files never reach this middleware (WhiteNoise answers them
  first, cacheable).
- The logout answer carries `Clear-Site-Data: "cache", "storage"`: the images a reader looked at,
  and the send page's list of pending studies, leave a shared PC with the reader.
- A PDF gets only `frame-ancestors 'none'` as its CSP (the page policy is for our HTML).
- A CSP violation report endpoint that logs what was blocked, rate-limited, without query strings
  or samples (a URL's query or a script sample could carry what someone typed).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

log = logging.getLogger("joliba.security")

METHOD_OVERRIDE_HEADERS = ("HTTP_X_HTTP_METHOD_OVERRIDE", "HTTP_X_HTTP_METHOD", "HTTP_X_METHOD_OVERRIDE")
# URL names (any namespace) whose successful POST ends a session: the browser drops what it kept.
CLEAR_SITE_DATA_URL_NAMES = frozenset({"logout", "logout_everywhere"})
CLEAR_SITE_DATA = '"cache", "storage"'
_PRIVATE = "_joliba_private_cache"


def cache_privately(response: HttpResponseBase, *, immutable: bool = False) -> HttpResponseBase:
    """Mark an answer as cacheable by this browser only, for PRIVATE_CACHE_SECONDS (a reading
    session); everything unmarked is no-store."""
    value = f"private, max-age={settings.PRIVATE_CACHE_SECONDS}"
    response["Cache-Control"] = value + (", immutable" if immutable else "")
    setattr(response, _PRIVATE, True)
    return response


def private_cache(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """View decorator: a successful answer is privately cacheable (see cache_privately)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = view(request, *args, **kwargs)
        if response.status_code == 200:
            cache_privately(response)
        return response

    return wrapper


def is_privately_cacheable(response: HttpResponseBase) -> bool:
    return bool(getattr(response, _PRIVATE, False))


class HardeningMiddleware:
    """Placed right after WhiteNoise (static files never reach it) and before CsrfViewMiddleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        for header in METHOD_OVERRIDE_HEADERS:
            request.META.pop(header, None)
        response = self.get_response(request)
        if not is_privately_cacheable(response):
            response["Cache-Control"] = "no-store"
            if "Expires" in response:
                del response["Expires"]
        match = getattr(request, "resolver_match", None)
        if (
            match is not None
            and match.url_name in CLEAR_SITE_DATA_URL_NAMES
            and request.method == "POST"
            and response.status_code < 400
        ):
            response["Clear-Site-Data"] = CLEAR_SITE_DATA
        if response.get("Content-Type", "").startswith("application/pdf"):
            # The browser's PDF viewer is not our page: the page policy (object-src 'none', ...)
            # could only break it; framing stays forbidden. django-csp keeps a header already set.
            response.setdefault("Content-Security-Policy", "frame-ancestors 'none'")
        # Our images and PDFs are for our pages only: no other site may embed them.
        response.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        response.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response


# Nothing in Joliba uses these browser features: a script that got in cannot either.
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"

# --- CSP violation reports -----------------------------------------------------------------------
REPORT_MAX_BYTES = 16 * 1024
# Report fields kept in the log: what was blocked and where, never a sample of the content.
_URL_FIELDS = {
    "document-uri": "document",
    "documentURL": "document",
    "blocked-uri": "blocked",
    "blockedURL": "blocked",
    "source-file": "source",
    "sourceFile": "source",
}
_PLAIN_FIELDS = {
    "effective-directive": "directive",
    "effectiveDirective": "directive",
    "violated-directive": "violated",
    "line-number": "line",
    "lineNumber": "line",
    "disposition": "disposition",
}


def _without_query(value: object) -> str:
    """A URL reduced to its origin and path (its query or fragment may carry what someone typed);
    the CSP keywords a browser reports instead of a URL ('inline', 'eval', 'data') stay as they are."""
    text = str(value)[:300]
    if "://" not in text:
        return text.split("?", 1)[0].split("#", 1)[0][:40]
    parts = urlsplit(text)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _summary(body: dict[str, Any]) -> dict[str, str]:
    kept: dict[str, str] = {}
    for key, value in body.items():
        if key in _URL_FIELDS:
            kept[_URL_FIELDS[key]] = _without_query(value)
        elif key in _PLAIN_FIELDS:
            kept[_PLAIN_FIELDS[key]] = str(value)[:100]
    return kept


def _reports(data: object) -> list[dict[str, Any]]:
    """report-uri sends {"csp-report": {...}}; the Reporting API a list of {"type", "body"}."""
    if isinstance(data, dict) and isinstance(data.get("csp-report"), dict):
        return [data["csp-report"]]
    if isinstance(data, list):
        return [
            r["body"]
            for r in data[:20]
            if isinstance(r, dict) and r.get("type") == "csp-violation" and isinstance(r.get("body"), dict)
        ]
    return []


def _allowed(request: HttpRequest) -> bool:
    """At most CSP_REPORTS_PER_MINUTE reports a minute from one address, and ten times that in all:
    a page that violates the policy in a loop, or someone posting junk, cannot flood the log."""
    per_minute = settings.CSP_REPORTS_PER_MINUTE
    window = int(time.time() // 60)
    for key, limit in (
        (f"csp-report:{request.META.get('REMOTE_ADDR', '')}:{window}", per_minute),
        (f"csp-report:*:{window}", 10 * per_minute),
    ):
        cache.add(key, 0, timeout=120)
        try:
            count = cache.incr(key)
        except ValueError:  # evicted between add and incr: count this one as the first
            cache.set(key, 1, timeout=120)
            count = 1
        if count > limit:
            return False
    return True


@csrf_exempt  # browsers post reports without a token; the view writes a log line and nothing else
@require_POST
def csp_report(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        return HttpResponse(status=429)
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = REPORT_MAX_BYTES + 1
    if length > REPORT_MAX_BYTES:
        return HttpResponse(status=413)
    try:
        data = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        return HttpResponse(status=400)
    reports = _reports(data)
    if not reports:
        return HttpResponse(status=400)
    for report in reports:
        log.warning("CSP violation %s", json.dumps(_summary(report), sort_keys=True))
    return HttpResponse(status=204)
