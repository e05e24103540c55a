"""Upload limits: one rule, in one place, for every way bytes reach the centre.

Every ingest path calls this module (docs/ingest-protocol.md, "Limits"):

- the tus endpoint (uploads.tus / uploads.transfers): per-file size at creation, the site's spool
  quota counted on the bytes really received (never on the declared Upload-Length), a cap on a
  user's open transfers, the daily budget charged as bytes are written;
- the plain form (ingest.views) and the multipart API (ingest.api): the request's declared size
  bounded before Django reads the body, held against the spool quota while the request runs,
  and charged to the daily budget;
- a bundle's extraction (uploads.finalisation): its declared uncompressed total against the
  per-file limit and the spool quota before a byte is written;
- C-STORE straight into Orthanc: the changes feed charges each instance a site's modality stored
  to the site's daily budget, and an instance past it is refused afterwards (ingest.changes_feed).

Rate limits on creating uploads (tus POST, form, API) and on the SMS-reply endpoint use
django-ratelimit's counters in the default cache (CACHES).

Refusals carry a stable code, an HTTP status and, when waiting helps, a Retry-After; the sentence
comes from ingest.verdicts in the language of the request.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, time, timedelta
from typing import Any, Protocol

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django_ratelimit import ALL  # type: ignore[import-untyped]  # no type information published
from django_ratelimit.core import get_usage  # type: ignore[import-untyped]

from accounts.models import Site

from .models import DailyUsage, QuotaHold
from .verdicts import describe


class LimitExceeded(Exception):
    """A limit says no. `status` is the HTTP answer, `code` says why (ingest.verdicts renders it),
    `retry_after` (seconds) when the same request may succeed later."""

    def __init__(self, status: int, code: str, *, retry_after: int | None = None, **params: object) -> None:
        super().__init__(code)
        self.status, self.code, self.params, self.retry_after = status, code, params, retry_after

    @property
    def reason(self) -> str:
        return describe(self.code, self.params)

    def apply_headers(self, response: HttpResponse) -> HttpResponse:
        if self.retry_after is not None:
            response["Retry-After"] = str(max(1, int(self.retry_after)))
        return response


# --- the numbers -----------------------------------------------------------------------------


def max_file_bytes() -> int:
    """The largest single file (a tus upload, a bundle's expanded content, a form's file)."""
    return int(settings.UPLOADS_MAX_BYTES)


def spool_quota() -> int:
    """Bytes one site may hold in the spool at once, all its sendings together."""
    return int(settings.UPLOADS_SITE_QUOTA_BYTES)


def daily_budget() -> int:
    """Bytes one site may bring in per local day, every route together (0: no budget)."""
    return int(settings.INGEST_SITE_DAILY_BYTES)


def _mb(n: int) -> int:
    return max(1, n // 1024**2)


# --- the spool quota ---------------------------------------------------------------------------


class OpenUploads(Protocol):
    """What the resumable uploads hold in the spool. The uploads app builds on ingest, so it tells
    the quota at start (uploads.apps) rather than being imported from here."""

    def received_bytes(self, site_id: int, exclude_transfer: Any = None) -> int:
        """Bytes the site's open uploads have received (committed offsets, not declared sizes)."""
        ...

    def open_count(self, user: Any) -> int:
        """Uploads the user has open (created, still receiving)."""
        ...


_open_uploads: list[OpenUploads] = []


def register_open_uploads(source: OpenUploads) -> None:
    """Count `source`'s uploads in every quota decision (once; called from an AppConfig.ready)."""
    if source not in _open_uploads:
        _open_uploads.append(source)


def lock_site(site_id: int) -> None:
    """Serialise a site's quota decisions (inside the caller's transaction): the site's row only,
    never the transfers, which stay free for their finalisers; NO KEY UPDATE does not wait for
    transactions that merely insert rows pointing to the site."""
    Site.objects.select_for_update(no_key=True).filter(pk=site_id).first()


def spool_in_use(site_id: int, *, exclude_transfer=None) -> int:
    """What the site holds in the spool now: the bytes its open transfers have received (their
    committed offsets, not what they declared) plus the live holds of requests in progress."""
    received = sum(source.received_bytes(site_id, exclude_transfer) for source in _open_uploads)
    held = (
        QuotaHold.objects.filter(site_id=site_id, expires_at__gt=timezone.now()).aggregate(
            total=Sum("bytes")
        )["total"]
        or 0
    )
    return int(received) + int(held)


def check_room(site_id: int, nbytes: int, *, in_use: int | None = None, waiting: bool = False) -> None:
    """Refuse when `nbytes` more would take the site past its spool quota.

    `waiting`: the bytes are already on their way (a PATCH): the answer is 429 with Retry-After,
    since room comes back as the site's other files are processed. Otherwise 413 `quota`.
    """
    used = spool_in_use(site_id) if in_use is None else in_use
    if nbytes > spool_quota():
        raise LimitExceeded(413, "quota")
    if used + nbytes > spool_quota():
        if waiting:
            raise LimitExceeded(429, "quota_wait", retry_after=settings.UPLOADS_QUOTA_RETRY_SECONDS)
        raise LimitExceeded(413, "quota")


@contextmanager
def reserved(site_id: int, nbytes: int, *, route: str, check: Callable[[], None]) -> Iterator[QuotaHold]:
    """`check()` under the site's lock, then hold `nbytes` (committed, so the site's next request
    counts it) until the block ends."""
    with transaction.atomic():
        lock_site(site_id)
        check()
        hold = QuotaHold.objects.create(
            site_id=site_id,
            bytes=nbytes,
            route=route,
            expires_at=timezone.now() + timedelta(seconds=settings.INGEST_HOLD_SECONDS),
        )
    try:
        yield hold
    finally:
        QuotaHold.objects.filter(pk=hold.pk).delete()


def forget_lapsed_holds() -> int:
    deleted, _ = QuotaHold.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted


# --- the daily budget --------------------------------------------------------------------------


def _today():
    return timezone.localdate()


def _seconds_to_midnight() -> int:
    now = timezone.localtime()
    midnight = datetime.combine(now.date() + timedelta(days=1), time.min, tzinfo=now.tzinfo)
    return max(1, int((midnight - now).total_seconds()))


def used_today(site_id: int) -> int:
    row = DailyUsage.objects.filter(site_id=site_id, day=_today()).values_list("bytes", flat=True).first()
    return int(row or 0)


def check_daily(site_id: int, nbytes: int) -> None:
    budget = daily_budget()
    if budget and used_today(site_id) + nbytes > budget:
        raise LimitExceeded(429, "daily_budget", retry_after=_seconds_to_midnight(), limit_mb=_mb(budget))


def charge(site_id: int, nbytes: int) -> None:
    """Add `nbytes` to the site's count for today (atomic; concurrent callers all count)."""
    if nbytes <= 0:
        return
    day = _today()
    if DailyUsage.objects.filter(site_id=site_id, day=day).update(bytes=F("bytes") + nbytes):
        return
    try:
        with transaction.atomic():
            DailyUsage.objects.create(site_id=site_id, day=day, bytes=nbytes)
    except IntegrityError:  # created meanwhile by a concurrent request
        DailyUsage.objects.filter(site_id=site_id, day=day).update(bytes=F("bytes") + nbytes)


def admit_archive_instance(site_id: int, nbytes: int) -> bool:
    """C-STORE (seen by the changes feed): charge the instance to its site's daily budget, or
    answer False when it does not fit (the caller refuses it)."""
    with transaction.atomic():
        lock_site(site_id)
        try:
            check_daily(site_id, nbytes)
        except LimitExceeded:
            return False
        charge(site_id, nbytes)
    return True


# --- a plain form or API request ---------------------------------------------------------------


def request_length(request: HttpRequest) -> int | None:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None
    return length if length >= 0 else None


@contextmanager
def admitted_request(request: HttpRequest, site_id: int, *, route: str) -> Iterator[int]:
    """A whole-study request (form, API): bounded by its declared length BEFORE Django reads the
    body (Django never reads past CONTENT_LENGTH), checked against the spool quota and the daily
    budget, charged to the day, and held against the quota until the request ends."""
    length = request_length(request)
    if length is None:
        raise LimitExceeded(411, "length_required")
    limit = int(settings.INGEST_MAX_REQUEST_BYTES)
    if length > limit:
        raise LimitExceeded(413, "request_too_large", limit_mb=_mb(limit))

    def check() -> None:
        check_room(site_id, length)
        check_daily(site_id, length)
        charge(site_id, length)

    with reserved(site_id, length, route=route, check=check):
        yield length


class RequestSizeLimit:
    """Middleware: a multipart body (the plain form, the multipart API, any page) larger than
    INGEST_MAX_REQUEST_BYTES, or without a Content-Length, is refused before anything reads it:
    CSRF checking parses the body before any view runs, so the bound must come first."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST" and request.content_type == "multipart/form-data":
            refusal = None
            length = request_length(request)
            limit = int(settings.INGEST_MAX_REQUEST_BYTES)
            if length is None:
                refusal = LimitExceeded(411, "length_required")
            elif length > limit:
                refusal = LimitExceeded(413, "request_too_large", limit_mb=_mb(limit))
            if refusal is not None:
                if request.path.startswith("/api/"):
                    body = json.dumps({"code": refusal.code, "reason": refusal.reason}, ensure_ascii=False)
                    response = HttpResponse(body, status=refusal.status, content_type="application/json")
                else:
                    response = HttpResponse(
                        refusal.reason, status=refusal.status, content_type="text/plain; charset=utf-8"
                    )
                return refusal.apply_headers(response)
        return self.get_response(request)


# --- tus: creation and bytes -------------------------------------------------------------------


def check_creation(site_id: int, user, length: int) -> None:
    """A new resumable upload (caller holds the site's lock): it must fit in a file, in the room
    the site has now (bytes really received by its other uploads), and the user may only keep so
    many uploads open. Nothing is reserved: the bytes count as they arrive."""
    if length > max_file_bytes():
        raise LimitExceeded(413, "file_too_large", limit_mb=_mb(max_file_bytes()))
    check_room(site_id, length)
    cap = int(settings.UPLOADS_MAX_OPEN_PER_USER)
    open_count = sum(source.open_count(user) for source in _open_uploads)
    if cap and open_count >= cap:
        raise LimitExceeded(
            429, "too_many_open", retry_after=settings.UPLOADS_IDLE_CREATION_SECONDS, limit=cap
        )


def check_chunk(site_id: int, transfer_id, offset: int, nbytes: int) -> None:
    """A PATCH about to write `nbytes` after `offset` (caller holds the site's lock)."""
    in_use = spool_in_use(site_id, exclude_transfer=transfer_id) + offset
    check_room(site_id, nbytes, in_use=in_use, waiting=True)
    check_daily(site_id, nbytes)


# --- rate limits -------------------------------------------------------------------------------


def check_rate(request: HttpRequest, route: str, keys: dict[str, object]) -> None:
    """Count this request under each scope of `keys` ({"user": pk, "site": pk} …) at the rates of
    settings.INGEST_RATE_LIMITS[route]; 429 with Retry-After once one of them is spent."""
    rates = settings.INGEST_RATE_LIMITS.get(route, {})
    refusal = None
    for scope, value in keys.items():
        rate = rates.get(scope)
        if not rate or value is None:
            continue
        usage = get_usage(
            request,
            group=f"joliba.{route}.{scope}",
            key=lambda _group, _request, v=value: str(v),
            rate=rate,
            method=ALL,
            increment=True,
        )
        if usage and usage["should_limit"] and refusal is None:
            refusal = LimitExceeded(429, "rate_limited", retry_after=max(1, int(usage["time_left"])))
    if refusal is not None:
        raise refusal


def rate_limited(
    route: str,
    keys: Callable[[HttpRequest], dict[str, object]],
    *,
    only_if: Callable[[HttpRequest], bool] | None = None,
):
    """View decorator: the rate limits of `route` keyed by `keys(request)`; a 429 in plain text
    (with Retry-After) when spent. For endpoints whose body goes back as it is (an SMS reply).
    `only_if`: count only the requests it accepts (others go to the view, which refuses them),
    so that strangers cannot spend the budget of legitimate callers."""

    def decorate(view):
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs):
            if only_if is not None and not only_if(request):
                return view(request, *args, **kwargs)
            try:
                check_rate(request, route, keys(request))
            except LimitExceeded as exc:
                response = HttpResponse(
                    exc.reason, status=exc.status, content_type="text/plain; charset=utf-8"
                )
                return exc.apply_headers(response)
            return view(request, *args, **kwargs)

        return wrapped

    return decorate
