"""The client's real address behind the proxy: the one rule, shared with django-axes.

Configured once. When the auth app configures axes (AXES_IPWARE_PROXY_COUNT,
AXES_IPWARE_META_PRECEDENCE_ORDER, AXES_IPWARE_PROXY_ORDER, AXES_IPWARE_PROXY_TRUSTED_IPS), this
asks django-ipware exactly what axes asks it. Otherwise JOLIBA_PROXY_COUNT says how many proxies
X-Forwarded-For lists after the client (django-ipware's proxy_count; nginx, whose own address is
REMOTE_ADDR, is not counted): unset, X-Forwarded-For is ignored (anyone can write that header).
When the chain does not match the count, ipware refuses it and the direct peer (REMOTE_ADDR) is
recorded: a proxy's address, never a forged one. Axes may call this very function
(AXES_CLIENT_IP_CALLABLE = "audit.addresses.client_address").
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from ipware import get_client_ip

FORWARDED = ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR")


def client_address(request: Any) -> str | None:
    """The client's address as django-ipware finds it with the deployment's proxy count."""
    meta = getattr(request, "META", None) or {}
    count = getattr(settings, "AXES_IPWARE_PROXY_COUNT", None)
    order = getattr(settings, "AXES_IPWARE_META_PRECEDENCE_ORDER", None)
    if count is None and order is None:
        proxies = getattr(settings, "JOLIBA_PROXY_COUNT", None)
        if proxies is None:
            return meta.get("REMOTE_ADDR") or None
        count, order = int(proxies), FORWARDED
    try:
        address, _routable = get_client_ip(
            request,
            proxy_order=getattr(settings, "AXES_IPWARE_PROXY_ORDER", None) or "left-most",
            proxy_count=count,
            proxy_trusted_ips=getattr(settings, "AXES_IPWARE_PROXY_TRUSTED_IPS", None),
            request_header_order=order or FORWARDED,
        )
    except ValueError:  # a setting ipware refuses: the direct peer rather than nothing
        address = None
    return address or meta.get("REMOTE_ADDR") or None
