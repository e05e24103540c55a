"""Why an image has no full rendition, as a sentence in the reader's language. Pixel codes share
the pre-read's sentences (the same verdicts on the same files); the viewer's own codes are here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

MESSAGES: dict[str, Promise] = {
    "too_deep": _("Image de %(bits)s bits : pas de rendu pleine fidélité (l'aperçu reste affiché)."),
    "values_out_of_range": _(
        "Valeurs de pixels hors de la plage annoncée par l'en-tête (%(low)s à %(high)s pour %(bits)s bits)."
    ),
    "gave_up": _("Le rendu de cette image a échoué %(attempts)s fois : abandonné. Téléchargez l'original."),
    "internal_error": _("Erreur interne pendant le rendu (%(error)s). Téléchargez l'original."),
    "archive_unavailable": _("Archive momentanément injoignable : le rendu sera refait."),
}


def render(code: str, params: Mapping[str, Any] | None = None) -> str:
    template = MESSAGES.get(code)
    if template is None:
        from preread.reasons import render as pixel_reason

        return pixel_reason(code, params)
    try:
        return str(template) % dict(params or {})
    except (KeyError, TypeError, ValueError):
        return str(template).split("(")[0].strip()
