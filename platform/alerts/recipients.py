"""Who an alert goes to. The one place that knows where on-call people come from.

Until the assignment app's rota lands on main, the on-call radiologists and the coordinators are the
admin's simple list (OnCallEntry); `on_call_radiologists()` is the function to switch over.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.conf import settings

from accounts.models import Site, User

from .models import Channel, NotificationSettings, OnCallEntry, SiteAlertSettings


@dataclass(frozen=True)
class Recipient:
    """One person (or a site's contact line) and the addresses an alert may use."""

    key: str  # stable within a chain: "user:12", "site:3"
    role: str  # on_call, coordinator, site, technician
    user: User | None = None
    phone: str = ""
    email: str = ""
    language: str = "fr"
    quiet: tuple = field(default=(None, None))  # (start, end) times, or the global default

    def addresses(self) -> list[tuple[str, str]]:
        """[(channel, address)] this recipient accepts."""
        out = []
        if self.phone:
            out.append((Channel.SMS.value, self.phone))
        if self.email:
            out.append((Channel.EMAIL.value, self.email))
        return out


def normalise_phone(raw: str) -> str:
    """E.164 (+22370123456) from what people type (70 12 34 56, 0022370123456...); "" if not a number."""
    digits = re.sub(r"[\s\-.()/]", "", raw or "")
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if not digits.startswith("+") and digits.isdigit() and digits:
        digits = settings.ALERTS_DEFAULT_PHONE_PREFIX + digits.lstrip("0")
    return digits if re.fullmatch(r"\+\d{6,15}", digits) else ""


def for_user(user: User, role: str) -> Recipient:
    prefs = NotificationSettings.objects.filter(user=user).first()
    phone = ""
    if prefs is not None and prefs.phone and prefs.phone_confirmed_at:
        phone = normalise_phone(prefs.phone)
    if not phone:
        phone = normalise_phone(user.phone)  # entered by an admin on the account
    language = prefs.language if prefs else "fr"
    if prefs is not None:
        phone = phone if prefs.sms_enabled else ""
    email = user.email if (prefs is None or prefs.email_enabled) else ""
    return Recipient(
        key=f"user:{user.pk}",
        role=role,
        user=user,
        phone=phone,
        email=email,
        language=language,
        quiet=(prefs.quiet_start, prefs.quiet_end) if prefs else (None, None),
    )


def for_site(site: Site) -> Recipient | None:
    """The site's contact line (accounts.Site phone and email)."""
    prefs = SiteAlertSettings.objects.filter(site=site).first()
    phone, email = normalise_phone(site.phone), site.email
    if not phone and not email:
        return None
    return Recipient(
        key=f"site:{site.pk}",
        role="site",
        phone=phone,
        email=email,
        language=prefs.language if prefs else "fr",
    )


def on_call_radiologists() -> list[User]:
    """The radiologists to call now, in order (the one place that knows where they come from):
    those on shift in the assignment app's rota first (in the admin list's order where listed),
    then the rest of the admin's on-call list (OnCallEntry). Without the rota (the assignment app
    absent, or no shift now), the list alone."""
    entries = OnCallEntry.objects.filter(
        role=OnCallEntry.Role.RADIOLOGIST, active=True, user__is_active=True
    ).select_related("user")
    listed = [e.user for e in entries]
    on_shift = _on_shift_ids()
    if not on_shift:
        return listed
    position = {u.pk: i for i, u in enumerate(listed)}
    shift = sorted(
        User.objects.filter(pk__in=on_shift, is_active=True),
        key=lambda u: (position.get(u.pk, len(position)), u.last_name, u.username),
    )
    return shift + [u for u in listed if u.pk not in on_shift]


def _on_shift_ids() -> set[int]:
    from assignment.load import on_shift_ids  # the rota

    return set(on_shift_ids())


def coordinators() -> list[User]:
    """The coordinators on the list; with none listed, every active admin (an unconfigured
    platform must still tell someone)."""
    entries = OnCallEntry.objects.filter(
        role=OnCallEntry.Role.COORDINATOR, active=True, user__is_active=True
    ).select_related("user")
    listed = [e.user for e in entries]
    if listed or OnCallEntry.objects.filter(role=OnCallEntry.Role.COORDINATOR).exists():
        return listed
    return list(User.objects.filter(role=User.Role.ADMIN, is_active=True).order_by("pk"))


def reading_chain() -> list[Recipient]:
    """Something to read now: the on-call radiologists in order, then the coordinators."""
    chain = [for_user(u, "on_call") for u in on_call_radiologists()]
    chain += [for_user(u, "coordinator") for u in coordinators()]
    return _reachable(chain)


def site_chain(site: Site | None) -> list[Recipient]:
    """A result the site must act on: its contact line, then the coordinators."""
    chain: list[Recipient] = []
    if site is not None and (contact := for_site(site)) is not None:
        chain.append(contact)
    chain += [for_user(u, "coordinator") for u in coordinators()]
    return _reachable(chain)


def site_people(site: Site | None, uploader: User | None) -> list[Recipient]:
    """Everyone at a site told about a study to repeat: the technician who sent it, the contact line."""
    people: list[Recipient] = []
    if uploader is not None and uploader.is_active:
        people.append(for_user(uploader, "technician"))
    if site is not None and (contact := for_site(site)) is not None:
        people.append(contact)
    return _reachable(people)


def _reachable(chain: list[Recipient]) -> list[Recipient]:
    seen: set[str] = set()
    out = []
    for r in chain:
        if r.addresses() and r.key not in seen:
            seen.add(r.key)
            out.append(r)
    return out
