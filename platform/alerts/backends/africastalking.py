"""Africa's Talking, through its official client (`africastalking` on PyPI).

AFRICASTALKING_API_URL points the client elsewhere (the tests' stand-in for the paid API).
"""

from __future__ import annotations

from typing import Any

import requests
from django.conf import settings

from . import GatewayDown, Handed, Rejected

SUCCESS = {100, 101, 102}  # Processed, Sent, Queued


class AfricasTalkingBackend:
    name = "africastalking"

    def __init__(self) -> None:
        from africastalking.SMS import SMSService

        self.service = SMSService(settings.AFRICASTALKING_USERNAME, settings.AFRICASTALKING_API_KEY)
        if settings.AFRICASTALKING_API_URL:
            self.service._baseUrl = settings.AFRICASTALKING_API_URL.rstrip("/") + "/version1"

    def send(self, *, to: str, text: str, encoding: str, reference: str) -> Handed:
        try:
            answer: Any = self.service.send(text, [to], sender_id=settings.AFRICASTALKING_SENDER or None)
        except ValueError as exc:  # the client checks the number itself
            raise Rejected("invalid_number", str(exc)) from exc
        except requests.RequestException as exc:
            raise GatewayDown(f"africastalking unreachable: {type(exc).__name__}") from exc
        except Exception as exc:  # the client raises AfricasTalkingException with the HTTP body
            raise GatewayDown(f"africastalking: {str(exc)[:200]}") from exc
        try:
            first = answer["SMSMessageData"]["Recipients"][0]
        except (KeyError, IndexError, TypeError) as exc:
            raise GatewayDown(f"africastalking: unexpected answer {str(answer)[:200]}") from exc
        if int(first.get("statusCode", 0)) in SUCCESS:
            return Handed(gateway_id=str(first.get("messageId") or reference))
        raise Rejected("gateway_refused", str(first.get("status", ""))[:200])
