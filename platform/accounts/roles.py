"""Rules that depend on nothing but the person's role: kept beside the roles, because accounts is
below every other app. studies.access lists them with the platform's other rules (one place to
read who may do what); they are defined once, here."""

from __future__ import annotations

from typing import Any

from .models import User


def needs_second_factor(user: Any) -> bool:
    """Radiologists and admins (role admin or superuser) prove a second factor (a TOTP code or a
    backup code) before anything patient-related opens, when JOLIBA_2FA_REQUIRED is on (the
    default); technicians may enrol but need not. The admin site asks it of every staff user."""
    return isinstance(user, User) and user.is_active and (user.is_radiologist or user.is_joliba_admin)
