"""{% alert_chain study %}: the study's alerts (sent, delivered, acknowledged, escalated) for its page."""

from __future__ import annotations

from typing import Any

from django import template

from ..models import Alert

register = template.Library()


def _masked(number: str) -> str:
    return number[:4] + "…" + number[-2:] if len(number) > 6 else number


@register.inclusion_tag("alerts/_chain.html", takes_context=True)
def alert_chain(context: dict[str, Any], study: Any) -> dict[str, Any]:
    """The page showing it has already checked the study is visible; numbers only to admins."""
    user = context.get("user")
    admin = bool(user and getattr(user, "is_joliba_admin", False))
    rows = list(
        Alert.objects.filter(study_id=study.pk)
        .exclude(kind="phone_confirmation")
        .select_related("recipient", "acked_by")
        .order_by("created_at", "pk")
    )
    for a in rows:
        name = (a.recipient.get_full_name() or a.recipient.username) if a.recipient else a.recipient_role
        shown = a.address if admin else _masked(a.address)
        a.who = f"{name} ({shown})"  # type: ignore[attr-defined]
    return {"chain": rows, "user": user}
