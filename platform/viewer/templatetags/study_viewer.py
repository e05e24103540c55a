"""`{% study_viewer study %}`: the reading page's viewer, drawn from the viewer manifest.

The same data feeds the page without JavaScript (previews as plain images, the lossy label, AI
overlays placed by CSS) and the script (which fetches the manifest itself). The read view passes
only `study`; everything else is found here, for the signed-in user."""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse
from django.utils.translation import gettext as _

from viewer.manifest import study_manifest

register = template.Library()


@register.inclusion_tag("viewer/_study_viewer.html", takes_context=True)
def study_viewer(context: template.Context, study: Any) -> dict[str, Any]:
    # The script fetches the next cases itself (viewer.json); the page needs only this study's images.
    manifest = study_manifest(study, context["request"].user, prefetch=False)
    images = [_static_image(inst) for series in manifest["series"] for inst in series["instances"]]
    first = next((img["preview"]["url"] for img in images if img["preview"]), "")
    return {
        "study": study,
        "manifest_url": reverse("viewer_manifest", args=[study.pk]),
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
            "manual": _("Manuel"),
        },
    }


def _static_image(inst: dict[str, Any]) -> dict[str, Any]:
    """One image for the page without script: the AI boxes as percentages of the image box (the
    frame has the image's aspect through the <img>'s width and height, so percentages land on the
    pixels)."""
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
    return {**inst, "boxes": boxes}
