"""Gateways an alert is handed to: SMS backends (Kannel, Africa's Talking, a file) and email."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class GatewayDown(Exception):
    """The gateway could not be reached or is not taking messages now: every alert waits on it."""


class Rejected(Exception):
    """The gateway refused this one message (an invalid number...): retrying will not help."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Handed:
    """The gateway took the message; its id for it (or ours, where it gives none)."""

    gateway_id: str


class SmsBackend(Protocol):
    name: str

    def send(self, *, to: str, text: str, encoding: str, reference: str) -> Handed: ...


def sms_backend(name: str | None = None) -> SmsBackend:
    from django.conf import settings

    name = name or settings.ALERTS_SMS_BACKEND
    if name == "kannel":
        from .kannel import KannelBackend

        return KannelBackend()
    if name == "africastalking":
        from .africastalking import AfricasTalkingBackend

        return AfricasTalkingBackend()
    if name == "file":
        from .file import FileBackend

        return FileBackend()
    raise ValueError(f"unknown ALERTS_SMS_BACKEND {name!r} (kannel, africastalking, file)")
