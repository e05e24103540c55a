"""The client's real address behind the proxy: the one rule, shared with django-axes.

Configured once: JOLIBA_PROXY_COUNT says how many proxies X-Forwarded-For lists after the
client (django-ipware's proxy_count; nginx, whose own address is REMOTE_ADDR, is not counted):
unset, X-Forwarded-For is ignored (anyone can write that header). When the chain does not match
the count, ipware refuses it and the direct peer (REMOTE_ADDR) is recorded: a proxy's address,
never a forged one. Axes calls this very function (AXES_CLIENT_IP_CALLABLE), so the lockout and
the audit trail see the same address; the AXES_IPWARE_* settings are not used.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from ipware import get_client_ip

FORWARDED = ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR")


def client_address(request: Any) -> str | None:
    """The client's address as django-ipware finds it with the deployment's proxy count."""
    meta = getattr(request, "META", None) or {}
    proxies = getattr(settings, "JOLIBA_PROXY_COUNT", None)
    if proxies is None:
        return meta.get("REMOTE_ADDR") or None
    try:
        address, _routable = get_client_ip(request, proxy_count=int(proxies), request_header_order=FORWARDED)
    except ValueError:  # a setting ipware refuses: the direct peer rather than nothing
        address = None
    return address or meta.get("REMOTE_ADDR") or None
