"""GET /health/live and /health/ready (docs/operations.md).

- live: the web process answers; touches nothing else (no database), always 200.
- metrics: Prometheus's text (health.metrics), to the same kind of caller (METRICS_* settings).
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
    return _trusted(request, settings.HEALTH_TOKEN, settings.HEALTH_ALLOWED_NETWORKS)


def _trusted(request: HttpRequest, token: str, allowed_networks: list[str]) -> bool:
    """A bearer token equal to `token` (when set), or a direct request (no proxy header) from one
    of `allowed_networks`."""
    given = request.headers.get("Authorization", "")
    if token and given.startswith("Bearer ") and hmac.compare_digest(given[7:].encode(), token.encode()):
        return True
    if any(h in request.META for h in PROXY_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
        networks = [ipaddress.ip_network(n.strip()) for n in allowed_networks]
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


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition: django-prometheus (requests, database, cache; every process's with
    PROMETHEUS_MULTIPROC_DIR), the platform's own figures (health.metrics), Orthanc's. Not public:
    `Authorization: Bearer <METRICS_TOKEN>`, or direct from METRICS_ALLOWED_NETWORKS (loopback by
    default); anyone else gets the site's 404."""
    if not _trusted(request, settings.METRICS_TOKEN, settings.METRICS_ALLOWED_NETWORKS):
        raise Http404
    from prometheus_client import CONTENT_TYPE_LATEST

    from .metrics import exposition

    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
