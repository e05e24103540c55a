"""Make an instance's renditions once, in the worker: the preview and the full-fidelity frames.

Idempotent and safe to kill: files are content-addressed and written atomically (viewer.storage),
a Rendition row is written only after its file, and the image is DONE only once every frame has
its row. A task run again skips what exists. A task that keeps being killed mid-way (a decoder
that takes the process down) is given a verdict after MAX_ATTEMPTS starts, never looped on.
"""

from __future__ import annotations

import io
import logging
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from studies.models import Instance

from . import encoding, storage
from .encoding import Unrenderable
from .models import Format, Kind, Rendition, State, ViewerImage

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
ARCHIVE_UNAVAILABLE = "archive_unavailable"  # not a verdict: the backfill tries again
GAVE_UP = "gave_up"  # killed MAX_ATTEMPTS times while rendering
INTERNAL_ERROR = "internal_error"
UNREADABLE = "unreadable"


def render_instance(instance_id: int) -> ViewerImage | None:
    """Make what is missing of one instance's renditions; returns its ViewerImage (None if the
    instance is gone)."""
    instance = Instance.objects.filter(pk=instance_id).first()
    if instance is None:
        return None
    image, _ = ViewerImage.objects.get_or_create(instance=instance)
    if image.state == State.FAILED or (image.state == State.DONE and _files_present(instance)):
        return image
    if image.attempts >= MAX_ATTEMPTS:
        return _fail(image, GAVE_UP, attempts=image.attempts)

    from orthanc.client import OrthancError
    from studies.archive import get_archive

    try:
        data = get_archive().instance_file(instance.orthanc_id)
    except OrthancError as exc:
        log.warning("renditions: instance %s not readable from the archive: %s", instance.pk, exc)
        ViewerImage.objects.filter(pk=image.pk).update(
            error_code=ARCHIVE_UNAVAILABLE, error_params={"status": exc.status}
        )
        image.refresh_from_db()
        return image
    # Counted (and committed) before decoding: a decoder that kills the worker is not retried forever.
    ViewerImage.objects.filter(pk=image.pk).update(attempts=F("attempts") + 1)
    try:
        _render(instance, image, data)
    except Unrenderable as verdict:
        log.info("renditions: instance %s: %s %s", instance.pk, verdict.code, verdict.params)
        return _fail(image, verdict.code, **verdict.params)
    except Exception as exc:  # a bug must give a verdict, not a task that fails forever
        log.exception("renditions crashed on instance %s", instance.pk)
        return _fail(image, INTERNAL_ERROR, error=type(exc).__name__)
    image.refresh_from_db()
    return image


def _render(instance: Instance, image: ViewerImage, data: bytes) -> None:
    import pydicom

    from studies.renditions import preview_frame, preview_of

    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except Exception as exc:  # any parser failure on bytes from outside is a verdict
        raise Unrenderable(UNREADABLE, error=type(exc).__name__) from None
    facts = encoding.header_facts(ds, None)
    _save_facts(image, facts)  # what the header says, even if the pixels then fail
    encoding.check_renderable(
        ds, max_pixels=settings.RENDITIONS_MAX_PIXELS, max_frames=settings.RENDITIONS_MAX_FRAMES
    )
    frames = encoding.frame_count(ds)
    shown = preview_frame(frames)
    full = instance.renditions.filter(kind=Kind.FULL)
    done = {r.frame for r in full if storage.exists(r.digest, r.size)}
    preview = instance.renditions.filter(kind=Kind.PREVIEW).first()
    arr = encoding.decode_frame(ds, shown)
    windows, stretch = encoding.windows_and_stretch(ds, arr)
    if preview is None or not storage.exists(preview.digest, preview.size):
        _keep(instance, Kind.PREVIEW, shown, Format.WEBP, preview_of(ds, arr))
    try:
        layout = encoding.layout_of(ds)
    except Unrenderable:
        _save_facts(image, {**facts, "windows": windows, "stretch": stretch})
        raise
    _save_facts(image, {**encoding.header_facts(ds, layout), "windows": windows, "stretch": stretch})
    for index in range(frames):
        if index in done:
            continue
        pixels = arr if index == shown else encoding.decode_frame(ds, index)
        values = encoding.stored_values(ds, pixels, layout)
        _keep(instance, Kind.FULL, index, layout.format, encoding.encode_full(values, layout))
        del pixels, values  # one frame at a time
    ViewerImage.objects.filter(pk=image.pk).update(state=State.DONE, error_code="", error_params={})


def _keep(instance: Instance, kind: str, frame: int, fmt: str, data: bytes) -> Rendition:
    """File first, then its row: a row always names a complete file."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as decoded:
        width, height = decoded.size
    digest = storage.put(data)
    rendition, _ = Rendition.objects.update_or_create(
        instance=instance,
        kind=kind,
        frame=frame,
        defaults={"format": fmt, "width": width, "height": height, "digest": digest, "size": len(data)},
    )
    return rendition


def _save_facts(image: ViewerImage, facts: dict[str, Any]) -> None:
    ViewerImage.objects.filter(pk=image.pk).update(facts=facts)


def _fail(image: ViewerImage, code: str, **params: Any) -> ViewerImage:
    ViewerImage.objects.filter(pk=image.pk).update(
        state=State.FAILED, error_code=code, error_params=_jsonable(params)
    )
    image.refresh_from_db()
    return image


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v if isinstance(v, int | float | str | bool | None) else str(v) for k, v in params.items()}


def _files_present(instance: Instance) -> bool:
    return all(storage.exists(r.digest, r.size) for r in instance.renditions.all())


# --- Queueing --------------------------------------------------------------------------------------
def on_instance_recorded(sender: object, *, instance_id: int, **_: object) -> None:
    """studies recorded a new instance (after commit): make its renditions, off the request."""
    from .tasks import make_renditions

    make_renditions.delay(instance_id)


def queue_missing(*, older_than_s: int = 120, limit: int = 500) -> list[int]:
    """Enqueue the instances without finished renditions: recorded before the viewer existed,
    while the worker was down, or whose archive read failed. The database is the record, not the
    broker; rendering twice is harmless. Also sweeps the temporary files killed writers left."""
    from .tasks import make_renditions

    cutoff = timezone.now() - timedelta(seconds=older_than_s)
    unfinished = Q(viewer_image__isnull=True) | Q(viewer_image__state=State.PENDING)
    pending = list(
        Instance.objects.filter(unfinished, created_at__lt=cutoff)
        .filter(Q(viewer_image__isnull=True) | Q(viewer_image__updated_at__lt=cutoff))
        .order_by("-pk")
        .values_list("pk", flat=True)[:limit]
    )
    # Marked as queued now: the next pass queues them again only if still unfinished by then,
    # so a slow worker's backlog is not multiplied in the broker.
    ViewerImage.objects.bulk_create([ViewerImage(instance_id=pk) for pk in pending], ignore_conflicts=True)
    ViewerImage.objects.filter(instance_id__in=pending).update(updated_at=timezone.now())
    for pk in pending:
        transaction.on_commit(partial(make_renditions.delay, pk))
    if pending:
        log.info("renditions: queued %d instances without finished renditions", len(pending))
    storage.sweep_temporary()
    return pending
