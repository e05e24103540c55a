"""The next cases of a radiologist's queue, for prefetching their previews (worklist owns the order)."""

from __future__ import annotations

from typing import Any

from studies import access
from studies.models import Study


def next_cases(user: Any, study: Study, n: int = 3) -> list[Study]:
    if not access.may_read_studies(user) or n <= 0:
        return []
    from worklist.selectors import next_cases as ranked_next  # viewer reads the worklist, never the reverse

    return list(ranked_next(user, study, n))
