"""Sessions that end when idle, and the second factor asked before anything patient-related.

Both run after django_otp's OTPMiddleware (request.user.is_verified()) and decide in process_view,
once the URL is resolved: the rules are about views, never about path prefixes alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django_otp import user_has_device

from joliba.security import CLEAR_SITE_DATA

from .roles import needs_second_factor

# The request being served, for receivers of signals that carry none (django-otp's failed code).
current_request: ContextVar[HttpRequest | None] = ContextVar("joliba_current_request", default=None)

LAST_SEEN = "joliba_last_seen"  # session keys: when the person last did something, when they signed in
SIGNED_IN_AT = "joliba_signed_in_at"

# Requests a page makes by itself (the worklist's refresh every 30 s): they keep nobody signed in.
PASSIVE_VIEWS = frozenset({"worklist_rows"})

# What a signed-in person who still owes the second factor may open: signing in and out, enrolling,
# entering the code, the language switch, the password reset pages.
BEFORE_SECOND_FACTOR = frozenset(
    {
        "login",
        "logout",
        "set_language",
        "verify_second_factor",
        "two_factor:setup",
        "two_factor:qr",
        "password_reset",
        "password_reset_done",
        "password_reset_confirm",
        "password_reset_complete",
    }
)


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


class IdleSessionMiddleware:
    """A session unused for SESSION_COOKIE_AGE (JOLIBA_SESSION_IDLE_MINUTES) ends, and none lives
    past JOLIBA_SESSION_MAX_HOURS. The session is saved again (which pushes back both its stored
    expiry and its cookie's) when the person does something, at most every minute, so idle time is
    measured without a database write on every image the viewer loads."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = current_request.set(request)
        try:
            return self.get_response(request)
        finally:
            current_request.reset(token)

    def process_view(self, request: HttpRequest, view_func, args, kwargs) -> HttpResponse | None:  # type: ignore[no-untyped-def]
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        session = request.session
        now = time.time()
        idle = settings.SESSION_COOKIE_AGE
        last_seen = session.get(LAST_SEEN)
        signed_in_at = session.get(SIGNED_IN_AT)
        too_idle = last_seen is not None and now - last_seen > idle
        too_old = signed_in_at is not None and now - signed_in_at > settings.JOLIBA_SESSION_MAX_HOURS * 3600
        if too_idle or too_old:
            logout(request)  # the API then answers as to anyone signed out
            if _is_api(request):
                return None
            query = urlencode({"next": request.get_full_path(), "expired": "1"})
            response = redirect(f"{reverse('login')}?{query}")
            response["Clear-Site-Data"] = CLEAR_SITE_DATA  # as at logout: the images seen go too
            return response
        match = request.resolver_match
        if match is not None and match.view_name in PASSIVE_VIEWS:
            return None
        if last_seen is None or now - last_seen >= min(60.0, idle / 10):
            session[LAST_SEEN] = now
        return None


def owes_second_factor(request: HttpRequest) -> bool:
    """Whether the request's user is signed in but must still prove the second factor here."""
    if not settings.JOLIBA_2FA_REQUIRED:
        return False
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or user.is_verified():
        return False
    match = request.resolver_match
    in_admin = match is not None and "admin" in match.namespaces
    return needs_second_factor(user) or in_admin


class SecondFactorMiddleware:
    """A radiologist or admin signed in without the second factor (or anyone in the admin site)
    opens nothing but the enrolment and verification pages: pages redirect there, the API answers
    403 with the reason. Machine tokens (no session) are not concerned."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, args, kwargs) -> HttpResponse | None:  # type: ignore[no-untyped-def]
        match = request.resolver_match
        if match is not None and match.view_name in BEFORE_SECOND_FACTOR:
            return None
        if not owes_second_factor(request):
            return None
        enrolled = user_has_device(request.user, confirmed=True)
        if _is_api(request):
            reason = (
                _("Double authentification requise : saisissez le code de votre application.")
                if enrolled
                else _("Double authentification requise : enregistrez d'abord votre application.")
            )
            return JsonResponse({"detail": reason, "code": "second_factor_required"}, status=403)
        target = reverse("verify_second_factor" if enrolled else "two_factor:setup")
        return redirect(f"{target}?{urlencode({'next': request.get_full_path()})}")
