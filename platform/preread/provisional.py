"""The provisional pre-read of a study still arriving, from the previews its site sent first.

A preview (uploads.Preview, handed over as bytes by the uploads app, which builds on this one)
carries the original's header facts, so the library's own scope
checks (inference.scope: species, modality, body part, view, age) decide on it as on the
original: a preview of an image the model would refuse gets no score, with the same reason.
The result is provisional: it ranks the study while it arrives (worklist/facts.py), is labelled
so wherever it is shown, never becomes the study's pre-read and raises no alert of its own; once
the study is complete, the pre-read of the full images (preread.services) replaces it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from studies.models import Study

from .models import Outcome, PreRead, ProvisionalPreRead
from .services import enabled_registry, models_key, verdict_fields

log = logging.getLogger(__name__)


def score_preview(*, preview_id: int, study_id: int, data: bytes) -> ProvisionalPreRead | None:
    """Pre-read one preview (`data`, its DICOM bytes) with the enabled models; None when there is
    nothing to do (no model, the study complete or pre-read already). Idempotent per preview and
    models."""
    registry = enabled_registry()
    if not len(registry):
        return None
    study = Study.objects.filter(pk=study_id).first()
    if study is None or not data or not study.is_arriving:
        return None  # complete meanwhile: the pre-read of the full images decides
    if PreRead.objects.filter(study=study, is_current=True).exists():
        return None
    key = models_key(registry)
    done = ProvisionalPreRead.objects.filter(preview_id=preview_id, models_key=key).first()
    if done is not None:
        return done
    from inference.preread import run_preread  # the worker only: the web never loads onnxruntime

    try:
        result = run_preread(data, registry, max_pixels=settings.PREREAD_MAX_PIXELS)
        fields = _fields(result, registry)
    except Exception as exc:  # the library promises not to raise; the study arrives anyway
        log.exception("provisional pre-read crashed on preview %s", preview_id)
        fields = {
            "status": Outcome.FAILED,
            "reason_code": "internal_error",
            "reason_params": {"error": type(exc).__name__},
        }
    try:
        with transaction.atomic():
            return ProvisionalPreRead.objects.create(
                study=study, preview_id=preview_id, models_key=key, **fields
            )
    except IntegrityError:  # a redelivered task scored it first: keep that one
        return ProvisionalPreRead.objects.get(preview_id=preview_id, models_key=key)


def _fields(result: Any, registry: Any) -> dict[str, Any]:
    package = registry.get(result.model_name) if result.model_name else None
    names = (
        {lab.name: {"fr": lab.display_fr, "en": lab.display_en} for lab in package.spec.labels}
        if package is not None
        else {}
    )
    as_dict = result.to_dict()
    return {
        **verdict_fields(result),  # no draft from a 384 px lossy preview: the full images write it
        "flag_names": {f: names[f] for f in result.critical_flags if f in names},
        "details": {"warnings": as_dict["warnings"], "quality": as_dict["quality"]},
    }


def provisional_for(study_ids: Iterable[int]) -> dict[int, ProvisionalPreRead]:
    """Per study, what its previews' pre-reads say: the most urgent scored one, else the newest
    refusal or failure (its reason is shown)."""
    best: dict[int, ProvisionalPreRead] = {}
    rows = ProvisionalPreRead.objects.filter(study_id__in=list(study_ids)).order_by("created_at", "pk")
    for row in rows:
        held = best.get(row.study_id)
        if held is None or _better(row, held):
            best[row.study_id] = row
    return best


def _better(row: ProvisionalPreRead, held: ProvisionalPreRead) -> bool:
    if row.is_scored != held.is_scored:
        return row.is_scored
    if row.is_scored:
        return (row.urgency or 0.0) > (held.urgency or 0.0)
    return True  # the newer refusal or failure
