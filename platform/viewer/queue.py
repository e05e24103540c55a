"""The next cases of a radiologist's queue, for prefetching their previews.

worklist owns the order: `worklist.selectors.next_cases(user, study, n)` when it exists (helper
"worklist" adds it, ranked by the database). Until then the same answer from the worklist as it is
today (`worklist_for`, ranked in Python): the cases after this one that the radiologist may read.
Switch over: delete `_from_worklist_rows` once next_cases is on main.
"""

from __future__ import annotations

from typing import Any

from studies import access
from studies.models import Status, Study


def next_cases(user: Any, study: Study, n: int = 3) -> list[Study]:
    if not access.may_read_studies(user) or n <= 0:
        return []
    from worklist import selectors

    found = getattr(selectors, "next_cases", None)
    if found is not None:
        return list(found(user, study, n))
    return _from_worklist_rows(user, study, n)


def _from_worklist_rows(user: Any, study: Study, n: int) -> list[Study]:
    from worklist.selectors import worklist_for

    cases = worklist_for(user)
    readable = [
        c.study
        for c in cases
        if c.study.pk == study.pk
        or c.may_claim
        or (c.study.assigned_to_id == user.pk and c.study.status == Status.IN_READING)
    ]
    pks = [s.pk for s in readable]
    start = pks.index(study.pk) + 1 if study.pk in pks else 0
    return [s for s in readable[start:] if s.pk != study.pk][:n]
