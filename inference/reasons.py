"""Refusals and warnings as values: a machine code plus a human reason in French and English."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Reason:
    code: str
    fr: str
    en: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


class Refused(Exception):
    """Raised inside the library for an input it will not score; callers get `.reason`."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(f"{reason.code}: {reason.en}")
        self.reason = reason


def refuse(code: str, fr: str, en: str) -> Refused:
    return Refused(Reason(code, fr, en))
