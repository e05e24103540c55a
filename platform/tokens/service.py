"""Machine tokens: issue, revoke, and recognise the secret a site agent sends.

    issue(user, *, name, site=None, days=None) -> (MachineToken, secret)   # the secret, once
    revoke(token, by=None) -> bool
    authenticate_secret(secret, request=None) -> MachineToken | None

Every request reads the token's row again (no cache): a revoked or expired token is refused on
the next request, in every process. The row's last use, and the audit's "token.used", are
written at most once a minute per token (TOKENS_TOUCH_SECONDS), by a conditional UPDATE so that
the many PATCHes of one upload, in several processes at once, write one of them.
"""

from __future__ import annotations

import hmac
import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Site, User
from audit.api import record

from . import crypto
from .models import MachineToken

log = logging.getLogger(__name__)

NAME_MAX_LENGTH = MachineToken._meta.get_field("name").max_length or 100


class TokenNotIssued(ValueError):
    """The token asked for cannot be issued (no name, a site that is not the account's, a
    lifetime out of bounds); the message says which."""


def _http_request(request: Any) -> HttpRequest | None:
    """The Django request under a DRF one (the audit and the client address need it)."""
    return getattr(request, "_request", request)


def client_address(request: Any) -> str | None:
    request = _http_request(request)
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def issue(
    user: User,
    *,
    name: str,
    site: Site | None = None,
    days: int | None = None,
    by: User | None = None,
    request: Any = None,
) -> tuple[MachineToken, str]:
    """A new token for `user` (of `site`, by default the user's own), valid `days` days
    (TOKENS_DEFAULT_DAYS by default). Returns the token and its secret: the only time the secret
    exists outside the site agent's configuration."""
    name = (name or "").strip()
    if not name:
        raise TokenNotIssued(_("Un jeton a besoin d'un nom."))
    if len(name) > NAME_MAX_LENGTH:
        raise TokenNotIssued(_("Le nom d'un jeton a %(n)d caractères au plus.") % {"n": NAME_MAX_LENGTH})
    if site is None:
        site = user.site
    elif site.pk != user.site_id:
        raise TokenNotIssued(_("Le site d'un jeton est celui de son compte."))
    days = settings.TOKENS_DEFAULT_DAYS if days is None else days
    if not 1 <= days <= settings.TOKENS_MAX_DAYS:
        raise TokenNotIssued(_("Un jeton vit de 1 à %(n)d jours.") % {"n": settings.TOKENS_MAX_DAYS})
    secret, prefix = crypto.new_secret()
    now = timezone.now()
    token = MachineToken.objects.create(
        name=name,
        user=user,
        site=site,
        prefix=prefix,
        digest=crypto.digest(secret),
        created_at=now,
        created_by=by,
        expires_at=now + timedelta(days=days),
    )
    record(
        "token.created",
        request=_http_request(request),
        actor=by or user,
        obj=token,
        detail={"prefix": prefix, "name": name, "user": user.pk, "site": token.site_id, "days": days},
    )
    return token, secret


def revoke(token: MachineToken, by: User | None = None, *, request: Any = None) -> bool:
    """Revoke at once (the next request with it is refused). False if it already was."""
    now = timezone.now()
    changed = MachineToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=now, revoked_by=by
    )
    token.refresh_from_db(fields=["revoked_at", "revoked_by"])
    if changed:
        record(
            "token.revoked",
            request=_http_request(request),
            actor=by,
            obj=token,
            detail={"prefix": token.prefix, "name": token.name, "user": token.user_id},
        )
    return bool(changed)


def authenticate_secret(secret: str, request: Any = None) -> MachineToken | None:
    """The usable token whose secret this is (its user loaded), else None."""
    prefix = crypto.lookup_prefix(secret)
    if prefix is None:
        return None
    expected = crypto.digest(secret)
    found = None
    # The prefix narrows the search to one row (two only by a 1-in-4-billion chance); the hash
    # itself is compared in constant time.
    for candidate in MachineToken.objects.select_related("user").filter(prefix=prefix):
        if hmac.compare_digest(candidate.digest, expected):
            found = candidate
    if found is None:
        return None
    now = timezone.now()
    refusal = found.refusal(now)
    if refusal is not None:
        log.warning("machine token %s refused: %s", found.prefix, refusal)
        record(
            "token.used",
            request=_http_request(request),
            actor=found.user,
            obj=found,
            outcome="denied",
            detail={"prefix": found.prefix, "reason": str(refusal.value)},
        )
        return None
    _note_use(found, now, request)
    return found


def _note_use(token: MachineToken, now: datetime, request: Any) -> None:
    """Last use (time, client address) and the audit's "token.used": at most once a minute."""
    address = client_address(request)
    quiet_since = now - timedelta(seconds=settings.TOKENS_TOUCH_SECONDS)
    if token.last_used_at is not None and token.last_used_at > quiet_since:
        return  # as read a moment ago: most requests stop here, with no write at all
    touched = (
        MachineToken.objects.filter(pk=token.pk)
        .filter(Q(last_used_at__isnull=True) | Q(last_used_at__lte=quiet_since))
        .update(last_used_at=now, last_used_ip=address)
    )
    if touched:
        token.last_used_at, token.last_used_ip = now, address
        record(
            "token.used",
            request=_http_request(request),
            actor=token.user,
            obj=token,
            detail={"prefix": token.prefix, "name": token.name},
        )
