"""The short code an alert names a case by (never the patient's name): the study's own case code
(studies.models.Study.case_code, e.g. KAYES-1234), which the worklist's search also reads back."""

from __future__ import annotations

from studies.models import Study


def case_code(study: Study) -> str:
    return study.case_code
