"""What accounts tells the rest of the platform: a sign-in, second-factor or session event.

accounts is the lowest app (every other one builds on its users and sites), so it never imports
the audit trail; it announces the event here and audit.receivers writes the row, with the same
semantics as calling audit.api.record (a refused or failed event at once, a success on commit).
"""

from __future__ import annotations

from typing import Any

from django.dispatch import Signal

# Sent with: action (an audit action code), request, actor, obj, outcome, detail (all optional
# but action); the receivers' exceptions propagate, as a direct call's would.
account_event = Signal()


def announce(action: str, **fields: Any) -> None:
    """Tell the listeners (the audit trail) that `action` happened."""
    account_event.send(sender=announce, action=action, **fields)
