"""Template helpers of the worklist rows: times as epoch seconds, for worklist.js's countdowns."""

from __future__ import annotations

from datetime import datetime

from django import template

register = template.Library()


@register.filter
def epoch(value: datetime | None) -> str:
    return str(int(value.timestamp())) if value else ""
