"""The viewer manifest of a study (/work/brief/viewer-contract.md; docs/viewer.md): every image,
its header facts, its rendition URLs, its AI overlays and the next cases' previews.

A few queries, no Orthanc call: the header facts were read once when the renditions were made.
Call it only with a study the user may see (access.get_study_for_user): it checks nothing itself
except whether AI output may be shown.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from django.utils.translation import get_language

from studies import access
from studies.models import Instance, Study

from .models import Kind, Rendition, State, ViewerImage
from .reasons import render as render_reason

PREFETCH_CASES = 3


def study_manifest(study: Study, user: Any, *, prefetch: bool = True) -> dict[str, Any]:
    """The manifest; `prefetch=False` skips the queue lookup (a page drawing its previews from
    the manifest's data needs no next cases: the script asks the manifest for them)."""
    instances = list(
        study.instances.select_related("viewer_image")
        .prefetch_related("renditions")
        .order_by("series_instance_uid", "instance_number", "pk")
    )
    results = _ai_results(study, user)
    series: dict[str, dict[str, Any]] = {}
    pending = False
    for instance in instances:
        image = _viewer_image(instance)
        pending = pending or image is None or image.state == State.PENDING
        entry = _instance_entry(study, instance, image, results.get(instance.pk))
        facts = image.facts if image is not None else {}
        group = series.setdefault(
            instance.series_instance_uid,
            {
                "uid": instance.series_instance_uid,
                "number": facts.get("series_number"),
                "modality": instance.modality,
                "description": facts.get("series_description", ""),
                "instances": [],
            },
        )
        group["instances"].append(entry)
    ordered = sorted(series.values(), key=lambda s: (s["number"] is None, s["number"] or 0, s["uid"]))
    for group in ordered:
        group["instances"].sort(key=lambda i: (i["number"] is None, i["number"] or 0, i["id"]))
    return {
        "study": study.pk,
        "ready": not pending,
        "series": ordered,
        "prefetch": prefetch_urls(user, study) if prefetch else [],
    }


def _viewer_image(instance: Instance) -> ViewerImage | None:
    try:
        return instance.viewer_image
    except ViewerImage.DoesNotExist:
        return None


def rendition_url(study_pk: int, rendition: Rendition) -> str:
    return reverse("viewer_rendition", args=[study_pk, rendition.instance_id, rendition.name])


def _instance_entry(study: Study, instance: Instance, image: ViewerImage | None, ai: Any) -> dict[str, Any]:
    facts = dict(image.facts) if image is not None else {}
    renditions = list(instance.renditions.all())
    preview = next((r for r in renditions if r.kind == Kind.PREVIEW), None)
    frames = sorted((r for r in renditions if r.kind == Kind.FULL), key=lambda r: r.frame)
    n_frames = facts.get("frames") or 1
    failed = image is not None and image.state == State.FAILED
    full = None
    if image is not None and image.state == State.DONE and len(frames) == n_frames:
        full = {
            "format": frames[0].format,
            "width": frames[0].width,
            "height": frames[0].height,
            "frames": [rendition_url(study.pk, r) for r in frames],
        }
    if preview is not None:
        preview_entry = {
            "url": rendition_url(study.pk, preview),
            "width": preview.width,
            "height": preview.height,
        }
    elif failed:
        preview_entry = None  # nothing can be drawn from these pixels: `unavailable` says why
    else:  # not rendered yet: the platform renders one on request
        preview_entry = {
            "url": reverse("instance_preview", args=[study.pk, instance.pk]),
            "width": None,
            "height": None,
        }
    columns, rows = facts.get("columns"), facts.get("rows")
    return {
        "id": instance.pk,
        "number": instance.instance_number,
        "columns": columns,
        "rows": rows,
        "frames": n_frames,
        "photometric": facts.get("photometric"),
        "modality_lut": facts.get("modality_lut"),
        "stored": facts.get("stored"),
        "windows": facts.get("windows") or [],
        "stretch": facts.get("stretch"),
        "spacing": facts.get("spacing"),
        "lossy": {"ratio": instance.lossy_ratio, "method": instance.lossy_method} if instance.lossy else None,
        "preview": preview_entry,
        "full": full,
        "unavailable": (
            {"code": image.error_code, "reason": render_reason(image.error_code, image.error_params)}
            if failed and image is not None
            else None
        ),
        "cine_fps": facts.get("cine_fps"),
        "original": reverse("viewer_original", args=[study.pk, instance.pk]),
        "ai": _ai_entry(study, instance, ai, columns, rows),
    }


# --- AI overlays -----------------------------------------------------------------------------------
def _ai_results(study: Study, user: Any) -> dict[int, Any]:
    if not access.may_see_ai_output(user):
        return {}
    from preread.selectors import current_preread, image_results_by_instance

    return image_results_by_instance(current_preread(study))


def _ai_entry(study: Study, instance: Instance, result: Any, columns: int | None, rows: int | None) -> Any:
    """Boxes in the full image's pixels (columns × rows), as the pre-read stored them.

    The pre-read maps a model's boxes back to the original image (inference.preread._boxes,
    through the letterbox geometry), and records the image size they refer to (columns, rows).
    They were drawn too tall because the page placed them as percentages of a <figure> that also
    held the captions; the coordinates themselves are right. Should the recorded size ever differ
    from the header's (a result from another rendering of the image), they are rescaled here.
    """
    if result is None or not result.is_scored:
        return None
    sx = sy = 1.0
    if columns and rows and result.columns and result.rows:
        sx, sy = columns / result.columns, rows / result.rows
    english = (get_language() or "fr").startswith("en")
    boxes = [
        {
            "x": round(b["x0"] * sx, 1),
            "y": round(b["y0"] * sy, 1),
            "width": round((b["x1"] - b["x0"]) * sx, 1),
            "height": round((b["y1"] - b["y0"]) * sy, 1),
            "label": (b.get("display_en") if english else b.get("display_fr")) or b["label"],
            "score": b["score"],
        }
        for b in result.boxes
    ]
    return {
        "model": result.model_label,
        "demo": result.demo,
        "boxes": boxes,
        "heatmap": reverse("ai_heatmap", args=[study.pk, instance.pk]) if result.has_heatmap else None,
    }


# --- Prefetch --------------------------------------------------------------------------------------
def prefetch_urls(user: Any, study: Study, n: int = PREFETCH_CASES) -> list[str]:
    """The preview of the first image of each of the next cases in this radiologist's queue."""
    from .queue import next_cases

    urls = []
    for case in next_cases(user, study, n):
        first = (
            Rendition.objects.filter(instance__study=case, kind=Kind.PREVIEW)
            .order_by("instance__series_instance_uid", "instance__instance_number", "instance_id")
            .first()
        )
        if first is not None:
            urls.append(rendition_url(case.pk, first))
    return urls
