"""Who is sending: a machine token for the site agent, the session for the page.

tus requests carry raw bytes, so they bypass DRF's parsers; this applies the same rules as the
API's authentication (tokens.authentication and DRF's Session authentication, CSRF included for
the session), through the same service: a revoked or expired token is refused here too.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware

from accounts.models import User
from tokens.authentication import secret_from_header
from tokens.service import authenticate_secret


def _no_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(status=204)  # never called: the middleware only checks the token


def _csrf_ok(request: HttpRequest) -> bool:
    check = CsrfViewMiddleware(_no_view)
    check.process_request(request)
    return check.process_view(request, _no_view, (), {}) is None


def sending_user(request: HttpRequest) -> User | None:
    secret = secret_from_header(request.META.get("HTTP_AUTHORIZATION", ""))
    if secret is not None:  # a token header is the only credential looked at, even if refused
        token = authenticate_secret(secret, request=request) if secret else None
        return token.user if token is not None else None
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    if request.method not in ("GET", "HEAD", "OPTIONS") and not _csrf_ok(request):
        return None
    return user
