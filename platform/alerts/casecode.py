"""The short code an alert names a case by (never the patient's name).

Until the worklist helper's `Study.case_code` lands on main this module computes one of its own;
`case_code()` then uses the property (the switch is the `getattr` below).
"""

from __future__ import annotations

from studies.models import Study

_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # no 0/O, 1/I/L: read aloud and typed on a phone


def case_code(study: Study) -> str:
    code = getattr(study, "case_code", None)
    if isinstance(code, str) and code:
        return code
    return fallback_code(study.pk)


def fallback_code(pk: int) -> str:
    """« J » and the study's key in a 31-letter alphabet: J7F3 for a few thousand cases, longer after."""
    n, out = pk, ""
    while True:
        n, r = divmod(n, len(_ALPHABET))
        out = _ALPHABET[r] + out
        if n == 0:
            break
    return "J" + out.rjust(3, "2")


def study_pk_from_code(code: str) -> int | None:
    code = code.strip().upper()
    if not code.startswith("J") or len(code) < 2 or any(c not in _ALPHABET for c in code[1:]):
        return None
    n = 0
    for c in code[1:]:
        n = n * len(_ALPHABET) + _ALPHABET.index(c)
    return n
