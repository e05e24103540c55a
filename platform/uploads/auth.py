"""Who is sending: a token for machines (the site agent), the session for the page.

tus requests carry raw bytes, so they bypass DRF's parsers; this applies the same rules as
DRF's Token and Session authentication, CSRF included for the session.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from rest_framework.authtoken.models import Token

from accounts.models import User


def _no_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(status=204)  # never called: the middleware only checks the token


def _csrf_ok(request: HttpRequest) -> bool:
    check = CsrfViewMiddleware(_no_view)
    check.process_request(request)
    return check.process_view(request, _no_view, (), {}) is None


def sending_user(request: HttpRequest) -> User | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header.startswith("Token "):
        token = Token.objects.select_related("user").filter(key=header[6:].strip()).first()
        if token is None or not token.user.is_active:
            return None
        return token.user
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    if request.method not in ("GET", "HEAD", "OPTIONS") and not _csrf_ok(request):
        return None
    return user
