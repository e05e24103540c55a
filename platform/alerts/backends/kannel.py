"""Kannel's HTTP interface only: `sendsms` out, with a `dlr-url` for delivery reports.

Replies come in through the sms-service `get-url` of deploy/kannel/kannel.conf (alerts.views).
Kannel gives no message id in its sendsms answer: our attempt reference goes into the dlr-url,
and the SMSC's own id (%F) comes back with each report.
"""

from __future__ import annotations

from urllib.parse import urlencode

import requests
from django.conf import settings

from . import GatewayDown, Handed, Rejected

DLR_MASK = 1 + 2 + 4 + 8 + 16  # delivered, failed, buffered, accepted by the SMSC, rejected


def dlr_url(reference: str) -> str:
    query = urlencode({"ref": reference, "token": settings.ALERTS_CALLBACK_TOKEN})
    # Kannel substitutes %d (report type), %F (SMSC message id) and %A (the SMSC's answer).
    return f"{settings.ALERTS_CALLBACK_URL}/alerts/kannel/dlr/?{query}&type=%d&smsc_id=%F"


_session = requests.Session()  # one per process: keep-alive to smsbox saves a connection per SMS


class KannelBackend:
    name = "kannel"

    def send(self, *, to: str, text: str, encoding: str, reference: str) -> Handed:
        params = {
            "username": settings.KANNEL_USERNAME,
            "password": settings.KANNEL_PASSWORD,
            "to": to,
            "text": text,
            "charset": "UTF-8",
            "coding": "2" if encoding == "ucs2" else "0",
            "dlr-mask": str(DLR_MASK),
            "dlr-url": dlr_url(reference),
        }
        if settings.KANNEL_SENDER:
            params["from"] = settings.KANNEL_SENDER
        try:
            response = _session.get(settings.KANNEL_SENDSMS_URL, params=params, timeout=(3, 10))
        except requests.RequestException as exc:
            raise GatewayDown(f"kannel unreachable: {type(exc).__name__}") from exc
        body = response.text.strip()[:200]
        if response.status_code in (200, 202):  # "0: Accepted for delivery", "3: Queued for later delivery"
            return Handed(gateway_id=reference)
        if response.status_code == 400:  # Kannel: bad number or missing field
            raise Rejected("gateway_refused", body)
        raise GatewayDown(f"kannel HTTP {response.status_code}: {body}")
