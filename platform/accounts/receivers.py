"""What accounts does when someone signs in or enters a wrong second-factor code."""

from __future__ import annotations

import time
from typing import Any

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django_otp.forms import otp_verification_failed

from .events import announce
from .middleware import LAST_SEEN, SIGNED_IN_AT, current_request


@receiver(user_logged_in, dispatch_uid="accounts.session_clock")
def start_session_clock(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """The session's age and idle time count from the sign-in (accounts.middleware)."""
    session = getattr(request, "session", None)
    if session is not None:
        session[SIGNED_IN_AT] = session[LAST_SEEN] = time.time()


@receiver(otp_verification_failed, dispatch_uid="accounts.otp_failed")
def record_failed_code(sender: Any, user: Any, **kwargs: Any) -> None:
    """A wrong TOTP or backup code, on the login page or the verification page; the device
    throttles further tries (django-otp), the audit trail keeps them."""
    announce("otp.failed", request=current_request.get(), actor=user, outcome="failed")
