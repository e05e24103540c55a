"""GET /health/live and /health/ready (docs/operations.md).

- live: the web process answers; touches nothing else (no database), always 200.
- ready: every component's verdict as JSON, 200 when the required ones are healthy, 503 otherwise.
  Its details (versions, ages, free bytes) are for the operators: answered only to a request that
  carries `Authorization: Bearer <HEALTH_TOKEN>` (when that setting is set), or that comes
  directly (no proxy header) from HEALTH_ALLOWED_NETWORKS (loopback and private ranges): the
  compose/systemd healthcheck, the monitoring host on the LAN. A request through nginx from
  outside gets 404, nothing else.
"""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .checks import run_checks

PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP", "HTTP_FORWARDED")


def may_see_details(request: HttpRequest) -> bool:
    token = settings.HEALTH_TOKEN
    given = request.headers.get("Authorization", "")
    if token and given.startswith("Bearer ") and hmac.compare_digest(given[7:].encode(), token.encode()):
        return True
    if any(h in request.META for h in PROXY_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
        networks = [ipaddress.ip_network(n.strip()) for n in settings.HEALTH_ALLOWED_NETWORKS]
    except ValueError:
        return False
    return any(address.version == n.version and address in n for n in networks)


@never_cache
@require_GET
def live(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok\n", content_type="text/plain")


@never_cache
@require_GET
def ready(request: HttpRequest) -> HttpResponse:
    if not may_see_details(request):
        raise Http404
    report = run_checks()
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)
