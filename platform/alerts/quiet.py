"""Quiet hours: routine and « significant » alerts wait for the morning; critical ones never wait."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.conf import settings
from django.utils import timezone


def _parse(spec: str) -> tuple[time, time] | None:
    try:
        start, end = spec.split("-")
        return time.fromisoformat(start.strip()), time.fromisoformat(end.strip())
    except ValueError:
        return None


def hold_until(own: tuple[time | None, time | None], now: datetime) -> datetime:
    """`now`, or the end of the quiet period `now` falls in (the person's own, else the default)."""
    window = (own[0], own[1]) if own[0] and own[1] else _parse(settings.ALERTS_QUIET_HOURS or "")
    if not window:
        return now
    start, end = window
    local = timezone.localtime(now)
    t = local.time()
    inside = (start <= t < end) if start < end else (t >= start or t < end)
    if not inside:
        return now
    end_at = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    if end_at <= local:
        end_at += timedelta(days=1)
    return end_at
