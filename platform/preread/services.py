"""Run the AI pre-read of a study and keep its result. Called by the worker, never by a request.

Idempotent: a task redelivered after its worker died finds its run (unique per study and models)
and the images already scored (unique per run and instance), and only finishes what is missing.
"""

from __future__ import annotations

import hashlib
import io
import logging
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from studies import lifecycle
from studies.lifecycle import Transition
from studies.models import Instance, Status, Study, StudyEvent

from . import shadow
from .models import ImageResult, Outcome, PreRead

if TYPE_CHECKING:
    from inference.preread import PreReadResult
    from inference.registry import ModelRegistry

log = logging.getLogger(__name__)

MAX_IMAGES_PER_STUDY = 8  # a radiograph study has a few views; a CT series is out of scope anyway

_registry_cache: dict[str, Any] = {"fingerprint": None, "registry": None}


def _fingerprint(root: Path) -> tuple:
    """Cheap to compute on every task: names, sizes and times of the package files."""
    if not root.is_dir():
        return (str(root),)
    stats = []
    for path in sorted(root.glob("*/*")):
        if path.name in ("manifest.json", "model.onnx"):
            st = path.stat()
            stats.append((str(path), st.st_size, st.st_mtime_ns))
    return (str(root), tuple(stats))


def enabled_registry() -> ModelRegistry:
    """The models of JOLIBA_MODELS_DIR, loaded (and hash-checked) once per worker process;
    loaded again only when a package there changes, so a new model needs no worker restart."""
    from inference.registry import ModelRegistry

    root = Path(settings.JOLIBA_MODELS_DIR)
    allow = frozenset(settings.JOLIBA_MODELS_ALLOW_UNKNOWN_AGE)
    fingerprint = (_fingerprint(root), allow, settings.JOLIBA_ORT_THREADS)
    if _registry_cache["fingerprint"] != fingerprint:
        registry = ModelRegistry.from_directory(
            root, allow_unknown_age=allow, threads=settings.JOLIBA_ORT_THREADS
        )
        for refused in registry.refused:
            log.error("model package %s refused: %s", refused.directory.name, refused.reason.en)
        _registry_cache.update(fingerprint=fingerprint, registry=registry)
    return _registry_cache["registry"]


def models_key(registry: ModelRegistry) -> str:
    hashes = sorted(m.spec.sha256 for m in registry)
    return hashlib.sha256(",".join(hashes).encode()).hexdigest()


def _candidates(study: Study, registry: ModelRegistry) -> list[Instance]:
    """The images a model may accept, by modality, up to the cap (unknown modality: let it say)."""
    modalities = {m for package in registry for m in package.spec.scope.modalities}
    instances = [i for i in study.instances.all() if not i.modality or i.modality.upper() in modalities]
    return instances[:MAX_IMAGES_PER_STUDY]


def preread_study(*, study_id: int) -> PreRead | None:
    """Pre-read a study with the enabled models; None when no model is enabled.

    The same models never pre-read a study twice: an existing finished run is returned as is;
    a new model version makes a new run by itself (the old ones stay as history).
    """
    registry = enabled_registry()
    if not len(registry):
        return None
    study = Study.objects.filter(pk=study_id).first()
    if study is None:
        return None
    key = models_key(registry)
    # get_or_create re-reads after a unique-constraint clash: a concurrent delivery shares the run.
    run, _ = PreRead.objects.get_or_create(study=study, models_key=key)
    if run.is_finished:
        return run
    PreRead.objects.filter(pk=run.pk).update(attempts=F("attempts") + 1)

    t0 = time.perf_counter()
    candidates = _candidates(study, registry)
    done = set(run.images.values_list("instance_id", flat=True))
    for instance in candidates:
        if instance.pk not in done:
            _score_instance(run=run, instance=instance, registry=registry)
    elapsed_ms = (time.perf_counter() - t0) * 1000
    return _finish(run=run, study=study, candidates=len(candidates), elapsed_ms=elapsed_ms)


def _score_instance(*, run: PreRead, instance: Instance, registry: ModelRegistry) -> None:
    from inference.preread import run_preread  # here, so the web process never loads onnxruntime
    from orthanc.client import OrthancError
    from studies.archive import get_archive

    try:
        data = get_archive().instance_file(instance.orthanc_id)
    except OrthancError as exc:
        log.warning("pre-read: instance %s not readable from the archive: %s", instance.pk, exc)
        _store(run, instance, status=Outcome.FAILED, reason_code="archive_unavailable")
        return
    try:
        result = run_preread(data, registry, max_pixels=settings.PREREAD_MAX_PIXELS)
    except Exception as exc:  # the library promises not to raise; if it does, the study still moves on
        log.exception("pre-read crashed on instance %s", instance.pk)
        _store(
            run,
            instance,
            status=Outcome.FAILED,
            reason_code="internal_error",
            reason_params={"error": type(exc).__name__},
        )
        return
    package = registry.get(result.model_name) if result.model_name else None
    names = (
        {lab.name: {"fr": lab.display_fr, "en": lab.display_en} for lab in package.spec.labels}
        if package is not None
        else {}
    )
    _store(
        run,
        instance,
        **_fields_from(result, data),
        flag_names={f: names[f] for f in result.critical_flags if f in names},
    )


def verdict_fields(result: PreReadResult) -> dict[str, Any]:
    """The model and its verdict, as every stored run keeps them (an image's pre-read, a
    preview's provisional one)."""
    reason = result.reason
    return {
        "status": result.status,
        "model_name": result.model_name or "",
        "model_version": result.model_version or "",
        "model_sha256": result.model_sha256 or "",
        "demo": result.demo,
        "urgency": result.urgency,
        "critical_flags": list(result.critical_flags),
        "reason_code": reason.code if reason else "",
        "reason_params": dict(reason.params) if reason else {},
    }


def _fields_from(result: PreReadResult, data: bytes) -> dict[str, Any]:
    as_dict = result.to_dict()
    heatmap = as_dict.pop("heatmap", None)
    columns = rows = None
    if heatmap:
        columns, rows = heatmap["covers"][2], heatmap["covers"][3]
    elif result.boxes:
        import pydicom

        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        columns, rows = int(ds.Columns), int(ds.Rows)
    return {
        **verdict_fields(result),
        "draft_fr": result.draft_fr,
        "draft_en": result.draft_en,
        "outputs": dict(result.outputs),
        "boxes": list(result.boxes),
        "heatmap_png": result.heatmap_png(),
        "columns": columns,
        "rows": rows,
        "timings_ms": as_dict["timings_ms"],
        "details": {
            "warnings": as_dict["warnings"],
            "quality": as_dict["quality"],
            "regression": as_dict["regression"],
            "positive_labels": as_dict["positive_labels"],
            "pixel_spacing_mm": as_dict["pixel_spacing_mm"],
            "heatmap": {k: v for k, v in heatmap.items() if k != "png_base64"} if heatmap else None,
        },
    }


def _store(run: PreRead, instance: Instance, **fields: Any) -> None:
    try:
        with transaction.atomic():
            ImageResult.objects.create(preread=run, instance=instance, **fields)
    except IntegrityError:  # scored by an earlier delivery of the same task: keep the first
        pass


def _finish(*, run: PreRead, study: Study, candidates: int, elapsed_ms: float) -> PreRead:
    """Summarise the images into the run and make it the study's current pre-read (the worklist
    ranks from it). Once only: the run row is locked and checked."""
    with transaction.atomic():
        locked = PreRead.objects.select_for_update().get(pk=run.pk)
        if locked.is_finished:
            return locked
        images = list(locked.images.all())
        scored = [i for i in images if i.status == Outcome.SCORED]
        if scored:
            best = max(scored, key=lambda i: i.urgency or 0.0)
            locked.status = Outcome.SCORED
            _copy_facts(best, locked)
            locked.urgency = best.urgency
            locked.critical_flags = sorted({f for i in scored for f in i.critical_flags})
            locked.flag_names = {k: v for i in scored for k, v in i.flag_names.items()}
            locked.reason_code, locked.reason_params = "", {}
        else:
            failed = [i for i in images if i.status == Outcome.FAILED]
            first = next(iter(failed or images), None)
            locked.status = Outcome.FAILED if failed else Outcome.REFUSED
            if first is not None:
                _copy_facts(first, locked)
            else:
                locked.reason_code = "no_model_for_study"
                locked.reason_params = {"modality": study.modality or "?"}
        locked.images_total, locked.images_scored = candidates, len(scored)
        locked.finished_at = timezone.now()
        locked.total_ms = round(elapsed_ms, 1)
        PreRead.objects.filter(study=study, is_current=True).update(is_current=False)
        locked.is_current = True
        locked.save()
    return locked


def _copy_facts(image: ImageResult, run: PreRead) -> None:
    for name in (
        "model_name",
        "model_version",
        "model_sha256",
        "demo",
        "draft_fr",
        "draft_en",
        "reason_code",
        "reason_params",
    ):
        setattr(run, name, getattr(image, name))


def prepare_study_for_reading(study_id: int) -> Study | None:
    """Pre-read a received study with the enabled models, then put it in the reading queue.

    Whatever the pre-read does (scores, refuses, fails, crashes), the study reaches the queue:
    AI must never stand between a patient and a radiologist. No model enabled: straight to the queue.
    """
    if not Study.objects.filter(pk=study_id, status=Status.RECEIVED).exists():
        return Study.objects.filter(pk=study_id).first()
    try:
        preread_study(study_id=study_id)
        shadow.measure_later(study_id)  # models under trial: their own task, never the ranking
    except Exception:  # a bug there must not hold the study back; the log keeps the trace
        log.exception("pre-read of study %s crashed; queueing it without", study_id)
    study = Study.objects.get(pk=study_id)
    try:
        return lifecycle.transition(study, Transition.QUEUE)
    except lifecycle.TransitionRefused:  # claimed meanwhile (a STAT case need not wait for AI)
        study.refresh_from_db()
        return study


def requeue_stalled_studies(*, older_than_s: int) -> list[int]:
    """Enqueue again the studies still « reçu » after a while.

    The broker is not the record: a lost message (a broker restarted without persistence, a worker
    host gone) must not leave a study waiting forever. Preparing a study twice is harmless.
    """
    from .tasks import prepare_for_reading

    cutoff = timezone.now() - timedelta(seconds=older_than_s)
    recent = StudyEvent.objects.filter(study=OuterRef("pk"), to_status=Status.RECEIVED, at__gte=cutoff)
    stalled = list(
        Study.objects.filter(status=Status.RECEIVED).filter(~Exists(recent)).values_list("pk", flat=True)
    )
    for pk in stalled:
        prepare_for_reading.delay(pk)
    if stalled:
        log.warning("re-queued %d studies still waiting in 'received'", len(stalled))
    return stalled


def on_status_changed(sender: object, *, study_id: int, transition: str, to_status: str, **_: object) -> None:
    """A study became complete (or got new images after its report): pre-read it, off the request."""
    if to_status == Status.RECEIVED:
        from .tasks import prepare_for_reading

        prepare_for_reading.delay(study_id)
