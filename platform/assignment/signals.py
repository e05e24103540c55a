from __future__ import annotations

from typing import Any

from studies.access import CLAIMABLE

from .push import push_mode
from .tasks import assign_waiting


def assign_when_claimable(sender: Any, *, to_status: str, **kwargs: Any) -> None:
    """In push mode a case that becomes claimable (complete, released, expired) is given at once."""
    if push_mode() and to_status in CLAIMABLE:
        assign_waiting.delay()
