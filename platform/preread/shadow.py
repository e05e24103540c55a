"""Shadow mode: a model or a threshold under trial runs on live cases, measured, never ranked.

After the live pre-read of a study (preread.services), `measure_later` enqueues one task that
runs every active ShadowModel on it and keeps each answer in ShadowResult. Nothing here writes a
PreRead or a study: the worklist's ranking facts (worklist/facts.py) come from the current
PreRead only, so a shadow model cannot move a case (tests/test_dashboard_ai.py proves it).

What counts as "the AI flagged this case" is stated here once, for live and shadow models alike:
a critical flag, or a label at or above its threshold (what the draft reports as a finding); a
shadow with its own `threshold` flags instead when the case's urgency reaches it.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q

from studies.models import Study

from .models import ImageResult, Outcome, PreRead, ShadowModel, ShadowResult

if TYPE_CHECKING:
    from inference.registry import ModelRegistry

log = logging.getLogger(__name__)

_packages: dict[tuple, Any] = {}  # package_dir fingerprint -> its registry, per worker process


def is_flagged(
    *, urgency: float | None, critical_flags: list[str], positive: bool, threshold: float | None
) -> bool:
    """The one rule (see the module's docstring)."""
    if threshold is not None:
        return urgency is not None and urgency >= threshold
    return bool(critical_flags) or positive


def live_flagged_q() -> Q:
    """is_flagged() for scored PreRead rows, as a filter: a critical flag, or an image with a
    positive label."""
    positive = (
        ImageResult.objects.filter(preread=OuterRef("pk"), status=Outcome.SCORED)
        .exclude(details__positive_labels=[])
        .exclude(details__positive_labels__isnull=True)
    )
    return ~Q(critical_flags=[]) | Q(Exists(positive))


def measure_later(study_id: int) -> None:
    """Called once the live pre-read is done: the shadow models run in a task of their own, so
    they never delay the case's arrival in the queue."""
    if ShadowModel.objects.filter(active=True).exists():
        from .tasks import run_shadow_models

        transaction.on_commit(lambda: run_shadow_models.delay(study_id))


def run_shadow_models(*, study_id: int) -> list[ShadowResult]:
    """Every active shadow model on one study, once each (a redelivered task finds its rows)."""
    study = Study.objects.filter(pk=study_id).first()
    if study is None:
        return []
    results = []
    for shadow in ShadowModel.objects.filter(active=True):
        done = ShadowResult.objects.filter(shadow=shadow, study=study).first()
        if done is None:
            try:
                done = _run(shadow, study)
            except Exception:  # a model under trial must never break anything else
                log.exception("shadow model %s crashed on study %s", shadow.name, study_id)
                continue
        if done is not None:
            results.append(done)
    return results


def _run(shadow: ShadowModel, study: Study) -> ShadowResult | None:
    if not shadow.package_dir:
        return _rethreshold_live(shadow, study)
    registry = _registry(Path(shadow.package_dir))
    if registry is None:
        return _store(shadow, study, status=Outcome.FAILED, reason_code="no_model")
    return _score(shadow, study, registry)


def _rethreshold_live(shadow: ShadowModel, study: Study) -> ShadowResult | None:
    """A new threshold on the live model: its stored result, judged again (no inference)."""
    live = PreRead.objects.filter(study=study, is_current=True).first()
    if live is None:
        return None
    scored = live.status == Outcome.SCORED
    positive = scored and PreRead.objects.filter(pk=live.pk).filter(live_flagged_q()).exists()
    return _store(
        shadow,
        study,
        status=live.status,
        model_name=live.model_name,
        model_version=live.model_version,
        model_sha256=live.model_sha256,
        demo=live.demo,
        urgency=live.urgency,
        critical_flags=list(live.critical_flags),
        flagged=scored
        and is_flagged(
            urgency=live.urgency, critical_flags=[], positive=positive, threshold=shadow.threshold
        ),
        images_scored=live.images_scored,
        reason_code=live.reason_code,
        reason_params=live.reason_params,
    )


def _registry(directory: Path) -> ModelRegistry | None:
    """The one package of a shadow model, loaded (and hash-checked) once per worker process."""
    from inference.registry import ModelPackage, ModelRegistry, load_package

    manifest, model = directory / "manifest.json", directory / "model.onnx"
    if not (manifest.is_file() and model.is_file()):
        log.error("shadow model package %s: no manifest.json and model.onnx there", directory)
        return None
    key = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in (manifest, model))
    if key not in _packages:
        package = load_package(directory)
        if not isinstance(package, ModelPackage):
            log.error("shadow model package %s refused: %s", directory, package.code)
            return None
        allow = package.spec.name in settings.JOLIBA_MODELS_ALLOW_UNKNOWN_AGE
        _packages[key] = ModelRegistry(
            models=[replace(package, allow_unknown_age=allow)], threads=settings.JOLIBA_ORT_THREADS
        )
    return _packages[key]


def _score(shadow: ShadowModel, study: Study, registry: ModelRegistry) -> ShadowResult | None:
    from inference.preread import run_preread  # the worker only: the web never loads onnxruntime
    from orthanc.client import OrthancError
    from studies.archive import get_archive

    from .services import MAX_IMAGES_PER_STUDY

    modalities = {m for package in registry for m in package.spec.scope.modalities}
    instances = [i for i in study.instances.all() if not i.modality or i.modality.upper() in modalities]
    scored: list[Any] = []
    first_reason: tuple[str, dict[str, Any]] | None = None
    for instance in instances[:MAX_IMAGES_PER_STUDY]:
        try:
            data = get_archive().instance_file(instance.orthanc_id)
        except OrthancError:
            first_reason = first_reason or ("archive_unavailable", {})
            continue
        result = run_preread(data, registry, max_pixels=settings.PREREAD_MAX_PIXELS)
        if result.status == Outcome.SCORED:
            scored.append(result)
        elif result.reason is not None:
            first_reason = first_reason or (result.reason.code, dict(result.reason.params))
    spec = registry.models[0].spec
    facts: dict[str, Any] = {
        "model_name": spec.name,
        "model_version": spec.version,
        "model_sha256": spec.sha256,
    }
    if not scored:
        code, params = first_reason or ("no_model_for_study", {"modality": study.modality or "?"})
        return _store(shadow, study, status=Outcome.REFUSED, reason_code=code, reason_params=params, **facts)
    urgency = max(r.urgency or 0.0 for r in scored)
    flags = sorted({f for r in scored for f in r.critical_flags})
    positive = any(r.positive_labels for r in scored)
    return _store(
        shadow,
        study,
        status=Outcome.SCORED,
        demo=spec.demo,
        urgency=urgency,
        critical_flags=flags,
        flagged=is_flagged(
            urgency=urgency, critical_flags=flags, positive=positive, threshold=shadow.threshold
        ),
        images_scored=len(scored),
        **facts,
    )


def _store(shadow: ShadowModel, study: Study, **fields: Any) -> ShadowResult | None:
    try:
        with transaction.atomic():
            return ShadowResult.objects.create(shadow=shadow, study=study, **fields)
    except IntegrityError:  # a redelivered task: the first answer stands
        return ShadowResult.objects.filter(shadow=shadow, study=study).first()
