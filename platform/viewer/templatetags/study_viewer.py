"""`{% study_viewer study %}`: the reading page's viewer, drawn from the viewer manifest.

The same data feeds the page without JavaScript (previews as plain images, the lossy label, AI
overlays placed by CSS) and the script (which fetches the manifest itself). The read view passes
only `study`; everything else is found here, for the signed-in user."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from django import template
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _

register = template.Library()


@register.inclusion_tag("viewer/_study_viewer.html", takes_context=True)
def study_viewer(context: template.Context, study: Any) -> dict[str, Any]:
    user = context["request"].user
    manifest = _manifest(study, user)
    try:
        manifest_url = reverse("viewer_manifest", args=[study.pk])
    except NoReverseMatch:  # the manifest view is not there yet: the page stays without script
        manifest_url = ""
    images = [_static_image(inst) for series in manifest["series"] for inst in series["instances"]]
    first = images[0]["preview"]["url"] if images else ""
    return {
        "study": study,
        "manifest_url": manifest_url,
        "images": images,
        "first_preview": first,
        "has_ai": any(img["ai"] for img in images),
        "ai_model": next((img["ai"]["model"] for img in images if img["ai"]), ""),
        "texts": viewer_texts(),
        "text_id": f"vw-text-{study.pk}",
        "presets": PRESET_NAMES,
    }


PRESET_NAMES = ("lung", "mediastinum", "bone", "brain", "subdural", "abdomen")


def viewer_texts() -> dict[str, Any]:
    """The script's words, translated here (French msgids) and handed over as JSON."""
    return {
        "full": _("Pleine fidélité"),
        "preview": _("Aperçu"),
        "inverted": _("inversé"),
        "lossy": _("Compression avec perte"),
        "calibrated": _("calibré"),
        "uncalibrated": _("non calibré"),
        "distance": _("Distance :"),
        "noSpacing": _("Mesure impossible : l'espacement des pixels de cette image est inconnu."),
        "presets": {
            "file": _("Fenêtre du fichier"),
            "stretch": _("Automatique (percentiles)"),
            "lung": _("Poumon"),
            "mediastinum": _("Médiastin"),
            "bone": _("Os"),
            "brain": _("Cerveau"),
            "subdural": _("Sous-dural"),
            "abdomen": _("Abdomen"),
        },
    }


def _manifest(study: Any, user: Any) -> dict[str, Any]:
    try:  # the renditions side (helper/renditions) builds it; imported by name until it lands
        study_manifest = import_module("viewer.manifest").study_manifest
    except (ImportError, AttributeError):
        return _manifest_from_instances(study, user)
    return study_manifest(study, user)


def _manifest_from_instances(study: Any, user: Any) -> dict[str, Any]:
    """The keys the page needs, from the instances and the current pre-read, until the manifest
    module lands (same shape: see /work/brief/viewer-contract.md)."""
    from preread.selectors import current_preread, image_results_by_instance
    from studies import access

    results = image_results_by_instance(current_preread(study)) if access.may_see_ai_output(user) else {}
    instances = []
    for inst in study.instances.all():
        res = results.get(inst.pk)
        ai = None
        if res is not None and res.columns and res.rows:
            ai = {
                "model": res.model_label,
                "boxes": [
                    {
                        "x": b["x0"],
                        "y": b["y0"],
                        "width": b["x1"] - b["x0"],
                        "height": b["y1"] - b["y0"],
                        "label": b["label"],
                        "score": b["score"],
                    }
                    for b in res.boxes
                ],
                "heatmap": reverse("ai_heatmap", args=[study.pk, inst.pk]) if res.has_heatmap else None,
            }
        instances.append(
            {
                "id": inst.pk,
                "number": inst.instance_number,
                "columns": res.columns if res is not None else None,
                "rows": res.rows if res is not None else None,
                "lossy": {"ratio": inst.lossy_ratio, "method": inst.lossy_method} if inst.lossy else None,
                "preview": {"url": reverse("instance_preview", args=[study.pk, inst.pk])},
                "ai": ai,
            }
        )
    return {"study": study.pk, "series": [{"instances": instances}] if instances else [], "prefetch": []}


def _static_image(inst: dict[str, Any]) -> dict[str, Any]:
    """One image for the page without script: its aspect ratio and the AI boxes as percentages of
    the image box (the frame has the image's aspect, so CSS percentages land on the pixels)."""
    cols, rows = inst.get("columns"), inst.get("rows")
    ai = inst.get("ai")
    boxes = []
    if ai and cols and rows:
        boxes = [
            {
                "label": b["label"],
                "score": b.get("score"),
                "left": 100 * b["x"] / cols,
                "top": 100 * b["y"] / rows,
                "width": 100 * b["width"] / cols,
                "height": 100 * b["height"] / rows,
            }
            for b in ai.get("boxes") or []
        ]
    return {**inst, "aspect": f"{cols} / {rows}" if cols and rows else "", "boxes": boxes}
